"""`wala train-text2views CONFIG`: fine-tunes (or, for tests, trains from scratch) the multi-view text →
depth-maps model of `wala.text.multiview` on prepared shapes, with the trainer every wala model uses.

Data (the paper's supplement E): per shape the six DM6 views' depth maps from wala's renderer
(`wala prep --views dm6`, stored as the 224² crops the 3D models read), one square crop box around
the object across all six maps applied to all of them, resized to `image_size` (256², the released
model's); and the shape's captions (`wala prep --captions`: the text in each sample's JSON; or
`wala caption`'s `captions/*.jsonl`), given to the model as it gives them at sampling (", 3d asset"
unless "3d" occurs), dropped to the empty prompt with probability `caption_drop` so classifier-free
guidance has an unconditional model. A depth map is gray; the model sees it as RGB in [-1, 1].

Objective: ε-prediction MSE on the frozen VAE's latents (a draw of its posterior, × 0.18215) of the
six views, one timestep per shape shared by its views, on the schedule the released sampler uses
(scaled-linear 0.00085 → 0.02); the views of a shape attend to each other and each carries its
camera. Trained: the UNet with its camera embedding. Frozen: the VAE and the text tower.

A run folder holds `base/` (the model it started from, as a `wala convert` folder: the frozen parts
come from it on resume and on export), the trainer's checkpoints (the UNet's weights, EMA, optimizer)
and, at the end, `model/`: the EMA weights as a converted folder that `wala text2depth` and
`wala generate DM6 --text-model` load as they load the released model (`export_text_views` for any
checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from wala.data.shards import PerShape
from wala.errors import WalaError
from wala.hub.paths import TEXT_MARKER
from wala.text.checkpoint import build_components, load_converted, save_converted
from wala.text.config import IMAGE_SIZE, TextModelConfig
from wala.text.multiview import (
    TRAIN_STEPS,
    VIEWS,
    TextToViews,
    alphas_cumprod,
    cameras,
    install_multiview_attention,
    prompt_text,
)
from wala.train.trainer import TrainConfig, Trainer, run_folder

KIND = "text2views"
SOURCE = "wala train-text2views"
EVAL_TIMESTEP_FRACTIONS = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class TextViewsTrainConfig:
    init: str = ""  # a released model (name, folder, checkpoint.ckpt) or a converted folder; "": `model` from scratch
    model: TextModelConfig = field(default_factory=TextModelConfig)  # from scratch only (tests, ablations)
    views: tuple[int, ...] = VIEWS["depth"]  # ids of the 55-view table, stored by `wala prep --views`
    image_size: int = IMAGE_SIZE  # the maps' side once cropped: 256 as released (a multiple of the VAE's 8)
    crop: bool = True  # one square box around the object in all views (the paper's); False: the render's framing
    crop_margin: float = 0.0  # around that box, a fraction of its side on each side
    caption_drop: float = 0.1  # probability of the empty prompt (classifier-free guidance)
    checkpointing: bool = False  # gradient checkpointing in the UNet (memory for compute)
    vae_steps: int = 0  # from scratch only: first fit the new VAE to the run's maps for this many steps
    vae_lr: float = 1e-3
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if not 0.0 <= self.caption_drop <= 1.0:
            raise WalaError(f"caption_drop must be in [0, 1], got {self.caption_drop}")
        if self.image_size < 8 or self.image_size % 8:
            raise WalaError(f"image_size must be a multiple of 8 (the VAE's stride), got {self.image_size}")
        if not 0.0 <= self.crop_margin <= 1.0:
            raise WalaError(f"crop_margin must be in [0, 1], got {self.crop_margin}")
        if self.train.init_from:
            raise WalaError("a text-to-views run starts from `init` (a text model), not train.init_from")
        if self.vae_steps < 0 or (self.vae_steps and self.init):
            raise WalaError("vae_steps fits a new VAE (from scratch only); a released model's VAE stays frozen")
        cameras(self.views)  # ids outside the table refused here


# ---- data ----------------------------------------------------------------------------------------
def shared_crop(maps: np.ndarray, size: int, crop: bool = True, margin: float = 0.0) -> torch.Tensor:
    """(F, H, W) uint8 depth maps (background 0) → (F, size, size) uint8: the square box around the
    object's pixels in any map (grown by `margin` of its side on each side, zeros beyond the image)
    cut from every map, then resized (bilinear, antialiased). `crop` False: the whole maps, resized."""
    maps = torch.from_numpy(np.ascontiguousarray(maps))
    on = (maps > 0).any(0)
    if crop and on.any():
        rows, cols = on.any(1).nonzero()[:, 0], on.any(0).nonzero()[:, 0]
        side = max(int(rows[-1] - rows[0]), int(cols[-1] - cols[0])) + 1
        side = max(1, round(side * (1 + 2 * margin)))
        top = (int(rows[0] + rows[-1]) + 1 - side) // 2
        left = (int(cols[0] + cols[-1]) + 1 - side) // 2
        height, width = maps.shape[1:]
        pad = max(0, -top, -left, top + side - height, left + side - width)
        maps = F.pad(maps, (pad, pad, pad, pad))[:, top + pad : top + pad + side, left + pad : left + pad + side]
    resized = F.interpolate(maps[:, None].float(), size=(size, size), mode="bilinear", antialias=True)
    return resized[:, 0].round().clamp(0, 255).to(torch.uint8)


def shape_captions(shapes) -> list[list[str]]:
    """Each sample's caption texts, from its JSON: what `wala prep --captions` stored, or what `wala caption`
    wrote over it (a shape it could not caption trains on the empty prompt alone)."""
    out = []
    for record in shapes.records:
        texts = record.get("captions")
        if not texts:
            raise WalaError(
                f"{record['key']} in {shapes.folder} has no caption text: prepare the data with "
                f"`wala prep … --captions` (this version) or caption it with `wala caption`"
            )
        out.append([t for t in texts if t.strip()] or [""])
    return out


class ViewsDataset(PerShape):
    """Item i → ({"maps": (F, S, S) uint8 cropped depth maps, "tokens": (K, 77) CLIP ids of the K
    captions as prompted}, {"key"})."""

    def __init__(self, shapes, config: TextViewsTrainConfig, context_length: int):
        names = [str(v) for v in config.views]
        missing = [n for n in names if n not in shapes.views]
        if missing:
            raise WalaError(
                f"{shapes.folder} has no depth maps at view(s) {', '.join(missing)}: prepare it with "
                f"`wala prep … --views dm6 --captions` (it stores {shapes.views or 'no views'})"
            )
        self.shapes, self.config, self.context_length = shapes, config, context_length
        self.picked = [shapes.views.index(n) for n in names]
        self.captions = shape_captions(shapes)

    def __getitem__(self, i: int):
        from wala.text.tokenizer import clip_tokenizer

        c = self.config
        maps = self.shapes.arrays(i, ("depth",))["depth"][self.picked]  # (F, 224, 224)
        prompts = [prompt_text(text) for text in self.captions[i]]
        tokens = torch.from_numpy(clip_tokenizer()(prompts, self.context_length)).long()
        return {"maps": shared_crop(maps, c.image_size, c.crop, c.crop_margin), "tokens": tokens}, {
            "key": self.shapes.records[i]["key"]
        }


# ---- the model: trained UNet, frozen encoders ----------------------------------------------------
class MultiViewDenoiser(nn.Module):
    """What trains: the UNet with its camera embedding, its views attending to each other."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet
        self.attention = install_multiview_attention(unet)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, camera: torch.Tensor, frames: int
    ) -> torch.Tensor:
        """ε of (B·F, 4, h, w) latents at (B·F,) timesteps, (B·F, 77, W) contexts, (B·F, 16) cameras."""
        self.attention.frames = frames
        return self.unet(x, t, encoder_hidden_states=context, class_labels=camera).sample


