"""Signed distance primitives and CSG operators on torch points (..., 3) → distances (...).

Primitives are exact SDFs; union/intersection/difference of SDFs are exact outside and a bound
inside (|∇| ≤ 1), which is what a TSDF clipped at ±0.1 needs. Smooth union blends with radius k.
"""

from __future__ import annotations

import math

import torch

AXES = {"x": 0, "y": 1, "z": 2}


def _length(v: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(v, dim=-1)


def _to_axis(p: torch.Tensor, axis: str) -> torch.Tensor:
    """Reorders coordinates so that `axis` becomes y (the primitives' up axis)."""
    if axis == "y":
        return p
    if axis == "x":
        return p[..., [1, 0, 2]]
    return p[..., [0, 2, 1]]


def translate(p: torch.Tensor, offset) -> torch.Tensor:
    return p - torch.as_tensor(offset, dtype=p.dtype, device=p.device)


def rotate(p: torch.Tensor, axis: str, angle: float) -> torch.Tensor:
    """Points in the frame of an object rotated by `angle` (radians) about `axis`."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][AXES[axis]]
    out = p.clone()
    out[..., i] = c * p[..., i] + s * p[..., j]
    out[..., j] = -s * p[..., i] + c * p[..., j]
    return out


def sphere(p: torch.Tensor, center, radius: float) -> torch.Tensor:
    return _length(translate(p, center)) - radius


def box(p: torch.Tensor, center, half_size, rounding: float = 0.0) -> torch.Tensor:
    """Axis-aligned box with half extents `half_size`, edges rounded by `rounding`."""
    half = torch.as_tensor(half_size, dtype=p.dtype, device=p.device) - rounding
    q = translate(p, center).abs() - half
    outside = _length(q.clamp(min=0))
    inside = q.amax(dim=-1).clamp(max=0)
    return outside + inside - rounding


def cylinder(p: torch.Tensor, center, radius: float, half_height: float, axis: str = "y") -> torch.Tensor:
    """Capped cylinder along `axis`."""
    q = _to_axis(translate(p, center), axis)
    d = torch.stack([_length(q[..., [0, 2]]) - radius, q[..., 1].abs() - half_height], dim=-1)
    return _length(d.clamp(min=0)) + d.amax(dim=-1).clamp(max=0)


def capsule(p: torch.Tensor, a, b, radius: float) -> torch.Tensor:
    """Segment a–b swept by a ball of `radius`."""
    a = torch.as_tensor(a, dtype=p.dtype, device=p.device)
    ab = torch.as_tensor(b, dtype=p.dtype, device=p.device) - a
    ap = p - a
    t = ((ap * ab).sum(-1) / (ab * ab).sum()).clamp(0, 1)
    return _length(ap - t[..., None] * ab) - radius


def torus(p: torch.Tensor, center, major: float, minor: float, axis: str = "y") -> torch.Tensor:
    """Torus around `axis` (the ring lies in the plane normal to it)."""
    q = _to_axis(translate(p, center), axis)
    ring = _length(q[..., [0, 2]]) - major
    return torch.sqrt(ring * ring + q[..., 1] ** 2) - minor


def frustum(p: torch.Tensor, center, radius_bottom: float, radius_top: float, half_height: float) -> torch.Tensor:
    """Capped cone along y, truncated: a two-point revolved profile."""
    heights = torch.tensor([-half_height, half_height], dtype=p.dtype, device=p.device)
    radii = torch.tensor([radius_bottom, radius_top], dtype=p.dtype, device=p.device)
    return revolved_profile(p, center, heights, radii)


def revolved_profile(p: torch.Tensor, center, heights: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Solid of revolution about y whose radius follows (heights[i], radii[i]) linearly; the 2D
    distance to the closed profile polygon is exact, hence so is the 3D one."""
    q = translate(p, center)
    r = _length(q[..., [0, 2]])
    y = q[..., 1]
    # closed polygon in the (r, y) half plane: axis bottom → profile → axis top
    rs = torch.cat([radii.new_zeros(1), radii, radii.new_zeros(1)])
    ys = torch.cat([heights[:1], heights, heights[-1:]])
    best = torch.full_like(r, float("inf"))
    inside = torch.zeros_like(r, dtype=torch.bool)
    for i in range(len(rs)):
        j = (i + 1) % len(rs)
        er, ey = rs[j] - rs[i], ys[j] - ys[i]
        wr, wy = r - rs[i], y - ys[i]
        t = ((wr * er + wy * ey) / (er * er + ey * ey).clamp(min=1e-12)).clamp(0, 1)
        best = torch.minimum(best, (wr - t * er) ** 2 + (wy - t * ey) ** 2)
        crosses = (ys[i] <= y) != (ys[j] <= y)
        x_at = rs[i] + (y - ys[i]) * er / torch.where(ey == 0, torch.ones_like(ey), ey)
        inside ^= crosses & (r < x_at)
    return torch.where(inside, -1.0, 1.0) * torch.sqrt(best)


def union(*distances: torch.Tensor) -> torch.Tensor:
    out = distances[0]
    for d in distances[1:]:
        out = torch.minimum(out, d)
    return out


def smooth_union(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return torch.lerp(b, a, h) - k * h * (1 - h)


def intersection(*distances: torch.Tensor) -> torch.Tensor:
    out = distances[0]
    for d in distances[1:]:
        out = torch.maximum(out, d)
    return out


def difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.maximum(a, -b)


def shell(d: torch.Tensor, thickness: float) -> torch.Tensor:
    """A hollow version of a solid: the band |d| < thickness / 2."""
    return d.abs() - thickness / 2
