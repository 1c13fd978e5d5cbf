"""`wala train-diffusion CONFIG`: the latent denoiser (and its condition encoder) on a prepared
dataset, in the latent space of a trained VQ-VAE.

Latents are encoded once with the frozen autoencoder and cached beside the run
(`latents-train.safetensors`, keyed by the autoencoder file's hash and the sample keys); their
per-channel mean and std are written into the model config, so a checkpoint carries its own
normalization.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from wala.config import DiffusionConfig, from_dict
from wala.data.shards import WaveletTreeDataset
from wala.diffusion.model import LatentDiffusion
from wala.diffusion.schedule import add_noise, cosine_alphas_cumprod
from wala.errors import WalaError
from wala.io.mesh import write_atomic
from wala.train.autoencoder import load_autoencoder
from wala.train.checkpoint import load_checkpoint, load_weights
from wala.train.trainer import TrainConfig, Trainer

KIND = "diffusion"
CONDITION_ARRAYS = {"none": (), "pointcloud": ("points",), "voxel": ("occupancy",)}
EVAL_TIMESTEP_FRACTIONS = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class DiffusionTrainConfig:
    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    autoencoder: str = ""          # the VQ-VAE checkpoint whose latent space is learned


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@torch.no_grad()
def encode_latents(autoencoder, shapes: WaveletTreeDataset, latent: str = "pre", batch_size: int = 8,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """(S, 4, m, m, m) float32 latents of every sample: pre-quantization, or quantized ("post")."""
    out = []
    for start in range(0, len(shapes), batch_size):
        x = torch.stack([shapes[i][0] for i in range(start, min(start + batch_size, len(shapes)))]).to(device)
        z = autoencoder.encode(x)
        out.append((autoencoder.quantizer(z).quantized if latent == "post" else z).float().cpu())
    return torch.cat(out)


def cached_latents(autoencoder_path: str, shapes: WaveletTreeDataset, latent: str, cache: Path,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The latents of `shapes`, read from `cache` when it was made by the same autoencoder file
    from the same samples, else encoded and written (atomically)."""
    key = json.dumps({"autoencoder": file_digest(autoencoder_path), "latent": latent,
                      "samples": hashlib.sha256("\n".join(r["key"] for r in shapes.records).encode()).hexdigest()})
    if cache.exists():
        with safe_open(str(cache), "pt") as f:
            if (f.metadata() or {}).get("key") == key:
                return f.get_tensor("latents")
    latents = encode_latents(load_autoencoder(autoencoder_path, device), shapes, latent, device=device)
    write_atomic(cache, save_tensors({"latents": latents.contiguous()}, metadata={"key": key}))
    return latents


class LatentDataset(torch.utils.data.Dataset):
    """Item i → ({"latent": normalized (4, m³), and "points" (P, 3) or "occupancy" (16³)}, meta)."""

    def __init__(self, shapes: WaveletTreeDataset, latents: torch.Tensor, condition: str):
        self.shapes, self.latents, self.arrays = shapes, latents, CONDITION_ARRAYS[condition]

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def datasets(self) -> list[str]:
        return self.shapes.datasets

    def __getitem__(self, i: int):
        item = {"latent": self.latents[i]}
        if self.arrays:
            item.update({k: torch.from_numpy(v) for k, v in self.shapes.arrays(i, self.arrays).items()})
        return item, self.shapes.records[i]


def condition_input(batch: dict, kind: str, points: int, generator: torch.Generator | None) -> torch.Tensor | None:
    """The encoder input of a batch: `points` random stored points per shape (the first ones when
    no generator is given), or the occupancy grid."""
    if kind == "pointcloud":
        stored = batch["points"]
        if generator is None:
            return stored[:, :points]
        pick = torch.rand(stored.shape[:2], generator=generator).argsort(dim=1)[:, :points].to(stored.device)
        return torch.gather(stored, 1, pick[..., None].expand(-1, -1, 3))
    if kind == "voxel":
        return batch["occupancy"]
    return None