def vae_input(maps: torch.Tensor) -> torch.Tensor:
    """(N, S, S) uint8 depth maps → (N, 3, S, S) in [-1, 1]: gray as RGB, as the model draws its maps."""
    return (maps.float() / 127.5 - 1.0)[:, None].expand(-1, 3, -1, -1)


class FrozenEncoders:
    """The VAE (images → latents) and the text tower (ids → context), never trained; kept out of the
    trainer's model so its EMA, optimizer and checkpoints hold the UNet alone."""

    def __init__(self, vae: nn.Module, text_encoder: nn.Module, scale_factor: float):
        self.vae = vae.eval().requires_grad_(False)
        self.text_encoder = text_encoder.eval().requires_grad_(False)
        self.scale_factor = scale_factor

    def to(self, device: torch.device) -> FrozenEncoders:
        self.vae.to(device)
        self.text_encoder.to(device)
        return self

    @torch.no_grad()
    def context(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 77) ids → (B, 77, W): the penultimate block then the final norm, as at sampling."""
        return self.text_encoder(input_ids=tokens.to(self.device)).last_hidden_state

    @torch.no_grad()
    def latents(self, maps: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, F, S, S) uint8 maps → (B·F, 4, S/8, S/8) scaled latents: a posterior draw (its mean
        without a generator)."""
        posterior = self.vae.encode(vae_input(maps.flatten(0, 1).to(self.device))).latent_dist
        z = posterior.mean
        if generator is not None:
            z = z + posterior.std * torch.randn(z.shape, generator=generator).to(z.device, z.dtype)
        return self.scale_factor * z.float()

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device


