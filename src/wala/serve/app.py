"""`wala serve`: a local web page to generate shapes — pick a model, upload its condition, set steps,
guidance and seed, see the mesh turn in a 3D viewer beside its preview, download OBJ or GLB.

FastAPI (served by uvicorn) and a small WebGL viewer of our own (`static/`): no JavaScript to fetch from
a CDN or npm, so the page works offline and the whole of it is tested here. Gradio would bring its own
front end (hundreds of MB of dependencies) for one form.

The server expects hostile requests as well as the page's. Uploads are parsed as they stream in
(python-multipart) and written under cleaned names into a fresh job folder; past `max_upload_mb` nothing
more is written, and a body larger than that plus a small margin is cut off (HTTP 413) without being read
to its end. Result and static paths must resolve inside their folders. A POST from another origin, or a
request naming another host while bound to loopback (DNS rebinding), is refused; bound to anything but
loopback, the API wants the server's token. Every failure is one JSON line `{"error": ...}` without local
paths, and a failed job leaves no folder.

Generations are jobs (wala.serve.jobs): `POST /api/jobs` queues one and answers at once, `GET /api/jobs/{id}`
tells its state, queue position and progress, `DELETE` cancels it; `POST /api/generate` queues one and
answers when it is done. One worker thread runs them one at a time and holds the model, so the page, the
model list, results and health answer while a generation runs. The queue is bounded (`queue`, 429 past
it); results live in a temporary folder within a size and an age (`keep`), removed on Ctrl-C and SIGTERM.
The API is described at /docs (OpenAPI at /openapi.json) and in docs/api.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import http
import ipaddress
import json
import math
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, Request  # at module level: FastAPI reads the routes' annotations here
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from wala.errors import WalaError, one_line
from wala.serve import schema
from wala.serve.jobs import Job, JobQueue, Refused, new_job_id, parse_keep

STATIC = Path(__file__).parent / "static"
VIEWER_FACES = 60_000  # the mesh sent to the browser; downloads keep every face
MAX_FILES = 16
FORM_MARGIN = 2 * 2**20  # body bytes past the uploads' own a request may send: multipart framing, fields
FIELD_BYTES = 1024  # model, steps, scale (guidance), seed: short texts
NAME_CHARS = 100  # an upload's stored name, suffix included
JOB_ID = re.compile(r"[0-9a-f]{12}")  # the job ids generate makes, and all a result URL may name
RESULT_FILES = ("shape.obj", "shape.glb", "preview.png", "viewer.json")
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^/\s'\"]+/)+")  # its folders: a path shows as its last part


def create_app(
    models: list[Path],
    max_upload_mb: float = 20.0,
    device: str = "auto",
    dtype: str = "fp32",
    host: str = "127.0.0.1",
    token: str | None = None,
    queue: int = 8,
    keep: str = "1GB,24h",
):
    """The FastAPI app for `models`, answering as a server bound to `host`; with a `token`, the API wants it
    (required when `host` is not loopback). At most `queue` jobs wait or run; results go to a fresh
    temporary folder, `app.state.results`, kept within `keep` (SIZE,AGE). `app.state.jobs.stop()` ends
    the worker."""
    import dataclasses

    from wala.hub.describe import describe
    from wala.hub.download import find_model, hub_id
    from wala.hub.paths import resolve_model

    if token is None and not is_loopback(host):
        raise WalaError(f"a server bound to {host} (not loopback) needs a token")
    described = {}
    for path in models:
        info = describe(find_model(path))
        if hub_id(path) and not resolve_model(path).exists():  # a hub snapshot: named by its id, not its commit
            info = dataclasses.replace(info, name=str(path))
        if info.kind == "text-to-views":
            raise WalaError(f"{path} is a text-to-views model; wala serve shows 3D generators")
        described[info.name] = info
    if not described:
        raise WalaError("wala serve needs at least one model (--model DIR, or models on the search path)")
    keep_bytes, keep_seconds = parse_keep(keep)
    upload_limit = int(max_upload_mb * 2**20)
    body_limit = upload_limit + FORM_MARGIN
    results = Path(tempfile.mkdtemp(prefix="wala-serve-")).resolve()
    # A job's files show by their uploaded names; a job's folder goes before the results folder holding it.
    hidden = [(re.escape(str(results)) + r"/[0-9a-f]{12}/?", ""), (re.escape(str(results)), "results")]
    pipelines: dict[str, object] = {}  # the worker's: one model in memory at a time

    def guard(request: Request):
        """Refuses what a hostile page or another host may send: see check_request."""
        check_request(request, host, token)

    app = FastAPI(
        title="wala",
        description="Condition → 3D shape with WaLa models. See docs/api.md for curl examples.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[Depends(guard)],
        responses={400: {"model": schema.Failure}, 403: {"model": schema.Failure}},
    )
    app.state.results = results

    def public(message: str) -> str:
        """`message` as one line without local paths: a job's files by their uploaded names, any other path by
        its last part."""
        for pattern, shown in hidden:
            message = re.sub(pattern, shown, message)
        return ABSOLUTE_PATH.sub("", " ".join(message.splitlines()))

    def error(message: str, status: int = 400, headers: dict | None = None):
        return JSONResponse({"error": public(message)}, status_code=status, headers=headers)

    @app.exception_handler(Refused)
    async def refused(request, exc: Refused):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error(str(exc), exc.status, headers)

    @app.exception_handler(HTTPException)
    async def http_failure(request, exc: HTTPException):  # FastAPI's own 404, 405, …
        return error(http.HTTPStatus(exc.status_code).phrase.lower(), exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        return error("bad request", 422)

    @app.exception_handler(Exception)
    async def crashed(request, exc: Exception):  # the log keeps the traceback; the page gets one line
        return error(f"internal error: {type(exc).__name__}", 500)

    def pipeline(name: str):
        from wala.pipeline import WaLaPipeline

        if name not in pipelines:
            pipelines.clear()  # one model in memory at a time: the released ones are 4-5 GB
            pipelines[name] = WaLaPipeline.from_pretrained(described[name].path, device, dtype)
        return pipelines[name]

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    static_files = {path.name for path in STATIC.iterdir() if path.is_file()}

    @app.get("/static/{name}")
    def static(name: str):
        if name not in static_files:  # a name is looked up, never made a path: no NUL, '..' or overlong name
            return error("not found", 404)
        return FileResponse(STATIC / name)

    @app.get("/api/models", response_model=list[schema.Model])
    def list_models():
        return [
            {
                "name": m.name,
                "condition": m.condition,
                "kind": m.kind,
                "source": m.source,
                "licence": m.licence,
                "parameters": m.parameters,
                "files": m.files,
                "formats": list(m.formats),
                "steps": m.defaults[0],
                "scale": m.defaults[1],
            }
            for m in described.values()
        ]

    @app.get("/api/health", response_model=schema.Health)
    def health():
        jobs.sweep()
        return {"ok": True, **jobs.counts(), "capacity": jobs.capacity, "model": next(iter(pipelines), None)}

    async def receive_job(request: Request) -> Job:
        """The request's form (multipart) or JSON body → a checked job, its files in a fresh folder."""
        length = request.headers.get("content-length", "")
        is_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
        limit = json_limit if is_json else body_limit
        if length.isdigit() and int(length) > limit:  # refused before a byte of the body is read
            raise Refused(413, f"uploads larger than {max_upload_mb:g} MB")
        job_id = new_job_id()
        folder = results / job_id
        folder.mkdir()
        try:
            if is_json:
                fields, paths = await read_json(request, folder, upload_limit, json_limit, max_upload_mb)
            else:
                fields, paths = await read_form(request, folder, upload_limit, body_limit, max_upload_mb)
            name, steps, guidance, seed = settings(fields, paths)
        except ClientDisconnect:
            shutil.rmtree(folder, ignore_errors=True)
            raise Refused(400, "the upload was cut off") from None
        except BaseException:  # refused, or cancelled: the client went away, or the server stops
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Job(job_id, folder, {"model": name, "paths": paths, "steps": steps, "guidance": guidance, "seed": seed})

    def submitted(job: Job) -> Job:
        try:
            return jobs.submit(job)
        except Refused:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise

    @app.post("/api/jobs", status_code=202, response_model=schema.JobState, openapi_extra=schema.UPLOAD)
    async def create_job(request: Request):
        """Queues a generation and answers at once with its id (poll GET /api/jobs/{id})."""
        return state_of(submitted(await receive_job(request)))

    @app.get("/api/jobs/{job_id}", response_model=schema.JobState, responses={404: {"model": schema.Failure}})
    def job_state(job_id: str):
        return state_of(jobs.get(job_id))

    @app.delete("/api/jobs/{job_id}", response_model=schema.JobState, responses={404: {"model": schema.Failure}})
    def cancel_job(job_id: str):
        """Cancels a queued job at once, a running one at its next sampling step."""
        return state_of(jobs.cancel(job_id))

    @app.post(
        "/api/generate",
        response_model=schema.Generated,
        openapi_extra=schema.UPLOAD,
        responses={429: {"model": schema.Failure}},
    )
    async def generate(request: Request):
        """Queues a generation and answers when it is done, with the mesh for a viewer inline."""
        job = submitted(await receive_job(request))
        await asyncio.get_running_loop().run_in_executor(None, job.finished.wait)
        if job.state == "cancelled":
            raise Refused(409, f"job {job.id} was cancelled")
        if job.state != "done":
            raise Refused(job.status, job.error or "generation failed")
        viewer = json.loads((job.folder / "viewer.json").read_text())
        return {"id": job.id, **job.result, "mesh": viewer}

    def state_of(job: Job) -> dict:
        return {
            "id": job.id,
            "state": job.state,
            "position": jobs.position(job),
            "progress": {"stage": job.stage, "step": job.step, "steps": job.steps},
            "error": public(job.error) if job.error else None,
            "result": job.result if job.state == "done" else None,
        }

    def settings(fields: dict[str, str], paths: list[Path]):
        """The form's model, steps, guidance (`guidance`, or `scale`, the official name) and seed, checked
        against the uploaded files before anything runs (the bounds the command line's checkers use;
        steps past the model's schedule are the pipeline's)."""
        from wala.pipeline import check_seeds

        name = fields.get("model", "")
        if name not in described:
            raise Refused(400, f"unknown model '{name[:40]}'")
        info = described[name]
        given = fields.get("guidance") or fields.get("scale")
        try:
            steps = int(fields.get("steps") or 0) or None
            guidance = float(given) if given else None
            seed = int(fields.get("seed") or 0)
        except ValueError:
            raise Refused(400, "steps and seed must be whole numbers, scale a number") from None
        if steps is not None and not 1 <= steps <= 1000:
            raise Refused(400, "steps must be between 1 and 1000")
        if guidance is not None and not math.isfinite(guidance):
            raise Refused(400, f"scale must be a finite number, got {guidance}")
        try:
            check_seeds(seed)
        except WalaError as exc:
            raise Refused(400, str(exc)) from None
        if info.files and len(paths) != info.files:
            raise Refused(400, f"{name} reads {info.files} file{'s' if info.files > 1 else ''}, got {len(paths)}")
        for path in paths:
            if path.suffix.lower() not in info.formats:
                raise Refused(400, f"{path.name}: not a {', '.join(info.formats)} file")
        return name, steps, guidance, seed

    def run(job: Job) -> dict:
        """The worker's part of a job: the model (loaded once, kept), sampling, decoding, meshing, files."""
        from wala.batch import decimate
        from wala.io.mesh import save_mesh
        from wala.pipeline import WaLaPipeline
        from wala.render.preview import write_preview

        r = job.request
        job.progress("loading")
        if r["model"] not in pipelines:
            pipelines.clear()  # one model in memory at a time: the released ones are 4-5 GB
            pipelines[r["model"]] = WaLaPipeline.from_pretrained(described[r["model"]].path, device, dtype)
        pipe = pipelines[r["model"]]
        start = time.perf_counter()
        given = {pipe.condition: [str(p) for p in r["paths"]]} if r["paths"] else {}
        (shape,) = pipe(
            **given,
            steps=r["steps"],
            guidance=r["guidance"],
            seed=r["seed"],
            progress=False,
            on_step=lambda i, n: job.progress("sampling", i, n),
        )
        job.progress("decoding")
        _ = shape.tsdf
        job.progress("meshing")
        mesh = shape.mesh
        job.progress("writing")
        for path in r["paths"]:  # the results are what is kept
            path.unlink(missing_ok=True)
        save_mesh(mesh, job.folder / "shape.obj")
        save_mesh(mesh, job.folder / "shape.glb")
        try:
            write_preview(mesh, job.folder / "preview.png")
            preview = f"/api/result/{job.id}/preview.png"
        except WalaError:
            preview = None
        shown = decimate(mesh, VIEWER_FACES)
        viewer = {
            "positions": _b64(np.asarray(shown.vertices, dtype="<f4")),
            "indices": _b64(np.asarray(shown.faces, dtype="<u4")),
        }
        (job.folder / "viewer.json").write_text(json.dumps(viewer))
        return {
            "seconds": round(time.perf_counter() - start, 2),
            "faces": len(mesh.faces),
            "preview": preview,
            "obj": f"/api/result/{job.id}/shape.obj",
            "glb": f"/api/result/{job.id}/shape.glb",
            "viewer": f"/api/result/{job.id}/viewer.json",
        }

    jobs = JobQueue(run, results, queue, keep_bytes, keep_seconds)
    app.state.jobs = jobs
    json_limit = body_limit * 4 // 3 + FORM_MARGIN  # base64 takes 4 bytes for 3

    @app.get("/api/result/{job}/{name}", responses={404: {"model": schema.Failure}})
    def result(job: str, name: str):
        """A result file: shape.obj, shape.glb, preview.png or viewer.json (positions and indices, base64)."""
        if not JOB_ID.fullmatch(job) or name not in RESULT_FILES:
            return error("not found", 404)
        jobs.sweep()
        path = (results / job / name).resolve()
        if not path.is_relative_to(results) or not path.is_file():
            try:
                jobs.get(job)
            except Refused as exc:
                return error(str(exc) if str(exc) != "no such job" else "not found", 404)
            return error("not found", 404)
        return FileResponse(path, filename=name if name not in ("preview.png", "viewer.json") else None)

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_request(request: Request, host: str, token: str | None) -> None:
    """Refuses (Refused) a request a hostile page could make: bound to loopback, one naming another host in
    its Host header (DNS rebinding: a page on evil.example that now resolves to 127.0.0.1); a POST, PUT,
    PATCH or DELETE whose Origin is not this server's; with a token, an API request without it."""
    given_host = request.headers.get("host")
    if is_loopback(host) and given_host is not None:
        name = given_host.rsplit(":", 1)[0] if not given_host.endswith("]") else given_host
        if name.strip("[]").lower() not in {host.strip("[]").lower(), "localhost", "127.0.0.1", "::1"}:
            raise Refused(403, "this server answers only to its own address (localhost)")
    origin = request.headers.get("origin")
    if request.method not in ("GET", "HEAD", "OPTIONS") and origin is not None:
        if origin.lower() != f"{request.url.scheme}://{given_host}".lower():
            raise Refused(403, "requests from another site's page are refused")
    if token is not None and request.url.path.startswith("/api/"):
        bearer = request.headers.get("authorization", "")
        given = (
            (bearer[7:] if bearer.lower().startswith("bearer ") else None)
            or request.headers.get("x-wala-token")
            or request.query_params.get("token")
            or ""
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Refused(401, "this server needs its token: open the address it printed (…/?token=…)")


def clean_filename(raw: str) -> str:
    """An uploaded file's name as stored: its last path part, with only ASCII letters, digits, '.', '-' and
    '_' (anything else becomes '_'), no leading dots, at most NAME_CHARS long with its suffix kept;
    "" when nothing is left (refused by the caller)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", re.split(r"[/\\]", raw)[-1]).lstrip(".")
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, dot, suffix = name, "", ""
    return stem[: NAME_CHARS - len(dot + suffix)] + dot + suffix if stem else ""


class UploadForm:
    """python-multipart callbacks that keep a form's short fields and stream its files ("files" parts) into
    `folder`, refusing (Refused) as soon as one is bad: no name, too many, too big together."""

    def __init__(self, folder: Path, upload_limit: int, max_upload_mb: float):
        self.folder, self.upload_limit, self.max_upload_mb = folder, upload_limit, max_upload_mb
        self.fields: dict[str, str] = {}
        self.paths: list[Path] = []
        self.uploaded = 0  # file bytes written so far
        self.ended = False
        self.header, self.headers = [b"", b""], {}
        self.part: dict = {}
        self.file = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self):
        self.headers, self.part = {}, {}

    def header_field(self, data: bytes, start: int, end: int):
        self.header[0] += data[start:end]

    def header_value(self, data: bytes, start: int, end: int):
        self.header[1] += data[start:end]

    def header_end(self):
        self.headers[self.header[0].lower()] = self.header[1]
        self.header = [b"", b""]

    def headers_finished(self):
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            if len(self.fields) >= 16:
                raise Refused(400, "too many form fields")
            self.part = {"field": name, "value": b""}
        elif name != "files":
            raise Refused(400, "files go in the form's 'files' field")
        elif not options[b"filename"]:  # the browser's empty file input: no name, no bytes
            self.part = {"unnamed": True}
        else:
            filename = clean_filename(options[b"filename"].decode("utf-8", "replace"))
            if not filename:
                raise Refused(400, "an uploaded file needs a name (letters, digits, '.', '-', '_')")
            if len(self.paths) >= MAX_FILES:
                raise Refused(400, f"at most {MAX_FILES} files")
            path = self.folder / filename
            if path.exists():
                raise Refused(400, f"two files named {filename}")
            self.file = open(path, "xb")
            self.paths.append(path)

    def part_data(self, data: bytes, start: int, end: int):
        chunk = data[start:end]
        if self.file is not None:
            self.uploaded += len(chunk)
            if self.uploaded > self.upload_limit:
                raise Refused(400, f"uploads larger than {self.max_upload_mb:g} MB")
            self.file.write(chunk)
        elif "field" in self.part:
            self.part["value"] += chunk
            if len(self.part["value"]) > FIELD_BYTES:
                raise Refused(400, "a form field is too long")
        elif chunk:
            raise Refused(400, "an uploaded file needs a name (letters, digits, '.', '-', '_')")

    def part_end(self):
        self.close()
        if "field" in self.part:
            self.fields[self.part["field"]] = self.part["value"].decode("utf-8", "replace")

    def end(self):
        self.ended = True

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


async def read_form(request: Request, folder: Path, upload_limit: int, body_limit: int, max_upload_mb: float):
    """The multipart form of `request` as (fields, file paths), its files streamed into `folder`.

    Once the files pass `upload_limit` bytes (or a part is bad) nothing more is written or parsed, and the rest
    of the body is read and dropped so that the client hears the answer; a body past `body_limit` bytes is
    refused (413) at once, unread."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise Refused(400, "bad upload: send a multipart/form-data form or a JSON body")
    form = UploadForm(folder, upload_limit, max_upload_mb)
    try:
        parser = MultipartParser(options[b"boundary"], form.callbacks(), max_size=body_limit)
    except ValueError as exc:  # a boundary past python-multipart's limit
        raise Refused(400, f"bad upload: {one_line(exc)}") from None
    received, refusal = 0, None
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise Refused(413, f"uploads larger than {max_upload_mb:g} MB")
            if refusal is None:
                try:
                    parser.write(chunk)
                except Refused as exc:
                    refusal = exc
                except ValueError as exc:  # python-multipart's parse errors
                    refusal = Refused(400, f"bad upload: {one_line(exc)}")
                if refusal is not None:
                    form.close()
    finally:
        form.close()
    if refusal is not None:
        raise refusal
    if not form.ended:
        raise Refused(400, "bad upload: the form ends before its closing boundary")
    return form.fields, form.paths


async def read_json(request: Request, folder: Path, upload_limit: int, body_limit: int, max_upload_mb: float):
    """A JSON job `{"model", "steps", "guidance" (or "scale"), "seed", "files": [{"name", "data": base64}]}`
    → (fields, file paths), the files decoded into `folder` under the multipart form's rules."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > body_limit:
            raise Refused(413, f"uploads larger than {max_upload_mb:g} MB")
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused(400, "bad request: the body is not JSON") from None
    files = data.get("files", []) if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise Refused(400, 'bad request: send {"model": …, "files": [{"name": …, "data": base64}]}')
    if len(files) > MAX_FILES:
        raise Refused(400, f"at most {MAX_FILES} files")
    fields = {}
    for key in ("model", "steps", "guidance", "scale", "seed"):
        value = data.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            fields[key] = str(value)[:FIELD_BYTES]
    paths, uploaded = [], 0
    for entry in files:
        name = clean_filename(str(entry.get("name", "")))
        if not name:
            raise Refused(400, "an uploaded file needs a name (letters, digits, '.', '-', '_')")
        try:
            content = base64.b64decode(str(entry.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, f"{name}: its data is not base64") from None
        uploaded += len(content)
        if uploaded > upload_limit:
            raise Refused(400, f"uploads larger than {max_upload_mb:g} MB")
        path = folder / name
        if path.exists():
            raise Refused(400, f"two files named {name}")
        path.write_bytes(content)
        paths.append(path)
    return fields, paths


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def _stop(signum, frame):
    raise SystemExit(0)  # SIGTERM unwinds through serve's `finally` as Ctrl-C does


def serve(models: list[Path], host: str = "127.0.0.1", port: int = 7860, token: str | None = None, **options) -> None:
    """Serves the page until Ctrl-C or SIGTERM, then removes the results. Bound to anything but loopback,
    the API wants a token: `token`, or a new random one; the printed address carries it."""
    import uvicorn

    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    in_main = threading.current_thread() is threading.main_thread()
    # uvicorn stops gracefully on SIGTERM, then raises it again under the handler it found: by default that
    # kills the process before any `finally` runs and leaves the results folder behind.
    previous = signal.signal(signal.SIGTERM, _stop) if in_main else None
    try:
        app = create_app(models, host=host, token=token, **options)
        try:
            shown = f"[{host}]" if ":" in host else host
            address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
            print(f"wala: serving {', '.join(m.name for m in map(Path, models))} on {address}", flush=True)
            uvicorn.run(app, host=host, port=port, log_level="warning")
        finally:
            app.state.jobs.stop()
            shutil.rmtree(app.state.results, ignore_errors=True)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
