"""TSDF grid → triangle mesh by marching cubes, in world coordinates with outward normals.

PyMCubes, as the released WaLa code uses it: level 0, vertex (i, j, k) → world through the grid
convention (wala.sdf.grid), every face's vertex order reversed so normals point out of the negative
(inside) region. The same TSDF gives the official vertex and face arrays exactly. A torch tensor is
meshed on its own device (wala.sdf.marching: PyMCubes' mesh, vertices and faces in another order), so
a TSDF decoded on a GPU never crosses to the CPU; only the mesh does.
"""

from __future__ import annotations

import mcubes
import numpy as np
import torch
import trimesh

from wala.errors import WalaError
from wala.sdf.grid import index_to_world


def tsdf_to_mesh(tsdf: np.ndarray, level: float = 0.0) -> trimesh.Trimesh:
    """Extracts the `level` isosurface of an (N, N, N) TSDF (negative inside) sampled on the
    wala grid."""
    on_device = isinstance(tsdf, torch.Tensor)
    grid = tsdf.float() if on_device else np.asarray(tsdf, dtype=np.float32)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise WalaError(f"TSDF must be a cubic (N, N, N) grid, got shape {tuple(grid.shape)}")
    if not bool(grid.isfinite().all() if on_device else np.isfinite(grid).all()):
        raise WalaError("TSDF holds NaN or infinite values")
    if not (float(grid.min()) < level < float(grid.max())):
        raise WalaError("TSDF has no surface: it never crosses the zero level (empty or full grid)")
    if on_device:
        from wala.sdf.marching import marching_cubes

        vertices, faces = (a.cpu().numpy() for a in marching_cubes(grid, level))
        vertices = vertices.astype(np.float64)
    else:
        vertices, faces = mcubes.marching_cubes(grid, level)
    return trimesh.Trimesh(index_to_world(vertices, grid.shape[0]), faces[:, ::-1].astype(np.int64), process=False)
