"""Condition encoders: a condition (point cloud, voxel grid, …) → tokens (B, L, D) for cross-attention."""
from __future__ import annotations

import torch.nn as nn

from wala.conditions.pointcloud import PointCloudEncoder
from wala.conditions.voxel import VoxelEncoder
from wala.config import ConditionConfig
from wala.errors import WalaError

CONDITIONS = ("none", "pointcloud", "voxel")


def build_condition_encoder(config: ConditionConfig, width: int) -> nn.Module | None:
    """The encoder for `config.kind` producing `width`-dimensional tokens; None when unconditional."""
    if config.kind == "none":
        return None
    if config.kind == "pointcloud":
        return PointCloudEncoder(width, config.tokens, hidden=config.pointnet)
    if config.kind == "voxel":
        return VoxelEncoder(width, config.voxel_channels, size=config.voxel_size)
    raise WalaError(f"unknown condition '{config.kind}' (known: {', '.join(CONDITIONS)})")


__all__ = ["CONDITIONS", "PointCloudEncoder", "VoxelEncoder", "build_condition_encoder"]
