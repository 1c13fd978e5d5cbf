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
paths, and a failed job leaves no folder. One generation runs at a time (they are CPU- or GPU-bound
anyway); results live in a temporary folder for the life of the server, removed on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import base64
import hmac
import http
import ipaddress
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

STATIC = Path(__file__).parent / "static"
VIEWER_FACES = 60_000  # the mesh sent to the browser; downloads keep every face
MAX_FILES = 16
FORM_MARGIN = 2 * 2**20  # body bytes past the uploads' own a request may send: multipart framing, fields
FIELD_BYTES = 1024  # model, steps, scale, seed: short texts
NAME_CHARS = 100  # an upload's stored name, suffix included
JOB_ID = re.compile(r"[0-9a-f]{12}")  # the job ids generate makes, and all a result URL may name
RESULT_FILES = ("shape.obj", "shape.glb", "preview.png")
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^/\s'\"]+/)+")  # its folders: a path shows as its last part


class Refused(Exception):
    """A request turned away: the HTTP status and the one line the page shows."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(
    models: list[Path],
    max_upload_mb: float = 20.0,
    device: str = "auto",
    dtype: str = "fp32",
    host: str = "127.0.0.1",
    token: str | None = None,
):
    """The FastAPI app for `models`, answering as a server bound to `host`; with a `token`, the API wants it
    (required when `host` is not loopback). Results go to a fresh temporary folder, `app.state.results`."""
    from wala.hub.describe import describe
    from wala.hub.paths import resolve_model

    if token is None and not is_loopback(host):
        raise WalaError(f"a server bound to {host} (not loopback) needs a token")
    described = {}
    for path in models:
        info = describe(resolve_model(path))
        if info.kind == "text-to-views":
            raise WalaError(f"{path} is a text-to-views model; wala serve shows 3D generators")
        described[info.name] = info
    if not described:
        raise WalaError("wala serve needs at least one model (--model DIR, or models on the search path)")
    upload_limit = int(max_upload_mb * 2**20)
    body_limit = upload_limit + FORM_MARGIN
    results = Path(tempfile.mkdtemp(prefix="wala-serve-")).resolve()
    # A job's files show by their uploaded names; a job's folder goes before the results folder holding it.
    hidden = [(re.escape(str(results)) + r"/[0-9a-f]{12}/?", ""), (re.escape(str(results)), "results")]
    pipelines: dict[str, object] = {}
    lock = threading.Lock()

    def guard(request: Request):
        """Refuses what a hostile page or another host may send: see check_request."""
        check_request(request, host, token)

    app = FastAPI(title="wala", docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(guard)])
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

    @app.get("/api/models")
    def list_models():
        return [
            {
                "name": m.name,
                "condition": m.condition,
                "kind": m.kind,
                "source": m.source,
                "parameters": m.parameters,
                "files": m.files,
                "formats": list(m.formats),
                "steps": m.defaults[0],
                "scale": m.defaults[1],
            }
            for m in described.values()
        ]

    @app.post("/api/generate")
    async def generate(request: Request):
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > body_limit:  # refused before a byte of the body is read
            return error(f"uploads larger than {max_upload_mb:g} MB", 413)
        job = results / secrets.token_hex(6)  # JOB_ID
        job.mkdir()
        try:
            fields, paths = await read_form(request, job, upload_limit, body_limit, max_upload_mb)
            name, steps, guidance, seed = settings(fields, paths)
            with lock:
                return run(name, paths, steps, guidance, seed, job)
        except Refused as exc:
            status, message = exc.status, str(exc)
        except WalaError as exc:
            status, message = 400, str(exc)
        except ClientDisconnect:
            status, message = 400, "the upload was cut off"
        except Exception as exc:  # never a crash: the page shows one line
            status, message = 500, f"generation failed: {one_line(exc)}"
        except BaseException:  # cancelled: the client went away, or the server stops
            shutil.rmtree(job, ignore_errors=True)
            raise
        shutil.rmtree(job, ignore_errors=True)
        return error(message, status)

    def settings(fields: dict[str, str], paths: list[Path]):
        """The form's model, steps, guidance (field `scale`, the official name) and seed, checked against
        the uploaded files before anything runs (the bounds the command line's checkers use; steps past
        the model's schedule are the pipeline's)."""
        from wala.pipeline import check_seeds

        name = fields.get("model", "")
        if name not in described:
            raise Refused(400, f"unknown model '{name[:40]}'")
        info = described[name]
        try:
            steps = int(fields.get("steps") or 0) or None
            guidance = float(fields["scale"]) if fields.get("scale") else None
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

    def run(name: str, paths: list[Path], steps, guidance, seed: int, job: Path):
        from wala.batch import decimate
        from wala.io.mesh import save_mesh
        from wala.render.preview import write_preview

        pipe = pipeline(name)
        start = time.perf_counter()
        given = {pipe.condition: [str(p) for p in paths]} if paths else {}
        (shape,) = pipe(**given, steps=steps, guidance=guidance, seed=seed, progress=False)
        mesh = shape.mesh
        save_mesh(mesh, job / "shape.obj")
        save_mesh(mesh, job / "shape.glb")
        try:
            write_preview(mesh, job / "preview.png")
            preview = f"/api/result/{job.name}/preview.png"
        except WalaError:
            preview = None
        shown = decimate(mesh, VIEWER_FACES)
        return {
            "id": job.name,
            "seconds": round(time.perf_counter() - start, 2),
            "faces": len(mesh.faces),
            "mesh": {
                "positions": _b64(np.asarray(shown.vertices, dtype="<f4")),
                "indices": _b64(np.asarray(shown.faces, dtype="<u4")),
            },
            "preview": preview,
            "obj": f"/api/result/{job.name}/shape.obj",
            "glb": f"/api/result/{job.name}/shape.glb",
        }

    @app.get("/api/result/{job}/{name}")
    def result(job: str, name: str):
        if not JOB_ID.fullmatch(job) or name not in RESULT_FILES:
            return error("not found", 404)
        path = (results / job / name).resolve()
        if not path.is_relative_to(results) or not path.is_file():
            return error("not found", 404)
        return FileResponse(path, filename=name if name != "preview.png" else None)

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
        raise Refused(400, "bad upload: send a multipart/form-data form")
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
            shutil.rmtree(app.state.results, ignore_errors=True)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
