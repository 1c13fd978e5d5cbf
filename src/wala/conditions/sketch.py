"""Sketch → shape (WaLa-SK): one line drawing, read exactly like a single-view image (the released
sketch and single-view checkpoints have the same args; only their training data differs).
README: 5 steps, guidance 1.8. Trains on `wala prep --sketches` drawings (wala.sketch): a random
view and technique per sample and step, then the paper's augmentation (affine jitter, cage warp);
the paper fine-tunes it from the single-view model (`train.init_from`)."""

import torch

from wala.conditions.images import image_condition
from wala.config import ConditionConfig


def _training_input(stored: torch.Tensor, c: ConditionConfig, generator: torch.Generator | None) -> torch.Tensor:
    """(B, V, T, 224, 224) uint8 drawings → (B, 3, 224, 224), augmented when drawn at random."""
    from wala.conditions.images import gray_training_input
    from wala.sketch.augment import augment_sketches

    images = gray_training_input(stored.flatten(1, 2), c, generator)
    return images if generator is None else augment_sketches(images, generator)


SKETCH = image_condition(
    views="one",
    name="sketch",
    flag="--sketch",
    steps=5,
    guidance=1.8,
    array="sketch",
    official_twin="image",
    per_technique=True,
    training_input=_training_input,
    help="a line drawing (PNG/JPEG…)",
)
