"""`wala train-diffusion CONFIG`: a generator (condition encoder + condition network + denoiser) on
a prepared dataset, in the latent space of an autoencoder it carries.

From scratch, the autoencoder comes from a train-ae checkpoint (`autoencoder:`); with
`train.init_from` naming a generator (a released WaLa directory, a `wala convert` directory or a
train-diffusion checkpoint) the run fine-tunes it: architecture, schedule and autoencoder are the
pretrained model's. Latents are encoded once by the frozen autoencoder and cached beside the run
(`latents-*.safetensors`, keyed by the autoencoder's weights and the sample keys). Runs from scratch
normalize latents per channel (stored in the config); fine-tuning keeps the model's own convention.
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

from wala.conditions import condition_kind
from wala.conditions.images import IMAGE_ARRAYS, stored_views
from wala.config import ConditionConfig, DiffusionConfig
from wala.data.shards import PerShape, WaveletTreeDataset
from wala.diffusion import gaussian
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.io.mesh import write_atomic
from wala.train.trainer import TrainConfig, Trainer

KIND = "diffusion"
EVAL_TIMESTEP_FRACTIONS = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class DiffusionTrainConfig:
    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    autoencoder: str = ""  # from scratch: the train-ae checkpoint whose latent space is learned
    # with train.init_from: keep only its denoiser and latent space; the condition path (encoder, mapping,
    # position table) starts new as model.condition describes, so any condition kind can reuse a prior
    init_denoiser_only: bool = False


def weights_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def encode_latents(autoencoder, shapes: WaveletTreeDataset, latent: str = "pre", batch_size: int = 8) -> torch.Tensor:
    """(S, e, G, G, G) float32 latents of every sample: pre-quantization, or quantized ("post")."""
    device = next(autoencoder.parameters()).device
    out = []
    for start in range(0, len(shapes), batch_size):
        x = torch.stack([shapes[i][0] for i in range(start, min(start + batch_size, len(shapes)))]).to(device)
        z = autoencoder.encode(x)
        out.append((autoencoder.quantize(z).quantized if latent == "post" else z).float().cpu())
    return torch.cat(out)


def cached_latents(autoencoder, shapes: WaveletTreeDataset, latent: str, cache: Path) -> torch.Tensor:
    """The latents of `shapes`, read from `cache` when made by the same autoencoder weights from the
    same samples, else encoded and written (atomically)."""
    key = json.dumps(
        {
            "autoencoder": weights_digest(autoencoder),
            "latent": latent,
            "samples": hashlib.sha256("\n".join(r["key"] for r in shapes.records).encode()).hexdigest(),
        }
    )
    if cache.exists():
        with safe_open(str(cache), "pt") as f:
            if (f.metadata() or {}).get("key") == key:
                return f.get_tensor("latents")
    latents = encode_latents(autoencoder, shapes, latent)
    write_atomic(cache, save_tensors({"latents": latents.contiguous()}, metadata={"key": key}))
    return latents


class LatentDataset(PerShape):
    """Item i → ({"latent": (e, G³) in the model's latent space, and the condition's stored array}, meta)."""

    def __init__(
        self, shapes: WaveletTreeDataset, latents: torch.Tensor, array: str | None, views: list[int] | None = None
    ):
        self.shapes, self.latents, self.array, self.views = shapes, latents, array, views

    def __getitem__(self, i: int):
        item = {"latent": self.latents[i]}
        if self.array:
            stored = self.shapes.arrays(i, (self.array,))[self.array]
            item["condition"] = torch.from_numpy(stored if self.views is None else stored[self.views])
        return item, self.shapes.records[i]


def initial_model(config: DiffusionTrainConfig, resolution: int) -> LatentDiffusion:
    """The model a run starts from: a pretrained generator (fine-tuning), or a new one around the
    trained autoencoder, sized from it."""
    from wala.hub.generators import load_generator
    from wala.train.autoencoder import load_autoencoder
    from wala.wavelet.packing import packed_size

    if config.train.init_from:
        model = load_generator(config.train.init_from, LatentDiffusion)
        c = model.config
        run = config.model.condition
        if c.resolution != resolution:
            raise WalaError(f"{config.train.init_from} works at {c.resolution}³; the data is {resolution}³")
        if config.init_denoiser_only:
            return with_aligned_context(with_new_condition(model, config), config)
        # a new model: the sampling it recommends is the run's to choose (by default its condition's)
        condition = dataclasses.replace(c.condition, points=run.points)
        model.config = dataclasses.replace(c, condition=condition, sampling=config.model.sampling)
        if run.kind != c.condition.kind:
            model = retarget(model, run)
        return with_aligned_context(model, config)
    if config.init_denoiser_only:
        raise WalaError("init_denoiser_only takes the denoiser of train.init_from, which names none")
    if not config.autoencoder:
        raise WalaError(
            "autoencoder must name a trained VQ-VAE checkpoint (wala train-ae), "
            "or train.init_from a generator to fine-tune"
        )
    autoencoder = load_autoencoder(config.autoencoder)
    latent_size = autoencoder.latent_size(packed_size(resolution))
    denoiser = dataclasses.replace(
        config.model.denoiser, latent_channels=autoencoder.config.latent_channels, latent_size=latent_size
    )
    model_config = dataclasses.replace(
        config.model, denoiser=denoiser, autoencoder=autoencoder.config, resolution=resolution
    )
    torch.manual_seed(config.train.seed)  # same initial weights on every rank
    model = LatentDiffusion(model_config)
    model.autoencoder.load_state_dict(autoencoder.state_dict())
    return model


def with_new_condition(parent: LatentDiffusion, config: DiffusionTrainConfig) -> LatentDiffusion:
    """A generator with `parent`'s autoencoder, latent statistics and denoiser (weights included) and
    a new condition path as the run's `model.condition` describes (`init_denoiser_only`): the latent
    prior a run has learned, reused for another condition (a point-cloud generator's denoiser for a
    voxel generator). The denoiser attends to tokens as wide as its parent's, so the width must match."""
    c, run = parent.config, config.model.condition
    if not parent.conditional or not condition_kind(run.kind).conditional:
        raise WalaError("init_denoiser_only moves a denoiser between two conditional generators")
    if run.width != c.condition.width:
        raise WalaError(
            f"init_denoiser_only: {config.train.init_from}'s denoiser attends to {c.condition.width}-wide "
            f"condition tokens; set model.condition.width to {c.condition.width} (it is {run.width})"
        )
    torch.manual_seed(config.train.seed)  # the new condition path's weights, the same on every rank
    model = LatentDiffusion(dataclasses.replace(c, condition=run, sampling=config.model.sampling))
    kept = {k: v for k, v in parent.state_dict().items() if k.startswith(("autoencoder.", "network.unet."))}
    model.load_state_dict(kept, strict=False)  # the same denoiser config: every kept name is there
    return model


