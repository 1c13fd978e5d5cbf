"""Loading generators and autoencoders: released WaLa directories, `wala convert` directories and our
training checkpoints, into the model class the caller gives (as diffusers' `ModelMixin.from_pretrained`
receives its class: `LatentDiffusion.from_pretrained` and `WaveletVQVAE.from_pretrained` delegate here,
and this module imports neither). A class names its config dataclass (`config_class`) and the kind its
training checkpoints carry (`checkpoint_kind`).

A released directory holds `args.json` and `checkpoint.ckpt` (a Lightning pickle). The pickle is
read by torch's weights-only unpickler (wala.io.pickled): tensors and plain containers are rebuilt;
classes of the training stack become inert stand-ins (only `state_dict` is used); any other global —
`os.system`, `builtins.eval`, … — is refused by name, and a TorchScript archive by what it is, so no
code in the file ever runs. args.json is typed and bounded key by key (wala.hub.args) before a model is built from it,
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
    DiffusionConfig,
    from_dict,
    to_dict,
)
from wala.errors import WalaError, one_line
from wala.hub.args import config_from_args, read_args
from wala.hub.paths import (
    OFFICIAL,
    OFFICIAL_FILES,
    OURS,
    OURS_FILES,
    TEXT_TO_VIEWS,
    model_format,
    resolve_model,
    search_path,
)
from wala.io.pickled import check_tensor_layouts, read_torch_pickle
from wala.wavelet.packing import packed_size

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
    """`state` holds exactly the keys of `expected` (a model's state dict, on the meta device or not), each
    with its shape: checked before anything of `state` is copied or a model is built for real."""
    for key, value in state.items():
        if key not in expected:
            raise WalaError(f"{source}: unexpected key {key} (the config does not describe this checkpoint)")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise WalaError(
                f"{source}: {key} has shape {tuple(value.shape)}, the config gives {tuple(expected[key].shape)}"
            )
    missing = [k for k in expected if k not in state]
    if missing:
        raise WalaError(
            f"{source}: missing key {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
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
    fresh = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in model.state_dict().items() if k in ours_only}
    model.load_state_dict({**fresh, **{k: owned(v) for k, v in used.items()}}, assign=True)


def owned(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor if it owns its storage, else a copy: a pickle may store views into shared storages,
    and parameters that share memory would corrupt each other when trained in place."""
    whole = tensor.is_contiguous() and tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    return tensor if whole else tensor.clone(memory_format=torch.contiguous_format)


def check_latent_size(config: DiffusionConfig, source) -> DiffusionConfig:
    """A generator's denoiser must work on the latents its autoencoder makes of its shapes; a config that
    says otherwise is refused naming both sizes, before its weights are read."""
    made = config.autoencoder.sizes(packed_size(config.resolution))[-1]
    if config.denoiser.latent_size != made:
        raise WalaError(
            f"{source}: the denoiser works on {config.denoiser.latent_size}³ latents but its autoencoder "
            f"makes {made}³ latents of {config.resolution}³ shapes"
        )
    return config


def read_model_config(directory: Path) -> tuple[DiffusionConfig, str]:
    """(config, source) of a model directory, from its args.json (released) or config.json (ours),
    without touching the weights; else one line saying what the folder lacks."""
    kind = model_format(directory)
    if kind == OFFICIAL:
        return check_latent_size(config_from_args(read_args(directory / "args.json")), directory), "official"
    if kind == OURS:
        info = read_args(directory / "config.json")
        if info.get("wala") != "generator" or "model" not in info:
            raise WalaError(f"{directory / 'config.json'} is not a wala generator config")
        return check_latent_size(from_dict(DiffusionConfig, info["model"]), directory), info.get("source", "wala")
    if kind == TEXT_TO_VIEWS:
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
        return (load_official if model_format(path) == OFFICIAL else load_ours)(path, model_class)
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
    if isinstance(model_config, DiffusionConfig):
        check_latent_size(model_config, path)
    with torch.device("meta"):  # the sizes the file's metadata declares, checked before a model is made
        expected = model_class(model_config).state_dict()
    check_keys_and_shapes(expected, tensors.get(weights, {}), path)  # nothing is built for a partial file
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
        official = model_format(path) == OFFICIAL
        source = path / ("checkpoint.ckpt" if official else "model.safetensors")
        state = read_official_checkpoint(source) if official else read_ours(path)
    else:
        raise WalaError(f"checkpoint not found: {path}")
    prefix = "autoencoder."
    with torch.device("meta"):
        model = model_class(config.autoencoder)
    load_state_strictly(model, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, source)
    return model.eval()
