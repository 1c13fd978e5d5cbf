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


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """The wavelet VQ-VAE. Defaults are the paper's: 12,872,004 parameters."""

    in_channels: int = 64            # the packed wavelet tree
    width: int = 128
    latent_channels: int = 4
    blocks: tuple[int, ...] = (2, 2, 3)  # ResBlocks at 46³, 23³, 12³ (decoder mirrors)
    groups: int = 32                 # GroupNorm groups
    codebook_size: int = 1024
    commitment: float = 0.25         # β
    dead_code_steps: int = 200       # a code unused this many steps is restarted (0: never)


@dataclasses.dataclass(frozen=True)
class ConditionConfig:
    """What the denoiser is conditioned on, and how the condition is encoded into tokens."""

    kind: str = "none"               # "none" (unconditional), "pointcloud" or "voxel"
    points: int = 2500               # pointcloud: points drawn per shape per training step
    tokens: int = 256                # pointcloud: learned inducing queries = condition tokens
    pointnet: tuple[int, ...] = (64, 256, 1024)  # pointcloud: hidden widths of the per-point MLP
    voxel_size: int = 16             # voxel: grid side; pooled once to (size/2)³ tokens
    voxel_channels: int = 128        # voxel: conv width of the encoder's ResBlocks
    drop: float = 0.1                # training: probability a shape's condition is zeroed (for CFG)


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """The latent denoiser. Defaults are the paper's largest: U-ViT, 1152 wide, 32 blocks, 16 heads."""

    arch: str = "uvit"               # "uvit" or "dit"
    latent_channels: int = 4
    latent_size: int = 12            # m of the (4, m, m, m) latent
    width: int = 1152                # attention hidden size
    depth: int = 32                  # attention blocks
    heads: int = 16
    mlp_ratio: float = 4.0
    res_width: int = 256             # U-ViT: conv width of the ResBlocks around the attention stack
    res_blocks: int = 2              # U-ViT: ResBlocks before and after the attention stack
    groups: int = 32                 # GroupNorm groups in the ResBlocks
    timesteps: int = 1000            # cosine schedule, x0 prediction
    latent: str = "pre"              # train on "pre"- or "post"-quantization latents
    latent_mean: tuple[float, ...] = ()  # per channel, measured on the training latents
    latent_std: tuple[float, ...] = ()
    checkpointing: bool = False      # gradient checkpointing of the attention blocks (large models)
    condition: ConditionConfig = dataclasses.field(default_factory=ConditionConfig)


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], values: dict) -> T:
    """Builds `cls` from `values`, refusing unknown keys so a typo never passes silently."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise WalaError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    converted = {}
    for key, value in values.items():
        field = fields[key]
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = from_dict(type(default), value)  # nested config
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)  # YAML/JSON lists back to the frozen tuples
        else:
            value = _scalar(cls.__name__, key, default, value)
        converted[key] = value
    return cls(**converted)


def _scalar(owner: str, key: str, default: Any, value: Any) -> Any:
    """A number field's value as its type. YAML reads `1e-4` (no dot) as a string; a learning
    rate written that way must not reach the optimizer as text."""
    if isinstance(default, bool) or default is None or not isinstance(default, (int, float)):
        return value
    if isinstance(default, float) and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WalaError(f"{owner}.{key} must be {'a number' if isinstance(default, float) else 'an integer'}, "
                    f"got {value!r}")


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] = ()) -> T:
    """Reads a YAML or JSON file into `cls` (None: defaults only), then applies `overrides` such
    as "train.steps=10" (values parsed as YAML); missing fields keep their defaults."""
    values = _read_mapping(path) if path else {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise WalaError(f"override must look like key.sub=value, got '{item}'")
        target = values
        *parents, last = key.split(".")
        for name in parents:
            target = target.setdefault(name, {})
            if not isinstance(target, dict):
                raise WalaError(f"override {key}: '{name}' is not a section")
        target[last] = yaml.safe_load(raw)
    return from_dict(cls, values)


def _read_mapping(path: str | Path) -> dict:
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
    return values


def save_config(config: Any, path: str | Path) -> None:
    path = Path(path)
    values = to_dict(config)
    if path.suffix == ".json":
        path.write_text(json.dumps(values, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(values, sort_keys=False))
