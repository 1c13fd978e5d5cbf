"""The noise schedule as plain functions: cosine ᾱ, forward noising, respacing for few-step sampling.

Index convention: position i of an ᾱ table is diffusion time t = i + 1 of T (ᾱ decreasing from
≈1 to ≈0); models are given the index i.
"""
from __future__ import annotations

import math

import torch


def cosine_alphas_cumprod(timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """ᾱ_t of the cosine schedule (Nichol & Dhariwal 2021), float64 (T,)."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)  # clipped so the last step is not singular
    return torch.cumprod(1 - betas, dim=0)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def add_noise(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε, per sample t (B,) indices."""
    abar = alphas_cumprod[t.cpu()]
    return _expand(abar.sqrt(), x0) * x0 + _expand((1 - abar).sqrt(), x0) * noise


def respaced_timesteps(timesteps: int, steps: int) -> torch.Tensor:
    """`steps` indices spread evenly over [0, T−1], ascending, always holding 0 and T−1."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    return torch.linspace(0, timesteps - 1, steps, dtype=torch.float64).round().long().unique()


def ddpm_step(x_t: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float,
              noise: torch.Tensor | None) -> torch.Tensor:
    """One ancestral step of the respaced chain: a sample of q(x_prev | x_t, x0); the last step
    (ᾱ_prev = 1) returns x0 itself."""
    beta = 1 - abar_t / abar_prev
    x0_weight = math.sqrt(abar_prev) * beta / (1 - abar_t)
    xt_weight = math.sqrt(abar_t / abar_prev) * (1 - abar_prev) / (1 - abar_t)
    mean = x0_weight * x0 + xt_weight * x_t
    if noise is None or abar_prev >= 1:
        return mean
    return mean + math.sqrt(beta * (1 - abar_prev) / (1 - abar_t)) * noise


def ddim_step(x_t: torch.Tensor, x0: torch.Tensor, abar_t: float, abar_prev: float) -> torch.Tensor:
    """One deterministic DDIM step (η = 0)."""
    eps = (x_t - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)
    return math.sqrt(abar_prev) * x0 + math.sqrt(1 - abar_prev) * eps
