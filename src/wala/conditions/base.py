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

    @property
    def conditional(self) -> bool:
        return self.encoder is not None

    def recommended(self, c: ConditionConfig, official: bool = False) -> tuple[int, float]:
        """(steps, guidance) the official README gives for this condition and model (per number of
        files for depth maps); for a released model, the guidance its run.py really applies (3.0 for
        point cloud and voxel: it ignores --scale, OFFICIAL.md §6)."""
        steps, guidance = self.steps, self.guidance
        for files, file_steps, file_guidance in self.per_files:
            if files == self.files(c):
                steps, guidance = file_steps, file_guidance
        return steps, self.official_guidance if official and self.official_guidance else guidance
