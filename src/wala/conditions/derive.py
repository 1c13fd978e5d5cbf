"""Condition data derived from a shape: surface points and 16³ occupancy (at prep time, for `wala bench`,
and the grids the paper's upsampling baselines start from).

Both live in the normalized frame of the shape's TSDF, so a model trained on them sees the same
frame a user's condition is normalized into at inference (bbox centered, longest side 1.8).
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.ndimage import binary_fill_holes

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


def points_to_occupancy(points: np.ndarray, size: int = 16) -> np.ndarray:
    """Normalized points (P, 3) in [-1, 1]³ → (size³) bool: cells holding a point, interior filled."""
    cells = np.clip(((points + 1) / 2 * size).astype(int), 0, size - 1)
    grid = np.zeros((size,) * 3, dtype=bool)
    grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    return binary_fill_holes(grid)
