"""A CLIPasso-style sketch (Vinker et al. 2022): a few cubic Bézier strokes whose control points are
optimized, through a differentiable rasterizer, so that the drawing's deep features match the image's.

CLIPasso-style, not CLIPasso: CLIPasso compares CLIP ViT/ResNet features and places the first strokes
by CLIP's attention; CLIP's weights cannot be fetched here, so the perceptual encoder is the VGG16 of
the offline HED weights (`wala.sketch.hed`: conv-block distances for geometry, the last block's
pooled features' cosine for semantics, CLIPasso's two terms) and strokes start where HED sees edges.
The paper's settings: 16 strokes, width 0.875, at most 2,000 iterations, stopping when the loss
changes by less than 1e-5.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wala.sketch.hed import HED, caffe_input

STROKES = 16
WIDTH = 0.875  # stroke width in pixels of CLIPasso's 224² canvas
MAX_ITERATIONS = 2000
TOLERANCE = 1e-5
CANVAS = 224
SAMPLES = 96  # points along each stroke the rasterizer splats


def bezier(control: torch.Tensor, samples: int = SAMPLES) -> torch.Tensor:
    """(P, 4, 2) control points → (P, samples, 2) points along each cubic."""
    t = torch.linspace(0, 1, samples, dtype=control.dtype)[None, :, None]
    p0, p1, p2, p3 = (control[:, i, None] for i in range(4))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def rasterize(control: torch.Tensor, size: int, width: float) -> torch.Tensor:
    """Strokes (P, 4, 2) in pixels (x, y) → (size, size) ink in [0, 1], differentiable in the control
    points: points along each stroke are splatted bilinearly with their arc length as mass, the density
    blurred by a Gaussian of the stroke's half width (at least 0.7 px, so gradients reach neighbours),
    and ink = 1 − exp(−2·density·√(2π)·σ) (≈ 0.86 on a stroke's centre line). Linear in the number of
    points and pixels, where a distance field costs their product."""
    points = bezier(control)  # (P, SAMPLES, 2)
    step = (points[:, 1:] - points[:, :-1]).norm(dim=-1)
    mass = torch.cat([step[:, :1], (step[:, 1:] + step[:, :-1]), step[:, -1:]], dim=1) / 2  # (P, K)
    xy, mass = points.reshape(-1, 2) - 0.5, mass.reshape(-1)
    corner = xy.floor()
    frac = xy - corner
    density = torch.zeros(size * size, dtype=control.dtype)
    for dx in (0, 1):
        for dy in (0, 1):
            weight = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
            x, y = corner[:, 0].long() + dx, corner[:, 1].long() + dy
            inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
            density = density.index_add(0, (y * size + x)[inside], (weight * mass)[inside])
    sigma = max(width / 2, 0.7)
    radius = int(np.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=control.dtype)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    blurred = F.conv2d(density.reshape(1, 1, size, size), kernel.view(1, 1, 1, -1), padding=(0, radius))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(radius, 0))[0, 0]
    return 1 - torch.exp(-2 * blurred * np.sqrt(2 * np.pi) * sigma)


def _features(model: HED, gray: torch.Tensor) -> list[torch.Tensor]:
    """(H, W) image in [0, 1] (1 = white) → HED's block features of it as an RGB image."""
    rgb = (gray * 255.0)[None, None].expand(1, 3, -1, -1)
    return model.features(caffe_input(rgb))


def initial_strokes(edges: np.ndarray, count: int, rng: np.random.Generator, radius: float = 0.05) -> np.ndarray:
    """(count, 4, 2) strokes, each four points within `radius`·size of a start drawn with probability
    ∝ `edges` (H, W) — CLIPasso draws its starts from a saliency map the same way."""
    h, w = edges.shape
    p = np.asarray(edges, dtype=np.float64).ravel() + 1e-12
    starts = rng.choice(h * w, size=count, replace=False, p=p / p.sum())
    centre = np.stack([starts % w + 0.5, starts // w + 0.5], axis=1)
    return centre[:, None] + rng.normal(0, radius * max(h, w), (count, 4, 2)).cumsum(axis=1) / 2


def clipasso_style(
    model: HED,
    image: np.ndarray,
    edges: np.ndarray,
    seed: int = 0,
    strokes: int = STROKES,
    width: float = WIDTH,
    max_iterations: int = MAX_ITERATIONS,
    tolerance: float = TOLERANCE,
    size: int = CANVAS,
) -> tuple[np.ndarray, int]:
    """Optimizes `strokes` Béziers to draw `image` ((H, W, 3) uint8 on white, resized to size²);
    `edges` (H, W) in [0, 1] places the first strokes. → ((size, size) float ink, iterations run)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    target = torch.from_numpy(
        np.asarray(Image.fromarray(image).convert("L").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    )
    edge_map = np.asarray(
        Image.fromarray((np.asarray(edges) * 255).astype(np.uint8)).resize((size, size)), dtype=np.float64
    )
    control = torch.tensor(initial_strokes(edge_map, strokes, rng), dtype=torch.float32, requires_grad=True)
    with torch.no_grad():
        wanted = _features(model, target)
    optimizer = torch.optim.Adam([control], lr=1.0)  # CLIPasso's: control points move in pixels
    previous, iterations = None, 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (the count is returned)
        drawing = 1.0 - rasterize(control, size, width * size / CANVAS)
        got = _features(model, drawing)
        geometric = sum(F.mse_loss(g, w) / w.pow(2).mean().clamp_min(1e-6) for g, w in zip(got[1:3], wanted[1:3]))
        semantic = 1 - F.cosine_similarity(got[4].mean((2, 3)), wanted[4].mean((2, 3))).mean()
        loss = geometric + semantic
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            control.clamp_(0, size)
        value = loss.item()
        if previous is not None and abs(previous - value) < tolerance:
            break
        previous = value
    with torch.no_grad():
        return rasterize(control.detach(), size, width * size / CANVAS).numpy(), iterations
