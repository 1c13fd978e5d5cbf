"""The memory layout of the official sampler's noise draws (OFFICIAL.md §6).

The official loop draws each step's noise with `torch.randn_like(x_t)`, which keeps x_t's strides, and
PyTorch fills a non-contiguous tensor in another order than a contiguous one: one seed, other numbers.
x_t inherits its layout from the arithmetic that made it, which inherits it from the denoiser's output,
whose layout the official unpatchify and the CPU kernels after it decide (a 3-D convolution keeps a
channels-last input channels-last for a batch of two, and returns a contiguous output for a batch of
one). Rather than hard-coding one stride, this module replays those operations on the CPU — the
official operand order, the real sizes, zero weights — and reads the strides off the results. wala's
draws use them on the CPU and then move to any device, so a seeded sample equals the official CPU run
whatever layout wala's own network produces on that device.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from wala.config import DenoiserConfig, ScheduleConfig

Strides = tuple[int, ...]


@functools.lru_cache(maxsize=32)
def denoiser_output_strides(d: DenoiserConfig, batch: int) -> Strides:
    """The strides of the official denoiser's output for `batch` inputs, on the CPU."""
    with torch.no_grad():
        out = _dit_output(d, batch) if d.arch == "dit" else _uvit_output(d, batch)
    return out.stride()


def _unpatchified(d: DenoiserConfig, batch: int, channels: int) -> torch.Tensor:
    """(B, n³, p³·C) contiguous tokens → (B, C, G, G, G) as `b (h w l) (p1 p2 p3 c) -> b c (h p1) (w p2) (l p3)`
    does it: a view where the strides allow one (patch 1), else a contiguous copy."""
    G, p = d.latent_size, d.patch
    n = G // p
    tokens = torch.zeros(batch, n**3, p**3 * channels)
    spread = tokens.reshape(batch, n, n, n, p, p, p, channels)
    return torch.einsum("nhwlpqrc->nchpwqlr", spread).reshape(batch, channels, G, G, G)


def _dit_output(d: DenoiserConfig, batch: int) -> torch.Tensor:
    return _unpatchified(d, batch, d.latent_channels)  # the final linear's tokens, unpatchified: nothing after


def _uvit_output(d: DenoiserConfig, batch: int) -> torch.Tensor:
    """The U-ViT's tail: unpatchify, the ResBlocks fed the kept skips, GN, SiLU, conv (official order)."""
    M, G, e = d.res_width, d.latent_size, d.latent_channels
    ones, zeros = torch.ones(M), torch.zeros(M)

    def norm(x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, d.groups, ones, zeros)

    def conv(x: torch.Tensor, out: int = M) -> torch.Tensor:
        return F.conv3d(x, torch.zeros(out, M, 3, 3, 3), torch.zeros(out), padding=1)

    scale, shift = torch.zeros(batch, 2 * M, 1, 1, 1).chunk(2, dim=1)
    h = _unpatchified(d, batch, M)
    for _ in range(d.res_blocks):
        block_input = h
        skip = norm(torch.zeros(batch, M, G, G, G))  # its layout cannot matter: h comes first in every sum
        h = norm(h)
        h = h + torch.zeros(batch, M, 1, 1, 1) * skip if d.skip_ratio else (h + skip) / math.sqrt(2)
        h = conv(F.silu(h))
        h = norm(h) * (1 + scale) + shift
        if d.res_condition:
            h = h * torch.zeros(batch, M, 1, 1, 1)
        h = conv(F.silu(h))
        h = block_input + h
    return conv(F.silu(norm(h)), e)


def official_draw_strides(schedule: ScheduleConfig, d: DenoiserConfig, steps: int, guided: bool) -> list[Strides]:
    """The strides of the steps + 1 draws of one seeded official sample: x_T (contiguous), then at each
    step `randn_like(x_t)`, x_t being what the previous step's arithmetic left (guided: the denoiser runs
    on a batch of two, the halves combined e_u + s·(e_c − e_u))."""
    from wala.diffusion.gaussian import Chain

    shape = (1, d.latent_channels, *[d.latent_size] * 3)
    out_strides = denoiser_output_strides(d, 2 if guided else 1)

    def coefficient() -> torch.Tensor:  # a per-timestep value expanded over the sample, as the official one is
        return torch.zeros(1, 1, 1, 1, 1).expand(shape)

    with torch.no_grad():
        x = torch.zeros(shape)
        strides = [x.stride()]
        for _ in Chain.build(schedule, steps).timesteps:
            out = torch.empty_strided((2 if guided else 1, *shape[1:]), out_strides).zero_()
            if guided:
                unconditional, conditional = out.chunk(2)
                out = unconditional + 1.0 * (conditional - unconditional)
            if schedule.prediction == "previous":
                mean = out
            else:
                x0 = out if schedule.prediction == "x0" else coefficient() * x - coefficient() * out
                mean = coefficient() * x0 + coefficient() * x
            noise = torch.empty_like(x)  # what randn_like fills
            strides.append(noise.stride())
            x = mean + torch.zeros(1, 1, 1, 1, 1) * torch.exp(0.5 * coefficient()) * noise
    return strides
