"""Training throughput in shapes/s and model FLOPs utilization (MFU), for the wavelet VQ-VAE and
the ~1B denoiser at the released sizes (synthetic data of the real shapes: the model's figure, not
the disk's), and the peak memory of a step.

    python benchmarks/train_throughput.py --model ae|denoiser [--batch 8] [--steps 5] [--device cuda]
                                          [--size released|mid|tiny] [--checkpointing] [--dtype bf16|fp32]
                                          [--peak-tflops 989]

A step is forward + loss + backward + Adam, as a single-process trainer runs it: under bf16 autocast
with `--dtype bf16` (the default on CUDA; `train.precision`), with the denoiser's attention blocks
recomputed in the backward with `--checkpointing` (`model.denoiser.checkpointing`). `--size` scales
the denoiser: the released ~1B, a ~100M one for CPU memory figures (benchmarks/train_memory.py), or
a tiny one that runs the same code on a CPU in seconds. FLOPs per step are counted by torch's
FlopCounterMode on one forward and backward (with checkpointing: the recomputed forward included, so
MFU reads as hardware FLOPs); MFU divides the achieved FLOP/s by `--peak-tflops` (dense bf16:
H100/H200 SXM 989). On CUDA the result holds the allocator's peak (`peak_memory_gib`).
"""

from __future__ import annotations

import argparse
import time

import torch
from results import report  # benchmarks/results.py (scripts run from their folder)
from torch.utils.flop_counter import FlopCounterMode

from wala.autoencoder import WaveletVQVAE, reconstruction_loss
from wala.config import AutoencoderConfig, ConditionConfig, DenoiserConfig, DiffusionConfig
from wala.diffusion import gaussian
from wala.diffusion.model import LatentDiffusion
from wala.nn import count_parameters

# --size: (denoiser, point-cloud condition) overrides of the released configs
SIZES = {
    "released": ({}, {}),  # 1,046.9M parameters, 1,034.1M of them trained (all but the VQ-VAE)
    "mid": ({"width": 512, "depth": 12, "heads": 8}, {"width": 512, "encoder_width": 256, "tokens": 128}),  # 105.9M
    "tiny": (
        {"width": 64, "depth": 2, "heads": 2, "res_width": 32, "groups": 8},
        {"width": 64, "encoder_width": 64, "tokens": 16},
    ),
}


def denoiser_config(size: str, checkpointing: bool) -> DiffusionConfig:
    denoiser, condition = SIZES[size]
    return DiffusionConfig(
        denoiser=DenoiserConfig(**denoiser, checkpointing=checkpointing), condition=ConditionConfig(**condition)
    )


def build(name: str, batch: int, device: torch.device, size: str = "released", checkpointing: bool = False):
    """(module whose parameters train, step closure computing the loss)."""
    generator = torch.Generator().manual_seed(0)
    if name == "ae":
        model = WaveletVQVAE(AutoencoderConfig()).to(device)
        x = (torch.randn(batch, 64, 46, 46, 46) * 0.05).to(device)

        def loss():
            recon, q = model(x)
            return reconstruction_loss(recon, x, "adaptive", 256, generator=generator) + q.loss

        return model, loss
    with device:  # random weights drawn on the device: seconds for 1B parameters on a GPU
        model = LatentDiffusion(denoiser_config(size, checkpointing))
    model = model.to(device).train()
    model.autoencoder.requires_grad_(False)
    x0 = torch.randn(batch, 4, 12, 12, 12, device=device)
    points = torch.rand(batch, 2500, 3, device=device) * 1.8 - 0.9
    keep = torch.ones(batch, dtype=torch.bool, device=device)

    def loss():
        return gaussian.diffusion_loss(
            lambda x, t, c: model(x, t, c, keep), model.config.schedule, x0, points, generator
        )

    return model, loss


def training_step(model: torch.nn.Module, loss, device: torch.device, dtype: str):
    """A closure running one optimizer step of `model` on `loss` (Adam, clipping at 1)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step():
        with autocast:
            value = loss()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("ae", "denoiser"), default="ae")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=tuple(SIZES), default="released", help="the denoiser's size")
    parser.add_argument("--checkpointing", action="store_true", help="recompute the denoiser's attention blocks")
    parser.add_argument("--dtype", choices=("bf16", "fp32"), help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--json", help="append the result here (one JSON object per line)")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    model, loss = build(args.model, args.batch, device, args.size, args.checkpointing)
    step = training_step(model, loss, device, dtype)
    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up
    flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / args.steps
    result = {
        "model": args.model,
        **({"size": args.size, "checkpointing": args.checkpointing} if args.model == "denoiser" else {}),
        "device": str(device),
        "dtype": dtype,
        "batch": args.batch,
        "parameters_m": round(count_parameters(model) / 1e6, 1),
        "step_s": round(elapsed, 3),
        "shapes_per_s": round(args.batch / elapsed, 2),
        "tflops_per_step": round(flops / 1e12, 3),
        "mfu": round(flops / elapsed / (args.peak_tflops * 1e12), 4) if device.type == "cuda" else None,
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    report(result, args.json)


if __name__ == "__main__":
    main()
