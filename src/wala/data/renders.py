"""The image conditions' training data, made at prep time (`wala prep --views … --sketches …`):
shaded RGB renders and 8-bit depth maps at the chosen views (wala.render.views) and sketches of them
(wala.sketch), each as the released models see an image file: the 224² crop of the 256² render
(`wala.io.images.read_image`). Stored per shape as `rgb` (V, 224, 224, 3), `depth` (V, 224, 224) and
`sketch` (V, T, 224, 224) uint8, views in the order given."""

from __future__ import annotations

import numpy as np

from wala.io.images import read_image  # a render (S, S[, 3]) uint8 → the (224, 224, 3) crop models read
from wala.render.views import Pose, render_views


class ViewMaker:
    """One GL context and one sketcher for a worker's shapes."""

    def __init__(self, poses: list[Pose], techniques: list[str]):
        from wala.render.shaded import MeshRenderer
        from wala.sketch import Sketcher

        self.poses, self.techniques = poses, techniques
        self.renderer = MeshRenderer()
        self.sketcher = Sketcher()

    def arrays(self, mesh, seed: int) -> dict[str, np.ndarray]:
        views = render_views(mesh, self.poses, renderer=self.renderer)
        out = {
            "rgb": np.stack([read_image(v.rgb) for v in views]),
            "depth": np.stack([read_image(v.depth)[..., 0] for v in views]),
        }
        if self.techniques:
            out["sketch"] = np.stack(
                [
                    np.stack(
                        [read_image(self.sketcher.draw(t, mesh, v, seed + k).image)[..., 0] for t in self.techniques]
                    )
                    for k, v in enumerate(views)
                ]
            )
        return out

    def release(self) -> None:
        self.renderer.release()
