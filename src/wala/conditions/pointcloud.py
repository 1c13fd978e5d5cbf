"""Point cloud → condition tokens, the released encoders (OFFICIAL.md §4.2), official names.

PointNet_Large: per point Linear 3→64→256→1024→pc_dims, each LayerNorm + SiLU; set-attention pooling:
`tokens` learned queries attend over all points (16 heads, q/k LayerNorm), LayerNorm, MLP ×4 →
width; 4 pre-LN transformer blocks. Any number of points in, `tokens` out, order-invariant.
PointNet_Simple: ReLU, pooling without bias or MLP, three Linear(+LN, ReLU) layers after.
Points are used as given (the released models expect the ±0.9 normalization cube).

`encoder: grid` (ours, not released): the points binned into the voxel_size³ grid (per cell: whether
it holds a point, and their mean offset from the cell centre) and read by the voxel encoder's
convolutions, one token per 2³ cells. A small PointNet trained on a CPU learned each family's
typical shape and little of its proportions (docs/training.md); grid tokens say where the surface is.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.conditions.base import ConditionKind
from wala.conditions.voxel import VOXEL, VoxelEncoder
from wala.config import ConditionConfig
from wala.errors import WalaError
from wala.io.conditions import POINT_CLOUD_FORMATS
from wala.nn import CrossAttention, Mlp, PlainBlock

HEADS = 16  # the official trainer fixes it; widths must be multiples of 16


class SetPooling(nn.Module):
    """Induced set attention: I (1, tokens, D) queries over the points; [LN + MLP to `out`]."""

    def __init__(self, width: int, tokens: int, out: int | None, bias: bool):
        super().__init__()
        self.I = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, tokens, width)))
        self.mab0 = CrossAttention(width, width, HEADS, qkv_bias=bias)
        if out is not None:
            self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
            self.mlp = Mlp(width, 4 * width, out)
        self.project = out is not None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.mab0(self.I.expand(len(features), -1, -1), features)
        return self.mlp(self.norm(h)) if self.project else h


class PointNetEncoder(nn.Module):
    def __init__(self, c: ConditionConfig):
        super().__init__()
        self.large = c.encoder == "large"
        widths = [3, 64, 256, 1024, c.encoder_width]
        for i in range(1, 5):
            setattr(self, f"linear{i}", nn.Linear(widths[i - 1], widths[i]))
            setattr(self, f"ln{i}", nn.LayerNorm(widths[i]))
        if self.large:
            self.pooling = SetPooling(c.encoder_width, c.tokens, c.width, bias=True)
            self.t_blocks = nn.ModuleList(PlainBlock(c.width, HEADS) for _ in range(4))
        else:
            self.pooling = SetPooling(c.encoder_width, c.tokens, None, bias=False)
            self.linear_f1 = nn.Linear(c.encoder_width, c.width)
            self.linear_f2 = nn.Linear(c.width, c.width)
            self.linear_f3 = nn.Linear(c.width, c.width)
            self.ln_f1 = nn.LayerNorm(c.width)
            self.ln_f2 = nn.LayerNorm(c.width)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) → (B, tokens, width)."""
        act = F.silu if self.large else F.relu
        x = points
        for i in range(1, 5):
            x = act(getattr(self, f"ln{i}")(getattr(self, f"linear{i}")(x)))
        x = self.pooling(x)
        if self.large:
            for block in self.t_blocks:
                x = block(x)
            return x
        x = F.relu(self.ln_f1(self.linear_f1(x)))
        return self.linear_f3(F.relu(self.ln_f2(self.linear_f2(x))))