def with_aligned_context(model: LatentDiffusion, config: DiffusionTrainConfig) -> LatentDiffusion:
    """`model`, grown by the aligned context when the run's `model.denoiser.aligned_context` asks for it
    and `model` has none: its projection starts at zero, so the grown model computes what `model` did."""
    c = model.config
    if not config.model.denoiser.aligned_context or c.denoiser.aligned_context:
        return model
    grown = LatentDiffusion(dataclasses.replace(c, denoiser=dataclasses.replace(c.denoiser, aligned_context=True)))
    grown.load_state_dict(model.state_dict(), strict=False)  # all but network.unet.context_grid
    return grown


def retarget(model: LatentDiffusion, run: ConditionConfig) -> LatentDiffusion:
    """A generator to fine-tune on another condition kind: one image read by the same encoder (the
    paper's sketch model starts from the single-view one), or a kind whose encoder the old one's
    weights carry over to (`ConditionKind.encoder_as`: a grid point-cloud generator becomes a voxel
    generator with every weight kept). Anything else is refused."""
    old, new, c = model.kind, condition_kind(run.kind), model.config.condition
    carried = old.encoder_as(c, model.encoder.state_dict(), new)
    if carried is not None:
        condition = dataclasses.replace(c, kind=run.kind, encoder=run.encoder)
        new.check(condition)
        child = LatentDiffusion(dataclasses.replace(model.config, condition=condition))
        kept = {k: v for k, v in model.state_dict().items() if not k.startswith(f"{old.module}.")}
        child.load_state_dict({**kept, **{f"{new.module}.{k}": v for k, v in carried.items()}})  # all of it
        return child
    same_form = (
        new.encoder is old.encoder and new.module == old.module and not c.training_views and not run.training_views
    )
    if not same_form:
        raise WalaError(
            f"cannot fine-tune a '{old.name}' generator on '{run.kind}' conditions"
            + (f" of views {list(run.training_views)}" if run.training_views else "")
            + ": only one-image kinds (image, sketch, one depth map) convert into each other, and a grid "
            "point-cloud generator (condition.encoder: grid) into a voxel one"
        )
    new.check(c)
    model.config = dataclasses.replace(model.config, condition=dataclasses.replace(c, kind=run.kind))
    model.kind = new
    return model


