"""The generator: autoencoder + condition encoder + condition network + denoiser, laid out as the
released WaLa checkpoints are (`autoencoder.`, `encoder.`, `network.{cond_mapping_network,
cond_pos_emb, camera_emb, unet}`), so one class runs released models and our own.

Sampling follows the official code draw for draw: with seed S, sample i draws from its own CPU
generator seeded S + i (initial noise, then one draw per step including the last), so
`samples=1, seed=S` gives the official seed-S shape on any device.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn as nn

from wala.autoencoder.model import WaveletVQVAE
from wala.conditions import condition_kind
from wala.config import DiffusionConfig
from wala.diffusion import gaussian
from wala.diffusion.denoisers import DENOISERS
from wala.diffusion.layout import official_draw_strides
from wala.errors import WalaError


class ConditionNetwork(nn.Module):
    """Condition tokens → what the denoiser attends to (`process_condition`): mapping layers, a
    learned position table, a camera row per view; and the denoiser itself (`unet`)."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        c, kind = config.condition, condition_kind(config.condition.kind)
        if config.denoiser.aligned_context and not kind.placed(c):
            raise WalaError(
                "denoiser.aligned_context needs condition tokens on a grid over the shape "
                f"(voxels, or point clouds with condition.encoder: grid); this model has {kind.article}"
            )
        self.views = len(c.training_views)
        width = c.width if kind.conditional else None
        if kind.conditional:
            self.cond_mapping_network = nn.ModuleList(
                nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU()) for _ in range(c.mapping_layers)
            )
            self.cond_pos_emb = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, kind.tokens(c), c.width), 0.0, 0.02))
            if c.camera_index or self.views:
                self.camera_emb = nn.Embedding(self.views or c.max_views, c.width)
        self.unet = DENOISERS[config.denoiser.arch](config.denoiser, width)

    def process_condition(self, tokens: torch.Tensor, view_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, D) or multi-view (B, V, L, D) encoder tokens → (B, L', D), views flattened view-major.
        `view_ids` (B,): the camera row of each single image (None: row 0, what the official run.py
        passes); multi-view models add their rows in training-view order instead."""
        for layer in self.cond_mapping_network:
            tokens = layer(tokens)
        tokens = tokens + self.cond_pos_emb.reshape(*([1] * (tokens.dim() - 2)), *self.cond_pos_emb.shape[-2:])
        if hasattr(self, "camera_emb"):
            if self.views:
                rows = self.camera_emb.weight[None, :, None]  # (1, V, 1, D)
            else:
                rows = (self.camera_emb.weight[:1] if view_ids is None else self.camera_emb(view_ids))[
                    :, None
                ]  # (B|1, 1, D)
            tokens = tokens + rows
        return tokens.reshape(tokens.shape[0], -1, tokens.shape[-1])


def noise_draws(
    config: DiffusionConfig, seeds: list[int], steps: int, guided: bool, official: bool
) -> Iterator[torch.Tensor]:
    """The standard normal draws of one batched chain, on the CPU: (len(seeds), e, G, G, G) each, x_T first,
    then one per step. Row r comes from its own generator seeded seeds[r]; a model in the official format
    (`official`) draws in the memory layout the official sampler does (wala.diffusion.layout). Shared by the
    torch sampler and the ONNX runner (wala.export), so both read the same numbers for a seed."""
    d = config.denoiser
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    shape = (1, d.latent_channels, *[d.latent_size] * 3)
    # official: the steps + 1 layouts of its sampler; ours: contiguous, as many as asked
    layouts = official_draw_strides(config.schedule, d, steps, guided) if official else itertools.repeat(None)
    for strides in layouts:
        drawn = [
            torch.empty_strided(shape, strides).normal_(generator=g) if strides else torch.randn(shape, generator=g)
            for g in generators
        ]
        yield torch.cat(drawn).contiguous()


class LatentDiffusion(nn.Module):
    config_class = DiffusionConfig  # what the loaders (wala.hub.generators) build it from
    checkpoint_kind = "diffusion"  # the kind of its training checkpoints

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        super().__init__()
        self.config = config
        self.kind = condition_kind(config.condition.kind)
        self.kind.check(config.condition)
        if not self.kind.conditional and config.denoiser.cross:
            raise WalaError("an unconditional generator needs plain blocks: set denoiser.cross to false")
        self.autoencoder = WaveletVQVAE(config.autoencoder)
        if self.kind.conditional:  # named as in the released checkpoints: `encoder` or `clip_model`
            # registered directly: add_module refuses the name `encoder`, which the property below holds
            self._modules[self.kind.module] = self.kind.encoder(config.condition)
        self.network = ConditionNetwork(config)

    @property
    def encoder(self) -> nn.Module | None:
        """The condition encoder (point/voxel encoder or DINOv2), None when unconditional."""
        return self._modules.get(self.kind.module)  # not getattr: this property shadows `encoder`

    @property
    def conditional(self) -> bool:
        return self.kind.conditional

    @property
    def guided(self) -> bool:
        """Classifier-free guidance at sampling: a condition, trained with dropout (dp_cond)."""
        return self.conditional and self.config.condition.drop > 0

    def trainable_parameters(self):
        """Everything but the autoencoder, which a generator only reads."""
        return [p for name, p in self.named_parameters() if not name.startswith("autoencoder.") and p.requires_grad]

    def process(self, tokens: torch.Tensor | None, view_ids: torch.Tensor | None = None) -> torch.Tensor | None:
        return None if tokens is None else self.network.process_condition(tokens, view_ids)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        condition: torch.Tensor | None = None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Training: the denoiser's output for x_t (B, e, G³) at original indices t (B,) given the raw
        condition input; `keep` (B,) bool zeroes the encoder tokens where False (dp_cond dropout)."""
        tokens = self.encoder(condition) if self.conditional else None
        if tokens is not None and keep is not None:
            tokens = tokens * keep.reshape(-1, *([1] * (tokens.dim() - 1))).to(tokens.dtype)
        return self.network.unet(x_t, t, self.process(tokens))

    # -- latent normalization (ours; the released models use the raw latent) ---------------------
    def _stats(self, like: torch.Tensor):
        c, e = self.config, self.config.denoiser.latent_channels
        mean = torch.tensor(c.latent_mean or [0.0] * e, device=like.device, dtype=like.dtype).reshape(1, -1, 1, 1, 1)
        std = torch.tensor(c.latent_std or [1.0] * e, device=like.device, dtype=like.dtype).reshape(1, -1, 1, 1, 1)
        return mean, std

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return (z - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return x * std + mean

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def condition_pair(self, condition: torch.Tensor | None, view_ids: torch.Tensor | None = None):
        """(processed condition, processed zero condition or None) for a model input of batch one.
        The zero half is the processed zeros (mapping + position + camera), not zero."""
        if not self.conditional:
            return None, None
        tokens = self.encoder(condition)
        if not self.guided:
            return self.process(tokens, view_ids), None
        both = self.process(
            torch.cat([torch.zeros_like(tokens), tokens]), None if view_ids is None else torch.cat([view_ids, view_ids])
        )
        unconditional, conditional = both.chunk(2)
        return conditional, unconditional

    @torch.no_grad()
    def sample_latents(
        self,
        condition: torch.Tensor | None = None,
        steps: int = 8,
        guidance: float = 1.3,
        seed: int = 0,
        samples: int = 1,
        view_ids: torch.Tensor | None = None,
        on_step: Callable | None = None,
    ) -> torch.Tensor:
        """(samples, e, G, G, G) final latents (the decoder's input) for one condition input. Sample i is
        seeded with seed + i, its noise drawn on the CPU (every device gets the same numbers); a model in
        the official format draws it in the memory layout the official sampler draws it in, so a seed
        gives the official sample (wala.diffusion.layout); wala's own models draw contiguous noise."""
        return self.sample_many([condition], steps, guidance, seed, samples, samples, view_ids, on_step)

    @torch.no_grad()
    def sample_many(
        self,
        conditions: list[torch.Tensor | None],
        steps: int = 8,
        guidance: float = 1.3,
        seed: int = 0,
        samples: int = 1,
        batch_size: int = 8,
        view_ids: torch.Tensor | None = None,
        on_step: Callable | None = None,
    ) -> torch.Tensor:
        """(len(conditions) · samples, e, G, G, G) final latents, condition by condition: sample i of each
        condition is seeded with seed + i, as `sample_latents` of that condition alone, and up to
        `batch_size` samples share each denoiser call (twice as many rows with guidance)."""
        pairs = [self.condition_pair(condition, view_ids) for condition in conditions]
        rows = [(pair, seed + i) for pair in pairs for i in range(samples)]
        out = []
        for start in range(0, len(rows), max(1, batch_size)):
            chunk = rows[start : start + max(1, batch_size)]
            conditional, unconditional = ([pair[half] for pair, _ in chunk] for half in (0, 1))
            conditional = None if conditional[0] is None else torch.cat(conditional)
            unconditional = None if unconditional[0] is None else torch.cat(unconditional)
            out.append(self._sample_rows(conditional, unconditional, [s for _, s in chunk], steps, guidance, on_step))
        return torch.cat(out)

    def _sample_rows(self, conditional, unconditional, seeds: list[int], steps: int, guidance: float, on_step):
        """One batched chain: row r conditioned on conditional[r] (processed tokens, or None), seeded seeds[r]."""
        device = next(self.parameters()).device
        dtype = next(self.network.parameters()).dtype
        official = getattr(self, "source", "") == "official"
        stream = noise_draws(self.config, seeds, steps, unconditional is not None, official)

        def draws() -> torch.Tensor:
            return next(stream).to(device)

        def unet(x, t, tokens):  # the chain stays float32 whatever the weights' dtype
            return self.network.unet(x.to(dtype), t, tokens).float()

        denoise = gaussian.guided(unet, conditional, unconditional, guidance)
        x = gaussian.sample(denoise, self.config.schedule, steps, draws, on_step)
        return self.denormalize(x)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, e, G³) latents → (B, N, N, N) float32 TSDFs: quantize, decode, unpack, inverse DWT."""
        from wala.wavelet.packing import packed_size, packed_to_tsdf

        n = self.config.resolution
        dtype = next(self.autoencoder.parameters()).dtype
        return packed_to_tsdf(self.autoencoder.decode(latents.to(dtype), packed_size(n)), n)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> LatentDiffusion:
        """A released model directory (checkpoint.ckpt + args.json), a `wala convert` directory, or a
        train-diffusion checkpoint (EMA weights)."""
        from wala.hub.generators import load_generator

        return load_generator(path, cls).to(device=device, dtype=dtype).eval()
