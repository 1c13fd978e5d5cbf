"""`wala serve`: a local web page to generate shapes — pick a model, upload its condition, set steps,
guidance and seed, see the mesh turn in a 3D viewer beside its preview, download OBJ or GLB.

FastAPI (uploads through python-multipart, served by uvicorn) and a small WebGL viewer of our own
(`static/`): no JavaScript to fetch from a CDN or npm, so the page works offline and the whole of it is
tested here. Gradio would bring its own front end (hundreds of MB of dependencies) for one form.

Uploads are checked before anything runs: known suffixes for the model's condition, as many files as
it reads, at most `max_upload_mb` in all; a bad upload gets a one-line message (HTTP 400), never a
crash. One generation runs at a time (they are CPU- or GPU-bound anyway); results live in a
temporary folder for the life of the server.
"""
from __future__ import annotations

import base64
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request  # at module level: FastAPI reads the routes' annotations here
from fastapi.responses import FileResponse, JSONResponse

from wala.errors import WalaError, one_line

STATIC = Path(__file__).parent / "static"
VIEWER_FACES = 60_000  # the mesh sent to the browser; downloads keep every face


def create_app(models: list[Path], max_upload_mb: float = 20.0, device: str = "auto", dtype: str = "fp32"):
    from wala.models import describe, resolve_model

    described = {}
    for path in models:
        info = describe(resolve_model(path))
        if info.kind == "text-to-views":
            raise WalaError(f"{path} is a text-to-views model; wala serve shows 3D generators")
        described[info.name] = info
    if not described:
        raise WalaError("wala serve needs at least one model (--model DIR, or models on the search path)")
    results = Path(tempfile.mkdtemp(prefix="wala-serve-"))
    pipelines: dict[str, object] = {}
    lock = threading.Lock()
    app = FastAPI(title="wala")
    app.state.results = results

    def pipeline(name: str):
        from wala.pipeline import WaLaPipeline

        if name not in pipelines:
            pipelines.clear()  # one model in memory at a time: the released ones are 4-5 GB
            pipelines[name] = WaLaPipeline.from_pretrained(described[name].path, device, dtype)
        return pipelines[name]

    def error(message: str, status: int = 400):
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/static/{name}")
    def static(name: str):
        path = STATIC / name
        if path.parent != STATIC or not path.is_file():
            return error("not found", 404)
        return FileResponse(path)

    @app.get("/api/models")
    def list_models():
        return [{"name": m.name, "condition": m.condition, "kind": m.kind, "source": m.source,
                 "parameters": m.parameters, "files": m.files, "formats": list(m.formats),
                 "steps": m.defaults[0], "scale": m.defaults[1]} for m in described.values()]

    @app.post("/api/generate")
    async def generate(request: Request):
        try:
            form = await request.form(max_files=16, max_part_size=int(max_upload_mb * 2**20))
        except Exception as exc:  # malformed or oversized multipart body
            return error(f"bad upload: {one_line(exc)}")
        name = str(form.get("model", ""))
        if name not in described:
            return error(f"unknown model '{name}'")
        info = described[name]
        uploads = [f for f in form.getlist("files") if hasattr(f, "filename") and f.filename]
        try:
            steps = int(form.get("steps") or 0) or None
            scale = float(form["scale"]) if form.get("scale") not in (None, "") else None
            seed = int(form.get("seed") or 0)
        except ValueError:
            return error("steps and seed must be whole numbers, scale a number")
        if steps is not None and not 1 <= steps <= 1000:
            return error("steps must be between 1 and 1000")
        if info.files and len(uploads) != info.files:
            return error(f"{name} reads {info.files} file{'s' if info.files > 1 else ''}, got {len(uploads)}")
        job = results / uuid.uuid4().hex[:12]
        job.mkdir()
        total = 0
        paths = []
        for upload in uploads:
            filename = Path(upload.filename).name
            if Path(filename).suffix.lower() not in info.formats:
                shutil.rmtree(job)
                return error(f"{filename}: not a {', '.join(info.formats)} file")
            data = await upload.read()
            total += len(data)
            if total > max_upload_mb * 2**20:
                shutil.rmtree(job)
                return error(f"uploads larger than {max_upload_mb:g} MB")
            (job / filename).write_bytes(data)
            paths.append(job / filename)
        try:
            with lock:
                return run(name, paths, steps, scale, seed, job)
        except WalaError as exc:
            shutil.rmtree(job, ignore_errors=True)
            return error(str(exc))
        except Exception as exc:  # never a crash: the page shows one line
            shutil.rmtree(job, ignore_errors=True)
            return error(f"generation failed: {one_line(exc)}", 500)

    def run(name: str, paths: list[Path], steps, scale, seed: int, job: Path):
        from wala.batch import decimate
        from wala.io.mesh import save_mesh
        from wala.render.preview import write_preview

        pipe = pipeline(name)
        start = time.perf_counter()
        given = {pipe.condition: [str(p) for p in paths]} if paths else {}
        shape, = pipe(**given, steps=steps, scale=scale, seed=seed, progress=False)
        mesh = shape.mesh
        save_mesh(mesh, job / "shape.obj")
        save_mesh(mesh, job / "shape.glb")
        try:
            write_preview(mesh, job / "preview.png")
            preview = f"/api/result/{job.name}/preview.png"
        except WalaError:
            preview = None
        shown = decimate(mesh, VIEWER_FACES)
        return {"id": job.name, "seconds": round(time.perf_counter() - start, 2), "faces": len(mesh.faces),
                "mesh": {"positions": _b64(np.asarray(shown.vertices, dtype="<f4")),
                         "indices": _b64(np.asarray(shown.faces, dtype="<u4"))},
                "preview": preview, "obj": f"/api/result/{job.name}/shape.obj",
                "glb": f"/api/result/{job.name}/shape.glb"}

    @app.get("/api/result/{job}/{name}")
    def result(job: str, name: str):
        path = results / job / name
        if name not in ("shape.obj", "shape.glb", "preview.png") or path.parent.parent != results or not path.is_file():
            return error("not found", 404)
        return FileResponse(path, filename=name if name != "preview.png" else None)

    return app


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def serve(models: list[Path], host: str = "127.0.0.1", port: int = 7860, **options) -> None:
    import uvicorn

    app = create_app(models, **options)
    print(f"wala: serving {', '.join(m.name for m in map(Path, models))} on http://{host}:{port}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        shutil.rmtree(app.state.results, ignore_errors=True)
