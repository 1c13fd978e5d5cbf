"""Text → multi-view images: the released WaLa-MVDream models (six depth maps, or four RGB views) on
diffusers and transformers components (OFFICIAL-TEXT.md).

The released checkpoint is a Stable-Diffusion-2 single-file ("LDM") state dict inside a Lightning
pickle: `model.` + {`model.diffusion_model.*` UNet with a camera MLP, `cond_stage_model.model.*`
OpenCLIP ViT-H/14 text tower, `first_stage_model.*` KL-f8 VAE, 12 schedule buffers the sampler never
reads}. It is read without running its code (the restricted unpickler of `wala.checkpoints`) and
loaded strictly: every parameter filled, every tensor used or known to be unused (the text tower's
last block, its projection and logit scale — the model reads the penultimate block, then the final
norm; the schedule buffers).

- UNet: `UNet2DConditionModel` + a "projection" class embedding fed the flattened camera-to-world
  matrix (`camera_embed` → `class_embedding`), and a self-attention processor that lets every token
  attend over all views of its sample: (B·F, L, C) → (B, F·L, C) for attn1 only.
- VAE: `AutoencoderKL`, decode(z / 0.18215).
- Text: HF `CLIPTextModel` with one block fewer than the tower; all 77 positions are the context.
- Sampler: DDIM, eta 0, the official hard-coded schedule (scaled-linear 0.00085 → 0.02, not SD2's
  0.012), "trailing" timesteps as the official code computes them (more than `steps` when 1000 is
  not a multiple: 7 → 8), ᾱ_prev = ᾱ[0] at the last step; classifier-free guidance with the empty
  prompt in one batch of 2F, unconditional first. x_T = randn(F, 4, 32, 32) from a CPU generator
  seeded with `seed` — what `torch.manual_seed(seed)` then the official sampler draws — on any device.
- Output: uint8 of 255·clamp((x + 1)/2), truncated as the official code does, RGB 256².

Config: a `*.yaml` beside the checkpoint in the official layout (plus `<arch>.json`, the OpenCLIP
model config it names, for the text heads) when present; else the SD2 layout inferred from the
tensor shapes (64 channels per head, as SD2.1 and ViT-H/14).
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.errors import WalaError, one_line
from wala.render.views import VIEW_TABLE

SCALE_FACTOR = 0.18215
TRAIN_STEPS = 1000
BETA_START, BETA_END = 0.00085, 0.02
LATENT_CHANNELS, LATENT_SIZE, IMAGE_SIZE = 4, 32, 256
VIEWS = {"depth": (3, 6, 10, 26, 49, 50), "rgb": (0, 6, 10, 26)}  # --text_to_dm6, --text_to_mv
SUFFIX = ", 3d asset"
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")
UNET, TEXT, VAE = "model.diffusion_model.", "cond_stage_model.model.", "first_stage_model."
UNUSED_TEXT = ("text_projection", "logit_scale", "attn_mask")  # besides the tower's last block
CONVERTED = "wala_text.json"  # marks a `wala convert` directory of a text model


# ---- conventions ---------------------------------------------------------------------------------
def prompt_text(text: str, official: bool = False) -> str:
    """What the model is given: the text plus ", 3d asset" unless "3D"/"3d" occurs in it (anywhere,
    case-sensitive, as the official code checks). `official`: the text as the official CLI passes it,
    the repr of its argparse list (`['a cup']`), brackets and quotes tokenized too."""
    text = repr([text]) if official else text
    return text if "3D" in text or "3d" in text else text + SUFFIX


def cameras(view_ids) -> np.ndarray:
    """(F, 16) float64 camera-to-world matrices (Blender axes, row-major) for view ids of the 55-view
    table: a y-up look-at from (cos e sin a, sin e, cos e cos a) at the origin, axes then rotated."""
    rows = []
    for i in view_ids:
        if not 0 <= int(i) < len(VIEW_TABLE):
            raise WalaError(f"view {i} is not in the 55-view camera table (0–54)")
        a, e = (math.radians(v) for v in VIEW_TABLE[int(i)])
        sa, ca, se, ce = math.sin(a), math.cos(a), math.sin(e), math.cos(e)
        rows.append([ca, -sa * se, ce * sa, ce * sa, sa, ca * se, -ce * ca, -ce * ca, 0.0, ce, se, se,
                     0.0, 0.0, 0.0, 1.0])
    return np.asarray(rows, dtype=np.float64)


def alphas_cumprod() -> torch.Tensor:
    """(1000,) float32 ᾱ of the sampler's schedule: β = linspace(√0.00085, √0.02)², in float32."""
    betas = torch.linspace(BETA_START ** 0.5, BETA_END ** 0.5, TRAIN_STEPS, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def ddim_timesteps(steps: int) -> np.ndarray:
    """Ascending timesteps of the official "trailing" DDIM discretization (more than `steps` when
    1000 is not a multiple of it: 3 → [0, 333, 666, 999])."""
    if not 1 <= steps <= TRAIN_STEPS:
        raise WalaError(f"steps must be 1…{TRAIN_STEPS}, not {steps}")
    return np.asarray(range(TRAIN_STEPS, 0, -(TRAIN_STEPS // steps)))[::-1] - 1


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(F, 3, H, W) decoded images in [-1, 1] → (F, H, W, 3) uint8, truncated as the official code."""
    x = torch.clamp((images.float() + 1.0) / 2.0, min=0.0, max=1.0)
    return (255.0 * x.permute(0, 2, 3, 1)).cpu().numpy().astype(np.uint8)


# ---- config ----------------------------------------------------------------------------------------
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
    text_layers: int = 24          # the tower's; the model runs all but the last
    text_heads: int = 16
    text_mlp: int = 4096
    vocab: int = 49408
    context_length: int = 77
    scale_factor: float = SCALE_FACTOR

    def unet(self) -> dict:
        widths = [self.model_channels * m for m in self.channel_mult]
        levels = range(len(widths))
        return dict(sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
                    down_block_types=["CrossAttnDownBlock2D" if i in self.attention_levels else "DownBlock2D"
                                      for i in levels],
                    up_block_types=["CrossAttnUpBlock2D" if i in self.attention_levels else "UpBlock2D"
                                    for i in reversed(levels)],
                    block_out_channels=widths, layers_per_block=self.num_res_blocks,
                    cross_attention_dim=self.context_dim, use_linear_projection=True,
                    attention_head_dim=[w // self.num_head_channels for w in widths],  # heads, in SD2's naming
                    transformer_layers_per_block=self.transformer_depth,
                    class_embed_type="projection", projection_class_embeddings_input_dim=self.camera_dim)

    def vae(self) -> dict:
        widths = [self.vae_ch * m for m in self.vae_ch_mult]
        return dict(in_channels=3, out_channels=3, latent_channels=self.z_channels, block_out_channels=widths,
                    down_block_types=["DownEncoderBlock2D"] * len(widths),
                    up_block_types=["UpDecoderBlock2D"] * len(widths), layers_per_block=self.vae_res_blocks,
                    sample_size=IMAGE_SIZE, scaling_factor=self.scale_factor)

    def text(self) -> dict:
        return dict(vocab_size=self.vocab, hidden_size=self.text_width, intermediate_size=self.text_mlp,
                    num_hidden_layers=self.text_layers - 1, num_attention_heads=self.text_heads,
                    max_position_embeddings=self.context_length, hidden_act="gelu", layer_norm_eps=1e-5,
                    projection_dim=self.text_width, bos_token_id=49406, eos_token_id=49407, pad_token_id=0)

    @classmethod
    def from_yaml(cls, path: Path) -> "TextModelConfig":
        import yaml

        try:
            params = yaml.safe_load(path.read_text())["model"]["params"]
            unet = params["unet_config"]["params"]
            dd = params["first_stage_config"]["params"]["ddconfig"]
            mult = list(unet["channel_mult"])
            config = cls(model_channels=unet["model_channels"], channel_mult=mult,
                         num_res_blocks=unet["num_res_blocks"],
                         attention_levels=[i for i in range(len(mult)) if 2 ** i in unet["attention_resolutions"]],
                         num_head_channels=unet["num_head_channels"], transformer_depth=unet["transformer_depth"],
                         context_dim=unet["context_dim"], camera_dim=unet.get("camera_dim", 16), vae_ch=dd["ch"],
                         vae_ch_mult=list(dd["ch_mult"]), vae_res_blocks=dd["num_res_blocks"],
                         z_channels=dd["z_channels"], scale_factor=params.get("scale_factor", SCALE_FACTOR))
            arch = (params["cond_stage_config"].get("params") or {}).get("arch")
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise WalaError(f"cannot read the model config {path}: {one_line(exc)}") from exc
        text_json = path.parent / f"{arch}.json"
        if arch and text_json.is_file():  # an OpenCLIP model config (the ViT-H-14 one is the default)
            text = json.loads(text_json.read_text())["text_cfg"]
            config.text_width, config.text_layers = text["width"], text["layers"]
            config.text_heads = text.get("heads", text["width"] // 64)
            config.text_mlp = int(text["width"] * text.get("mlp_ratio", 4.0))
            config.vocab, config.context_length = text["vocab_size"], text["context_length"]
        return config

    @classmethod
    def from_shapes(cls, shapes: dict[str, tuple]) -> "TextModelConfig":
        """The SD2 layout read off the tensor shapes (keys without the `model.` prefix); head widths of
        64 (not in the shapes) as SD2.1's UNet and ViT-H/14's text tower."""
        def count(prefix: str) -> int:
            return len({k[len(prefix):].split(".")[0] for k in shapes if k.startswith(prefix)})

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
            return cls(model_channels=mc, channel_mult=mult, num_res_blocks=blocks, attention_levels=attention,
                       transformer_depth=depth, context_dim=context,
                       camera_dim=shapes[UNET + "camera_embed.0.weight"][1], vae_ch=vae_ch, vae_ch_mult=vae_mult,
                       vae_res_blocks=count(VAE + "decoder.up.0.block.") - 1,
                       z_channels=shapes[VAE + "decoder.conv_in.weight"][1], text_width=width,
                       text_layers=count(TEXT + "transformer.resblocks."), text_heads=width // 64,
                       text_mlp=shapes[TEXT + "transformer.resblocks.0.mlp.c_fc.weight"][0], vocab=vocab,
                       context_length=shapes[TEXT + "positional_embedding"][0])
        except (KeyError, StopIteration, IndexError, ZeroDivisionError) as exc:
            raise WalaError(f"the checkpoint is not a text-to-views model in the SD2 layout "
                            f"(no {exc} among its tensors)") from exc


# ---- the multi-view self-attention ---------------------------------------------------------------
class MultiViewSelfAttention:
    """attn1 processor: tokens of the `frames` views of a sample attend to each other. One instance
    is shared by all attn1 layers; set `frames` before each UNet call (1 = the stock attention)."""

    def __init__(self):
        self.frames = 1

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs) -> torch.Tensor:
        rows, length, channels = hidden_states.shape
        if rows % self.frames:
            raise WalaError(f"a batch of {rows} images is not whole samples of {self.frames} views")
        x = hidden_states.reshape(rows // self.frames, self.frames * length, channels)
        heads = attn.heads
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (attn.to_q(x), attn.to_k(x), attn.to_v(x)))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        out = attn.to_out[1](attn.to_out[0](out))
        return out.reshape(rows, length, -1)


# ---- loading -------------------------------------------------------------------------------------
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
    out = {"embeddings.token_embedding.weight": state["token_embedding.weight"],
           "embeddings.position_embedding.weight": state["positional_embedding"],
           "final_layer_norm.weight": state["ln_final.weight"],
           "final_layer_norm.bias": state["ln_final.bias"]}
    names = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for i in range(config.text_layers - 1):
        src, dst = f"transformer.resblocks.{i}.", f"encoder.layers.{i}."
        for old, new in names.items():
            for p in ("weight", "bias"):
                out[f"{dst}{new}.{p}"] = state[f"{src}{old}.{p}"]
        for p in ("weight", "bias"):
            for name, part in zip("qkv", state[f"{src}attn.in_proj_{p}"].chunk(3)):
                out[f"{dst}self_attn.{name}_proj.{p}"] = part
    return out


def _load(module: nn.Module, state: dict[str, torch.Tensor], source: str, what: str) -> None:
    expected = module.state_dict()
    prefix = "text_model." if what == "text_encoder" and all(k.startswith("text_model.") for k in expected) else ""
    state = {k if k.startswith(prefix) else prefix + k: v for k, v in state.items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        key = missing[0] if missing else unexpected[0]
        raise WalaError(f"{source}: the {what} {'misses' if missing else 'has an unexpected'} tensor {key}"
                        f" ({len(missing)} missing, {len(unexpected)} unexpected; the config does not describe it)")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise WalaError(f"{source}: the {what}'s {k} has shape {tuple(v.shape)}, the config gives "
                            f"{tuple(expected[k].shape)}")
    from wala.checkpoints import owned

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
    tower = {k[len(TEXT):]: v for k, v in parts[TEXT].items()}
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
    from wala.checkpoints import read_official_checkpoint

    state = read_official_checkpoint(path)
    return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}


def is_text_model(path: str | Path) -> bool:
    """A text-to-views model: a `wala convert` directory of one, a directory with checkpoint.ckpt and no
    args.json (the released WaLa-MVDream downloads), or a .ckpt file."""
    path = Path(path)
    if path.is_dir():
        return (path / CONVERTED).is_file() or ((path / "checkpoint.ckpt").is_file() and not (path / "args.json").exists())
    return path.suffix == ".ckpt"


def describe_text_model(directory: Path) -> tuple[str, int]:
    """(source, parameters) of a text-to-views folder from its config alone (built on the meta device):
    the converted config, the yaml beside the checkpoint, or the released layout."""
    if (directory / CONVERTED).is_file():
        info = json.loads((directory / CONVERTED).read_text())
        config, source = TextModelConfig(**info["config"]), info.get("source", "wala")
    else:
        found = _find_config(directory)
        config, source = (TextModelConfig.from_yaml(found) if found else TextModelConfig()), "official"
    return source, sum(p.numel() for m in build_components(config) for p in m.parameters())


def _find_config(directory: Path) -> Path | None:
    found = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    return found[0] if found else None


# ---- the model -----------------------------------------------------------------------------------
@dataclass
class TextViews:
    prompt: str              # what the model was given (after the ", 3d asset" rule)
    views: tuple[int, ...]   # view ids, in image order
    images: np.ndarray       # (F, 256, 256, 3) uint8
    latents: torch.Tensor    # (F, 4, 32, 32) the sampler's output (before 1/0.18215)
    seed: int

    def write(self, directory: str | Path) -> list[Path]:
        """`DIR/<view id>.png`, RGB: named as the DM6/DM4/RGB4 models read them."""
        from wala.io.mesh import write_atomic
        from wala.render.preview import preview_png

        paths = [Path(directory) / f"{view}.png" for view in self.views]
        for path, image in zip(paths, self.images):
            write_atomic(path, preview_png([image]))
        return paths


class TextToViews(nn.Module):
    """The released text → depth maps (WaLa-MVDream-DM6) or → RGB views (WaLa-MVDream-RGB4) model.

        model = TextToViews.load("WaLa-MVDream-DM6")            # a directory, checkpoint or converted one
        out = model("a wooden chair", views=(3, 6, 10, 26, 49, 50), seed=42)
        out.write("maps")                                         # maps/3.png … maps/50.png
    """

    def __init__(self, unet: nn.Module, vae: nn.Module, text_encoder: nn.Module, config: TextModelConfig,
                 source: str = "official"):
        super().__init__()
        self.unet, self.vae, self.text_encoder = unet, vae, text_encoder
        self.config, self.source = config, source
        self.attention = MultiViewSelfAttention()
        from diffusers.models.attention_processor import AttnProcessor2_0

        unet.set_attn_processor({name: self.attention if name.endswith("attn1.processor") else AttnProcessor2_0()
                                 for name in unet.attn_processors})
        self.eval().requires_grad_(False)

    # -- loading and saving
    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> "TextToViews":
        """A released checkpoint (`checkpoint.ckpt`, or the directory holding it, with an optional
        official-layout `*.yaml` beside it) or a `wala convert` directory."""
        from wala.text import require

        require("diffusers", "transformers", "ftfy", "regex")
        from wala.models import resolve_model

        path = resolve_model(path)  # a name finds the folder on the model search path (`wala models`)
        if path.is_dir() and (path / CONVERTED).is_file():
            model = cls._load_converted(path)
        else:
            ckpt = path / "checkpoint.ckpt" if path.is_dir() else path
            if not ckpt.is_file():
                raise WalaError(f"text model not found: {path} (a directory with checkpoint.ckpt, the file "
                                f"itself, or a `wala convert` directory)")
            state = read_text_checkpoint(ckpt)
            yaml_path = _find_config(ckpt.parent)
            config = (TextModelConfig.from_yaml(yaml_path) if yaml_path
                      else TextModelConfig.from_shapes({k: tuple(v.shape) for k, v in state.items()}))
            states = convert_official(state, config, str(ckpt))
            unet, vae, text = build_components(config)
            for module, (name, part) in zip((unet, vae, text), states.items()):
                _load(module, part, str(ckpt), name)
            model = cls(unet, vae, text, config, "official")
        return model.to(device=device, dtype=dtype)

    def save(self, directory: str | Path, storage: torch.dtype | None = None) -> Path:
        """A diffusers-style directory: unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors),
        text_encoder/ (config.json + model.safetensors), and wala_text.json; every file written atomically.
        The subfolders load with diffusers' and transformers' `from_pretrained` as well."""
        from dataclasses import asdict

        from wala.io.mesh import write_atomic, write_safetensors

        directory = Path(directory)
        files = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors",
                 "text_encoder": "model.safetensors"}
        for name, file in files.items():
            module = getattr(self, name)
            tensors = {k: (v.to(storage) if storage is not None else v).detach().contiguous().cpu()
                       for k, v in module.state_dict().items()}
            write_safetensors(directory / name / file, tensors, {"format": "pt"})
            write_atomic(directory / name / "config.json", module.config.to_json_string().encode()
                         if hasattr(module.config, "to_json_string") else json.dumps(dict(module.config), indent=2).encode())
        write_atomic(directory / CONVERTED, (json.dumps({"wala": "text-to-views", "source": self.source,
                                                         "config": asdict(self.config)}, indent=2) + "\n").encode())
        return directory

    @classmethod
    def _load_converted(cls, directory: Path) -> "TextToViews":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            info = json.loads((directory / CONVERTED).read_text())
            config = TextModelConfig(**info["config"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise WalaError(f"cannot read {directory / CONVERTED}: {one_line(exc)}") from exc
        modules = build_components(config)
        files = ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors")
        for module, file, name in zip(modules, files, ("unet", "vae", "text_encoder")):
            try:
                state = load_file(str(directory / file))
            except (SafetensorError, OSError) as exc:
                raise WalaError(f"corrupt or missing {directory / file}: {one_line(exc)}") from exc
            _load(module, state, str(directory / file), name)
        return cls(*modules, config, info.get("source", "wala"))

    # -- the three stages
    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, 77, width) context: the tower's penultimate block, then its final norm, every position."""
        from wala.text.tokenizer import clip_tokenizer

        ids = torch.from_numpy(clip_tokenizer()(prompts, self.config.context_length)).to(self.device)
        return self.text_encoder(input_ids=ids).last_hidden_state

    @torch.no_grad()
    def eps(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, camera: torch.Tensor | None,
            frames: int) -> torch.Tensor:
        """One UNet call on (B·F, 4, 32, 32); `frames` views of a sample attend to each other."""
        self.attention.frames = frames
        dtype = self.dtype
        return self.unet(x.to(dtype), t, encoder_hidden_states=context.to(dtype),
                         class_labels=None if camera is None else camera.to(self.device, dtype)).sample

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(F, 4, 32, 32) sampler output → (F, 3, 256, 256) in about [-1, 1], one view at a time."""
        return torch.cat([self.vae.decode((1.0 / self.config.scale_factor) * z[None].to(self.dtype)).sample
                          for z in latents])

    @torch.no_grad()
    def __call__(self, text: str, views=VIEWS["depth"], steps: int = 50, guidance: float = 10.0, seed: int = 0,
                 official_prompt: bool = False, on_step: Callable[[int, int], None] | None = None) -> TextViews:
        """Images of `text` at `views` (ids of the 55-view table; the model was trained on 6 for depth,
        4 for RGB). `on_step(i, n)` after each DDIM step."""
        views = tuple(int(v) for v in views)
        if not text or not text.strip():
            raise WalaError("the text is empty")
        prompt = prompt_text(text, official_prompt)
        frames = len(views)
        camera = torch.from_numpy(cameras(views)).float().to(self.device)
        context = self.encode_text(["", prompt])  # negative (empty) prompt first
        context = torch.cat([context[:1].expand(frames, -1, -1), context[1:].expand(frames, -1, -1)])
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(frames, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE, generator=generator).to(self.device)
        latents = self.sample(x, context, torch.cat([camera, camera]), frames, steps, guidance, on_step)
        images = to_uint8(self.decode(latents))
        return TextViews(prompt, views, images, latents.float().cpu(), seed)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, context: torch.Tensor, camera: torch.Tensor, frames: int, steps: int,
               guidance: float, on_step: Callable[[int, int], None] | None = None,
               trace: Callable[[dict], None] | None = None, start_at: int = 0,
               stop_after: int | None = None) -> torch.Tensor:
        """DDIM (eta 0) from x_T (F, 4, 32, 32) with classifier-free guidance; `context` and `camera`
        are the 2F rows [unconditional; conditional]. `trace` gets each step's tensors; `start_at`
        (x is then that step's input) and `stop_after` run part of the chain (tests)."""
        abar = alphas_cumprod()
        timesteps = ddim_timesteps(steps)
        x = x.float()
        order = list(range(len(timesteps) - 1, -1, -1))  # table indices, largest timestep first
        end = len(order) if stop_after is None else start_at + stop_after
        for n, k in enumerate(order[start_at:end], start=start_at):
            t = int(timesteps[k])
            a_t = abar[t].to(x.device)
            a_prev = abar[int(timesteps[k - 1]) if k > 0 else 0].to(x.device)
            tt = torch.full((2 * frames,), t, dtype=torch.long, device=x.device)
            e_u, e_c = self.eps(torch.cat([x, x]), tt, context, camera, frames).float().chunk(2)
            e = e_u + guidance * (e_c - e_u)
            x0 = (x - (1.0 - a_t).sqrt() * e) / a_t.sqrt()
            x = a_prev.sqrt() * x0 + (1.0 - a_prev).sqrt() * e
            if trace:
                trace({"t": t, "eps": e, "pred_x0": x0, "x_prev": x})
            if on_step:
                on_step(n + 1, len(timesteps))
        return x
