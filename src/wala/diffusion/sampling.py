"""Samplers as plain functions over a denoiser `denoise(x_t, t) → x0`, and classifier-free guidance."""
from __future__ import annotations

from typing import Callable

import torch

from wala.diffusion.schedule import ddim_step, ddpm_step, respaced_timesteps

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SAMPLERS = ("ddpm", "ddim")


@torch.no_grad()
def sample(denoise: Denoiser, noise: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int,
           method: str = "ddpm", generator: torch.Generator | None = None) -> torch.Tensor:
    """Runs the respaced chain from pure noise x_T = `noise` down to x0. `generator` (on the
    noise's device) draws the ancestral noise, so a seed fixes the result."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler '{method}' (known: {', '.join(SAMPLERS)})")
    timesteps = respaced_timesteps(len(alphas_cumprod), steps)
    abars = alphas_cumprod[timesteps].tolist()
    x = noise
    for k in range(len(timesteps) - 1, -1, -1):
        t = torch.full((len(x),), int(timesteps[k]), device=x.device, dtype=torch.long)
        x0 = denoise(x, t)
        abar_prev = abars[k - 1] if k > 0 else 1.0
        if method == "ddim":
            x = ddim_step(x, x0, abars[k], abar_prev)
        else:
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) if k > 0 else None
            x = ddpm_step(x, x0, abars[k], abar_prev, z)
    return x


def combine_guidance(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: e_u + s (e_c − e_u)."""
    return unconditional + scale * (conditional - unconditional)


def guided(model, tokens: torch.Tensor | None, scale: float) -> Denoiser:
    """The denoiser of `model` conditioned on `tokens` (B, L, D) with guidance `scale` against the
    zero condition. Scale 1 (or no condition) runs one pass; otherwise both in one batch."""
    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if tokens is None or scale == 1:
            return model(x, t, tokens)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([tokens, torch.zeros_like(tokens)]))
        conditional, unconditional = both.chunk(2)
        return combine_guidance(conditional, unconditional, scale)
    return denoise


# (steps, guidance scale) per condition, from the paper's recommendations
RECOMMENDED = {"pointcloud": (8, 1.3), "voxel": (5, 1.5), "none": (1000, 1.0)}
