"""TSDF grid → triangle mesh by marching cubes, in world coordinates with outward normals."""
from __future__ import annotations

import numpy as np
import trimesh
from skimage.measure import marching_cubes

from wala.errors import WalaError
from wala.sdf.grid import voxel_size


def tsdf_to_mesh(tsdf: np.ndarray, level: float = 0.0) -> trimesh.Trimesh:
    """Extracts the `level` isosurface of an (N, N, N) TSDF (negative inside) sampled on the
    wala grid; faces are wound so normals point out of the negative region."""
    grid = np.asarray(tsdf, dtype=np.float32)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise WalaError(f"TSDF must be a cubic (N, N, N) grid, got shape {grid.shape}")
    if not np.isfinite(grid).all():
        raise WalaError("TSDF holds NaN or infinite values")
    if not (grid.min() < level < grid.max()):
        raise WalaError("TSDF has no surface: it never crosses the zero level (empty or full grid)")
    h = voxel_size(grid.shape[0])
    # with values growing outwards, skimage's "descent" winding gives outward normals (positive
    # volume); tests/sdf/test_extract.py holds this
    vertices, faces, _, _ = marching_cubes(grid, level=level, spacing=(h, h, h), gradient_direction="descent")
    vertices = vertices + (h / 2 - 1.0)  # cell-center grid: index i sits at -1 + (i + 0.5)·h
    return trimesh.Trimesh(vertices, faces, process=False)
