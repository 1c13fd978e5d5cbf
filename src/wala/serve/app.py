"""`wala serve`: a local web page to generate shapes — pick a model, upload its condition or type a prompt,
set steps, guidance and seed, see the mesh turn in a 3D viewer beside its preview, download OBJ or GLB.

FastAPI (served by uvicorn) and a small WebGL viewer of our own (`static/`): no JavaScript to fetch from
a CDN or npm, so the page works offline and the whole of it is tested here. Gradio would bring its own
front end (hundreds of MB of dependencies) for one form.

A prompt (`text`) is what a text model reads, or, with `text_model` (`wala serve --text-model`), what a
text-to-views model draws as a depth/RGB model's views first (the chain of `wala generate --text-model`).

The server expects hostile requests as well as the page's. Uploads are parsed as they stream in
(wala.serve.uploads) and written under cleaned names into a fresh job folder; past `max_upload_mb` nothing
more is written, and a body larger than that plus a small margin is cut off (HTTP 413) without being read
to its end. A prompt is one line of at most 500 characters, never read as a path. Result and static paths
must resolve inside their folders. A POST from another origin, or a request naming another host while bound
to loopback (DNS rebinding), is refused; bound to anything but loopback, the API wants the server's token
(wala.serve.guard). A job's result files are written by wala.serve.results.
Every failure is one JSON line `{"error": ...}` without local paths, and a failed job leaves no folder.

Generations are jobs (wala.serve.jobs): `POST /api/jobs` queues one and answers at once, `GET /api/jobs/{id}`
tells its state, queue position and progress, `DELETE` cancels it; `POST /api/generate` queues one and
answers when it is done. One worker thread runs them one at a time and holds the model, so the page, the
model list, results and health answer while a generation runs. The queue is bounded (`queue`, 429 past
it); results live in a temporary folder within a size and an age (`keep`), removed on Ctrl-C and SIGTERM.
The API is described at /docs (OpenAPI at /openapi.json) and in docs/api.md.
"""

from __future__ import annotations

import asyncio
import http
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

from fastapi import Depends, FastAPI, Request  # at module level: FastAPI reads the routes' annotations here
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from wala.errors import WalaError
from wala.serve import schema
from wala.serve.guard import check_request, is_loopback
from wala.serve.jobs import Job, JobQueue, Refused, new_job_id, parse_keep
from wala.serve.results import JOB_ID, RESULT_FILES, write_results
from wala.serve.uploads import FORM_MARGIN, TEXT_FIELD, check_text, clean_filename, read_form, read_json

# `Model.prompt`, how a job gives a model text: the model reads it as its caption, or (with `--text-model`) the
# text-to-views model draws the model's views from it first
CAPTION, CHAIN = "caption", "chain"

__all__ = ["FORM_MARGIN", "clean_filename", "create_app", "serve"]