def _prepare(config: DiffusionTrainConfig, device: str = "cpu"):
    """Datasets with cached latents, and the model config completed from the data."""
    if not config.autoencoder:
        raise WalaError("autoencoder must name a trained VQ-VAE checkpoint (wala train-ae)")
    if not Path(config.autoencoder).is_file():
        raise WalaError(f"autoencoder checkpoint not found: {config.autoencoder}")
    if not config.train.data:
        raise WalaError("train.data must name a folder written by `wala prep`")
    c = config.model
    if c.condition.kind not in CONDITION_ARRAYS:
        raise WalaError(f"unknown condition '{c.condition.kind}' (known: {', '.join(CONDITION_ARRAYS)})")
    out = Path(config.train.out)
    shapes = WaveletTreeDataset(config.train.data)
    eval_shapes = WaveletTreeDataset(config.train.eval_data) if config.train.eval_data else shapes
    latents = cached_latents(config.autoencoder, shapes, c.latent, out / "latents-train.safetensors", device)
    eval_latents = (cached_latents(config.autoencoder, eval_shapes, c.latent, out / "latents-eval.safetensors", device)
                    if config.train.eval_data else latents)
    mean = latents.mean(dim=(0, 2, 3, 4))
    std = latents.std(dim=(0, 2, 3, 4)).clamp(min=1e-6)
    model_config = dataclasses.replace(c, latent_channels=latents.shape[1], latent_size=latents.shape[-1],
                                       latent_mean=tuple(mean.tolist()), latent_std=tuple(std.tolist()))
    norm = lambda z: (z - mean.reshape(1, -1, 1, 1, 1)) / std.reshape(1, -1, 1, 1, 1)
    kind = c.condition.kind
    return (model_config, LatentDataset(shapes, norm(latents), kind), LatentDataset(eval_shapes, norm(eval_latents), kind),
            shapes.resolution)


def denoising_loss(model, batch: dict, config: DiffusionConfig, alphas_cumprod: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    """x0-prediction MSE at uniform random timesteps, the condition dropped with probability `drop`."""
    x0 = batch["latent"]
    B = len(x0)
    t = torch.randint(config.timesteps, (B,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    keep = (torch.rand(B, generator=generator) >= config.condition.drop).to(x0.device)
    condition = condition_input(batch, config.condition.kind, config.condition.points, generator)
    x_t = add_noise(x0, t, noise, alphas_cumprod)
    return F.mse_loss(model(x_t, t.to(x0.device), condition, keep).float(), x0.float())


@torch.no_grad()
def validation_loss(model: LatentDiffusion, dataset: LatentDataset, count: int, seed: int = 0) -> dict:
    """x0 MSE on the first `count` samples at fixed timesteps with fixed noise: comparable across runs."""
    model.eval()
    c = model.config
    device = next(model.parameters()).device
    items = [dataset[i][0] for i in range(min(count, len(dataset)))]
    batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch["latent"].shape, generator=generator).to(device)
    condition = condition_input(batch, c.condition.kind, c.condition.points, None)
    result = {}
    for fraction in EVAL_TIMESTEP_FRACTIONS:
        t = torch.full((len(items),), int(fraction * (c.timesteps - 1)), dtype=torch.long)
        x_t = add_noise(batch["latent"], t, noise, model.alphas_cumprod.cpu())
        pred = model(x_t, t.to(device), condition)
        result[f"x0_mse@{fraction:g}"] = float(F.mse_loss(pred.float(), batch["latent"].float()))
    result["x0_mse"] = sum(result.values()) / len(result)
    return result


def train_diffusion(config: DiffusionTrainConfig) -> dict:
    model_config, dataset, eval_set, resolution = _prepare(config)
    config = dataclasses.replace(config, model=model_config)
    torch.manual_seed(config.train.seed)  # same initial weights on every rank
    model = LatentDiffusion(model_config)

    alphas_cumprod = cosine_alphas_cumprod(model_config.timesteps)

    def step(m, batch, generator):
        loss = denoising_loss(m, batch, model_config, alphas_cumprod, generator)
        return loss, {}, None

    def evaluate(ema_model):
        return validation_loss(ema_model, eval_set, config.train.eval_samples)

    run_config = {"kind": KIND, "resolution": resolution, **dataclasses.asdict(config)}
    return Trainer(KIND, model, run_config, config.train, dataset, step, evaluate,
                   shard_units=lambda m: list(m.denoiser.blocks)).run()


def load_diffusion(path, device: str | torch.device = "cpu", weights: str = "ema") -> tuple[LatentDiffusion, dict]:
    """A trained generator (EMA weights by default) and its run config (autoencoder, resolution)."""
    config, _, tensors = load_checkpoint(path, KIND)
    model = LatentDiffusion(from_dict(DiffusionConfig, config["model"]))
    load_weights(model, tensors, weights, path)
    return model.to(device).eval(), config
