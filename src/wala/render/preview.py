"""Previews of generated shapes: a shaded turntable as one PNG strip, optionally an animated GIF.

The mesh is centred on its bounding box and framed by its bounding sphere, so every preview shows the
whole shape at the same scale whatever frame it was written in; frames go round at a fixed elevation.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from wala.render.shaded import MeshRenderer


def turntable(
    mesh,
    frames: int = 6,
    size: int = 256,
    elevation: float = 20.0,
    start: float = 30.0,
    renderer: MeshRenderer | None = None,
) -> list[np.ndarray]:
    """`frames` shaded (size, size, 3) uint8 views, azimuths start + k·360/frames."""
    centred = mesh.copy()
    centred.apply_translation(-centred.bounds.mean(axis=0))
    own = renderer is None
    renderer = renderer or MeshRenderer(size)
    try:
        return [renderer.render(centred, start + k * 360.0 / frames, elevation).rgb for k in range(frames)]
    finally:
        if own:
            renderer.release()


def preview_png(views: list[np.ndarray]) -> bytes:
    """The views side by side as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.concatenate(views, axis=1)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def preview_gif(views: list[np.ndarray], seconds: float = 3.0) -> bytes:
    """The views as a looping GIF, one turn in `seconds`."""
    from PIL import Image

    images = [Image.fromarray(v) for v in views]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        loop=0,
        duration=int(1000 * seconds / len(images)),
    )
    return buffer.getvalue()


def write_preview(
    mesh, path: str | Path, frames: int = 6, size: int = 256, gif: bool = False, renderer: MeshRenderer | None = None
) -> list[Path]:
    """`path` (a PNG strip) and, with `gif`, the same name with .gif; written atomically."""
    from wala.io.mesh import write_atomic

    path = Path(path)
    views = turntable(mesh, frames, size, renderer=renderer)
    write_atomic(path, preview_png(views))
    written = [path]
    if gif:
        written.append(path.with_suffix(".gif"))
        write_atomic(written[-1], preview_gif(views))
    return written
