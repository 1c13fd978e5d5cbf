"""Point cloud → condition tokens: PointNet per point, Set-Transformer pooling, MLP.

Per point a shared MLP (3 → 64 → 256 → 1024 → D, LayerNorm + SiLU); then K learned inducing
queries attend over all points (pooling by multihead attention, Lee et al. 2019), so any number of
points in gives K tokens out; a residual MLP finishes. Trained on 2,500 points; 25k work as well.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [nn.LayerNorm(b), nn.SiLU()]
    return nn.Sequential(*layers)


class PointCloudEncoder(nn.Module):
    def __init__(self, width: int, tokens: int = 256, heads: int = 8, hidden: tuple[int, ...] = (64, 256, 1024)):
        super().__init__()
        self.pointnet = _mlp([3, *hidden, width])
        self.queries = nn.Parameter(torch.randn(tokens, width) * 0.02)
        self.attend = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.ff = _mlp([width, 4 * width, width])
        self.norm2 = nn.LayerNorm(width)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) normalized points → (B, tokens, width)."""
        features = self.pointnet(points)
        queries = self.queries.expand(len(points), -1, -1)
        pooled = self.norm1(queries + self.attend(queries, features, features, need_weights=False)[0])
        return self.norm2(pooled + self.ff(pooled))
