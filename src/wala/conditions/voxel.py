"""16³ occupancy → (size/2)³ condition tokens: the released voxel encoder (Encoder_Down_2), official names.

conv 1→64 → ResBlock 64→128 (3×3×3 skip conv) → 2 ResBlocks → AvgPool3d(3, 2, 1) (borders divide
by 27) → 3 ResBlocks → GN, SiLU, conv → width; tokens x-major (i·64 + j·8 + k). Input 0/1 as given.
128 channels (`voxel_hidden`) in the released encoder; CPU-sized models may use fewer.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.conditions.base import ConditionKind
from wala.config import ConditionConfig
from wala.io.conditions import VOXEL_FORMATS
from wala.nn import ResBlock, conv3, output_conv


class VoxelEncoder(nn.Module):
    def __init__(self, c: ConditionConfig, channels: int = 1):
        super().__init__()
        hidden = c.voxel_hidden  # 128 in the released encoder; smaller for CPU-sized models
        groups = min(32, hidden // 4)
        self.in_conv = conv3(channels, 64)  # 1: occupancy; a point grid has 4 (wala.conditions.pointcloud)
        self.res_1 = ResBlock(64, hidden, groups)
        for i in range(2, 7):
            self.add_module(f"res_{i}", ResBlock(hidden, groups=groups))
        self.out_conv = output_conv(hidden, c.width, groups)

    def forward(self, occupancy: torch.Tensor) -> torch.Tensor:
        """(B, channels, 16, 16, 16), occupancy in {0, 1} first → (B, 512, width)."""
        h = self.res_3(self.res_2(self.res_1(self.in_conv(occupancy))))
        h = F.avg_pool3d(h, kernel_size=3, stride=2, padding=1)
        h = self.out_conv(self.res_6(self.res_5(self.res_4(h))))
        return h.flatten(2).transpose(1, 2)


def _read(paths: list[str], c: ConditionConfig, composite_alpha: bool = False) -> np.ndarray:
    from wala.io.conditions import load_voxels

    return load_voxels(paths[0], c.voxel_size)


def _to_input(grid: np.ndarray, c: ConditionConfig) -> torch.Tensor:
    from wala.io.conditions import check_voxels

    return torch.from_numpy(check_voxels(grid, c.voxel_size).astype(np.float32))[None, None]


def _derive(mesh, tsdf: np.ndarray, seed: int) -> np.ndarray:
    from wala.conditions.derive import occupancy_grid

    return occupancy_grid(tsdf)


def _from_mesh(mesh, c: ConditionConfig, resolution: int, seed: int) -> np.ndarray:
    from wala.conditions.derive import occupancy_grid
    from wala.sdf.tsdf import mesh_to_tsdf

    return occupancy_grid(mesh_to_tsdf(mesh, resolution), c.voxel_size)


VOXEL = ConditionKind(
    name="voxel",
    flag="--voxel",
    aliases=("--voxel_files",),
    steps=5,
    guidance=1.5,
    official_guidance=3.0,
    array="occupancy",
    encoder=VoxelEncoder,
    tokens=lambda c: (c.voxel_size // 2) ** 3,
    placed=lambda c: True,
    read=_read,
    to_input=_to_input,
    derive=_derive,
    training_input=lambda stored, c, g: stored[:, None].float(),
    occupancy=lambda grid, c: grid,
    from_mesh=_from_mesh,
    signature=lambda grid: grid,
    distance=lambda a, b: float(np.count_nonzero(a != b)),  # Hamming
    help="16³ occupancy: official JSON (resolution + occupied indices), NPY/NPZ/H5/binvox",
    formats=VOXEL_FORMATS,
)
