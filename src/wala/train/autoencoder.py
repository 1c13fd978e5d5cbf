"""`wala train-ae CONFIG`: the wavelet VQ-VAE on a prepared dataset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wala.autoencoder import WaveletVQVAE, reconstruction_loss, surface_loss
from wala.autoencoder.loss import LOSSES
from wala.config import AutoencoderConfig
from wala.errors import WalaError
from wala.eval.autoencoder import evaluate_autoencoder
from wala.hub.generators import load_trained
from wala.train import distributed as D
from wala.train.trainer import TrainConfig, Trainer

KIND = "autoencoder"


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: str = "adaptive"  # "adaptive" (paper), "rebalanced" (official code) or "mse"
    surface_weight: float = 0.0  # ours: × the decoded TSDF's MSE near the surface (wala.autoencoder.surface_loss)


def train_autoencoder(config: AutoencoderTrainConfig) -> dict:
    if config.loss not in LOSSES:
        raise WalaError(f"unknown loss '{config.loss}' (known: {', '.join(LOSSES)})")
    if not 0 <= config.surface_weight < float("inf"):
        raise WalaError(f"surface_weight must be a finite number ≥ 0, got {config.surface_weight}")
    if not config.train.data:
        raise WalaError("train.data must name a folder written by `wala prep`")
    if config.train.fsdp:
        raise WalaError("train.fsdp is for the large generators; the 12.9M autoencoder trains under DDP")
    dataset = config.train.open_dataset(config.train.data)
    eval_set = config.train.open_dataset(config.train.eval_data) if config.train.eval_data else dataset
    torch.manual_seed(config.train.seed)  # same initial weights on every rank
    model = WaveletVQVAE(config.model)
    if config.train.init_from and Path(config.train.init_from).is_dir():
        # fine-tuning the autoencoder of a generator directory (a released WaLa model): its architecture
        model = load_autoencoder(config.train.init_from)
        config = dataclasses.replace(config, model=model.config, train=dataclasses.replace(config.train, init_from=""))
    resolution = dataset.resolution

    def step(m, x, generator):
        recon, q = m(x)
        rec = reconstruction_loss(recon, x, config.loss, resolution, generator=generator)
        logs = {
            "rec": float(rec.detach()),
            "vq": float(q.loss.detach()),
            "perplexity": float(q.perplexity),
            "usage": float(q.usage),
        }
        loss = rec + q.loss
        if config.surface_weight:
            near = surface_loss(recon, x, resolution)
            logs["surface"] = float(near.detach())
            loss = loss + config.surface_weight * near
        return loss, logs, q

    def after_step(m, q, generator, dist):
        counts = D.all_reduce_sum(q.counts.clone(), dist)
        restarted = m.quantize.restart_dead_codes(q.inputs, counts, config.model.dead_code_steps, generator)
        D.broadcast(m.quantize.embedding.weight.data, dist)
        return {"restarted_codes": restarted}

    def evaluate(ema_model):
        picked = range(min(config.train.eval_samples, len(eval_set)))
        return evaluate_autoencoder(ema_model, eval_set, picked, device=next(ema_model.parameters()).device)["overall"]

    run_config = {"kind": KIND, **dataclasses.asdict(config)}
    return Trainer(
        KIND,
        model,
        run_config,
        config.train,
        dataset,
        step,
        evaluate,
        after_step,
        init_state=lambda path: start_state(model, path),
    ).run()


def start_state(model: WaveletVQVAE, path) -> dict:
    """The state `model` starts from when `train.init_from` names the train-ae checkpoint at `path`:
    its EMA weights, of the same architecture or with fewer ResBlocks per stage and nothing else
    changed. Then the added blocks keep `model`'s own tensors, and each starts as the identity (its last
    conv is zero), so the deeper model reconstructs exactly as the checkpoint did and training goes on
    from there. Any other difference is refused in one line."""
    trained = load_trained(path, WaveletVQVAE)[0]
    old, new = trained.config, model.config
    training_only = {"commitment": new.commitment, "dead_code_steps": new.dead_code_steps}
    old = dataclasses.replace(old, blocks=tuple(old.blocks), **training_only)
    new = dataclasses.replace(new, blocks=tuple(new.blocks))
    differs = {
        f.name: f"{f.name} {getattr(old, f.name)} → {getattr(new, f.name)}"
        for f in dataclasses.fields(new)
        if getattr(old, f.name) != getattr(new, f.name)
    }
    grows = len(old.blocks) == len(new.blocks) and all(a <= b for a, b in zip(old.blocks, new.blocks))
    if differs and (not grows or set(differs) != {"blocks"}):
        raise WalaError(
            f"train.init_from {path} is another VQ-VAE ({', '.join(differs.values())}): a run starts from it "
            f"with its architecture, or with more ResBlocks per stage (model.blocks) and nothing else changed"
        )
    # a shallower model's names are a subset of a deeper one's (a strict load checks it)
    return {**model.state_dict(), **trained.state_dict()}


def load_autoencoder(path, device: str | torch.device = "cpu") -> WaveletVQVAE:
    """A trained VQ-VAE (EMA weights), or the autoencoder a generator carries (wala.hub.generators)."""
    return WaveletVQVAE.from_pretrained(path, device)