def view_cameras(views, count: int, device) -> torch.Tensor:
    """(count·F, 16) float32 cameras: the views' for each of `count` shapes."""
    return torch.from_numpy(cameras(views)).float().repeat(count, 1).to(device)


def denoising_loss(
    model: nn.Module,
    batch: dict,
    frozen: FrozenEncoders,
    config: TextViewsTrainConfig,
    empty: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """ε-MSE of one batch: a caption per shape (the empty prompt `empty` (77,) with probability
    caption_drop), one timestep per shape for all its views, noise and posterior draws from `generator`."""
    maps, tokens = batch["maps"], batch["tokens"]  # (B, F, S, S) uint8, (B, K, 77)
    shapes, frames = maps.shape[:2]
    device = maps.device
    frozen.to(device)
    chosen = tokens[torch.arange(shapes), torch.randint(tokens.shape[1], (shapes,), generator=generator)]
    dropped = (torch.rand(shapes, generator=generator) < config.caption_drop).to(device)
    chosen = torch.where(dropped[:, None], empty.to(device), chosen)
    context = frozen.context(chosen).repeat_interleave(frames, 0)
    x0 = frozen.latents(maps, generator)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = torch.randint(TRAIN_STEPS, (shapes,), generator=generator).repeat_interleave(frames).to(device)
    abar = alphas_cumprod().to(device)[t].view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    eps = model(x_t, t, context, view_cameras(config.views, shapes, device), frames)
    return F.mse_loss(eps.float(), noise)


@torch.no_grad()
def validation_loss(
    model: MultiViewDenoiser,
    dataset: ViewsDataset,
    frozen: FrozenEncoders,
    config: TextViewsTrainConfig,
    count: int,
    chunk: int = 4,
    seed: int = 0,
) -> dict:
    """ε-MSE on the first `count` shapes at fixed timesteps, with fixed noise, the posterior means and
    each shape's first caption: comparable across steps and runs."""
    model.eval()
    device = next(model.parameters()).device
    frozen.to(device)
    items = [dataset[i][0] for i in range(min(count, len(dataset)))]
    totals = dict.fromkeys(EVAL_TIMESTEP_FRACTIONS, 0.0)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        maps = torch.stack([item["maps"] for item in part]).to(device)
        shapes, frames = maps.shape[:2]
        x0 = frozen.latents(maps, None)
        context = frozen.context(torch.stack([item["tokens"][0] for item in part])).repeat_interleave(frames, 0)
        camera = view_cameras(config.views, shapes, device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        for fraction in EVAL_TIMESTEP_FRACTIONS:
            t = torch.full((len(x0),), int(fraction * (TRAIN_STEPS - 1)), dtype=torch.long, device=device)
            abar = alphas_cumprod().to(device)[t].view(-1, 1, 1, 1)
            eps = model(abar.sqrt() * x0 + (1 - abar).sqrt() * noise, t, context, camera, frames)
            totals[fraction] += float(F.mse_loss(eps.float(), noise, reduction="sum")) / noise[0].numel()
    result = {f"mse@{f:g}": total / len(items) / frames for f, total in totals.items()}
    result["mse"] = sum(result.values()) / len(result)
    return result


# ---- a new VAE, for runs from scratch -------------------------------------------------------------
KL_WEIGHT = 1e-6  # Stable Diffusion's weight on its autoencoder's KL term


def fit_vae(vae: nn.Module, dataset: ViewsDataset, config: TextViewsTrainConfig, log: Path) -> float:
    """Fits a new VAE to the run's maps for `vae_steps` (per-pixel MSE of a posterior draw's decoding +
    KL_WEIGHT·KL, Adam at `vae_lr`, train.batch_size shapes' views a step, seeded by train.seed; a row to
    `log` every train.log_every steps). Returns the scale factor giving the maps' latents unit variance,
    as Stable Diffusion chose its 0.18215. The released models keep their VAE: only a new one needs this."""
    from wala.train import distributed as D

    train = config.train
    device = D.setup(train.device).device
    generator = torch.Generator().manual_seed(train.seed)
    vae.to(device).train().requires_grad_(True)
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.vae_lr)

    def images(indices) -> torch.Tensor:
        return vae_input(torch.stack([dataset[int(i)][0]["maps"] for i in indices]).flatten(0, 1).to(device))

    with open(log, "w") as rows:
        for step in range(1, config.vae_steps + 1):
            x = images(torch.randint(len(dataset), (train.batch_size,), generator=generator))
            posterior = vae.encode(x).latent_dist
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(device)
            mse = F.mse_loss(vae.decode(z).sample, x)
            kl = posterior.kl().mean()
            optimizer.zero_grad(set_to_none=True)
            (mse + KL_WEIGHT * kl).backward()
            optimizer.step()
            if step % train.log_every == 0 or step == config.vae_steps:
                rows.write(json.dumps({"step": step, "mse": mse.item(), "kl": kl.item()}) + "\n")
                rows.flush()  # progress to watch
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        means = [
            vae.encode(images(range(i, min(i + 8, len(dataset))))).latent_dist.mean for i in range(0, len(dataset), 8)
        ]
    return float(1.0 / torch.cat(means).float().std())


# ---- the run -------------------------------------------------------------------------------------
def initial_components(config: TextViewsTrainConfig, base: Path) -> tuple[tuple, TextModelConfig]:
    """(UNet, VAE, text encoder) and config a run starts from: its own `base/` when resumed, else the
    `init` model, else new ones from `model` seeded by train.seed (the same on every rank)."""
    if (base / TEXT_MARKER).is_file():
        modules, model_config, _ = load_converted(base)
        return modules, model_config
    if config.init:
        loaded = TextToViews.load(config.init)
        return (loaded.unet, loaded.vae, loaded.text_encoder), loaded.config
    torch.manual_seed(config.train.seed)
    return build_components(config.model, empty=False), config.model


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_text_views(config: TextViewsTrainConfig) -> dict:
    """Runs (or resumes) the training; returns the trainer's last logs and "model": the exported folder."""
    from wala.io import store
    from wala.text import require
    from wala.text.tokenizer import clip_tokenizer

    require("diffusers", "transformers", "ftfy", "regex")
    train = config.train
    if not train.data:
        raise WalaError("train.data must name a folder written by `wala prep … --views dm6 --captions`")
    out = Path(train.out) if not store.is_url(train.out) else run_folder(train.out)
    base = out / "base"
    resumed = (base / TEXT_MARKER).is_file()
    (unet, vae, text_encoder), model_config = initial_components(config, base)
    if not resumed:  # it draws maps at the size it trains on
        model_config = dataclasses.replace(model_config, image_size=config.image_size)
    for module in (unet, vae, text_encoder):
        module.float().requires_grad_(False)
    dataset = ViewsDataset(train.open_dataset(train.data), config, model_config.context_length)
    if config.vae_steps and not resumed:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise WalaError("vae_steps fits a new VAE in one process, not under torchrun")
        out.mkdir(parents=True, exist_ok=True)
        scale = fit_vae(vae, dataset, config, out / "vae.jsonl")
        model_config = dataclasses.replace(model_config, scale_factor=scale)
    if _is_main_process() and not resumed:
        save_converted((unet, vae, text_encoder), model_config, SOURCE, base)
    unet.train().requires_grad_(True)
    if config.checkpointing:
        unet.enable_gradient_checkpointing()
    model = MultiViewDenoiser(unet)
    frozen = FrozenEncoders(vae, text_encoder, model_config.scale_factor)
    eval_set = (
        ViewsDataset(train.open_dataset(train.eval_data), config, model_config.context_length)
        if train.eval_data
        else dataset
    )
    empty = torch.from_numpy(clip_tokenizer()([""], model_config.context_length)[0]).long()
    run_config = {"kind": KIND, **dataclasses.asdict(dataclasses.replace(config, model=model_config))}

    def step(m, batch, generator):
        return denoising_loss(m, batch, frozen, config, empty, generator), {}, None

    def evaluate(ema_model):
        return validation_loss(ema_model, eval_set, frozen, config, train.eval_samples, chunk=train.batch_size)

    def shard_units(m):
        return [*m.unet.down_blocks, m.unet.mid_block, *m.unet.up_blocks]

    train = dataclasses.replace(train, init_from="")  # the starting weights are already in the model
    logs = Trainer(KIND, model, run_config, train, dataset, step, evaluate, shard_units=shard_units).run()
    if _is_main_process():
        from wala.train.checkpoint import latest_checkpoint

        logs["model"] = str(export_text_views(latest_checkpoint(out), out / "model"))
    return logs


def export_text_views(checkpoint: str | Path, directory: str | Path | None = None, weights: str = "ema") -> Path:
    """A train-text2views checkpoint's `weights` ("ema" or "model") → a converted folder (default: `model/`
    beside it) with the run's frozen VAE and text tower from its `base/`."""
    from wala.train.checkpoint import load_checkpoint

    checkpoint = Path(checkpoint)
    _, _, tensors = load_checkpoint(checkpoint, KIND)
    base = checkpoint.parent / "base"
    if not (base / TEXT_MARKER).is_file():
        raise WalaError(f"{base} is missing: the run's starting model (its frozen VAE and text tower) is needed")
    (unet, vae, text_encoder), model_config, _ = load_converted(base)
    state = {k[len("unet.") :]: v for k, v in tensors[weights].items() if k.startswith("unet.")}
    try:
        unet.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WalaError(f"{checkpoint} does not fit the model in {base}: {str(exc).splitlines()[0]}") from None
    return save_converted((unet, vae, text_encoder), model_config, SOURCE, Path(directory or base.parent / "model"))
