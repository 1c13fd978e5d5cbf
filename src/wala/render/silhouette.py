"""Orthographic silhouettes of a triangle mesh from many directions, rasterized on the CPU.

A silhouette needs no depth test, lighting or GL context: a pixel is set when its centre lies in
the projection of any triangle. That makes it deterministic and independent of drivers, which
matters for a metric (LFD) that has to give the same number on every machine.

Conventions: the camera sits on the unit vector `d` and looks at the origin (the projection
direction is -d, as `gluLookAt(d, 0, up)`), with `up` = +y (or +z when d is nearly ±y). The image
spans [-extent, extent]² of the camera plane in `size`² pixels; pixel (row, col) has its centre at
((col + ½)·2e/size - e, (row + ½)·2e/size - e) in (right, up) coordinates.
"""

from __future__ import annotations

import numba as nb
import numpy as np


def view_basis(directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right and up axes of the image plane for each camera direction. (K, 3) → two (K, 3)."""
    d = np.asarray(directions, dtype=np.float64)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    up = np.tile([0.0, 1.0, 0.0], (len(d), 1))
    up[np.abs(d[:, 1]) > 0.999] = [0.0, 0.0, 1.0]
    forward = -d
    right = np.cross(forward, up)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    return right, np.cross(right, forward)


def render_silhouettes(
    vertices: np.ndarray, faces: np.ndarray, directions: np.ndarray, size: int = 256, extent: float = 1.0
) -> np.ndarray:
    """Silhouettes of the mesh seen along each direction. vertices (V, 3), faces (F, 3),
    directions (K, 3) → (K, size, size) bool, row 0 at the bottom of the image (−up)."""
    right, up = view_basis(directions)
    v = np.asarray(vertices, dtype=np.float64)
    scale = size / (2.0 * extent)
    # (K, V, 2) vertex positions in pixel units, pixel centres at integer + 0.5
    xy = np.stack([(v @ right.T).T, (v @ up.T).T], axis=-1) * scale + size / 2.0
    out = np.zeros((len(right), size, size), dtype=np.bool_)
    _rasterize(np.ascontiguousarray(xy), np.ascontiguousarray(faces, dtype=np.int64), out)
    return out


@nb.njit(parallel=True, cache=True)
def _rasterize(xy, faces, out):
    """Fill every pixel whose centre lies inside (or on an edge of) a projected triangle."""
    size = out.shape[1]
    for k in nb.prange(xy.shape[0]):
        for f in range(faces.shape[0]):
            ax, ay = xy[k, faces[f, 0], 0], xy[k, faces[f, 0], 1]
            bx, by = xy[k, faces[f, 1], 0], xy[k, faces[f, 1], 1]
            cx, cy = xy[k, faces[f, 2], 0], xy[k, faces[f, 2], 1]
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if abs(area) < 1e-12:
                continue  # seen edge-on: covers no pixel centre
            sign = 1.0 if area > 0 else -1.0
            col0 = max(int(np.floor(min(ax, bx, cx) - 0.5)), 0)
            col1 = min(int(np.ceil(max(ax, bx, cx) - 0.5)), size - 1)
            row0 = max(int(np.floor(min(ay, by, cy) - 0.5)), 0)
            row1 = min(int(np.ceil(max(ay, by, cy) - 0.5)), size - 1)
            eps = -1e-9 * abs(area)
            for row in range(row0, row1 + 1):
                py = row + 0.5
                for col in range(col0, col1 + 1):
                    if out[k, row, col]:
                        continue
                    px = col + 0.5
                    w0 = sign * ((bx - ax) * (py - ay) - (by - ay) * (px - ax))
                    w1 = sign * ((cx - bx) * (py - by) - (cy - by) * (px - bx))
                    w2 = sign * ((ax - cx) * (py - cy) - (ay - cy) * (px - cx))
                    if w0 >= eps and w1 >= eps and w2 >= eps:
                        out[k, row, col] = True
