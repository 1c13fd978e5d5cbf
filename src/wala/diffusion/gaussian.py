"""The Gaussian diffusion of the released WaLa models, as plain functions over a denoiser: betas,
respacing, the training objective and the ancestral sampler (OFFICIAL.md §6).

All schedule math is float64 (numpy); per-step coefficients are cast to float32 before they touch
a tensor, as the official code does. Timesteps given to the denoiser are always original indices
0…T−1, also when sampling a respaced chain.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wala.config import ScheduleConfig

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, original t) → model output


def betas(config: ScheduleConfig) -> np.ndarray:
    """(T,) float64 betas: linear (scaled by 1000/T × ratio) or cosine (ᾱ = cos²((t/T + 0.008)/1.008 · π/2),
    each beta clipped at 0.999)."""
    T = config.timesteps
    if config.betas == "linear":
        scale = 1000 / T * config.scale_ratio
        return np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)
    abar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=np.float64)


@functools.lru_cache(maxsize=16)
def cumulative_alphas(config: ScheduleConfig) -> np.ndarray:
    """(T,) float64 ᾱ, computed once per schedule (read-only: the cache shares it)."""
    abar = np.cumprod(1 - betas(config))
    abar.setflags(write=False)
    return abar


def respaced_timesteps(timesteps: int, steps: int) -> list[int]:
    """The `steps` original indices a respaced chain keeps: round(k·(T−1)/(S−1)) with Python's
    round (half to even), ascending. S=5 → 0, 250, 500, 749, 999."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    if steps == 1:
        return [0]
    stride = (timesteps - 1) / (steps - 1)
    return sorted({round(k * stride) for k in range(steps)})


@dataclass
class Chain:
    """Posterior quantities of a (respaced) chain; index j is the j-th kept timestep."""

    timesteps: list[int]  # original index of each step
    betas: np.ndarray  # β' (float64)
    abar: np.ndarray  # ᾱ'
    abar_prev: np.ndarray
    coef_x0: np.ndarray  # posterior mean = coef_x0·x0 + coef_xt·x_t
    coef_xt: np.ndarray
    log_variance: np.ndarray  # of the sampling noise

    @classmethod
    @functools.lru_cache(maxsize=16)
    def build(cls, config: ScheduleConfig, steps: int | None = None) -> Chain:
        """Cached per (schedule, steps): the training objective asks for it every step."""
        full_abar = cumulative_alphas(config)
        kept = list(range(config.timesteps)) if steps is None else respaced_timesteps(config.timesteps, steps)
        abar = full_abar[kept]
        abar_prev = np.append(1.0, abar[:-1])
        beta = 1 - abar / abar_prev
        variance = beta * (1 - abar_prev) / (1 - abar)
        if config.variance == "fixed_small":
            log_variance = np.log(np.append(variance[1], variance[1:])) if len(kept) > 1 else np.zeros(1)
        else:
            log_variance = np.log(np.append(variance[1], beta[1:])) if len(kept) > 1 else np.log(beta)
        arrays = [
            beta,
            abar,
            abar_prev,
            beta * np.sqrt(abar_prev) / (1 - abar),
            (1 - abar_prev) * np.sqrt(1 - beta) / (1 - abar),
            log_variance,
        ]
        for array in arrays:
            array.setflags(write=False)  # shared through the cache
        return cls(kept, *arrays)


def _at(values: np.ndarray, j: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[j] per sample as float32 (B, 1, 1, 1, 1) on like's device."""
    picked = torch.from_numpy(values[j.cpu().numpy()]).float().to(like.device)  # fancy index: a fresh copy
    return picked.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def predict_x0(
    config: ScheduleConfig, chain: Chain, out: torch.Tensor, x: torch.Tensor, j: torch.Tensor
) -> torch.Tensor:
    """The x0 a model output implies at chain step j."""
    if config.prediction == "x0":
        return out
    if config.prediction == "eps":
        return _at(np.sqrt(1 / chain.abar), j, x) * x - _at(np.sqrt(1 / chain.abar - 1), j, x) * out
    # previous: out is the posterior mean
    return _at(1 / chain.coef_x0, j, x) * out - _at(chain.coef_xt / chain.coef_x0, j, x) * x


@dataclass
class Step:
    sample: torch.Tensor  # x_{j-1}
    x0: torch.Tensor  # the x0 prediction


@torch.no_grad()
def sample(
    denoise: Denoiser,
    config: ScheduleConfig,
    steps: int,
    draws: Callable[[], torch.Tensor],
    on_step: Callable[[int, Step], None] | None = None,
) -> torch.Tensor:
    """Ancestral sampling of the respaced chain from x_T = draws() down to x_0. `draws()` gives
    the next standard normal tensor: the initial noise first, then one per step (the last step's
    draw is made and unused, as in the official loop, so a seed reproduces its stream)."""
    chain = Chain.build(config, steps)
    x = draws()
    for j in range(len(chain.timesteps) - 1, -1, -1):
        jj = torch.full((x.shape[0],), j, dtype=torch.long)
        t = torch.full((x.shape[0],), chain.timesteps[j], dtype=torch.long, device=x.device)
        out = denoise(x, t)
        x0 = predict_x0(config, chain, out, x, jj)
        mean = (
            out if config.prediction == "previous" else _at(chain.coef_x0, jj, x) * x0 + _at(chain.coef_xt, jj, x) * x
        )
        noise = draws()  # drawn at j = 0 too, unused, as the official loop does
        x = mean + torch.exp(0.5 * _at(chain.log_variance, jj, x)) * noise if j else mean
        if on_step is not None:
            on_step(j, Step(x, x0))
    return x


def guided(
    model: Callable, condition: torch.Tensor | None, unconditional: torch.Tensor | None, guidance: float
) -> Denoiser:
    """The denoiser of `model(x, t, tokens)` with classifier-free guidance: one call on the batch
    [uncond; cond] and e_u + s·(e_c − e_u). No unconditional tokens: a single plain call."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if unconditional is None:
            return model(x, t, condition)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([unconditional, condition]))
        e_u, e_c = both.chunk(2)
        return e_u + guidance * (e_c - e_u)

    return denoise


def add_noise(config: ScheduleConfig, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """q(x_t | x0) = √ᾱ_t x0 + √(1−ᾱ_t) ε at original indices t (B,)."""
    abar = cumulative_alphas(config)
    return _at(np.sqrt(abar), t, x0) * x0 + _at(np.sqrt(1 - abar), t, x0) * noise


def training_target(
    config: ScheduleConfig, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """What the model learns to output at (x_t, t): x0, ε, or the posterior mean."""
    if config.prediction == "x0":
        return x0
    if config.prediction == "eps":
        return noise
    chain = Chain.build(config)
    return _at(chain.coef_x0, t, x0) * x0 + _at(chain.coef_xt, t, x0) * x_t


def diffusion_loss(
    model: Callable, config: ScheduleConfig, x0: torch.Tensor, context, generator: torch.Generator
) -> torch.Tensor:
    """MSE of `model(x_t, t, context)` against its target at uniform random timesteps."""
    t = torch.randint(config.timesteps, (len(x0),), generator=generator)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    t = t.to(x0.device)
    x_t = add_noise(config, x0, t, noise)
    return F.mse_loss(model(x_t, t, context).float(), training_target(config, x0, x_t, t, noise).float())
