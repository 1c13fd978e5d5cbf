"""Conditions: one `ConditionKind` per condition (its file, its encoder, its training data, its
sampling defaults), found by name in `CONDITIONS`. A new condition is one new module registered here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wala.conditions.base import ConditionKind
from wala.conditions.depth import DEPTH
from wala.conditions.image import IMAGE
from wala.conditions.pointcloud import POINTCLOUD
from wala.conditions.sketch import SKETCH
from wala.conditions.text import TEXT
from wala.conditions.views import VIEWS
from wala.conditions.voxel import VOXEL
from wala.errors import WalaError

if TYPE_CHECKING:
    from wala.config import DiffusionConfig

UNCONDITIONAL = ConditionKind(name="none", flag="--unconditional", steps=1000, guidance=1.0)

CONDITIONS: dict[str, ConditionKind] = {
    kind.name: kind for kind in (UNCONDITIONAL, POINTCLOUD, VOXEL, IMAGE, SKETCH, DEPTH, VIEWS, TEXT)
}


def condition_kind(name: str) -> ConditionKind:
    if name not in CONDITIONS:
        raise WalaError(f"unknown condition '{name}' (known: {', '.join(CONDITIONS)})")
    return CONDITIONS[name]


def recommended_sampling(config: DiffusionConfig, official: bool = False) -> tuple[int, float]:
    """(steps, guidance) a generator samples with when none are given: what it records itself
    (`model.sampling`, e.g. `wala convert --steps --scale`), else its condition's recommendation."""
    steps, guidance = condition_kind(config.condition.kind).recommended(config.condition, official)
    own = config.sampling
    return own.steps or steps, guidance if own.guidance is None else float(own.guidance)


__all__ = ["CONDITIONS", "ConditionKind", "UNCONDITIONAL", "condition_kind", "recommended_sampling"]
