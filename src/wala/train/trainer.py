"""The training loop every wala model uses: single process, torchrun DDP or FSDP2, bf16 on GPU
(autocast; under FSDP a mixed-precision policy), gradient clipping, EMA, periodic evaluation,
atomic safetensors checkpoints and exact resume.

Exact resume: the epoch order is a pure function of (seed, epoch); the checkpoint stores model,
optimizer, EMA, step, epoch, position in the epoch and the training generator, so a run stopped
and resumed at any checkpoint computes the same weights as one that never stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from wala.data.sampling import epoch_order, rank_slice, streaming_order
from wala.data.shards import PerShape
from wala.errors import WalaError
from wala.io import store
from wala.train import distributed as D
from wala.train import fsdp
from wala.train.checkpoint import (
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    optimizer_tensors,
    restore_optimizer,
    save_checkpoint,
)
from wala.train.ema import EMA

LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # a folder written by `wala prep`, or its fsspec URL (s3://bucket/prefix …)
    eval_data: str = ""  # defaults to `data`
    out: str = "runs/run"  # checkpoints, config.json, metrics.jsonl; a URL: kept in a local folder, uploaded
    shuffle_buffer: int = 0  # 0: one permutation of all samples; N: shard by shard (per rank) through N
    cache_dir: str = ""  # local copies of shards read from a URL (default $WALA_CACHE or ~/.cache/wala)
    cache_gb: float = 4.0  # … at most this much; the least recently used shards go first
    steps: int = 1000
    batch_size: int = 4  # per rank
    lr: float = 1e-4
    lr_schedule: str = "constant"  # or "cosine": decays from lr to min_lr over `steps` (after warmup)
    warmup_steps: int = 0  # linear ramp from 0 to lr
    min_lr: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = False  # decay min(ema_decay, (1+n)/(10+n)) at step n: short runs shed the initial weights
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    eval_samples: int = 16
    checkpoint_every: int = 500
    seed: int = 0
    sampling: str = "uniform"  # or "balanced": per_dataset shapes from each source per epoch
    per_dataset: int = 0
    init_from: str = ""  # start from these weights (fine-tuning); optimizer and step start fresh
    device: str = "auto"  # "auto", "cpu", "cuda"
    precision: str = "auto"  # "bf16", "fp32", or "auto": bf16 on CUDA, fp32 on CPU (see `computes_in_bf16`)
    workers: int = 0  # data-loading processes per rank
    cache: bool = False  # keep every item in memory after its first read (needs workers 0): fast GPU runs
    fsdp: bool = False  # under torchrun: shard weights, gradients and Adam state (FSDP2) instead of DDP

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise WalaError(f"unknown lr_schedule '{self.lr_schedule}' (known: {', '.join(LR_SCHEDULES)})")
        if self.precision not in PRECISIONS:
            raise WalaError(f"unknown precision '{self.precision}' (known: {', '.join(PRECISIONS)})")
        if self.cache and self.workers:
            raise WalaError("train.cache keeps items in this process's memory: it needs train.workers 0")
        if self.shuffle_buffer < 0 or self.cache_gb <= 0:
            raise WalaError("train.shuffle_buffer must be >= 0 and train.cache_gb > 0")

    def open_dataset(self, location: str):
        """The prepared data at `location`; at a URL its shards are fetched into the bounded local cache."""
        from wala.data.shards import WaveletTreeDataset

        cache = store.Cache(self.cache_dir or None, int(self.cache_gb * 2**30)) if store.is_url(location) else None
        return WaveletTreeDataset(location, cache)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step `step` (0-based): a pure function of the step, so a resumed
    run follows the same schedule as one that never stopped."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def computes_in_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the forward and backward run in bfloat16: under DDP or alone by autocast, under FSDP by
    its mixed-precision policy. The weights, Adam and the gradient reduction stay float32 either way."""
    return cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")


StepFn = Callable[[nn.Module, object, torch.Generator], tuple[torch.Tensor, dict, object]]


