"""Generation jobs for `wala serve`: a bounded queue drained by one worker thread (the model lives there,
so requests never wait on a generation), each job's progress and cancellation, and a results folder
kept within a size and an age.

A job is queued, running, done, failed or cancelled. The worker runs one at a time — generations are
CPU- or GPU-bound, and one released model fills 4–5 GB — and reports progress by stage (loading,
sampling step i of N, decoding, meshing). A cancelled job stops at its next sampling step. The queue
holds at most `capacity` jobs, the running one included; a job past that is refused (429), never held.
Finished jobs keep their files until the results folder passes `keep_bytes` or a job is older than
`keep_seconds`: the oldest go first (never the newest), and what went is remembered so that asking
for it says so. A failed or cancelled job keeps its state and error, not its files.
"""

from __future__ import annotations

import collections
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wala.errors import WalaError, one_line

ACTIVE = ("queued", "running")
REMEMBERED = 10_000  # evicted and finished job ids remembered, for a clear answer about them


class Cancelled(Exception):
    """Raised inside a running job when it was cancelled."""


class Refused(Exception):
    """A request or job turned away: the HTTP status and the one line its client sees."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    id: str
    folder: Path  # its uploads, then its results
    request: dict  # what the runner needs: model, files, steps, guidance, seed
    state: str = "queued"
    stage: str = "queued"  # loading, sampling, decoding, meshing, writing
    step: int = 0
    steps: int = 0
    result: dict | None = None
    error: str | None = None
    status: int = 200  # the HTTP status its failure maps to
    created: float = field(default_factory=time.time)
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    def progress(self, stage: str, step: int = 0, steps: int = 0) -> None:
        """Called by the runner; raises Cancelled once the job was cancelled."""
        if self.cancel.is_set():
            raise Cancelled
        self.stage, self.step, self.steps = stage, step, steps


def new_job_id() -> str:
    return secrets.token_hex(6)


class JobQueue:
    """Jobs run by `runner(job) → result dict` on one worker thread; `capacity` jobs at most, running one
    included. Results are kept under `results` within `keep_bytes` and `keep_seconds`."""

    def __init__(
        self,
        runner: Callable[[Job], dict],
        results: Path,
        capacity: int = 8,
        keep_bytes: int = 2**30,
        keep_seconds: float = 24 * 3600.0,
    ):
        if capacity < 1:
            raise WalaError("the queue needs room for at least one job")
        self.runner, self.results, self.capacity = runner, results, capacity
        self.keep_bytes, self.keep_seconds = keep_bytes, keep_seconds
        self.jobs: dict[str, Job] = {}  # queued, running and finished jobs whose files are kept
        self.waiting: collections.deque[Job] = collections.deque()
        self.gone: collections.OrderedDict[str, str] = collections.OrderedDict()  # id → why it is no longer there
        self.running: Job | None = None
        self.condition = threading.Condition()
        self.stopping = False
        self.worker = threading.Thread(target=self._work, name="wala-jobs", daemon=True)
        self.worker.start()

    # -- the server's side ------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        with self.condition:
            if self.stopping:
                raise Refused(503, "the server is stopping")
            if len(self.waiting) + (self.running is not None) >= self.capacity:
                raise Refused(429, f"the queue is full ({self.capacity} jobs); try again when one is done")
            self.jobs[job.id] = job
            self.waiting.append(job)
            self.condition.notify_all()
        return job

    def get(self, job_id: str) -> Job:
        with self.condition:
            if job_id in self.jobs:
                return self.jobs[job_id]
            raise Refused(404, self.gone.get(job_id, "no such job"))

    def position(self, job: Job) -> int | None:
        """0 while running, 1… while waiting (1 = next), None once finished."""
        with self.condition:
            if job is self.running:
                return 0
            return next((i + 1 for i, waiting in enumerate(self.waiting) if waiting is job), None)

    def cancel(self, job_id: str) -> Job:
        """Cancels a queued job at once, a running one at its next step; a finished job is left as it is."""
        with self.condition:
            job = self.get(job_id)
            if job.state == "queued":
                self.waiting.remove(job)
                self._finish(job, "cancelled")
            elif job.state == "running":
                job.cancel.set()
            return job

    def counts(self) -> dict:
        with self.condition:
            return {"queued": len(self.waiting), "running": self.running.id if self.running else None}

    def stop(self, timeout: float = 10.0) -> None:
        """Cancels everything and ends the worker."""
        with self.condition:
            self.stopping = True
            while self.waiting:
                self._finish(self.waiting.popleft(), "cancelled")
            if self.running is not None:
                self.running.cancel.set()
            self.condition.notify_all()
        self.worker.join(timeout)

    # -- the worker -------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.condition:
                while not self.waiting and not self.stopping:
                    self.condition.wait()
                if self.stopping:
                    return
                job = self.running = self.waiting.popleft()
                job.state = "running"
            state = "done"
            try:
                job.result = self.runner(job)
            except Cancelled:
                state = "cancelled"
            except Refused as exc:
                state, job.status, job.error = "failed", exc.status, str(exc)
            except WalaError as exc:
                state, job.status, job.error = "failed", 400, str(exc)
            except Exception as exc:  # never a dead worker: the job fails with one line
                state, job.status, job.error = "failed", 500, f"generation failed: {one_line(exc)}"
            with self.condition:
                self.running = None
                self._finish(job, state)

    def _finish(self, job: Job, state: str) -> None:
        """(Under the lock.) Ends a job; one without results loses its folder at once (its state stays)."""
        job.state, job.finished_at = state, time.time()
        if state != "done":
            shutil.rmtree(job.folder, ignore_errors=True)
        self._evict()
        job.finished.set()

    def _evict(self) -> None:
        """(Under the lock.) Removes the oldest results past the age or past the size limit — never the
        newest, so that its client can fetch it — and forgets the oldest finished jobs past REMEMBERED."""
        done = sorted((j for j in self.jobs.values() if j.state == "done"), key=lambda j: j.finished_at)
        sizes = {j.id: folder_bytes(j.folder) for j in done}
        total = sum(sizes.values())
        now = time.time()
        for job in done[:-1]:
            if now - job.finished_at <= self.keep_seconds and total <= self.keep_bytes:
                break
            total -= sizes[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)
            self._forget(job, f"the result of job {job.id} was removed: the server keeps {self.limits()}")
        finished = [j for j in self.jobs.values() if j.state not in ACTIVE]
        for job in finished[: max(0, len(finished) - REMEMBERED)]:
            shutil.rmtree(job.folder, ignore_errors=True)
            self._forget(job, f"job {job.id} is no longer remembered")

    def _forget(self, job: Job, why: str) -> None:
        self.jobs.pop(job.id, None)
        self.gone[job.id] = why
        while len(self.gone) > REMEMBERED:
            self.gone.popitem(last=False)

    def sweep(self) -> None:
        """Applies the age limit now (also done after every job)."""
        with self.condition:
            self._evict()

    def limits(self) -> str:
        hours = self.keep_seconds / 3600
        return f"{self.keep_bytes / 2**20:g} MB of results for {hours:g} h at most (--keep)"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0


def parse_keep(text: str) -> tuple[int, float]:
    """`--keep SIZE,AGE` (e.g. 1GB,24h; 500MB,30m) → (bytes, seconds)."""
    units = {"kb": 2**10, "mb": 2**20, "gb": 2**30}
    times = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        size, age = (part.strip().lower() for part in text.split(","))
        number = float(size[:-2]) * units[size[-2:]]
        seconds = float(age[:-1]) * times[age[-1]]
    except (ValueError, KeyError, IndexError):
        raise WalaError(f"--keep {text!r}: give SIZE,AGE such as 1GB,24h or 500MB,30m") from None
    if not (0 < number < 2**50 and 0 < seconds < 10**9):
        raise WalaError(f"--keep {text!r}: both limits must be positive")
    return int(number), seconds