def _datasets(config: DiffusionTrainConfig, model: LatentDiffusion):
    shapes = config.train.open_dataset(config.train.data)
    eval_shapes = config.train.open_dataset(config.train.eval_data) if config.train.eval_data else shapes
    out = Path(config.train.out)
    c = model.config
    latents = cached_latents(model.autoencoder, shapes, c.latent, out / "latents-train.safetensors")
    eval_latents = (
        cached_latents(model.autoencoder, eval_shapes, c.latent, out / "latents-eval.safetensors")
        if config.train.eval_data
        else latents
    )
    if not config.train.init_from:
        mean, std = latents.mean(dim=(0, 2, 3, 4)), latents.std(dim=(0, 2, 3, 4)).clamp(min=1e-6)
        model.config = dataclasses.replace(c, latent_mean=tuple(mean.tolist()), latent_std=tuple(std.tolist()))
    array = model.kind.array
    if array == "captions" and not (shapes.captions and eval_shapes.captions):
        raise WalaError("a text model trains on captions: prepare the data with `wala prep … --captions`")
    pick = [
        stored_views(c.condition, data.views, array) if array in IMAGE_ARRAYS else None
        for data in (shapes, eval_shapes)
    ]
    return (
        LatentDataset(shapes, model.normalize(latents), array, pick[0]),
        LatentDataset(eval_shapes, model.normalize(eval_latents), array, pick[1]),
    )


def denoising_loss(model, batch: dict, config: DiffusionConfig, generator: torch.Generator) -> torch.Tensor:
    """The schedule's objective, the condition dropped with probability `drop` (dp_cond). `model`
    may be wrapped (DDP), so the condition kind comes from the config."""
    x0 = batch["latent"]
    keep = (torch.rand(len(x0), generator=generator) >= config.condition.drop).to(x0.device)
    kind = condition_kind(config.condition.kind)
    condition = None
    if kind.conditional:
        condition = kind.training_input(batch["condition"], config.condition, generator)
    return gaussian.diffusion_loss(lambda x, t, c: model(x, t, c, keep), config.schedule, x0, condition, generator)


@torch.no_grad()
def validation_loss(model: LatentDiffusion, dataset: LatentDataset, count: int, seed: int = 0) -> dict:
    """The objective's MSE on the first `count` samples at fixed timesteps with fixed noise:
    comparable across runs (x0-MSE for x0-predicting models)."""
    model.eval()
    c = model.config
    device = next(model.parameters()).device
    items = [dataset[i][0] for i in range(min(count, len(dataset)))]
    batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
    x0 = batch["latent"]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    condition = model.kind.training_input(batch["condition"], c.condition, None) if model.conditional else None
    result = {}
    for fraction in EVAL_TIMESTEP_FRACTIONS:
        t = torch.full((len(items),), int(fraction * (c.schedule.timesteps - 1)), dtype=torch.long, device=device)
        x_t = gaussian.add_noise(c.schedule, x0, t, noise)
        target = gaussian.training_target(c.schedule, x0, x_t, t, noise)
        result[f"mse@{fraction:g}"] = float(F.mse_loss(model(x_t, t, condition).float(), target.float()))
    result["mse"] = sum(result.values()) / len(result)
    return result


def train_diffusion(config: DiffusionTrainConfig) -> dict:
    if not config.train.data:
        raise WalaError("train.data must name a folder written by `wala prep`")
    resolution = config.train.open_dataset(config.train.data).resolution
    model = initial_model(config, resolution)
    model.autoencoder.requires_grad_(False)  # a generator only reads its autoencoder
    dataset, eval_set = _datasets(config, model)
    run_config = {"kind": KIND, **dataclasses.asdict(dataclasses.replace(config, model=model.config))}

    def step(m, batch, generator):
        return denoising_loss(m, batch, model.config, generator), {}, None

    def evaluate(ema_model):
        return validation_loss(ema_model, eval_set, config.train.eval_samples)

    train = dataclasses.replace(config.train, init_from="")  # the weights are already in the model
    return Trainer(
        KIND, model, run_config, train, dataset, step, evaluate, shard_units=lambda m: list(m.network.unet.blocks)
    ).run()


def load_diffusion(path, device: str | torch.device = "cpu", weights: str = "ema") -> tuple[LatentDiffusion, dict]:
    """A trained generator (EMA weights by default) and its run config."""
    from wala.hub.generators import load_trained

    model, config = load_trained(path, LatentDiffusion, weights)
    return model.to(device), config
