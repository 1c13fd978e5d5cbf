"""The released text-to-views checkpoint → diffusers/transformers components, and back to disk.

The checkpoint is a Stable-Diffusion-2 single-file ("LDM") state dict inside a Lightning pickle:
`model.` + {`model.diffusion_model.*` UNet with a camera MLP, `cond_stage_model.model.*` OpenCLIP
ViT-H/14 text tower, `first_stage_model.*` KL-f8 VAE, 12 schedule buffers the sampler never reads}
(OFFICIAL-TEXT.md §3–5). It is read without running its code (the restricted unpickler of
`wala.hub.generators`) and loaded strictly: every parameter filled, every tensor used or known to be
unused (the text tower's last block, its projection and logit scale; the schedule buffers).

Config (`wala.text.config`): a `*.yaml` beside the checkpoint in the official layout (plus `<arch>.json`, the OpenCLIP
model config it names, for the text heads) when present; else the SD2 layout inferred from the
tensor shapes (64 channels per head, as SD2.1 and ViT-H/14). `wala convert` writes the components
as a diffusers-style folder (`save_converted`), which `load_converted` reads back.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

from wala.errors import WalaError, one_line
from wala.hub.args import CONFIG_BYTES_LIMIT  # its yaml, OpenCLIP json and wala_text.json too
from wala.hub.generators import owned, read_official_checkpoint
from wala.hub.paths import TEXT_MARKER, TEXT_TO_VIEWS, model_format, resolve_model
from wala.io.files import read_limited
from wala.text.config import TEXT, UNET, VAE, TextModelConfig

SCHEDULE_BUFFERS = (
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
)
UNUSED_TEXT = ("text_projection", "logit_scale", "attn_mask")  # besides the tower's last block
# a `wala convert` folder: TEXT_MARKER, and each component's weights file (in component order)
COMPONENT_FILES = {
    "unet": "diffusion_pytorch_model.safetensors",
    "vae": "diffusion_pytorch_model.safetensors",
    "text_encoder": "model.safetensors",
}


# ---- building and loading the components --------------------------------------------------------
@contextmanager
def empty_parameters():
    """Modules built inside get their parameters on the meta device (no memory, no initialisation
    cost); buffers stay real. `load_state_dict(..., assign=True)` then puts the loaded tensors in."""
    register = nn.Module.register_parameter

    def on_meta(module, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(module, name, param)

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def _text_state(state: dict[str, torch.Tensor], config: TextModelConfig) -> dict[str, torch.Tensor]:
    """OpenCLIP text tower (prefix stripped) → CLIPTextModel keys (without transformers 4's
    `text_model.` prefix; `_load` adds it where the module has it), the unused last block left out."""
    out = {
        "embeddings.token_embedding.weight": state["token_embedding.weight"],
        "embeddings.position_embedding.weight": state["positional_embedding"],
        "final_layer_norm.weight": state["ln_final.weight"],
        "final_layer_norm.bias": state["ln_final.bias"],
    }
    names = {
        "ln_1": "layer_norm1",
        "ln_2": "layer_norm2",
        "attn.out_proj": "self_attn.out_proj",
        "mlp.c_fc": "mlp.fc1",
        "mlp.c_proj": "mlp.fc2",
    }
    for i in range(config.text_layers - 1):
        src, dst = f"transformer.resblocks.{i}.", f"encoder.layers.{i}."
        for old, new in names.items():
            for p in ("weight", "bias"):
                out[f"{dst}{new}.{p}"] = state[f"{src}{old}.{p}"]
        for p in ("weight", "bias"):
            for name, part in zip("qkv", state[f"{src}attn.in_proj_{p}"].chunk(3)):
                out[f"{dst}self_attn.{name}_proj.{p}"] = part
    return out


def load_component(module: nn.Module, state: dict[str, torch.Tensor], source: str, what: str) -> None:
    expected = module.state_dict()
    prefix = "text_model." if what == "text_encoder" and all(k.startswith("text_model.") for k in expected) else ""
    state = {k if k.startswith(prefix) else prefix + k: v for k, v in state.items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        key = missing[0] if missing else unexpected[0]
        raise WalaError(
            f"{source}: the {what} {'misses' if missing else 'has an unexpected'} tensor {key}"
            f" ({len(missing)} missing, {len(unexpected)} unexpected; the config does not describe it)"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise WalaError(
                f"{source}: the {what}'s {k} has shape {tuple(v.shape)}, the config gives {tuple(expected[k].shape)}"
            )
    module.load_state_dict({k: owned(v.float()) for k, v in state.items()}, strict=True, assign=True)


def build_components(config: TextModelConfig, empty: bool = True) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(UNet, VAE, text encoder) with parameters on the meta device, to be loaded (`empty`), or
    randomly initialised (benchmarks)."""
    from contextlib import nullcontext

    from wala.text import require

    require("diffusers", "transformers")
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with empty_parameters() if empty else nullcontext():
        unet = UNet2DConditionModel(**config.unet())
        vae = AutoencoderKL(**config.vae())
        text = CLIPTextModel(CLIPTextConfig(**config.text()))
    return unet, vae, text


