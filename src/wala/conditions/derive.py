"""Condition data derived from a training shape at prep time: surface points and 16³ occupancy.

Both live in the normalized frame of the shape's TSDF, so a model trained on them sees the same
frame a user's condition is normalized into at inference (bbox centered, longest side 1.8).
"""

from __future__ import annotations

import numpy as np
import trimesh

from wala.sdf.surface import surface_points

DEFAULT_STORED_POINTS = 8192  # per shape; training draws 2,500 of them each step


def surface_samples(mesh: trimesh.Trimesh, count: int = DEFAULT_STORED_POINTS, seed: int = 0) -> np.ndarray:
    """(count, 3) float32 points uniform by area on `mesh` (normalized frame)."""
    return surface_points(mesh, count, seed).astype(np.float32)


def occupancy_grid(tsdf: np.ndarray, size: int = 16) -> np.ndarray:
    """(size³) bool occupancy of an (N³) TSDF: a cell is occupied when any TSDF voxel inside it is
    inside the shape (≤ 0), so thin parts survive as they would in a conservative voxelization."""
    n = tsdf.shape[0]
    if n % size:
        raise ValueError(f"TSDF resolution {n} is not a multiple of the voxel size {size}")
    b = n // size
    inside = np.asarray(tsdf) <= 0
    return inside.reshape(size, b, size, b, size, b).any(axis=(1, 3, 5))
