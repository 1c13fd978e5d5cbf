"""Sketches of meshes, the paper's six techniques (its supplement D), each over rendered views:

- `lineart`: silhouettes, creases (140°) and borders of the mesh, hidden lines removed, 2 px
  (`lineart.py`; the paper used Blender's Grease Pencil Line Art with those settings);
- `canny`: Canny edges of the depth map (blur 1, sigma 1, 5 % thresholds), traced by potrace
  (turd size 10, opttolerance 1) and filled back;
- `hed`: the HED edge map of the depth map, as gray strokes;
- `hed_potrace`: the HED map at 0.5, traced by potrace;
- `scribble`: ControlNet's HED "scribble" filter (thinned, thickened, binarized);
- `clipasso`: 16 optimized Bézier strokes drawing the shaded RGB render (CLIPasso-style: see strokes.py);
- `grease_pencil`: the first technique as the paper made it, Blender's Line Art rendered headless
  (`greasepencil.py`); only when asked for by name, since it needs a `blender` ("all" is the six above).

A sketch is a (S, S) uint8 image, black lines on white; traced techniques also keep their outlines
(vector paths: SVG output and control-point noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wala.errors import WalaError

TECHNIQUES = ("lineart", "canny", "hed", "hed_potrace", "scribble", "clipasso")
NEEDS_HED = ("hed", "hed_potrace", "scribble", "clipasso")
NEEDS_BLENDER = ("grease_pencil",)  # known, but not in TECHNIQUES: "all" must not need Blender
KNOWN = TECHNIQUES + NEEDS_BLENDER


@dataclass
class Sketch:
    technique: str
    image: np.ndarray  # (S, S) uint8, 255 paper, 0 ink
    paths: list[np.ndarray] | None = field(default=None)  # traced outlines, (Si, 4, 2) Béziers each
    iterations: int = 0  # clipasso: optimization steps run


def parse_techniques(spec: str, hed_weights: str | None = None) -> list[str]:
    """ "lineart,canny" or "all" → technique names; the HED weights (`hed_weights` or the default) must
    exist when one needs them: refused before hours of work, not at the first shape."""
    names = list(TECHNIQUES) if spec.strip() == "all" else [t.strip() for t in spec.split(",") if t.strip()]
    unknown = [t for t in names if t not in KNOWN]
    if unknown or not names:
        raise WalaError(
            f"unknown sketch technique '{unknown[0] if unknown else spec}' (known: {', '.join(KNOWN)}, all)"
        )
    if any(t in NEEDS_BLENDER for t in names):
        from wala.sketch.greasepencil import blender_binary

        blender_binary()  # a one-line error naming the install before any work
    if any(t in NEEDS_HED for t in names):
        from wala.sketch.hed import weights_file

        try:
            weights_file(hed_weights)
        except WalaError as exc:
            raise WalaError(f"{exc} (needed by {', '.join(t for t in names if t in NEEDS_HED)})") from None
    return names


def ink_to_image(ink: np.ndarray) -> np.ndarray:
    """Ink coverage (bool, or float in [0, 1]) → uint8 black-on-white."""
    return np.rint(255.0 * (1.0 - np.clip(np.asarray(ink, dtype=np.float64), 0, 1))).astype(np.uint8)


class Sketcher:
    """Draws sketches of rendered views (`wala.render.views.ViewRender`); loads HED once, when a
    technique needs it."""

    def __init__(
        self, hed_weights: str | None = None, clipasso_iterations: int | None = None, clipasso_canvas: int | None = None
    ):
        self._hed, self.hed_weights, self.clipasso_iterations = None, hed_weights, clipasso_iterations
        self.clipasso_canvas = clipasso_canvas  # the optimized drawing's size (default CLIPasso's 224)
        self._last_map: tuple[bytes, np.ndarray] | None = None  # three techniques read one view's HED map

    def forget(self) -> None:
        """Drops the cached HED map (timings that must not share it)."""
        self._last_map = None

    @property
    def hed(self):
        if self._hed is None:
            from wala.sketch.hed import load_hed

            self._hed = load_hed(self.hed_weights)
        return self._hed

    def _hed_map(self, gray_or_rgb: np.ndarray) -> np.ndarray:
        from wala.sketch.hed import hed_edges

        key = gray_or_rgb.tobytes()
        if self._last_map is None or self._last_map[0] != key:
            rgb = np.repeat(gray_or_rgb[..., None], 3, axis=2) if gray_or_rgb.ndim == 2 else gray_or_rgb
            self._last_map = key, hed_edges(self.hed, rgb)
        return self._last_map[1]

    def draw(self, technique: str, mesh, view, seed: int = 0) -> Sketch:
        """One sketch of `mesh` (normalized frame) as seen in `view`."""
        from wala.render.views import CAMERA_DISTANCE, FIELD_OF_VIEW
        from wala.sketch import edges
        from wala.sketch.trace import fill_paths, trace

        size = view.depth.shape
        if technique == "lineart":
            from wala.sketch.lineart import draw_lineart

            ink = draw_lineart(
                mesh, view.pose.azimuth, view.pose.elevation, view.metric, CAMERA_DISTANCE, FIELD_OF_VIEW
            )
            return Sketch(technique, ink_to_image(ink))
        if technique == "grease_pencil":
            from wala.sketch.greasepencil import grease_pencil_lines

            (image,) = grease_pencil_lines(
                mesh, [(view.pose.azimuth, view.pose.elevation)], size[0], CAMERA_DISTANCE, FIELD_OF_VIEW
            )
            return Sketch(technique, image)
        if technique == "canny":
            paths = trace(edges.canny(view.depth))
            return Sketch(technique, ink_to_image(fill_paths(paths, size)), paths)
        if technique == "clipasso":
            from wala.sketch.strokes import CANVAS, MAX_ITERATIONS, clipasso_style

            iterations = self.clipasso_iterations or MAX_ITERATIONS
            ink, ran = clipasso_style(
                self.hed,
                view.rgb,
                self._hed_map(view.rgb),
                seed=seed,
                max_iterations=iterations,
                size=self.clipasso_canvas or CANVAS,
            )
            image = np.asarray(_resize(ink_to_image(ink), size))
            return Sketch(technique, image, iterations=ran)
        hed = self._hed_map(view.depth)
        if technique == "hed":
            return Sketch(technique, ink_to_image(hed))
        if technique == "hed_potrace":
            paths = trace(hed > 0.5)
            return Sketch(technique, ink_to_image(fill_paths(paths, size)), paths)
        if technique == "scribble":
            return Sketch(technique, ink_to_image(edges.scribble(hed)))
        raise WalaError(f"unknown sketch technique '{technique}' (known: {', '.join(KNOWN)})")


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
