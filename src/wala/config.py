"""Configs are frozen dataclasses; this module is the one place they meet YAML/JSON.

Defaults live on the dataclasses themselves (numbers from DESIGN.md); files only override.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, TypeVar

import yaml

from wala.errors import WalaError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RepresentationConfig:
    """Mesh → TSDF → wavelet tree. Grid over [-1, 1]³ sampled at cell centers (see wala.sdf.grid)."""

    resolution: int = 256  # N of the N³ TSDF grid
    truncation: float = 0.1  # |TSDF| is clipped here, in normalized units (inferred in DESIGN.md)
    normalize_bound: float = 0.9  # the longest bbox side spans [-bound, bound]
    wavelet: str = "bior6.8"
    levels: int = 3  # J
    mode: str = "zero"
    kept_detail_levels: int = 2  # D0 and D1 kept, D2 dropped
    importance_ratio: float = 1 / 32  # |c| > subband max × ratio is "important"


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """The wavelet VQ-VAE. Defaults are the released model's: 12,872,004 parameters."""

    in_channels: int = 64  # the packed wavelet tree
    width: int = 128
    latent_channels: int = 4  # e_dim
    # ResBlocks per stage at 46³, 23³, 12³ (+ res_out / res_in; decoder mirrors). Each stage after the
    # first halves the grid, so two stages give a 23³ latent (11³ at 64³) instead of 12³ (6³).
    blocks: tuple[int, ...] = (2, 2, 2)
    groups: int = 32  # GroupNorm groups
    codebook_size: int = 1024  # n_e
    commitment: float = 0.25  # β
    dead_code_steps: int = 200  # training: a code unused this many steps is restarted (0: never)

    def __post_init__(self):
        if len(self.blocks) not in (2, 3):
            raise WalaError(f"AutoencoderConfig.blocks needs 2 or 3 stages (46³, 23³[, 12³]), got {list(self.blocks)}")

    def sizes(self, packed: int) -> list[int]:
        """Spatial sizes through the encoder for a packed tree of `packed`³, finest first: each stage after
        the first is an AvgPool3d(3, 2, 1), so 46 → [46, 23, 12] (22 → [22, 11] with two stages)."""
        sizes = [packed]
        for _ in self.blocks[1:]:
            sizes.append((sizes[-1] - 1) // 2 + 1)
        return sizes


@dataclasses.dataclass(frozen=True)
class ConditionConfig:
    """What the generator is conditioned on and how the condition becomes tokens (B, L, width).
    `kind` names an entry of wala.conditions.CONDITIONS."""

    kind: str = "pointcloud"  # "none", "pointcloud", "voxel", "image", "sketch", "depth", "views"
    width: int = 1152  # token width D (pc_output_dim / voxel_context_dim / the ViT's width)
    tokens: int = 256  # pointcloud: learned inducing queries (num_inds)
    encoder: str = "large"  # pointcloud: "large" (PointNet_Large), "simple" (PointNet_Simple) or "grid" (ours)
    encoder_width: int = 1024  # pointcloud: per-point feature width (pc_dims)
    voxel_size: int = 16  # voxel: grid side, pooled once to (size/2)³ tokens
    voxel_hidden: int = 128  # voxel: encoder channels (the released 128; less for CPU-sized models)
    mapping_layers: int = 1  # [Linear(D, D), SiLU] layers applied to the tokens
    vit_depth: int = 24  # images: DINOv2 blocks (ViT-L/14 24, ViT-g/14 40)
    vit_heads: int = 16  # images: DINOv2 heads (ViT-L 16, ViT-g 24)
    vit_ffn: str = "mlp"  # images: DINOv2 feed-forward, "mlp" (GELU) or "swiglu" (ViT-g)
    camera_index: bool = False  # add a learned camera row per view (image conditions)
    training_views: tuple[int, ...] = ()  # multi-view: the views the model was trained on, in order
    max_views: int = 55  # camera rows when training_views is empty
    drop: float = 0.1  # training: probability a condition is zeroed (dp_cond); 0: no guidance
    points: int = 2500  # pointcloud training: points drawn per shape per step

    def __post_init__(self):
        if self.vit_ffn not in ("mlp", "swiglu"):
            raise WalaError(f"unknown vit_ffn '{self.vit_ffn}' (known: mlp, swiglu)")


@dataclasses.dataclass(frozen=True)
class DenoiserConfig:
    """The latent denoiser. Defaults are the released ~1B U-ViT (OFFICIAL.md §4.3)."""

    arch: str = "uvit"  # "uvit" (Latent_UVIT) or "dit" (latent_dit)
    latent_channels: int = 4
    latent_size: int = 12  # grid_size: G of the (e, G, G, G) latent
    patch: int = 1  # att_patch_size
    width: int = 1152  # att_hidden_size
    depth: int = 32  # transformer_num_blocks
    heads: int = 16
    cross: bool = True  # cross_dit blocks (cross-attention to the condition) or plain dit
    time_condition: bool = True  # add_condition_time_ch: a projection of the condition joins t
    registers: int = 4  # transformer_add_num_register
    res_width: int = 128  # U-ViT: unet_model_channels
    res_blocks: int = 3  # U-ViT: ResBlocks before and after the attention stack
    res_condition: int = 0  # U-ViT: add_condition_res_ch (0: none)
    skip_ratio: int = 0  # U-ViT: learnable_skip_r (0: plain averaged skip)
    fixed_position: bool = False  # U-ViT: with_fix_pos (sin-cos table instead of a learned one)
    # ours: condition tokens on a grid (voxels, grid point clouds) also added to the latent tokens at
    # their place (wala.diffusion.denoisers); zero at the start, so a trained model may grow it
    aligned_context: bool = False
    groups: int = 32  # GroupNorm groups in the ResBlocks
    checkpointing: bool = False  # gradient checkpointing of the attention blocks (large models)

    def __post_init__(self):
        if self.arch not in ("uvit", "dit"):
            raise WalaError(f"unknown denoiser '{self.arch}' (known: uvit, dit)")
        if self.latent_size % self.patch:
            raise WalaError(f"latent size {self.latent_size} is not a multiple of the patch {self.patch}")
        if self.width % self.heads:
            raise WalaError(f"width {self.width} is not a multiple of heads {self.heads}")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """The Gaussian diffusion (OFFICIAL.md §6)."""

    betas: str = "cosine"  # "cosine" or "linear"
    timesteps: int = 1000
    scale_ratio: float = 1.0  # linear betas: scaled by 1000/T × ratio
    prediction: str = "x0"  # "x0" (START_X), "eps" (EPSILON) or "previous" (PREVIOUS_X)
    variance: str = "fixed_small"  # "fixed_small" or "fixed_large"

    def __post_init__(self):
        if not 1 <= self.timesteps <= 10_000:  # the schedule is built at once: bounded
            raise WalaError(f"schedule timesteps must be in 1…10000, got {self.timesteps}")
        for name, value, known in (
            ("betas", self.betas, ("cosine", "linear")),
            ("prediction", self.prediction, ("x0", "eps", "previous")),
            ("variance", self.variance, ("fixed_small", "fixed_large")),
        ):
            if value not in known:
                raise WalaError(f"unknown schedule {name} '{value}' (known: {', '.join(known)})")


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """The sampling a trained generator recommends (chosen on held-out shapes); 0 and None leave its
    condition's recommendation (the official README's) in place. Explicit --steps / --scale still win."""

    steps: int = 0
    guidance: float | None = None

    def __post_init__(self):
        if isinstance(self.guidance, str):  # YAML reads 1e-1 (no dot) as text
            try:
                object.__setattr__(self, "guidance", float(self.guidance))
            except ValueError:
                pass
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise WalaError(f"sampling steps must be a whole number ≥ 0 (0: the condition's), got {self.steps!r}")
        number = isinstance(self.guidance, (int, float)) and not isinstance(self.guidance, bool)
        if self.guidance is not None and not (number and math.isfinite(self.guidance)):
            raise WalaError(f"sampling guidance must be a finite number, got {self.guidance!r}")


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """A generator: condition encoder + denoiser + schedule, in the latent space of its autoencoder
    (carried inside the model, so a generator file is self-contained)."""

    denoiser: DenoiserConfig = dataclasses.field(default_factory=DenoiserConfig)
    condition: ConditionConfig = dataclasses.field(default_factory=ConditionConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    autoencoder: AutoencoderConfig = dataclasses.field(default_factory=AutoencoderConfig)
    resolution: int = 256  # TSDF grid the autoencoder's trees come from
    latent: str = "pre"  # train on "pre"- or "post"-quantization latents
    latent_mean: tuple[float, ...] = ()  # per channel; empty = identity (the released models)
    latent_std: tuple[float, ...] = ()
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)

    def __post_init__(self):
        if self.latent not in ("pre", "post"):
            raise WalaError(f"latent must be 'pre' or 'post', got '{self.latent}'")
        if self.sampling.steps > self.schedule.timesteps:
            raise WalaError(
                f"sampling steps {self.sampling.steps}: the schedule has {self.schedule.timesteps} timesteps"
            )


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
        elif dataclasses.is_dataclass(default) and not isinstance(value, type(default)):
            raise WalaError(f"{cls.__name__}.{key} must be a mapping of {type(default).__name__} fields, got {value!r}")
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
    raise WalaError(
        f"{owner}.{key} must be {'a number' if isinstance(default, float) else 'an integer'}, got {value!r}"
    )


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] = (), kind: str | None = None) -> T:
    """Reads a YAML or JSON file into `cls` (None: defaults only), then applies `overrides` such
    as "train.steps=10" (values parsed as YAML); missing fields keep their defaults. With `kind`, a
    run's own `config.json` (which names its trainer in "kind") is a config too, for that trainer only."""
    values = _read_mapping(path) if path else {}
    if kind is not None and (found := values.pop("kind", kind)) != kind:
        raise WalaError(f"config file {path} is a {found} run's config, not {kind}")
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
