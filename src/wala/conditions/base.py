"""What a condition is to wala: one record per kind, so nothing else branches on its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from wala.config import ConditionConfig


@dataclass(frozen=True)
class ConditionKind:
    name: str  # the ConditionConfig.kind value
    flag: str  # how `wala generate` takes it
    steps: int  # recommended sampling steps (the official README's)
    guidance: float  # recommended guidance scale
    array: str | None = None  # its array in prepared data (`wala prep`)
    # the encoder: ConditionConfig → module mapping a model input (B, …) to tokens (B, L, width)
    encoder: Callable[[ConditionConfig], nn.Module] | None = None
    module: str = "encoder"  # the encoder's name in the model (its state-dict prefix)
    tokens: Callable[[ConditionConfig], int] | None = None  # L, for the position table
    files: Callable[[ConditionConfig], int] = lambda c: 1  # how many files one condition is
    # its tokens lie on a cube over the shape, x-major (what `denoiser.aligned_context` places)
    placed: Callable[[ConditionConfig], bool] = lambda c: False
    # (its config, its encoder's state, another kind) → that kind's encoder state from these weights, for
    # a generator fine-tuned on the other kind (`train.init_from`); None: they do not carry over
    encoder_as: Callable[[ConditionConfig, dict, ConditionKind], dict | None] = lambda c, state, kind: None
    check: Callable[[ConditionConfig], None] = lambda c: None  # raises WalaError for a config it cannot run
    # a user's files (as many as `files`) → checked array; `composite_alpha` puts transparent images over white
    read: Callable[..., np.ndarray] | None = None
    to_input: Callable[[np.ndarray, ConditionConfig], torch.Tensor] | None = None  # array → (1, …) model input
    derive: Callable[[Any, np.ndarray, int], np.ndarray] | None = None  # (normalized mesh, TSDF, seed) → stored array
    # training: a batch of stored arrays (B, …) → model input, with random choices from the generator
    training_input: Callable[[torch.Tensor, ConditionConfig, torch.Generator | None], torch.Tensor] | None = None
    official_guidance: float | None = None  # what the official run.py really uses, when it ignores --scale
    aliases: tuple[str, ...] = ()  # other spellings of `flag` (the official CLI's)
    help: str = ""  # what files `flag` takes
    metavar: str = "FILE"  # what `flag` takes, in `wala generate --help`
    formats: tuple[str, ...] = ()  # file suffixes `read` takes (a batch folder's inputs)
    # (files, steps, guidance): recommendations that depend on the number of files (depth maps)
    per_files: tuple[tuple[int, int, float], ...] = ()
    # -- a user's condition --
    read_values: bool = False  # `read` also takes in-memory values (Pillow images, uint8 arrays, text), not only files
    joined: bool = False  # the flag's words are one value (a caption), not several files
    # a world-frame array → (it in the ±0.9 cube, the Normalization back): `--normalize` (point clouds)
    normalize: Callable[[np.ndarray], tuple[np.ndarray, Any]] | None = None
    official_twin: str | None = None  # another kind a released model of this kind reads the same way (SV ↔ SK)
    drawn_as: str | None = None  # what a text-to-views model draws for it: "depth" maps or "rgb" views
    # -- scoring against held-out prepared shapes and reference meshes (wala.eval) --
    per_technique: bool = False  # stored once per view and drawing technique (sketches)
    held_out: Callable[[np.ndarray, ConditionConfig], np.ndarray] = lambda stored, c: stored  # → what a model reads
    # the 16³ occupancy of a condition, for the paper's upsampling baselines (None: they cannot run)
    occupancy: Callable[[np.ndarray, ConditionConfig], np.ndarray] | None = None
    # (normalized mesh, config, TSDF resolution, seed) → the condition a model of that config reads (`wala bench`)
    from_mesh: Callable[[Any, ConditionConfig, int, int], np.ndarray] | None = None
    # retrieval by condition: a held-out array → its signature, and the distance between two signatures
    signature: Callable[[np.ndarray], Any] | None = None
    distance: Callable[[Any, Any], float] | None = None

    @property
    def conditional(self) -> bool:
        return self.encoder is not None

    @property
    def benchmarked(self) -> bool:
        """`wala bench` can derive it from a mesh and run the upsampling baselines beside a model."""
        return self.from_mesh is not None and self.occupancy is not None

    @property
    def article(self) -> str:
        """ "a point cloud condition", "an image condition", "no condition" (for messages)."""
        if not self.conditional:
            return "no condition"
        return f"{'an' if self.name[0] in 'aeiou' else 'a'} {self.name} condition"

    def recommended(self, c: ConditionConfig, official: bool = False) -> tuple[int, float]:
        """(steps, guidance) the official README gives for this condition and model (per number of
        files for depth maps); for a released model, the guidance its run.py really applies (3.0 for
        point cloud and voxel: it ignores --scale, OFFICIAL.md §6)."""
        steps, guidance = self.steps, self.guidance
        for files, file_steps, file_guidance in self.per_files:
            if files == self.files(c):
                steps, guidance = file_steps, file_guidance
        return steps, self.official_guidance if official and self.official_guidance else guidance
