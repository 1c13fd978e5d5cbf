"""Text → multi-view images: the released WaLa-MVDream models (six depth maps, or four RGB views) on
diffusers and transformers components (OFFICIAL-TEXT.md).

Reading and writing the checkpoint and the component layout: `wala.text.checkpoint`; the config: `wala.text.config`.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.errors import WalaError
from wala.hub.paths import TEXT_MARKER
from wala.render.views import VIEW_TABLE
from wala.text.checkpoint import load_converted, load_official_text, save_converted
from wala.text.config import LATENT_CHANNELS, TextModelConfig

TRAIN_STEPS = 1000
BETA_START, BETA_END = 0.00085, 0.02
VIEWS = {"depth": (3, 6, 10, 26, 49, 50), "rgb": (0, 6, 10, 26)}  # --text_to_dm6, --text_to_mv
SUFFIX = ", 3d asset"


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
        rows.append(
            [ca, -sa * se, ce * sa, ce * sa, sa, ca * se, -ce * ca, -ce * ca, 0.0, ce, se, se, 0.0, 0.0, 0.0, 1.0]
        )
    return np.asarray(rows, dtype=np.float64)


def alphas_cumprod() -> torch.Tensor:
    """(1000,) float32 ᾱ of the sampler's schedule: β = linspace(√0.00085, √0.02)², in float32."""
    betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, TRAIN_STEPS, dtype=torch.float32) ** 2
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


# ---- the multi-view self-attention ---------------------------------------------------------------
class MultiViewSelfAttention:
    """attn1 processor: tokens of the `frames` views of a sample attend to each other. One instance
    is shared by all attn1 layers; set `frames` before each UNet call (1 = the stock attention)."""

    def __init__(self):
        self.frames = 1

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        rows, length, channels = hidden_states.shape
        if rows % self.frames:
            raise WalaError(f"a batch of {rows} images is not whole samples of {self.frames} views")
        x = hidden_states.reshape(rows // self.frames, self.frames * length, channels)
        heads = attn.heads
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (attn.to_q(x), attn.to_k(x), attn.to_v(x)))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        out = attn.to_out[1](attn.to_out[0](out))
        return out.reshape(rows, length, -1)


def install_multiview_attention(unet: nn.Module) -> MultiViewSelfAttention:
    """Gives every attn1 of `unet` one shared MultiViewSelfAttention (returned: set its `frames`), every
    other attention the stock processor."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    attention = MultiViewSelfAttention()
    unet.set_attn_processor(
        {name: attention if name.endswith("attn1.processor") else AttnProcessor2_0() for name in unet.attn_processors}
    )
    return attention


# ---- the model -----------------------------------------------------------------------------------
@dataclass
class TextViews:
    prompt: str  # what the model was given (after the ", 3d asset" rule)
    views: tuple[int, ...]  # view ids, in image order
    images: np.ndarray  # (F, S, S, 3) uint8; S = the model's image_size (256 released)
    latents: torch.Tensor  # (F, 4, S/8, S/8) the sampler's output (before 1/scale_factor)
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

    def __init__(
        self,
        unet: nn.Module,
        vae: nn.Module,
        text_encoder: nn.Module,
        config: TextModelConfig,
        source: str = "official",
    ):
        super().__init__()
        self.unet, self.vae, self.text_encoder = unet, vae, text_encoder
        self.config, self.source = config, source
        self.attention = install_multiview_attention(unet)
        self.eval().requires_grad_(False)

    # -- loading and saving
    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> TextToViews:
        """A released checkpoint (`checkpoint.ckpt`, or the directory holding it, with an optional
        official-layout `*.yaml` beside it) or a `wala convert` directory."""
        from wala.text import require

        require("diffusers", "transformers", "ftfy", "regex")
        from wala.hub.paths import resolve_model

        path = resolve_model(path)  # a name finds the folder on the model search path (`wala models`)
        if path.is_dir() and (path / TEXT_MARKER).is_file():
            modules, config, source = load_converted(path)
        else:
            ckpt = path / "checkpoint.ckpt" if path.is_dir() else path
            if not ckpt.is_file():
                raise WalaError(
                    f"text model not found: {path} (a directory with checkpoint.ckpt, the file "
                    f"itself, or a `wala convert` directory)"
                )
            (modules, config), source = load_official_text(ckpt), "official"
        return cls(*modules, config, source).to(device=device, dtype=dtype)

    def save(self, directory: str | Path, storage: torch.dtype | None = None) -> Path:
        """A diffusers-style folder (`wala.text.checkpoint.save_converted`); `storage` e.g. float16."""
        return save_converted(
            (self.unet, self.vae, self.text_encoder), self.config, self.source, Path(directory), storage
        )

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
    def eps(
        self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, camera: torch.Tensor, frames: int
    ) -> torch.Tensor:
        """One UNet call on (B·F, 4, 32, 32) with each image's (16,) camera; `frames` views of a sample
        attend to each other."""
        self.attention.frames = frames
        dtype = self.dtype
        return self.unet(
            x.to(dtype), t, encoder_hidden_states=context.to(dtype), class_labels=camera.to(self.device, dtype)
        ).sample

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(F, 4, 32, 32) sampler output → (F, 3, 256, 256) in about [-1, 1] (released sizes), one view at a time."""
        return torch.cat(
            [self.vae.decode((1.0 / self.config.scale_factor) * z[None].to(self.dtype)).sample for z in latents]
        )

    @torch.no_grad()
    def __call__(
        self,
        text: str,
        views=VIEWS["depth"],
        steps: int = 50,
        guidance: float = 10.0,
        seed: int = 0,
        official_prompt: bool = False,
        on_step: Callable[[int, int], None] | None = None,
    ) -> TextViews:
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
        size = self.config.latent_size
        x = torch.randn(frames, LATENT_CHANNELS, size, size, generator=generator).to(self.device)
        latents = self.sample(x, context, torch.cat([camera, camera]), frames, steps, guidance, on_step)
        images = to_uint8(self.decode(latents))
        return TextViews(prompt, views, images, latents.float().cpu(), seed)

    @torch.no_grad()
    def sample(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        camera: torch.Tensor,
        frames: int,
        steps: int,
        guidance: float,
        on_step: Callable[[int, int], None] | None = None,
        trace: Callable[[dict], None] | None = None,
        start_at: int = 0,
        stop_after: int | None = None,
    ) -> torch.Tensor:
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
