"""Conditions: one `ConditionKind` per condition (its file, its encoder, its training data, its
sampling defaults), found by name in `CONDITIONS`. A new condition is one new module registered here."""

from __future__ import annotations

from wala.conditions.base import ConditionKind
from wala.conditions.depth import DEPTH
from wala.conditions.image import IMAGE
from wala.conditions.pointcloud import POINTCLOUD
from wala.conditions.sketch import SKETCH
from wala.conditions.text import TEXT
from wala.conditions.views import VIEWS
from wala.conditions.voxel import VOXEL
from wala.errors import WalaError

UNCONDITIONAL = ConditionKind(name="none", flag="--unconditional", steps=1000, guidance=1.0)

CONDITIONS: dict[str, ConditionKind] = {
    kind.name: kind for kind in (UNCONDITIONAL, POINTCLOUD, VOXEL, IMAGE, SKETCH, DEPTH, VIEWS, TEXT)
}


def condition_kind(name: str) -> ConditionKind:
    if name not in CONDITIONS:
        raise WalaError(f"unknown condition '{name}' (known: {', '.join(CONDITIONS)})")
    return CONDITIONS[name]


__all__ = ["CONDITIONS", "ConditionKind", "UNCONDITIONAL", "condition_kind"]
