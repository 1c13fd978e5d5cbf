"""Edge maps of depth images: Canny (as ImageMagick's `-canny 1x1+5%+5%` the paper ran) and the
"scribble" filter ControlNet applies to HED maps (thin the edges, thicken them back by blurring, then
binarize), with our own non-maximum suppression."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def canny(gray: np.ndarray, sigma: float = 1.0, low: float = 0.05, high: float = 0.05) -> np.ndarray:
    """(H, W) uint8 → (H, W) bool one-pixel edges; thresholds are fractions of the full gray range,
    sigma in pixels (the paper's blur radius 1, sigma 1)."""
    from skimage.feature import canny as skimage_canny

    return skimage_canny(
        np.asarray(gray, dtype=np.float64) / 255.0, sigma=sigma, low_threshold=low, high_threshold=high
    )


# 3×3 line footprints: a pixel survives when it is the maximum along one of the four directions
_LINES = [
    np.array(m, dtype=bool)
    for m in (
        [[0, 0, 0], [1, 1, 1], [0, 0, 0]],
        [[0, 1, 0], [0, 1, 0], [0, 1, 0]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[0, 0, 1], [0, 1, 0], [1, 0, 0]],
    )
]


def thin_ridges(edges: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
    """(H, W) float edge strength → bool ridge pixels above `threshold` after a Gaussian blur."""
    smooth = ndimage.gaussian_filter(np.asarray(edges, dtype=np.float64), sigma)
    ridge = np.zeros(smooth.shape, dtype=bool)
    for footprint in _LINES:
        ridge |= smooth == ndimage.grey_dilation(smooth, footprint=footprint)
    return ridge & (smooth > threshold)


def scribble(hed: np.ndarray) -> np.ndarray:
    """HED probabilities (H, W) in [0, 1] → bool scribble strokes (ControlNet's HED scribble recipe at
    its 512 px: ridges of the map at 0.5 after a σ 3 blur, blurred again by σ 3 and kept where above
    4/255; the σs scale with the image so strokes keep their share of it)."""
    sigma = 3.0 * max(hed.shape) / 512
    ridge = thin_ridges(hed, threshold=0.5, sigma=sigma)
    return ndimage.gaussian_filter(ridge.astype(np.float64), sigma) > 4.0 / 255.0
