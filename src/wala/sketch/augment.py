"""Training-time augmentation of sketches (the paper's): a random affine jitter (translation, rotation,
scale: the model should not care about line thickness or padding) and a non-affine cage warp (the image
cut into 3×3 equal squares, the four corners of the centre square moved independently, everything
between them following bilinearly). The third augmentation, noise on the SVG control points of traced
and stroked sketches, acts on vectors: `wala.sketch.trace.jitter_paths`.

Both work on batches (B, C, H, W) of images in [−1, 1] with white (1) paper; what comes in from
outside the image is the border's colour, i.e. paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def affine_matrices(
    n: int,
    generator: torch.Generator | None,
    shift: float = 0.08,
    degrees: float = 10.0,
    scale: tuple[float, float] = (0.85, 1.15),
) -> torch.Tensor:
    """(n, 2, 3) maps from output to input positions in normalized [−1, 1] coordinates: the content is
    scaled by s, rotated by θ and moved by (tx, ty) (fractions of the half-size)."""
    s = _uniform(n, *scale, generator)
    theta = torch.deg2rad(_uniform(n, -degrees, degrees, generator))
    t = _uniform(2 * n, -shift, shift, generator).view(n, 2)
    return content_affine(s, theta, t)


def content_affine(s: torch.Tensor, theta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Content moved x → s·R(θ)·x + t becomes the sampling map x → R(−θ)(x − t)/s, (n, 2, 3)."""
    c, si = torch.cos(theta) / s, torch.sin(theta) / s
    rotation = torch.stack([torch.stack([c, si], -1), torch.stack([-si, c], -1)], -2)  # R(−θ)/s
    return torch.cat([rotation, -(rotation @ t[..., None])], dim=-1)


def affine_jitter(images: torch.Tensor, generator: torch.Generator | None = None, **ranges) -> torch.Tensor:
    matrices = affine_matrices(len(images), generator, **ranges).to(images)
    grid = F.affine_grid(matrices, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def cage_warp(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Moves the content at the centre square's four corners by `offsets` (B, 4, 2) (x, y in [−1, 1]
    units; corners in the order top-left, top-right, bottom-left, bottom-right); the image's own
    border stays put and the 3×3 cells in between warp bilinearly."""
    B, _, H, W = images.shape
    # sampling displacement on the 4×4 lattice of cell corners: −offset at the inner four, 0 elsewhere
    lattice = torch.zeros(B, 2, 4, 4, dtype=images.dtype, device=images.device)
    for k, (row, col) in enumerate(((1, 1), (1, 2), (2, 1), (2, 2))):
        lattice[:, :, row, col] = -offsets[:, k].to(images)
    field = F.interpolate(lattice, size=(H, W), mode="bilinear", align_corners=True)  # piecewise bilinear
    ys = torch.linspace(-1, 1, H, dtype=images.dtype, device=images.device)
    xs = torch.linspace(-1, 1, W, dtype=images.dtype, device=images.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1)[None] + field.permute(0, 2, 3, 1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def random_cage_warp(
    images: torch.Tensor, generator: torch.Generator | None = None, strength: float = 0.1
) -> torch.Tensor:
    """Each inner corner moved uniformly within ±strength (of the half-size) in x and y."""
    offsets = _uniform(len(images) * 8, -strength, strength, generator).view(len(images), 4, 2)
    return cage_warp(images, offsets)


def augment_sketches(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The training augmentation: affine jitter, then the cage warp."""
    return random_cage_warp(affine_jitter(images, generator), generator)


__all__ = ["affine_jitter", "augment_sketches", "cage_warp", "content_affine", "random_cage_warp"]