def to_device(batch, device: torch.device):
    """A tensor, or a dict of tensors (what a dataset item's first element may be), on `device`."""
    if isinstance(batch, dict):
        return {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    return batch.to(device, non_blocking=True)


class CachedDataset(PerShape):
    """A dataset whose items are read once, then served from memory (the decompression of a shard's
    npz costs more than a small model's step on a GPU)."""

    def __init__(self, dataset):
        self.shapes, self.items = dataset, {}

    def __getitem__(self, i: int):
        if i not in self.items:
            self.items[i] = self.shapes[i]
        return self.items[i]


class Trainer:
    def __init__(
        self,
        kind: str,
        model: nn.Module,
        run_config: dict,
        train: TrainConfig,
        dataset,
        step_fn: StepFn,
        eval_fn: Callable[[nn.Module], dict] | None = None,
        after_step: Callable[[nn.Module, object, torch.Generator, D.Dist], dict] | None = None,
        shard_units: Callable[[nn.Module], list[nn.Module]] = lambda model: [],
        init_state: Callable[[str], dict] | None = None,
    ):
        """`shard_units(model)`: the submodules FSDP shards one by one (e.g. attention blocks).
        `init_state(path)`: the full state a run that does not resume starts from, when `train.init_from`
        names one (default: that checkpoint's EMA weights, same architecture); it is called on the model
        as placed and, under FSDP, sharded, so a hook that reads the model is for unsharded runs."""
        self.kind, self.model, self.run_config, self.cfg = kind, model, run_config, train
        self.dataset = CachedDataset(dataset) if train.cache else dataset
        self.step_fn, self.eval_fn, self.after_step = step_fn, eval_fn, after_step
        self.shard_units = shard_units
        self.init_state = init_state or (lambda path: load_checkpoint(path, kind)[2]["ema"])
        # a run at a URL lives in a local folder named by it, and each checkpoint is uploaded when written
        self.remote = train.out if store.is_url(train.out) else None
        self.out = Path(train.out) if self.remote is None else run_folder(train.out)

    def _save(self, step, epoch, offset, optimizer, ema, generator, dist) -> None:
        """Every rank calls this (under FSDP the full tensors are gathered); rank 0 writes."""
        optim_tensors, optim_rest = optimizer_tensors(optimizer)
        tensors = {
            "model": fsdp.gathered(self.model.state_dict()),
            "ema": fsdp.gathered(ema.model.state_dict()),
            "optim": fsdp.gathered(optim_tensors),
        }
        if dist.main:
            state = {"step": step, "epoch": epoch, "offset": offset, "optimizer": optim_rest}
            save_checkpoint(
                self.out / checkpoint_name(step),
                self.kind,
                self.run_config,
                state,
                {**tensors, "rng": {"train": generator.get_state(), "torch": torch.get_rng_state()}},
            )
            if self.remote is not None:  # the checkpoint last: a reader taking it finds its metrics
                for name in ("config.json", "metrics.jsonl", checkpoint_name(step)):
                    if (self.out / name).is_file():
                        store.upload(self.out / name, store.join(self.remote, name))
        D.barrier(dist)

    def _evaluate(self, ema: EMA, template: nn.Module | None, sharded: bool, dist) -> dict | None:
        """The eval on rank 0 with the EMA weights; under FSDP every rank joins gathering them into
        rank 0's unsharded `template`."""
        if not sharded:
            return self.eval_fn(ema.model) if dist.main else None
        state = fsdp.gathered(ema.model.state_dict())
        result = None
        if dist.main:
            template.load_state_dict(state)
            result = self.eval_fn(template.eval())
        D.barrier(dist)
        return result

    def _log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def run(self) -> dict:
        dist = D.setup(self.cfg.device)
        try:
            return self._run(dist)
        finally:
            D.teardown(dist)

    def _run(self, dist: D.Dist) -> dict:
        cfg = self.cfg
        model = self.model.to(dist.device)
        sharded = cfg.fsdp and dist.active
        bf16 = computes_in_bf16(cfg, dist.device)
        ema = EMA(model, cfg.ema_decay, cfg.ema_warmup)
        template = None
        if sharded:
            template = copy.deepcopy(model).requires_grad_(False) if dist.main and self.eval_fn else None
            fsdp.shard(model, self.shard_units(model), bf16=bf16)
            fsdp.shard(ema.model, self.shard_units(ema.model))
        load = fsdp.load_full_state if sharded else (lambda m, state: m.load_state_dict(state))
        trainable = [
            p for p in model.parameters() if p.requires_grad
        ]  # frozen parts (a generator's autoencoder) stay out
        optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
        generator = torch.Generator().manual_seed(cfg.seed + 7919)
        step = epoch = offset = 0
        if self.remote is not None:
            fetch_latest(self.remote, self.out)
        resume = latest_checkpoint(self.out) if self.out.exists() else None
        if resume is not None:
            _, state, tensors = load_checkpoint(resume, self.kind)
            load(model, tensors["model"])
            load(ema.model, tensors["ema"])
            restore_optimizer(optimizer, tensors.get("optim", {}), state["optimizer"])
            generator.set_state(tensors["rng"]["train"])
            torch.set_rng_state(tensors["rng"]["torch"])
            step, epoch, offset = state["step"], state["epoch"], state["offset"]
        elif cfg.init_from:
            start = self.init_state(cfg.init_from)
            load(model, start)
            load(ema.model, start)
        if dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        trained = DistributedDataParallel(model) if dist.active and not sharded else model
        # FSDP casts at module boundaries itself (its policy); autocast would only add per-op casts
        autocast = torch.autocast(dist.device.type, dtype=torch.bfloat16, enabled=bf16 and not sharded)
        datasets = self.dataset.datasets
        logs: dict = {}
        started, seen = time.perf_counter(), 0
        while step < cfg.steps:
            order = epoch_order(datasets, epoch, cfg.seed, cfg.sampling, cfg.per_dataset)
            if cfg.shuffle_buffer:
                order = streaming_order(
                    order, self.dataset.shards, epoch, cfg.seed, dist.rank, dist.world, cfg.shuffle_buffer
                )
            else:
                order = rank_slice(order, dist.rank, dist.world)
            if len(order) < cfg.batch_size:
                raise WalaError(f"an epoch holds {len(order)} samples per rank, fewer than batch_size {cfg.batch_size}")
            batches = [
                order[i : i + cfg.batch_size] for i in range(offset, len(order) - cfg.batch_size + 1, cfg.batch_size)
            ]
            # a generator of its own keeps the loader from drawing on the global RNG (exact resume)
            loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_sampler=batches,
                num_workers=cfg.workers,
                generator=torch.Generator().manual_seed(cfg.seed + epoch),
            )
            for batch in loader:
                x = to_device(batch[0], dist.device)
                trained.train()
                with autocast:
                    loss, logs, aux = self.step_fn(trained, x, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, step)
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
                optimizer.step()
                ema.update(model, step)
                if self.after_step is not None:
                    logs.update(self.after_step(model, aux, generator, dist))
                step += 1
                offset += cfg.batch_size
                seen += cfg.batch_size * dist.world
                grad_norm = fsdp.gathered({"norm": grad_norm})["norm"]
                logs = {
                    "step": step,
                    "loss": float(loss.detach()),
                    "grad_norm": float(grad_norm),
                    "lr": optimizer.param_groups[0]["lr"],
                    **logs,
                }
                if dist.main and (step % cfg.log_every == 0 or step == cfg.steps):
                    logs["shapes_per_s"] = seen / (time.perf_counter() - started)
                    self._log(logs)
                if self.eval_fn is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
                    result = self._evaluate(ema, template, sharded, dist)
                    if dist.main:
                        self._log({"step": step, "eval": result})
                if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.steps:
                    self._save(step, epoch, offset, optimizer, ema, generator, dist)
                if step >= cfg.steps:
                    break
            else:
                epoch, offset = epoch + 1, 0
        if dist.active:
            logs["ranks_in_sync"] = D.parameters_in_sync(model, dist)
            if dist.main:
                self._log({"step": step, "ranks_in_sync": logs["ranks_in_sync"], "world": dist.world})
        return logs


def run_folder(url: str) -> Path:
    """The local folder of a run whose home is `url`."""
    return store.default_cache_dir() / "runs" / hashlib.sha256(url.encode()).hexdigest()[:32]


def fetch_latest(url: str, folder: Path) -> None:
    """Copies the run at `url`'s latest checkpoint and its metrics into `folder` (a resumed run may start
    on another machine); nothing when the run has none yet."""
    found = store.glob(url, "step-*.safetensors")
    if not found:
        return
    folder.mkdir(parents=True, exist_ok=True)
    latest = Path(found[-1]).name
    if not (folder / latest).is_file():
        store.download(found[-1], folder / latest)
    if store.exists(store.join(url, "metrics.jsonl")):
        store.download(store.join(url, "metrics.jsonl"), folder / "metrics.jsonl")
