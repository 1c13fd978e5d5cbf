"""Vector tracing of bitmaps (potrace) and back: the paper cleans edge maps by tracing them with potrace
(turd size 10, opttolerance 1) and rasterizing the curves; its augmentation moves the SVG control points.

Paths are closed outlines, each an (S, 4, 2) array of cubic Béziers (start, control, control, end) in
pixel coordinates (x = column, y = row); potrace's corners become two straight segments. They fill by
the even-odd rule, as potrace's SVG output does (an outline and the hole inside it).
"""

from __future__ import annotations

import numpy as np

TURD_SIZE = 10  # potrace -t: drop specks of fewer pixels
OPT_TOLERANCE = 1.0  # potrace -O: how far curve optimization may move the outline
SAMPLES = 12  # points per Bézier when filling


def trace(ink: np.ndarray, turd_size: int = TURD_SIZE, opt_tolerance: float = OPT_TOLERANCE) -> list[np.ndarray]:
    """(H, W) bool, True where there is ink → potrace outlines."""
    import potrace  # potracer, a pure-Python port of potrace 1.16

    paths = []
    for curve in potrace.Bitmap(~np.asarray(ink, dtype=bool)).trace(turdsize=turd_size, opttolerance=opt_tolerance):
        start, segments = np.array([curve.start_point.x, curve.start_point.y]), []
        for s in curve.segments:
            end = np.array([s.end_point.x, s.end_point.y])
            if s.is_corner:
                corner = np.array([s.c.x, s.c.y])
                segments += [_line(start, corner), _line(corner, end)]
            else:
                segments.append(np.array([start, [s.c1.x, s.c1.y], [s.c2.x, s.c2.y], end]))
            start = end
        paths.append(np.array(segments, dtype=np.float64))
    return paths


def _line(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a, a + (b - a) / 3, a + 2 * (b - a) / 3, b])


def bezier_points(segments: np.ndarray, samples: int = SAMPLES) -> np.ndarray:
    """(S, 4, 2) cubic Béziers → (S·samples, 2) points along them (each segment's end excluded)."""
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    p0, p1, p2, p3 = (segments[:, i, None] for i in range(4))
    return ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3).reshape(-1, 2)


def fill_paths(paths: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Outlines → (H, W) bool ink, even-odd: a pixel is ink when its centre is inside an odd number of them."""
    from skimage.draw import polygon

    ink = np.zeros(size, dtype=bool)
    for segments in paths:
        points = bezier_points(segments) - 0.5  # potrace's coordinates are pixel corners; centres sit at +½
        rows, cols = polygon(points[:, 1], points[:, 0], shape=size)
        inside = np.zeros(size, dtype=bool)
        inside[rows, cols] = True
        ink ^= inside
    return ink


def jitter_paths(paths: list[np.ndarray], sigma: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Every control point moved by N(0, sigma²) pixels; the end of a segment and the start of the next
    stay one point, so outlines stay closed."""
    out = []
    for segments in paths:
        ends = rng.normal(0.0, sigma, (len(segments), 2))  # one shared offset per joint
        controls = rng.normal(0.0, sigma, (len(segments), 2, 2))
        moved = segments.copy()
        moved[:, 3] += ends
        moved[:, 0] += np.roll(ends, 1, axis=0)
        moved[:, 1:3] += controls
        out.append(moved)
    return out


def to_svg(paths: list[np.ndarray], size: tuple[int, int]) -> str:
    """The outlines as an SVG document (black, even-odd), as potrace would write them."""
    d = " ".join(
        "M {:.2f} {:.2f} ".format(*s[0, 0])
        + " ".join("C {:.2f} {:.2f} {:.2f} {:.2f} {:.2f} {:.2f}".format(*seg[1:].ravel()) for seg in s)
        + " Z"
        for s in paths
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size[1]}" height="{size[0]}" '
        f'viewBox="0 0 {size[1]} {size[0]}"><rect width="100%" height="100%" fill="white"/>'
        f'<path d="{d}" fill="black" fill-rule="evenodd"/></svg>\n'
    )
