"""Voxel grid (16³ occupancy) → 512 condition tokens: conv ResBlocks, one 2× pooling, position embedding."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.autoencoder.model import ResBlock, conv3


class VoxelEncoder(nn.Module):
    def __init__(self, width: int, channels: int = 128, blocks: int = 2, size: int = 16, groups: int = 32):
        super().__init__()
        groups = min(groups, channels)
        self.conv_in = conv3(1, channels)
        self.before = nn.Sequential(*(ResBlock(channels, groups) for _ in range(blocks)))
        self.after = nn.Sequential(*(ResBlock(channels, groups) for _ in range(blocks)))
        self.norm = nn.GroupNorm(groups, channels)
        self.proj = nn.Linear(channels, width)
        self.position = nn.Parameter(torch.randn((size // 2) ** 3, width) * 0.02)

    def forward(self, occupancy: torch.Tensor) -> torch.Tensor:
        """(B, 16, 16, 16) occupancy in {0, 1} → (B, 512, width)."""
        h = self.before(self.conv_in(occupancy[:, None].float() * 2 - 1))
        h = self.after(F.avg_pool3d(h, 2))                     # 16³ → 8³
        tokens = F.silu(self.norm(h)).flatten(2).transpose(1, 2)  # (B, 512, channels)
        return self.proj(tokens) + self.position
