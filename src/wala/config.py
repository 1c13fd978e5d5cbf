"""Configs are frozen dataclasses; this module is the one place they meet YAML/JSON.

Defaults live on the dataclasses themselves (numbers from DESIGN.md); files only override.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml

from wala.errors import WalaError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RepresentationConfig:
    """Mesh → TSDF → wavelet tree. Grid over [-1, 1]³ sampled at cell centers (see wala.sdf.grid)."""

    resolution: int = 256          # N of the N³ TSDF grid
    truncation: float = 0.1        # |TSDF| is clipped here, in normalized units (inferred in DESIGN.md)
    normalize_bound: float = 0.9   # the longest bbox side spans [-bound, bound]
    wavelet: str = "bior6.8"
    levels: int = 3                # J
    mode: str = "zero"
    kept_detail_levels: int = 2    # D0 and D1 kept, D2 dropped
    importance_ratio: float = 1 / 32  # |c| > subband max × ratio is "important"
    d1_pad_at_end: bool = True     # D1 76→92 zero padding side (inferred: packing needs 2×46)


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], values: dict) -> T:
    """Builds `cls` from `values`, refusing unknown keys so a typo never passes silently."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise WalaError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**values)


def load_config(cls: type[T], path: str | Path) -> T:
    """Reads a YAML or JSON file into `cls`; missing fields keep their defaults."""
    path = Path(path)
    if not path.is_file():
        raise WalaError(f"config file not found: {path}")
    text = path.read_text()
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise WalaError(f"config file {path} is not valid {path.suffix[1:] or 'yaml'}: {exc}") from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise WalaError(f"config file {path} must hold a mapping, got {type(values).__name__}")
    return from_dict(cls, values)


def save_config(config: Any, path: str | Path) -> None:
    path = Path(path)
    values = to_dict(config)
    if path.suffix == ".json":
        path.write_text(json.dumps(values, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(values, sort_keys=False))
