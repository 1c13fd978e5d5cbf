"""Loading generators and autoencoders: released WaLa directories, `wala convert` directories and our
training checkpoints, into the model class the caller gives (as diffusers' `ModelMixin.from_pretrained`
receives its class: `LatentDiffusion.from_pretrained` and `WaveletVQVAE.from_pretrained` delegate here,
and this module imports neither). A class names its config dataclass (`config_class`) and the kind its
training checkpoints carry (`checkpoint_kind`).

A released directory holds `args.json` and `checkpoint.ckpt` (a Lightning pickle). The pickle is
read by torch's weights-only unpickler (wala.io.pickled): tensors and plain containers are rebuilt;
classes of the training stack become inert stand-ins (only `state_dict` is used); any other global —
`os.system`, `builtins.eval`, … — is refused by name, and a TorchScript archive by what it is, so no
code in the file ever runs. args.json is typed and bounded key by key before a model is built from it,
and every tensor is checked against the keys, shapes and dtypes that model expects before any of it is
copied. As the official loader: the raw `state_dict` (not EMA), `autoencoder._orig_mod.` renamed.
Unlike it, loading is strict: every parameter must be filled and every tensor used, or a known constant
(the wavelet filter buffers, checked against bior6.8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pywt
import torch

from wala.config import (
    AutoencoderConfig,
    ConditionConfig,
    DenoiserConfig,
    DiffusionConfig,
    ScheduleConfig,
    from_dict,
    to_dict,
)
from wala.errors import WalaError, one_line
from wala.hub.paths import OFFICIAL_FILES, OURS_FILES, model_format, resolve_model, search_path
from wala.io.files import read_limited
from wala.io.pickled import check_tensor_layouts, read_torch_pickle

QUANTIZER_STATE = "quantize.steps_unused"  # training state of our quantizer: not in released files
OURS_ONLY = {f"autoencoder.{QUANTIZER_STATE}"}  # … as a generator names it


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The raw `state_dict` of a released checkpoint.ckpt, read without running any of its code
    (wala.io.pickled), every tensor checked against its storage before anything is built from it."""
    path = Path(path)
    payload = read_torch_pickle(path)
    state = payload.get("state_dict") if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise WalaError(f"{path} holds no 'state_dict' of tensors (not a WaLa checkpoint?)")
    check_tensor_layouts(state, path)
    return {k.replace("autoencoder._orig_mod.", "autoencoder.", 1): v for k, v in state.items()}


# -- args.json → config -------------------------------------------------------------------------
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


# -- state dicts ---------------------------------------------------------------------------------
def _check_wavelet_buffer(key: str, value: torch.Tensor) -> bool:
    """True when `key` is one of the official wavelet filter buffers holding bior6.8's taps."""
    parts = key.split(".")
    filters = ("h0", "h1", "g0", "g1")
    if len(parts) < 2 or parts[-2] not in ("dwt_sparse_composer", "dwt_inverse_3d") or parts[-1][:2] not in filters:
        return False
    name = parts[-1]
    dec_lo, dec_hi, rec_lo, rec_hi = (np.asarray(f) for f in pywt.Wavelet("bior6.8").filter_bank)
    expected = {"h0": dec_lo[::-1], "h1": dec_hi[::-1], "g0": rec_lo, "g1": rec_hi}[name[:2]]
    if value.numel() != expected.size or not np.allclose(
        value.detach().double().flatten().numpy(), expected, atol=1e-6
    ):
        raise WalaError(f"wavelet filter buffer {key} does not hold bior6.8's taps")
    return True


def check_keys_and_shapes(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source) -> None:
    """Every tensor of `state` has a key and the shape of `expected` (a model's state dict, on the meta
    device or not): checked before anything of `state` is copied."""
    for key, value in state.items():
        if key not in expected:
            raise WalaError(f"{source}: unexpected key {key} (the config does not describe this checkpoint)")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise WalaError(
                f"{source}: {key} has shape {tuple(value.shape)}, the config gives {tuple(expected[key].shape)}"
            )


