"""A released model's args.json → the DiffusionConfig it describes (OFFICIAL.md §3), each key typed and
bounded first: a regular file of at most a MiB, read as the official DotDict reads it (absent keys are
None)."""

from __future__ import annotations

import json
from pathlib import Path

from wala.config import AutoencoderConfig, ConditionConfig, DenoiserConfig, DiffusionConfig, ScheduleConfig
from wala.errors import WalaError, one_line
from wala.io.files import read_limited

CONFIG_BYTES_LIMIT = 1 * 2**20  # args.json and config.json: a few KB each


def read_args(path: str | Path) -> dict:
    """A model directory's JSON config (args.json, config.json): a regular file of at most a MiB."""
    data = read_limited(path, CONFIG_BYTES_LIMIT, "model config")
    try:
        args = json.loads(data)
    except (ValueError, RecursionError) as exc:  # malformed, nested past the parser, or a 5,000-digit number
        raise WalaError(f"cannot read {path}: {one_line(exc)}") from None
    if not isinstance(args, dict):
        raise WalaError(f"{path} must hold a JSON object")
    return args


# The args.json keys a model is built from, with their types and ranges: wide around the released
# models' values (OFFICIAL.md §3), narrow enough that no value makes a model or schedule unbuildable.
INT_ARGS = {
    "pc_output_dim": (1, 16384),
    "voxel_context_dim": (1, 16384),
    "num_inds": (1, 4096),
    "pc_dims": (1, 16384),
    "voxel_resolution": (1, 256),
    "cond_num_mapping_layers": (0, 64),
    "max_images_num": (1, 4096),
    "e_dim": (1, 64),
    "grid_size": (1, 64),
    "att_patch_size": (1, 64),
    "att_hidden_size": (1, 16384),
    "transformer_num_blocks": (1, 512),
    "transformer_num_heads": (1, 512),
    "transformer_add_num_register": (0, 256),
    "unet_model_channels": (1, 4096),
    "add_condition_res_ch": (0, 4096),
    "learnable_skip_r": (0, 4096),
    "diffusion_step": (1, 10000),
    "n_e": (1, 65536),
    "resolution": (8, 1024),
    "max_depth": (1, 8),
    "max_training_level": (0, 8),
    "encoder_num_tran": (0, 64),
    "decoder_num_tran": (0, 64),
}
FLOAT_ARGS = {"diffusion_scale_ratio": (1e-6, 1e6), "dp_cond": (0.0, 1.0)}
INT_LIST_ARGS = {"unet_num_res_blocks": (0, 64), "training_views": (0, 4095)}
FLAG_ARGS = (
    "use_image_conditions",
    "use_depth_conditions",
    "use_pointcloud_conditions",
    "use_voxel_conditions",
    "use_multiple_views_grids",
    "use_camera_index",
    "add_condition_time_ch",
)
TEXT_ARGS = (
    "wavelet",
    "padding_mode",
    "network_type",
    "dit_block_type",
    "pc_encoder_type",
    "clip_model_type",
    "diffusion_beta_schedule",
    "diffusion_model_mean_type",
    "diffusion_model_var_type",
)
DINOV2_ARGS = {"embed_dim": (1, 4096), "depth": (1, 64), "num_heads": (1, 64)}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_args(args: dict, source="args.json") -> None:
    """Every key a model is built from has its type and lies in its range; else one line naming it."""

    def bad(key, value, want):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise WalaError(f"{source}: {key} is {shown}; it must be {want}")

    for key, (low, high) in INT_ARGS.items():
        value = args.get(key)
        if value is not None and not (_is_int(value) and low <= value <= high):
            bad(key, value, f"an integer in {low}…{high}")
    for key, (low, high) in FLOAT_ARGS.items():
        value = args.get(key)
        if value is not None and not (
            isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
        ):
            bad(key, value, f"a number in {low:g}…{high:g}")
    for key, (low, high) in INT_LIST_ARGS.items():
        value = args.get(key)
        if value is not None and not (
            isinstance(value, list) and 1 <= len(value) <= 64 and all(_is_int(v) and low <= v <= high for v in value)
        ):
            bad(key, value, f"a list of 1…64 integers in {low}…{high}")
    for key in FLAG_ARGS:
        if args.get(key) not in (None, True, False, 0, 1):
            bad(key, args[key], "true, false or null")
    for key in TEXT_ARGS:
        if args.get(key) is not None and not isinstance(args[key], str):
            bad(key, args[key], "a string")
    tiny = args.get("fixture_dinov2")
    if tiny is not None:
        if not isinstance(tiny, dict):
            bad("fixture_dinov2", tiny, "an object")
        for key, (low, high) in DINOV2_ARGS.items():
            if not (_is_int(tiny.get(key)) and low <= tiny[key] <= high):
                bad(f"fixture_dinov2.{key}", tiny.get(key), f"an integer in {low}…{high}")


