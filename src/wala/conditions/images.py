"""What the image-family conditions share: files → 224² crops → DINOv2 tokens, one image or several.

One image (single view, sketch, one depth map): alpha dropped, as the official run.py reads them; the
camera row, when the model has one, is row 0 whatever the file is called (the official img_idx is [0]).
Several (multi-view RGB, 4 or 6 depth maps): the model's `training_views`, in its order; files are
matched to views by the number in their names (`003.png` → 3) and may be given in any order (the
official code takes them in command-line order); grayscale+alpha images go over white.
"""

from __future__ import annotations

import numpy as np
import torch

from wala.conditions.base import ConditionKind
from wala.conditions.dinov2 import GRID, ImageEncoder
from wala.config import ConditionConfig
from wala.errors import WalaError
from wala.io.images import IMAGE_FORMATS


def image_count(c: ConditionConfig) -> int:
    return max(1, len(c.training_views))


def _multi(c: ConditionConfig) -> bool:
    return len(c.training_views) > 0


def read_condition_images(sources: list, c: ConditionConfig, composite_alpha: bool = False) -> np.ndarray:
    """(224, 224, 3) uint8 for one image, (V, 224, 224, 3) in the model's view order for several.
    Sources are files, Pillow images or uint8 arrays; several files are ordered by the view ids in
    their names, several images or arrays must come in the model's view order."""
    import os

    from wala.io.images import order_views, read_image

    if not _multi(c):
        return read_image(sources[0], "white" if composite_alpha else "drop")
    alpha = "white" if composite_alpha else "la-white"
    if all(isinstance(s, (str, os.PathLike)) for s in sources):
        sources = order_views([str(s) for s in sources], c.training_views)
    return np.stack([read_image(s, alpha) for s in sources])


def images_input(images: np.ndarray, c: ConditionConfig) -> torch.Tensor:
    """uint8 crops → the model input (1, 3, 224, 224) or (1, V, 3, 224, 224) in [−1, 1]."""
    from wala.io.images import check_images, image_tensor

    return image_tensor(check_images(images, len(c.training_views) if _multi(c) else None))[None]


def _views_rule(name: str, views: str):
    def check(c: ConditionConfig) -> None:
        if views == "one" and _multi(c):
            raise WalaError(f"a '{name}' condition is one image; training_views must be empty")
        if views == "several" and not _multi(c):
            raise WalaError(f"a '{name}' condition needs the model's training_views (its view order and camera rows)")

    return check


def image_signature(images: np.ndarray) -> np.ndarray:
    """Stored uint8 images (…, H, W[, 3]) → gray (N, H/4, W/4) in [0, 1]: what retrieval compares."""
    import torch.nn.functional as F

    gray = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)
    gray = gray.reshape(-1, *gray.shape[-3 if gray.shape[-1] == 3 else -2 :])  # (N, H, W[, 3])
    if gray.dim() == 4:
        gray = gray.mean(-1)
    return F.avg_pool2d(gray[:, None], 4)[:, 0].numpy()


def image_condition(views: str, **record) -> ConditionKind:
    """A ConditionKind read from image files and encoded by DINOv2 (`clip_model.dinov2.*`);
    `views`: "one" image, "several" (multi-view) or "either"."""
    return ConditionKind(
        encoder=ImageEncoder,
        module="clip_model",
        tokens=lambda c: GRID * GRID,
        files=image_count,
        read=read_condition_images,
        to_input=images_input,
        formats=IMAGE_FORMATS,
        check=_views_rule(record["name"], views),
        read_values=True,
        signature=image_signature,
        distance=lambda a, b: float(np.mean((a - b) ** 2)),
        **record,
    )


# ---- training on prepared renders (`wala prep --views …`): stored arrays → model inputs ----

IMAGE_ARRAYS = ("rgb", "depth", "sketch")  # what wala.data.renders stores per view


def stored_views(c: ConditionConfig, names: list[str], array: str) -> list[int] | None:
    """Which of the prepared views (their names, in stored order) a model trains on: its
    training_views in its order for multi-view models, every view (None) for one-image models."""
    if not names:
        raise WalaError(f"the data has no '{array}' renders: prepare it with `wala prep … --views …`")
    if not _multi(c):
        return None
    missing = [v for v in c.training_views if str(v) not in names]
    if missing:
        raise WalaError(
            f"the model reads views {list(c.training_views)} but the data has {names}: "
            f"prepare it with `wala prep … --views {','.join(map(str, c.training_views))}`"
        )
    return [names.index(str(v)) for v in c.training_views]


def one_per_sample(stored: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(B, N, …) → (B, …): a random one of the N per sample (the first without a generator)."""
    if generator is None:
        return stored[:, 0]
    pick = torch.randint(stored.shape[1], (len(stored),), generator=generator).to(stored.device)
    return stored[torch.arange(len(stored), device=stored.device), pick]


def rgb_training_input(stored: torch.Tensor, c: ConditionConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Stored renders (B, V, 224, 224, 3) uint8 → (B, 3, 224, 224), one random view per sample, or
    (B, V, 3, 224, 224) for a multi-view model (the dataset already picked its views)."""
    from wala.io.images import image_tensor

    return image_tensor(stored if _multi(c) else one_per_sample(stored, generator))


def gray_training_input(stored: torch.Tensor, c: ConditionConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Stored gray images (B, V, 224, 224) (depth maps) → as rgb_training_input, gray in all three channels."""
    return rgb_training_input(stored[..., None].expand(*stored.shape, 3), c, generator)