STATIC = Path(__file__).parent / "static"
TEXT_STEPS, TEXT_GUIDANCE = 50, 10.0  # the text-to-views model's sampling, as `wala generate --text-model`
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
    text_model: str | Path | None = None,
):
    """The FastAPI app for `models`, answering as a server bound to `host`; with a `token`, the API wants it
    (required when `host` is not loopback). At most `queue` jobs wait or run; results go to a fresh
    temporary folder, `app.state.results`, kept within `keep` (SIZE,AGE). `text_model` (a text-to-views
    model) draws the views of the depth/RGB models from a prompt. `app.state.jobs.stop()` ends the worker."""
    import dataclasses

    from wala.hub.describe import describe
    from wala.hub.download import find_model, hub_id
    from wala.hub.generators import read_model_config
    from wala.hub.paths import resolve_model

    if token is None and not is_loopback(host):
        raise WalaError(f"a server bound to {host} (not loopback) needs a token")
    described = {}
    for path in models:
        info = describe(find_model(path))
        if hub_id(path) and not resolve_model(path).exists():  # a hub snapshot: named by its id, not its commit
            info = dataclasses.replace(info, name=str(path))
        if info.kind == "text-to-views":
            raise WalaError(f"{path} is a text-to-views model: give it as --text-model (it draws a DM6's views)")
        described[info.name] = info
    if not described:
        raise WalaError("wala serve needs at least one model (--model DIR, or models on the search path)")
    text_views_from = None  # the text-to-views model's folder
    if text_model is not None:
        info = describe(find_model(text_model))
        if info.kind != "text-to-views":
            raise WalaError(f"--text-model {text_model}: not a text-to-views model (it reads {info.condition})")
        text_views_from = info.path
    # how each model takes a prompt: CAPTION (it reads text), CHAIN (the text model draws its views), or None
    drawable = {name for name, info in described.items() if draws_views(info, read_model_config)}
    prompts = {
        name: CAPTION if reads_caption(info) else CHAIN if name in drawable and text_views_from else None
        for name, info in described.items()
    }
    keep_bytes, keep_seconds = parse_keep(keep)
    upload_limit = int(max_upload_mb * 2**20)
    body_limit = upload_limit + FORM_MARGIN
    results = Path(tempfile.mkdtemp(prefix="wala-serve-")).resolve()
    # A job's files show by their uploaded names; a job's folder goes before the results folder holding it.
    hidden = [(re.escape(str(results)) + r"/[0-9a-f]{12}/?", ""), (re.escape(str(results)), "results")]
    pipelines: dict[str, object] = {}  # the worker's: one model in memory at a time
    text_models: list = []  # the worker's: the text-to-views model once a job needed it

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
                "prompt": prompts[m.name],
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
            request = settings(fields, paths)
        except ClientDisconnect:
            shutil.rmtree(folder, ignore_errors=True)
            raise Refused(400, "the upload was cut off") from None
        except BaseException:  # refused, or cancelled: the client went away, or the server stops
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Job(job_id, folder, {**request, "paths": paths})

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

    def settings(fields: dict[str, str], paths: list[Path]) -> dict:
        """The form's model, steps, guidance (`guidance`, or `scale`, the official name), seed, and prompt
        (`text`, with `text_steps` and `text_guidance` for a text model drawing views), checked against the
        model and the uploaded files before anything runs (the bounds the command line's checkers use;
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
            text_steps = int(fields.get("text_steps") or TEXT_STEPS)
            text_guidance = float(fields.get("text_guidance") or TEXT_GUIDANCE)
        except ValueError:
            raise Refused(400, "steps and seed must be whole numbers, scale a number") from None
        if not (steps is None or 1 <= steps <= 1000) or not 1 <= text_steps <= 1000:
            raise Refused(400, "steps must be between 1 and 1000")
        for value in (guidance, text_guidance):
            if value is not None and not math.isfinite(value):
                raise Refused(400, f"scale must be a finite number, got {value}")
        try:
            check_seeds(seed)
        except WalaError as exc:
            raise Refused(400, str(exc)) from None
        text = check_text(fields[TEXT_FIELD]) if TEXT_FIELD in fields else None
        if text is not None and prompts[name] is None:
            how = "start wala serve with --text-model to draw its views" if name in drawable else "not text"
            raise Refused(400, f"{name} reads {info.condition}: {how}")
        if text is not None and paths:
            raise Refused(400, f"{name}: give a prompt (text) or files, not both")
        request = {"model": name, "steps": steps, "guidance": guidance, "seed": seed, "text": text}
        request.update(text_steps=text_steps, text_guidance=text_guidance)
        if text is not None:
            return request
        if prompts[name] and not paths:
            also = f" or {info.files} file{'s' if info.files > 1 else ''}" if prompts[name] == CHAIN else ""
            raise Refused(400, f"{name} needs a prompt (text){also}")
        if info.files and len(paths) != info.files:
            raise Refused(400, f"{name} reads {info.files} file{'s' if info.files > 1 else ''}, got {len(paths)}")
        for path in paths:
            if path.suffix.lower() not in info.formats:
                raise Refused(400, f"{path.name}: not a {', '.join(info.formats)} file")
        return request

    def draw_views(job: Job, pipe, r: dict):
        """The chain's first model: the prompt → this model's views (`TextViews`), as `pipe(text=…,
        text_model=…)` draws them (same views, steps, guidance and seed), with its progress and cancellation."""
        from wala.pipeline import DTYPES, resolve_device
        from wala.text.multiview import TextToViews

        if not text_models:
            text_models.append(TextToViews.load(text_views_from, resolve_device(device), DTYPES[dtype]))
        job.progress("drawing views")
        return text_models[0](
            r["text"],
            views=pipe.text_views(),
            steps=r["text_steps"],
            guidance=r["text_guidance"],
            seed=r["seed"],
            on_step=lambda i, n: job.progress("drawing views", i, n),
        )

    def run(job: Job) -> dict:
        """The worker's part of a job: the model (loaded once, kept), sampling, decoding, meshing, files."""
        r = job.request
        job.progress("loading")
        pipe = pipeline(r["model"])
        start = time.perf_counter()
        given = {pipe.condition: [str(p) for p in r["paths"]]} if r["paths"] else {}
        drawn = None
        if r["text"] is not None and prompts[r["model"]] == CHAIN:
            drawn = draw_views(job, pipe, r)
            given = {pipe.condition: list(drawn.images)}  # the chain: the drawn views, as files of them would be
        elif r["text"] is not None:  # a text model: the prompt as a .txt file of ours, never a path it names
            prompt = job.folder / "prompt.txt"
            prompt.write_text(r["text"], encoding="utf-8")
            r["paths"], given = [prompt], {pipe.condition: [str(prompt)]}
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
        preview = write_results(job.folder, mesh, list(drawn.images) if drawn is not None else None)
        return {
            "seconds": round(time.perf_counter() - start, 2),
            "faces": len(mesh.faces),
            "preview": f"/api/result/{job.id}/preview.png" if preview else None,
            "obj": f"/api/result/{job.id}/shape.obj",
            "glb": f"/api/result/{job.id}/shape.glb",
            "viewer": f"/api/result/{job.id}/viewer.json",
            "views": f"/api/result/{job.id}/views.png" if drawn is not None else None,
        }

    jobs = JobQueue(run, results, queue, keep_bytes, keep_seconds)
    app.state.jobs = jobs
    json_limit = body_limit * 4 // 3 + FORM_MARGIN  # base64 takes 4 bytes for 3

    @app.get("/api/result/{job}/{name}", responses={404: {"model": schema.Failure}})
    def result(job: str, name: str):
        """A result file: shape.obj, shape.glb, preview.png, viewer.json (positions and indices, base64) or
        views.png (the views a text model drew)."""
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
        shown = name in ("preview.png", "viewer.json", "views.png")
        return FileResponse(path, filename=None if shown else name)

    return app


def reads_caption(info) -> bool:
    """Whether a model's condition is one caption (the `text` kind's `joined`): it reads the prompt itself."""
    from wala.conditions import CONDITIONS

    return info.kind in CONDITIONS and CONDITIONS[info.kind].joined


def draws_views(info, read_model_config) -> bool:
    """Whether a text-to-views model can draw what this model reads: multi-view depth maps or RGB views at
    its training views (DM6, DM4, RGB4), as `WaLaPipeline.text_views` asks."""
    from wala.conditions import CONDITIONS

    if info.kind not in CONDITIONS or not CONDITIONS[info.kind].drawn_as:
        return False
    return bool(read_model_config(info.path)[0].condition.training_views)


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