def load_state_strictly(model: torch.nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """Fills every parameter and buffer of `model` (built on the meta device) with the tensors of
    `state` — their own memory where they own it (one 4 GB model in memory, not two) — constants
    excepted, using every tensor; else one line naming the first mismatched key. Keys, shapes and
    dtypes are all checked before any tensor is copied."""
    ours_only = {k for k in model.state_dict() if k.endswith(QUANTIZER_STATE)}
    expected = {k: v for k, v in model.state_dict().items() if k not in ours_only}
    used = {k: v for k, v in state.items() if k not in ours_only and not _check_wavelet_buffer(k, v)}
    check_keys_and_shapes(expected, used, source)
    for key, value in used.items():
        if value.dtype != expected[key].dtype:
            raise WalaError(f"{source}: {key} is {value.dtype}, the model holds {expected[key].dtype}")
    missing = [k for k in expected if k not in used]
    if missing:
        raise WalaError(
            f"{source}: missing key {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    fresh = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in model.state_dict().items() if k in ours_only}
    model.load_state_dict({**fresh, **{k: owned(v) for k, v in used.items()}}, assign=True)


def owned(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor if it owns its storage, else a copy: a pickle may store views into shared storages,
    and parameters that share memory would corrupt each other when trained in place."""
    whole = tensor.is_contiguous() and tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    return tensor if whole else tensor.clone(memory_format=torch.contiguous_format)


def read_model_config(directory: Path) -> tuple[DiffusionConfig, str]:
    """(config, source) of a model directory, from its args.json (released) or config.json (ours),
    without touching the weights; else one line saying what the folder lacks."""
    kind = model_format(directory)
    if kind == "official":
        return config_from_args(read_args(directory / "args.json")), "official"
    if kind == "ours":
        info = read_args(directory / "config.json")
        if info.get("wala") != "generator" or "model" not in info:
            raise WalaError(f"{directory / 'config.json'} is not a wala generator config")
        return from_dict(DiffusionConfig, info["model"]), info.get("source", "wala")
    if kind == "text":
        raise WalaError(f"{directory} is a text-to-views model: use it with `wala text2depth` or `--text-model`")
    raise WalaError(
        f"{directory} is not a model directory (needs {' + '.join(OFFICIAL_FILES)} or {' + '.join(OURS_FILES)})"
    )


def load_official(directory: str | Path, model_class):
    """A released model directory → `model_class` (LatentDiffusion) with its raw (non-EMA) weights."""
    directory = Path(directory)
    config, _ = read_model_config(directory)
    state = read_official_checkpoint(directory / "checkpoint.ckpt")
    with torch.device("meta"):
        model = model_class(config)
    load_state_strictly(model, state, directory / "checkpoint.ckpt")
    model.source = "official"
    return model


def save_model(model, directory: str | Path, source: str, storage: torch.dtype | None = None) -> Path:
    """Our model directory: config.json + model.safetensors, each written atomically. `storage`
    (float16/bfloat16) stores the parameters at half size; loading computes in float32 again."""
    from wala.io.mesh import write_atomic, write_safetensors

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parameters = {name for name, _ in model.named_parameters()}
    tensors = {
        k: (v.to(storage) if storage is not None and k in parameters else v).detach().contiguous().cpu()
        for k, v in model.state_dict().items()
        if k not in OURS_ONLY
    }
    write_safetensors(directory / "model.safetensors", tensors, {"wala": "generator", "source": source})
    write_atomic(
        directory / "config.json",
        (json.dumps({"wala": "generator", "source": source, "model": to_dict(model.config)}, indent=2) + "\n").encode(),
    )
    return directory


def read_ours(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of our model directory, memory-mapped; half-size storage (`wala convert --storage
    fp16`) as float32, which every model computes in."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(directory / "model.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise WalaError(f"corrupt model file {directory / 'model.safetensors'}: {one_line(exc)}") from exc
    return {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in state.items()}


def load_ours(directory: str | Path, model_class):
    directory = Path(directory)
    config, source = read_model_config(directory)
    with torch.device("meta"):
        model = model_class(config)
    load_state_strictly(model, read_ours(directory), directory / "model.safetensors")
    model.source = source
    return model


def load_generator(path: str | Path, model_class):
    """Any generator wala reads, as `model_class`: a released directory, our directory, a train-diffusion
    checkpoint (EMA weights); names are looked up on the search path."""
    path = resolve_model(path)
    if path.is_dir():
        return (load_official if model_format(path) == "official" else load_ours)(path, model_class)
    if not path.exists():
        where = (
            ""
            if len(path.parts) != 1
            else f" (nor a model directory of that name in {', '.join(map(str, search_path()))}: see `wala models`)"
        )
        raise WalaError(f"model not found: {path}{where}")
    return load_trained(path, model_class)[0]


def load_trained(path: str | Path, model_class, weights: str = "ema"):
    """A `model_class` from one of our training checkpoints of its kind (EMA weights by default) and the
    run config. Imports no trainer."""
    from wala.train.checkpoint import load_checkpoint, load_weights

    config, _, tensors = load_checkpoint(path, model_class.checkpoint_kind)
    model_config = from_dict(model_class.config_class, config["model"])
    with torch.device("meta"):  # the sizes the file's metadata declares, checked before a model is made
        expected = model_class(model_config).state_dict()
    state = tensors.get(weights, {})
    check_keys_and_shapes(expected, state, path)
    missing = [k for k in expected if k not in state]
    if missing:  # nothing is built for a file that does not hold the whole model
        raise WalaError(
            f"{path}: missing key {missing[0]}" + (f" (and {len(missing) - 1} more)" if missing[1:] else "")
        )
    model = model_class(model_config)
    load_weights(model, tensors, weights, path)
    model.source = "wala"
    return model.eval(), config


def load_autoencoder(path: str | Path, model_class):
    """A `model_class` (WaveletVQVAE) from a train-ae checkpoint, or the one a generator carries (a
    released directory, a converted one, a train-diffusion checkpoint): only its `autoencoder.` tensors
    are read into it, checked as strictly as a whole generator's."""
    from safetensors import SafetensorError, safe_open

    path = resolve_model(path)
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as f:
                kind = (f.metadata() or {}).get("wala")
        except (SafetensorError, OSError):
            kind = model_class.checkpoint_kind  # let the checkpoint reader name the problem
        if kind == model_class.checkpoint_kind:
            return load_trained(path, model_class)[0]
        from wala.train.checkpoint import load_checkpoint

        config, _, tensors = load_checkpoint(path, kind)
        config, state, source = from_dict(DiffusionConfig, config["model"]), tensors.get("ema", {}), path
    elif path.is_dir():
        config, _ = read_model_config(path)
        official = model_format(path) == "official"
        source = path / ("checkpoint.ckpt" if official else "model.safetensors")
        state = read_official_checkpoint(source) if official else read_ours(path)
    else:
        raise WalaError(f"checkpoint not found: {path}")
    prefix = "autoencoder."
    with torch.device("meta"):
        model = model_class(config.autoencoder)
    load_state_strictly(model, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, source)
    return model.eval()
