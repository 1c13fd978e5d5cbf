"""Procedural shape families: parametric CSG objects, deterministic by seed — wala's built-in data.

Each family maps a numpy Generator to an SDF (torch points (..., 3) → distances), y up. A shape
is normalized like a mesh (bbox centered, longest side 1.8) and yields a TSDF grid and a mesh.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import trimesh

from wala.errors import WalaError
from wala.sdf import shapes as S
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.grid import grid_points

SDF = Callable[[torch.Tensor], torch.Tensor]


def chair(rng: np.random.Generator) -> SDF:
    w, d = rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.65)
    seat_y, seat_t = rng.uniform(-0.1, 0.1), rng.uniform(0.05, 0.09)
    back_h, leg_r = rng.uniform(0.4, 0.75), rng.uniform(0.03, 0.06)
    round_legs = rng.random() < 0.5
    arms = rng.random() < 0.4

    def sdf(p):
        parts = [
            S.box(p, (0, seat_y, 0), (w, seat_t, d), rounding=0.02),
            S.box(p, (0, seat_y + back_h, -d + 0.04), (w, back_h, 0.04), rounding=0.02),
        ]
        leg_half = (seat_y + 0.9) / 2
        for sx in (-1, 1):
            for sz in (-1, 1):
                c = (sx * (w - 0.07), seat_y - leg_half, sz * (d - 0.07))
                parts.append(S.cylinder(p, c, leg_r, leg_half) if round_legs else S.box(p, c, (leg_r, leg_half, leg_r)))
            if arms:
                parts.append(S.box(p, (sx * w, seat_y + 0.25, 0), (0.04, 0.03, d * 0.8)))
                parts.append(S.box(p, (sx * w, seat_y + 0.13, d * 0.6), (0.03, 0.12, 0.03)))
        return S.union(*parts)

    return sdf


def table(rng: np.random.Generator) -> SDF:
    round_top = rng.random() < 0.4
    w, d, top_t = rng.uniform(0.6, 0.9), rng.uniform(0.4, 0.8), rng.uniform(0.03, 0.07)
    top_y, leg_r = rng.uniform(0.1, 0.4), rng.uniform(0.03, 0.07)
    pedestal = round_top and rng.random() < 0.5

    def sdf(p):
        if round_top:
            parts = [S.cylinder(p, (0, top_y, 0), w, top_t)]
        else:
            parts = [S.box(p, (0, top_y, 0), (w, top_t, d), rounding=0.01)]
        leg_half = (top_y + 0.9) / 2
        if pedestal:
            parts.append(S.cylinder(p, (0, top_y - leg_half, 0), leg_r * 1.5, leg_half))
            parts.append(S.cylinder(p, (0, -0.88, 0), w * 0.5, 0.02))
        else:
            spread = (w * 0.7, w * 0.7) if round_top else (w - 0.08, d - 0.08)
            for sx in (-1, 1):
                for sz in (-1, 1):
                    parts.append(S.box(p, (sx * spread[0], top_y - leg_half, sz * spread[1]), (leg_r, leg_half, leg_r)))
        return S.union(*parts)

    return sdf


def mug(rng: np.random.Generator) -> SDF:
    r, h, wall = rng.uniform(0.35, 0.55), rng.uniform(0.45, 0.8), rng.uniform(0.04, 0.08)
    handle_r, handle_t = rng.uniform(0.18, 0.3), rng.uniform(0.04, 0.07)

    def sdf(p):
        body = S.cylinder(p, (0, 0, 0), r, h)
        cavity = S.cylinder(p, (0, wall + 0.05, 0), r - wall, h)
        handle = S.torus(p, (r + handle_r * 0.6, 0, 0), handle_r, handle_t, axis="z")
        handle = S.difference(handle, S.cylinder(p, (0, 0, 0), r - wall / 2, h))
        return S.union(S.difference(body, cavity), handle)

    return sdf


def lamp(rng: np.random.Generator) -> SDF:
    base_r, pole_h = rng.uniform(0.25, 0.4), rng.uniform(0.8, 1.2)
    shade_b, shade_t, shade_h = rng.uniform(0.3, 0.5), rng.uniform(0.12, 0.25), rng.uniform(0.2, 0.35)
    tilt = rng.uniform(-0.3, 0.3)

    def sdf(p):
        base = S.cylinder(p, (0, -0.85, 0), base_r, 0.05)
        top = -0.8 + pole_h
        pole = S.capsule(p, (0, -0.8, 0), (math.sin(tilt) * 0.3, top, 0), 0.03)
        shade_p = S.translate(p, (math.sin(tilt) * 0.3, top, 0))
        shade = S.shell(S.frustum(shade_p, (0, 0, 0), shade_b, shade_t, shade_h), 0.04)
        shade = S.intersection(shade, S.box(shade_p, (0, 0, 0), (1, shade_h - 0.03, 1)))  # open ends
        return S.union(base, pole, shade)

    return sdf


def vase(rng: np.random.Generator) -> SDF:
    k = rng.integers(5, 9)
    heights = np.linspace(-0.9, 0.9, k)
    radii = 0.25 + 0.2 * np.abs(np.sin(rng.uniform(0, math.pi) + np.linspace(0, rng.uniform(2, 5), k)))
    radii[0] = max(radii[0], 0.2)
    wall = rng.uniform(0.03, 0.06)
    inner_heights = heights.copy()
    inner_heights[0], inner_heights[-1] = -0.9 + rng.uniform(0.08, 0.15), 1.0  # a floor, an open top
    h, r = torch.tensor(heights, dtype=torch.float32), torch.tensor(radii, dtype=torch.float32)
    h_in = torch.tensor(inner_heights, dtype=torch.float32)

    def sdf(p):
        outer = S.revolved_profile(p, (0, 0, 0), h.to(p), r.to(p))
        inner = S.revolved_profile(p, (0, 0, 0), h_in.to(p), (r - wall).to(p))
        return S.difference(outer, inner)

    return sdf


def airplane(rng: np.random.Generator) -> SDF:
    length, body_r = rng.uniform(1.4, 1.8), rng.uniform(0.07, 0.12)
    span, chord, sweep = rng.uniform(0.9, 1.6), rng.uniform(0.15, 0.3), rng.uniform(0.0, 0.3)
    tail_span = rng.uniform(0.3, 0.5)
    engines = rng.random() < 0.6

    def sdf(p):
        body = S.capsule(p, (0, 0, -length / 2), (0, 0, length / 2), body_r)
        wing_p = S.translate(p, (0, -0.02, 0.05))
        wing_p[..., 2] = wing_p[..., 2] + sweep * wing_p[..., 0].abs()
        wing = S.box(wing_p, (0, 0, 0), (span / 2, 0.03, chord / 2), rounding=0.01)
        hstab = S.box(p, (0, 0, -length / 2 + 0.08), (tail_span / 2, 0.025, 0.08), rounding=0.01)
        fin = S.box(p, (0, 0.14, -length / 2 + 0.08), (0.025, 0.14, 0.09), rounding=0.01)
        parts = [body, wing, hstab, fin]
        if engines:
            for sx in (-1, 1):
                parts.append(S.cylinder(p, (sx * span * 0.25, -0.08, 0.12), 0.05, 0.1, axis="z"))
        return S.union(*parts)

    return sdf


def ring(rng: np.random.Generator) -> SDF:
    major, minor = rng.uniform(0.5, 0.7), rng.uniform(0.06, 0.12)
    gem = rng.random() < 0.6
    gem_r = rng.uniform(0.12, 0.2)

    def sdf(p):
        band = S.torus(p, (0, 0, 0), major, minor, axis="z")
        if not gem:
            return band
        setting = S.frustum(p, (0, major + minor + 0.05, 0), minor * 1.2, gem_r * 0.9, 0.08)
        stone = S.sphere(p, (0, major + minor + 0.13 + gem_r * 0.6, 0), gem_r)
        return S.union(band, S.smooth_union(setting, stone, 0.03))

    return sdf


def bottle(rng: np.random.Generator) -> SDF:
    body_r, body_h = rng.uniform(0.25, 0.4), rng.uniform(0.45, 0.7)
    neck_r, neck_h = rng.uniform(0.08, 0.13), rng.uniform(0.15, 0.3)

    def sdf(p):
        body = S.cylinder(p, (0, -0.9 + body_h, 0), body_r, body_h)
        shoulder_y = -0.9 + 2 * body_h
        shoulder = S.frustum(p, (0, shoulder_y + 0.1, 0), body_r, neck_r, 0.1)
        neck = S.cylinder(p, (0, shoulder_y + 0.2 + neck_h, 0), neck_r, neck_h)
        lip = S.torus(p, (0, shoulder_y + 0.2 + 2 * neck_h, 0), neck_r, 0.025)
        return S.union(S.smooth_union(body, shoulder, 0.05), neck, lip)

    return sdf


def bookshelf(rng: np.random.Generator) -> SDF:
    w, h, d = rng.uniform(0.5, 0.8), rng.uniform(0.7, 0.9), rng.uniform(0.2, 0.35)
    shelves, t = int(rng.integers(2, 6)), rng.uniform(0.025, 0.045)

    def sdf(p):
        frame = S.box(p, (0, 0, 0), (w, h, d))
        inner = S.box(p, (0, 0, t), (w - t, h - t, d))
        parts = [S.difference(frame, inner)]
        for i in range(1, shelves):
            parts.append(S.box(p, (0, -h + 2 * h * i / shelves, 0), (w, t / 2, d)))
        return S.union(*parts)

    return sdf


def rocket(rng: np.random.Generator) -> SDF:
    r, body_h, nose_h = rng.uniform(0.12, 0.2), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35)
    fins, fin_w = int(rng.integers(3, 5)), rng.uniform(0.15, 0.25)

    def sdf(p):
        body = S.cylinder(p, (0, -0.3, 0), r, body_h)
        nose = S.frustum(p, (0, -0.3 + body_h + nose_h / 2, 0), r, 0.01, nose_h / 2)
        parts = [S.smooth_union(body, nose, 0.02), S.frustum(p, (0, -0.3 - body_h - 0.06, 0), r * 0.7, r * 0.9, 0.06)]
        for i in range(fins):
            q = S.rotate(p, "y", 2 * math.pi * i / fins)
            parts.append(S.box(q, (r + fin_w / 2, -0.3 - body_h + 0.15, 0), (fin_w / 2, 0.15, 0.015)))
        return S.union(*parts)

    return sdf


FAMILIES: dict[str, Callable[[np.random.Generator], SDF]] = {
    f.__name__: f for f in (chair, table, mug, lamp, vase, airplane, ring, bottle, bookshelf, rocket)
}


def family_sdf(family: str, seed: int) -> SDF:
    """The normalized SDF of shape `seed` of `family`: bbox centered, longest side 1.8."""
    if family not in FAMILIES:
        raise WalaError(f"unknown shape family '{family}' (known: {', '.join(FAMILIES)})")
    raw = FAMILIES[family](np.random.default_rng([seed, sorted(FAMILIES).index(family)]))
    # the bbox of the zero level set, from a marching-cubes pass at 160³ over [-1.6, 1.6]³
    with torch.no_grad():
        coarse = raw(grid_points(160) * 1.6).numpy()
    lo, hi = tsdf_to_mesh(coarse).bounds * 1.6
    center = torch.tensor((lo + hi) / 2, dtype=torch.float32)
    scale = 1.8 / float((hi - lo).max())
    return lambda p: raw(p / scale + center.to(p)) * scale


def family_tsdf(family: str, seed: int, resolution: int = 256, truncation: float = 0.1, block: int = 4) -> np.ndarray:
    """(N, N, N) float32 TSDF of a procedural shape on the wala grid, clipped to ±truncation.

    Coarse to fine: the SDF is 1-Lipschitz, so a block of block³ voxels whose centre is farther
    than truncation + the block's half diagonal from the surface is clipped whole; only blocks
    near the surface are evaluated voxel by voxel (about a tenth of them at 256³).
    """
    sdf = family_sdf(family, seed)
    n = resolution
    if n % block:
        block = 1
    h = 2.0 / n
    m = n // block
    with torch.no_grad():
        centers = grid_points(m)  # block centres: the cell-centre grid of the coarse resolution
        coarse = torch.cat([sdf(chunk) for chunk in centers.split(8)], dim=0)
        near = coarse.abs() < truncation + block * h * math.sqrt(3) / 2
        out = (torch.sign(coarse) * truncation).repeat_interleave(block, 0).repeat_interleave(block, 1)
        out = out.repeat_interleave(block, 2).contiguous()
        blocks = torch.nonzero(near)  # (K, 3)
        offsets = torch.stack(torch.meshgrid(*[torch.arange(block)] * 3, indexing="ij"), -1).reshape(-1, 3)
        voxels = (blocks[:, None, :] * block + offsets[None]).reshape(-1, 3)  # (K·block³, 3)
        for chunk in voxels.split(1 << 20):
            values = sdf((chunk.float() + 0.5) * h - 1.0)
            out[chunk[:, 0], chunk[:, 1], chunk[:, 2]] = values.clamp(-truncation, truncation)
    return out.numpy().astype(np.float32)


def family_mesh(family: str, seed: int, resolution: int = 256) -> trimesh.Trimesh:
    return tsdf_to_mesh(family_tsdf(family, seed, resolution))
