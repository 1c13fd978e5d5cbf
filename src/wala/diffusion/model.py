"""The generator: condition encoder + latent denoiser, trained to predict x0 in the normalized
latent space ((z − mean) / std per channel, statistics stored in the config)."""
from __future__ import annotations

import torch
import torch.nn as nn

from wala.conditions import build_condition_encoder
from wala.config import DiffusionConfig
from wala.diffusion.denoisers import DiT, UViT
from wala.diffusion.schedule import cosine_alphas_cumprod
from wala.errors import WalaError

ARCHITECTURES = {"uvit": UViT, "dit": DiT}


class LatentDiffusion(nn.Module):
    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        super().__init__()
        if config.arch not in ARCHITECTURES:
            raise WalaError(f"unknown denoiser '{config.arch}' (known: {', '.join(ARCHITECTURES)})")
        if config.latent not in ("pre", "post"):
            raise WalaError(f"latent must be 'pre' or 'post', got '{config.latent}'")
        self.config = config
        self.condition = build_condition_encoder(config.condition, config.width)
        self.denoiser = ARCHITECTURES[config.arch](config)
        self.register_buffer("alphas_cumprod", cosine_alphas_cumprod(config.timesteps), persistent=False)

    @property
    def conditional(self) -> bool:
        return self.condition is not None

    def encode_condition(self, condition: torch.Tensor | None) -> torch.Tensor | None:
        """Points (B, P, 3) or occupancy (B, 16, 16, 16) → tokens (B, L, width); None stays None."""
        if self.condition is None or condition is None:
            return None
        return self.condition(condition)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None = None,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted x0 (B, 4, m, m, m) of the normalized latent from x_t, (B,) timestep indices and
        the raw condition; `keep` (B,) bool zeroes the condition tokens where False (CFG training).
        Samplers call `denoiser` on encoded tokens instead, to encode the condition once."""
        tokens = self.encode_condition(condition)
        if tokens is not None and keep is not None:
            tokens = tokens * keep[:, None, None].to(tokens.dtype)
        return self.denoiser(x_t, t, tokens)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return (z - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(x)
        return x * std + mean

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        channels = c.latent_channels
        mean = torch.tensor(c.latent_mean or [0.0] * channels, device=like.device, dtype=like.dtype)
        std = torch.tensor(c.latent_std or [1.0] * channels, device=like.device, dtype=like.dtype)
        return mean.reshape(1, -1, 1, 1, 1), std.reshape(1, -1, 1, 1, 1)
