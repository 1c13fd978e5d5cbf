"""The released text-to-views checkpoint → diffusers/transformers components, and back to disk.

The checkpoint is a Stable-Diffusion-2 single-file ("LDM") state dict inside a Lightning pickle:
`model.` + {`model.diffusion_model.*` UNet with a camera MLP, `cond_stage_model.model.*` OpenCLIP
ViT-H/14 text tower, `first_stage_model.*` KL-f8 VAE, 12 schedule buffers the sampler never reads}
(OFFICIAL-TEXT.md §3–5). It is read without running its code (the restricted unpickler of
`wala.hub.generators`) and loaded strictly: every parameter filled, every tensor used or known to be
unused (the text tower's last block, its projection and logit scale; the schedule buffers).

Config: a `*.yaml` beside the checkpoint in the official layout (plus `<arch>.json`, the OpenCLIP
model config it names, for the text heads) when present; else the SD2 layout inferred from the
tensor shapes (64 channels per head, as SD2.1 and ViT-H/14). `wala convert` writes the components
as a diffusers-style folder (`save_converted`), which `load_converted` reads back.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from wala.errors import WalaError, one_line
from wala.hub.args import CONFIG_BYTES_LIMIT  # its yaml, OpenCLIP json and wala_text.json too
from wala.hub.generators import owned, read_official_checkpoint
from wala.hub.paths import TEXT_MARKER, TEXT_TO_VIEWS, model_format, resolve_model
from wala.io.files import read_limited

SCALE_FACTOR = 0.18215
GROUPS = 32  # GroupNorm groups in the UNet and the VAE, as released
LATENT_CHANNELS, IMAGE_SIZE = 4, 256  # the released model's 256² maps from 32² latents
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
UNET, TEXT, VAE = "model.diffusion_model.", "cond_stage_model.model.", "first_stage_model."
UNUSED_TEXT = ("text_projection", "logit_scale", "attn_mask")  # besides the tower's last block
# a `wala convert` folder: TEXT_MARKER, and each component's weights file (in component order)
COMPONENT_FILES = {
    "unet": "diffusion_pytorch_model.safetensors",
    "vae": "diffusion_pytorch_model.safetensors",
    "text_encoder": "model.safetensors",
}


# ---- config ----------------------------------------------------------------------------------------
CONFIG_RANGES = {
    "model_channels": (1, 4096),
    "channel_mult": (1, 16),
    "num_res_blocks": (1, 16),
    "attention_levels": (0, 7),
    "num_head_channels": (1, 1024),
    "transformer_depth": (1, 32),
    "context_dim": (1, 8192),
    "camera_dim": (1, 1024),
    "vae_ch": (1, 1024),
    "vae_ch_mult": (1, 16),
    "vae_res_blocks": (1, 16),
    "z_channels": (1, 64),
    "text_width": (1, 8192),
    "text_layers": (2, 128),
    "text_heads": (1, 128),
    "text_mlp": (1, 32768),
    "vocab": (1, 1_000_000),
    "context_length": (1, 1024),
    "image_size": (8, 4096),
}


@dataclass
class TextModelConfig:
    """What builds the three components: the official yaml's sizes, or those the shapes imply."""

    model_channels: int = 320
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    num_res_blocks: int = 2
    attention_levels: list[int] = field(default_factory=lambda: [0, 1, 2])  # levels with transformers
    num_head_channels: int = 64
    transformer_depth: int = 1
    context_dim: int = 1024
    camera_dim: int = 16
    vae_ch: int = 128
    vae_ch_mult: list[int] = field(default_factory=lambda: [1, 2, 4, 4])
    vae_res_blocks: int = 2
    z_channels: int = 4
    text_width: int = 1024
    text_layers: int = 24  # the tower's; the model runs all but the last
    text_heads: int = 16
    text_mlp: int = 4096
    vocab: int = 49408
    context_length: int = 77
    scale_factor: float = SCALE_FACTOR
    image_size: int = IMAGE_SIZE  # the side of the maps it draws: what it was trained at

    def __post_init__(self):
        """Every size typed and bounded (wide around SD2.1's and ViT-H/14's), whoever wrote the config: a
        400-byte config must not make the model it describes larger than any file could fill."""
        for name, (low, high) in CONFIG_RANGES.items():
            value = getattr(self, name)
            values = value if isinstance(value, list) else [value]
            if isinstance(value, list) and not 1 <= len(value) <= 8:
                raise WalaError(f"text model config: {name} must list 1…8 values, got {len(value)}")
            if not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in values):
                raise WalaError(f"text model config: {name} is {str(value)[:40]}; it must be integers in {low}…{high}")
        if any(not 0 <= level < len(self.channel_mult) for level in self.attention_levels):
            raise WalaError(f"text model config: attention_levels {self.attention_levels} name missing levels")
        if any(self.model_channels * m % GROUPS for m in self.channel_mult) or any(
            self.vae_ch * m % GROUPS for m in self.vae_ch_mult
        ):
            raise WalaError(f"text model config: every UNet and VAE width must be a multiple of {GROUPS} (GroupNorm)")
        if any(self.model_channels * m % self.num_head_channels for m in self.channel_mult):
            raise WalaError("text model config: num_head_channels does not divide every UNet width")
        if self.text_width % self.text_heads:
            raise WalaError("text model config: text_heads does not divide text_width")
        if not (isinstance(self.scale_factor, (int, float)) and 0 < self.scale_factor < 100):
            raise WalaError(f"text model config: scale_factor is {self.scale_factor!r}; it must be in (0, 100)")
        if self.image_size % self.vae_stride:
            raise WalaError(
                f"text model config: image_size {self.image_size} is not a multiple of the VAE's {self.vae_stride}"
            )

    @property
    def vae_stride(self) -> int:
        """Pixels per latent cell: the VAE halves the side once per level after the first."""
        return 2 ** (len(self.vae_ch_mult) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_stride

    def unet(self) -> dict:
        widths = [self.model_channels * m for m in self.channel_mult]
        levels = range(len(widths))
        return dict(
            sample_size=self.latent_size,
            in_channels=LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            down_block_types=["CrossAttnDownBlock2D" if i in self.attention_levels else "DownBlock2D" for i in levels],
            up_block_types=[
                "CrossAttnUpBlock2D" if i in self.attention_levels else "UpBlock2D" for i in reversed(levels)
            ],
            block_out_channels=widths,
            layers_per_block=self.num_res_blocks,
            cross_attention_dim=self.context_dim,
            use_linear_projection=True,
            attention_head_dim=[w // self.num_head_channels for w in widths],  # heads, in SD2's naming
            transformer_layers_per_block=self.transformer_depth,
            class_embed_type="projection",
            projection_class_embeddings_input_dim=self.camera_dim,
        )

    def vae(self) -> dict:
        widths = [self.vae_ch * m for m in self.vae_ch_mult]
        return dict(
            in_channels=3,
            out_channels=3,
            latent_channels=self.z_channels,
            block_out_channels=widths,
            down_block_types=["DownEncoderBlock2D"] * len(widths),
            up_block_types=["UpDecoderBlock2D"] * len(widths),
            layers_per_block=self.vae_res_blocks,
            sample_size=self.image_size,
            scaling_factor=self.scale_factor,
        )

    def text(self) -> dict:
        return dict(
            vocab_size=self.vocab,
            hidden_size=self.text_width,
            intermediate_size=self.text_mlp,
            num_hidden_layers=self.text_layers - 1,
            num_attention_heads=self.text_heads,
            max_position_embeddings=self.context_length,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            projection_dim=self.text_width,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=0,
        )

    @classmethod
    def from_yaml(cls, path: Path) -> TextModelConfig:
        import yaml

        try:
            params = yaml.safe_load(read_limited(path, CONFIG_BYTES_LIMIT, "model config"))["model"]["params"]
            unet = params["unet_config"]["params"]
            dd = params["first_stage_config"]["params"]["ddconfig"]
            mult = list(unet["channel_mult"])
            sizes = dict(
                model_channels=unet["model_channels"],
                channel_mult=mult,
                num_res_blocks=unet["num_res_blocks"],
                attention_levels=[i for i in range(len(mult)) if 2**i in unet["attention_resolutions"]],
                num_head_channels=unet["num_head_channels"],
                transformer_depth=unet["transformer_depth"],
                context_dim=unet["context_dim"],
                camera_dim=unet.get("camera_dim", 16),
                vae_ch=dd["ch"],
                vae_ch_mult=list(dd["ch_mult"]),
                vae_res_blocks=dd["num_res_blocks"],
                z_channels=dd["z_channels"],
                scale_factor=params.get("scale_factor", SCALE_FACTOR),
            )
            arch = (params["cond_stage_config"].get("params") or {}).get("arch")
            text_json = path.parent / f"{arch}.json"
            if arch and text_json.is_file():  # an OpenCLIP model config (the ViT-H-14 one is the default)
                text = json.loads(read_limited(text_json, CONFIG_BYTES_LIMIT, "model config"))["text_cfg"]
                sizes.update(
                    text_width=text["width"],
                    text_layers=text["layers"],
                    text_heads=text.get("heads", text["width"] // 64),
                    text_mlp=int(text["width"] * text.get("mlp_ratio", 4.0)),
                    vocab=text["vocab_size"],
                    context_length=text["context_length"],
                )
        except (
            yaml.YAMLError,
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            ZeroDivisionError,
            RecursionError,
        ) as exc:
            raise WalaError(f"cannot read the model config {path}: {one_line(exc)}") from None
        return cls(**sizes)

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple]) -> TextModelConfig:
        """The SD2 layout read off the tensor shapes (keys without the `model.` prefix); head widths of
        64 (not in the shapes) as SD2.1's UNet and ViT-H/14's text tower."""

        def count(prefix: str) -> int:
            return len({k[len(prefix) :].split(".")[0] for k in shapes if k.startswith(prefix)})

        try:
            mc = shapes[UNET + "input_blocks.0.0.weight"][0]
            levels = 1 + sum(1 for k in shapes if k.startswith(UNET + "input_blocks.") and k.endswith(".0.op.weight"))
            blocks = (count(UNET + "input_blocks.") - 1 - (levels - 1)) // levels
            first = [1 + level * (blocks + 1) for level in range(levels)]
            mult = [shapes[UNET + f"input_blocks.{i}.0.out_layers.3.weight"][0] // mc for i in first]
            attention = [level for level, i in enumerate(first) if UNET + f"input_blocks.{i}.1.norm.weight" in shapes]
            depth = count(UNET + f"input_blocks.{first[attention[0]]}.1.transformer_blocks.") if attention else 1
            context = next(v[1] for k, v in shapes.items() if k.endswith("attn2.to_k.weight"))
            vae_ch = shapes[VAE + "decoder.conv_out.weight"][1]
            vae_levels = count(VAE + "decoder.up.")
            vae_mult = [shapes[VAE + f"decoder.up.{i}.block.0.conv2.weight"][0] // vae_ch for i in range(vae_levels)]
            vocab, width = shapes[TEXT + "token_embedding.weight"]
            return cls(
                model_channels=mc,
                channel_mult=mult,
                num_res_blocks=blocks,
                attention_levels=attention,
                transformer_depth=depth,
                context_dim=context,
                camera_dim=shapes[UNET + "camera_embed.0.weight"][1],
                vae_ch=vae_ch,
                vae_ch_mult=vae_mult,
                vae_res_blocks=count(VAE + "decoder.up.0.block.") - 1,
                z_channels=shapes[VAE + "decoder.conv_in.weight"][1],
                text_width=width,
                text_layers=count(TEXT + "transformer.resblocks."),
                text_heads=width // 64,
                text_mlp=shapes[TEXT + "transformer.resblocks.0.mlp.c_fc.weight"][0],
                vocab=vocab,
                context_length=shapes[TEXT + "positional_embedding"][0],
            )
        except (KeyError, StopIteration, IndexError, ZeroDivisionError) as exc:
            raise WalaError(
                f"the checkpoint is not a text-to-views model in the SD2 layout (no {exc} among its tensors)"
            ) from exc


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