def convert_official(state: dict[str, torch.Tensor], config: TextModelConfig, source: str) -> dict[str, dict]:
    """The LDM state dict (`model.` stripped) → {"unet", "vae", "text_encoder"} state dicts in the
    diffusers/transformers layouts. Every tensor must be used or known to be unused."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    parts = {UNET: {}, VAE: {}, TEXT: {}}
    for key, value in state.items():
        prefix = next((p for p in parts if key.startswith(p)), None)
        if prefix is not None:
            parts[prefix][key] = value
        elif key not in SCHEDULE_BUFFERS:
            raise WalaError(f"{source}: unexpected tensor {key} (not a text-to-views checkpoint?)")
    unet_in = {k.replace(UNET + "camera_embed.", UNET + "label_emb.0."): v for k, v in parts[UNET].items()}
    unet = convert_ldm_unet_checkpoint(unet_in, config.unet())
    vae = convert_ldm_vae_checkpoint(parts[VAE], config.vae())
    for k in [k for k in vae if k.endswith(("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"))]:
        vae[k] = vae[k].reshape(vae[k].shape[:2])  # the mid-block attention's 1×1 convs → linear layers
    tower = {k[len(TEXT) :]: v for k, v in parts[TEXT].items()}
    last_block = f"transformer.resblocks.{config.text_layers - 1}."
    try:
        text = _text_state(tower, config)
    except KeyError as exc:
        raise WalaError(f"{source}: the text tower misses tensor {TEXT}{exc.args[0]}") from None
    used_tower = sum(v.numel() for k, v in tower.items() if k not in UNUSED_TEXT and not k.startswith(last_block))
    for what, src, out in (("UNet", parts[UNET], unet), ("VAE", parts[VAE], vae)):
        if sum(v.numel() for v in src.values()) != sum(v.numel() for v in out.values()):
            raise WalaError(f"{source}: not every {what} tensor has a place in the model (unknown keys)")
    if used_tower != sum(v.numel() for v in text.values()):
        raise WalaError(f"{source}: not every text tower tensor has a place in the model (unknown keys)")
    return {"unet": unet, "vae": vae, "text_encoder": text}


def read_text_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A released checkpoint.ckpt → its LDM state dict (`model.` prefix stripped, as the official loader)."""
    state = read_official_checkpoint(path)
    return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}


def is_text_model(path: str | Path) -> bool:
    """A text-to-views model: a folder `wala.hub.paths.model_format` calls TEXT_TO_VIEWS (a WaLa-MVDream download,
    checkpoint.ckpt without args.json, or its `wala convert` folder; names resolved on the search
    path), or a .ckpt file."""
    path = resolve_model(path)
    return model_format(path) == TEXT_TO_VIEWS if path.is_dir() else path.suffix == ".ckpt"


def converted_config(directory: Path) -> tuple[TextModelConfig, str]:
    """(config, source) of a `wala convert` folder."""
    try:
        info = json.loads(read_limited(directory / TEXT_MARKER, CONFIG_BYTES_LIMIT, "model config"))
        return TextModelConfig(**info["config"]), info.get("source", "wala")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise WalaError(f"cannot read {directory / TEXT_MARKER}: {one_line(exc)}") from None


def describe_text_model(directory: Path) -> tuple[str, int]:
    """(source, parameters) of a text-to-views folder from its config alone (built on the meta device):
    the converted config, the yaml beside the checkpoint, or the released layout."""
    if (directory / TEXT_MARKER).is_file():
        config, source = converted_config(directory)
    else:
        found = _find_config(directory)
        config, source = (TextModelConfig.from_yaml(found) if found else TextModelConfig()), "official"
    return source, sum(p.numel() for m in build_components(config) for p in m.parameters())


def _find_config(directory: Path) -> Path | None:
    found = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    return found[0] if found else None


def load_official_text(path: Path) -> tuple[tuple[nn.Module, nn.Module, nn.Module], TextModelConfig]:
    """A released checkpoint.ckpt (a yaml beside it optional) → its loaded (UNet, VAE, text encoder)."""
    state = read_text_checkpoint(path)
    yaml_path = _find_config(path.parent)
    config = (
        TextModelConfig.from_yaml(yaml_path)
        if yaml_path
        else TextModelConfig.from_shapes({k: tuple(v.shape) for k, v in state.items()})
    )
    states = convert_official(state, config, str(path))
    modules = build_components(config)
    for module, (name, part) in zip(modules, states.items()):
        load_component(module, part, str(path), name)
    return modules, config


def load_converted(directory: Path) -> tuple[tuple[nn.Module, nn.Module, nn.Module], TextModelConfig, str]:
    """A `wala convert` folder → its loaded (UNet, VAE, text encoder), config and source."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config, source = converted_config(directory)
    modules = build_components(config)
    for module, (name, file) in zip(modules, COMPONENT_FILES.items()):
        try:
            state = load_file(str(directory / name / file))
        except (SafetensorError, OSError) as exc:
            raise WalaError(f"corrupt or missing {directory / name / file}: {one_line(exc)}") from exc
        load_component(module, state, str(directory / name / file), name)
    return modules, config, source


def save_converted(
    modules, config: TextModelConfig, source: str, directory: Path, storage: torch.dtype | None = None
) -> Path:
    """The diffusers-style folder: unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors),
    text_encoder/ (config.json + model.safetensors), and wala_text.json; every file written atomically.
    The subfolders load with diffusers' and transformers' `from_pretrained` as well."""
    from dataclasses import asdict

    from wala.io.mesh import write_atomic, write_safetensors

    for module, (name, file) in zip(modules, COMPONENT_FILES.items()):
        tensors = {
            k: (v.to(storage) if storage is not None else v).detach().contiguous().cpu()
            for k, v in module.state_dict().items()
        }
        write_safetensors(directory / name / file, tensors, {"format": "pt"})
        write_atomic(
            directory / name / "config.json",
            module.config.to_json_string().encode()
            if hasattr(module.config, "to_json_string")
            else json.dumps(dict(module.config), indent=2).encode(),
        )
    write_atomic(
        directory / TEXT_MARKER,
        (json.dumps({"wala": "text-to-views", "source": source, "config": asdict(config)}, indent=2) + "\n").encode(),
    )
    return directory
