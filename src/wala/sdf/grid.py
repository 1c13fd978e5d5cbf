"""The grid convention, in one place.

An N³ grid covers the cube [-1, 1)³ with voxel (i, j, k) at world point -1 + index·h, h = 2/N:
**corner-aligned**, as the released WaLa code decodes its TSDFs (index 0 at -1, index N-1 at
1 - h). Axis 0 of an array is world x. Every module that maps between voxels and space goes
through here, so prepared data, decoded meshes and the official models' outputs share one frame.
"""

from __future__ import annotations

import numpy as np
import torch

GRID_CONVENTION = "corner"  # recorded with prepared data: a folder made under another convention is refused


def voxel_size(resolution: int) -> float:
    return 2.0 / resolution


def world_to_index(points: np.ndarray, resolution: int) -> np.ndarray:
    """World coordinates → continuous voxel index coordinates (voxels at integers)."""
    return (np.asarray(points, dtype=np.float64) + 1.0) / voxel_size(resolution)


def index_to_world(indices: np.ndarray, resolution: int) -> np.ndarray:
    return np.asarray(indices, dtype=np.float64) * voxel_size(resolution) - 1.0


def grid_axis(resolution: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The N world coordinates of the voxels along one axis."""
    return torch.arange(resolution, device=device, dtype=torch.float64).mul(voxel_size(resolution)).sub(1.0).to(dtype)


def grid_points(
    resolution: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(N, N, N, 3) world coordinates of all voxels, indexing 'ij'."""
    axis = grid_axis(resolution, device, dtype)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
