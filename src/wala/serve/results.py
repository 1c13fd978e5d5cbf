"""The files a finished `wala serve` job leaves in its folder, and the only names a result URL may ask for:
the mesh as OBJ and GLB, a preview PNG, the mesh for the page's viewer (decimated, base64 in JSON) and, for
a prompt a text model drew views from, those views."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np

from wala.errors import WalaError

VIEWER_FACES = 60_000  # the mesh sent to the browser; downloads keep every face
JOB_ID = re.compile(r"[0-9a-f]{12}")  # the job ids generate makes, and all a result URL may name
RESULT_FILES = ("shape.obj", "shape.glb", "preview.png", "viewer.json", "views.png")


def write_results(folder: Path, mesh, views: list | None = None) -> bool:
    """Writes a job's result files into `folder`; `views` (uint8 images) as views.png when given. Returns
    whether a preview was drawn (a mesh the renderer cannot frame has none; the rest is still written)."""
    from wala.batch import decimate
    from wala.io.mesh import save_mesh
    from wala.render.preview import preview_png, write_preview

    save_mesh(mesh, folder / "shape.obj")
    save_mesh(mesh, folder / "shape.glb")
    try:
        write_preview(mesh, folder / "preview.png")
        previewed = True
    except WalaError:
        previewed = False
    shown = decimate(mesh, VIEWER_FACES)
    viewer = {
        "positions": _b64(np.asarray(shown.vertices, dtype="<f4")),
        "indices": _b64(np.asarray(shown.faces, dtype="<u4")),
    }
    (folder / "viewer.json").write_text(json.dumps(viewer))
    if views is not None:
        (folder / "views.png").write_bytes(preview_png(views))
    return previewed


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()