def config_from_args(args: dict) -> DiffusionConfig:
    """The DiffusionConfig of a released model's args.json (absent keys read as None, as the
    official DotDict does), its values checked first (`check_args`). OFFICIAL.md §3 lists what each
    key means."""
    check_args(args)
    a = lambda key, default=None: default if args.get(key) is None else args[key]
    vit = {}
    if a("use_image_conditions") or a("use_depth_conditions"):  # the official branch order: image first
        multi = bool(a("use_multiple_views_grids"))
        kind = ("views" if multi else "image") if a("use_image_conditions") else "depth"
        if multi and not a("training_views"):
            raise WalaError("a multi-view model without training_views cannot run (the official code crashes too)")
        width, vit = _vit_size(args)
    elif a("use_pointcloud_conditions"):
        kind, width = "pointcloud", a("pc_output_dim")
    elif a("use_voxel_conditions"):
        kind, width = "voxel", a("voxel_context_dim")
    else:
        kind, width = "none", 1
    if (
        a("max_depth", 3) - a("max_training_level", 2) != 1
        or a("wavelet", "bior6.8") != "bior6.8"
        or a("padding_mode", "zero") != "zero"
    ):
        raise WalaError("only 3-level bior6.8 (mode zero) wavelet trees with 2 kept levels are supported")
    if a("dp_cond_type") is not None:
        raise WalaError(f"dp_cond_type {a('dp_cond_type')!r} cannot run in the official code either")
    if a("normalize_latent") is not None or a("decoder_num_tran", 0) or a("encoder_num_tran", 0):
        raise WalaError("autoencoders with l2-normalized codes or transformer layers are not supported")
    condition = ConditionConfig(
        kind=kind,
        width=width,
        tokens=a("num_inds", 256),
        encoder="simple" if a("pc_encoder_type") == "PointNet_Simple" else "large",
        encoder_width=a("pc_dims", 1024),
        voxel_size=a("voxel_resolution", 16),
        mapping_layers=a("cond_num_mapping_layers", 0),
        camera_index=bool(a("use_camera_index")),
        training_views=tuple(a("training_views", ()) if a("use_multiple_views_grids") else ()),
        max_views=a("max_images_num", 55),
        drop=0.0 if a("dp_cond") is None else float(a("dp_cond")),
        **vit,
    )
    denoiser = DenoiserConfig(
        arch="dit" if a("network_type") == "latent_dit" else "uvit",
        latent_channels=a("e_dim", 4),
        latent_size=a("grid_size", 12),
        patch=a("att_patch_size", 1),
        width=a("att_hidden_size"),
        depth=a("transformer_num_blocks"),
        heads=a("transformer_num_heads"),
        cross=a("dit_block_type") == "cross_dit",
        time_condition=bool(a("add_condition_time_ch")),
        registers=a("transformer_add_num_register", 0),
        res_width=a("unet_model_channels", 128),
        res_blocks=(a("unet_num_res_blocks", [3]) or [3])[0],
        res_condition=a("add_condition_res_ch", 0),
        skip_ratio=a("learnable_skip_r", 0),
        fixed_position=a("with_fix_pos") is not None,
    )
    mean_type = {"START_X": "x0", "EPSILON": "eps", "PREVIOUS_X": "previous"}
    var_type = {"FIXED_SMALL": "fixed_small", "FIXED_LARGE": "fixed_large"}
    if (
        a("diffusion_model_mean_type", "START_X") not in mean_type
        or a("diffusion_model_var_type", "FIXED_SMALL") not in var_type
    ):
        raise WalaError(
            f"unsupported diffusion types {a('diffusion_model_mean_type')} / {a('diffusion_model_var_type')}"
        )
    schedule = ScheduleConfig(
        betas=a("diffusion_beta_schedule", "cosine"),
        timesteps=a("diffusion_step", 1000),
        scale_ratio=float(a("diffusion_scale_ratio", 1.0)),
        prediction=mean_type[a("diffusion_model_mean_type", "START_X")],
        variance=var_type[a("diffusion_model_var_type", "FIXED_SMALL")],
    )
    autoencoder = AutoencoderConfig(latent_channels=a("e_dim", 4), codebook_size=a("n_e", 1024))
    return DiffusionConfig(
        denoiser=denoiser,
        condition=condition,
        schedule=schedule,
        autoencoder=autoencoder,
        resolution=a("resolution", 256),
    )


def _vit_size(args: dict) -> tuple[int, dict]:
    """(width, vit fields) of a DINOv2 condition encoder: from `clip_model_type`, or from the
    fixtures' `fixture_dinov2` key (a tiny ViT the official loader would ignore)."""
    from wala.conditions.dinov2 import VIT_SIZES

    tiny = args.get("fixture_dinov2")
    if tiny:
        if tiny.get("mlp_ratio", 4) != 4:
            raise WalaError(f"fixture_dinov2 mlp_ratio {tiny['mlp_ratio']} is not supported (4 is)")
        return tiny["embed_dim"], {"vit_depth": tiny["depth"], "vit_heads": tiny["num_heads"], "vit_ffn": "mlp"}
    name = args.get("clip_model_type") or "dino-l-14_reg"
    if name not in VIT_SIZES:
        raise WalaError(f"unknown clip_model_type '{name}' (known: {', '.join(VIT_SIZES)})")
    width, depth, heads, ffn = VIT_SIZES[name]
    return width, {"vit_depth": depth, "vit_heads": heads, "vit_ffn": ffn}