class PointGridEncoder(nn.Module):
    def __init__(self, c: ConditionConfig):
        super().__init__()
        self.size = c.voxel_size
        self.grid = VoxelEncoder(c, channels=4)

    def binned(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) in [-1, 1]³ → (B, 4, size, size, size): per cell (as `points_to_occupancy` assigns
        them, x-major) 1 where it holds a point, then its points' mean offset from the cell centre, in cells."""
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"points must be (B, P, 3), got {tuple(points.shape)}")
        b, s = len(points), self.size
        scaled = (points.float() + 1) / 2 * s
        cells = scaled.floor().clamp(0, s - 1)
        offsets = (scaled - cells - 0.5).clamp(-0.5, 0.5)  # points past the cube sit on its border
        index = ((cells[..., 0] * s + cells[..., 1]) * s + cells[..., 2]).long()
        counts = scaled.new_zeros(b, s**3).scatter_add_(1, index, torch.ones_like(scaled[..., 0]))
        sums = scaled.new_zeros(b, s**3, 3).scatter_add_(1, index[..., None].expand(-1, -1, 3), offsets)
        cell = torch.cat([(counts > 0).float()[..., None], sums / counts.clamp(min=1)[..., None]], dim=-1)
        return cell.transpose(1, 2).reshape(b, 4, s, s, s)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) → (B, (size/2)³, width)."""
        return self.grid(self.binned(points))


ENCODERS = {"large": PointNetEncoder, "simple": PointNetEncoder, "grid": PointGridEncoder}


def _encoder(c: ConditionConfig) -> nn.Module:
    return ENCODERS[c.encoder](c)


def _check(c: ConditionConfig) -> None:
    if c.encoder not in ENCODERS:
        raise WalaError(f"unknown point-cloud encoder '{c.encoder}' (known: {', '.join(ENCODERS)})")


def _read(paths: list[str], c: ConditionConfig, composite_alpha: bool = False) -> np.ndarray:
    from wala.io.conditions import load_point_cloud

    return load_point_cloud(paths[0])


def _to_input(points: np.ndarray, c: ConditionConfig) -> torch.Tensor:
    from wala.io.conditions import check_point_cloud

    return torch.from_numpy(np.ascontiguousarray(check_point_cloud(points), dtype=np.float32))[None]


def _derive(mesh, tsdf: np.ndarray, seed: int) -> np.ndarray:
    from wala.conditions.derive import surface_samples

    return surface_samples(mesh, seed=seed)


def _normalize(points: np.ndarray):
    from wala.config import RepresentationConfig
    from wala.io.conditions import check_point_cloud, normalize_points

    return normalize_points(check_point_cloud(points), RepresentationConfig().normalize_bound)


def _from_mesh(mesh, c: ConditionConfig, resolution: int, seed: int) -> np.ndarray:
    from wala.conditions.derive import surface_samples

    return surface_samples(mesh, c.points, seed=seed)


def _encoder_as(c: ConditionConfig, state: dict, kind) -> dict | None:
    """The grid encoder as a voxel encoder: the same network, its input conv reading only the first
    channel (whether a cell holds a point), where a voxel grid's occupancy stands. A voxel generator
    fine-tuned from a grid point-cloud generator starts from all of its weights (its offsets read as 0)."""
    if c.encoder != "grid" or kind is not VOXEL:
        return None
    voxel = {name.removeprefix("grid."): tensor for name, tensor in state.items()}
    voxel["in_conv.weight"] = voxel["in_conv.weight"][:, :1].clone()
    return voxel


def _occupancy(points: np.ndarray, c: ConditionConfig) -> np.ndarray:
    from wala.conditions.derive import points_to_occupancy

    return points_to_occupancy(points, c.voxel_size)


RETRIEVAL_POINTS = 2048  # points compared per shape by retrieval


def _signature(points: np.ndarray):
    from scipy.spatial import cKDTree

    points = points[:RETRIEVAL_POINTS]
    return points, cKDTree(points)


def _chamfer(a, b) -> float:
    """Symmetric mean squared nearest-neighbour distance between two signatures."""
    (a_points, a_tree), (b_points, b_tree) = a, b
    return float(np.mean(b_tree.query(a_points)[0] ** 2) + np.mean(a_tree.query(b_points)[0] ** 2))


def _training_input(stored: torch.Tensor, c: ConditionConfig, generator: torch.Generator | None) -> torch.Tensor:
    """`c.points` random stored points per shape (the first ones without a generator)."""
    if generator is None:
        return stored[:, : c.points]
    pick = torch.rand(stored.shape[:2], generator=generator).argsort(dim=1)[:, : c.points].to(stored.device)
    return torch.gather(stored, 1, pick[..., None].expand(-1, -1, 3))


POINTCLOUD = ConditionKind(
    name="pointcloud",
    flag="--pointcloud",
    steps=8,
    guidance=1.3,
    official_guidance=3.0,
    array="points",
    encoder=_encoder,
    check=_check,
    tokens=lambda c: VOXEL.tokens(c) if c.encoder == "grid" else c.tokens,
    placed=lambda c: c.encoder == "grid",
    encoder_as=_encoder_as,
    read=_read,
    to_input=_to_input,
    derive=_derive,
    training_input=_training_input,
    help="H5DF/H5/PLY/XYZ/NPY/NPZ (points key)",
    formats=POINT_CLOUD_FORMATS,
    normalize=_normalize,
    held_out=lambda stored, c: stored[: c.points],
    occupancy=_occupancy,
    from_mesh=_from_mesh,
    signature=_signature,
    distance=_chamfer,
)
