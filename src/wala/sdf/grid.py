"""The grid convention, in one place.

An N³ grid covers the cube [-1, 1]³ and samples it at **cell centers**: voxel (i, j, k) sits at
world point -1 + (index + 0.5)·h with h = 2/N, so the grid is symmetric about the origin and
axis 0 of an array is world x. Every module that maps between voxels and space goes through here.
"""
from __future__ import annotations

import numpy as np
import torch


def voxel_size(resolution: int) -> float:
    return 2.0 / resolution


def world_to_index(points: np.ndarray, resolution: int) -> np.ndarray:
    """World coordinates → continuous voxel index coordinates (voxel centers at integers)."""
    return (np.asarray(points, dtype=np.float64) + 1.0) / voxel_size(resolution) - 0.5


def index_to_world(indices: np.ndarray, resolution: int) -> np.ndarray:
    return (np.asarray(indices, dtype=np.float64) + 0.5) * voxel_size(resolution) - 1.0


def grid_axis(resolution: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The N world coordinates of voxel centers along one axis."""
    return (torch.arange(resolution, device=device, dtype=torch.float64) + 0.5).mul(voxel_size(resolution)).sub(1.0).to(dtype)


def grid_points(resolution: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, N, N, 3) world coordinates of all voxel centers, indexing 'ij'."""
    axis = grid_axis(resolution, device, dtype)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
