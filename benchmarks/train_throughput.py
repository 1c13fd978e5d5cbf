"""Training throughput in shapes/s and model FLOPs utilization (MFU), for the wavelet VQ-VAE and
the ~1B denoiser at the released sizes (synthetic data of the real shapes: the model's figure, not
the disk's).

    python benchmarks/train_throughput.py --model ae|denoiser [--batch 8] [--steps 5] [--device cuda]
                                          [--peak-tflops 989]

A step is forward + loss + backward + Adam, under bf16 autocast on CUDA as the trainer runs it.
FLOPs per step are counted by torch's FlopCounterMode on one forward and backward; MFU divides the
achieved FLOP/s by `--peak-tflops` (dense bf16: H100/H200 SXM 989).
"""

from __future__ import annotations

import argparse
import time

import torch
from results import report  # benchmarks/results.py (scripts run from their folder)
from torch.utils.flop_counter import FlopCounterMode

from wala.autoencoder import WaveletVQVAE, reconstruction_loss
from wala.config import AutoencoderConfig, DiffusionConfig
from wala.diffusion import gaussian
from wala.diffusion.model import LatentDiffusion
from wala.nn import count_parameters


def build(name: str, batch: int, device: torch.device):
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
        model = LatentDiffusion(DiffusionConfig())
    model = model.to(device)
    model.autoencoder.requires_grad_(False)
    x0 = torch.randn(batch, 4, 12, 12, 12, device=device)
    points = torch.rand(batch, 2500, 3, device=device) * 1.8 - 0.9
    keep = torch.ones(batch, dtype=torch.bool, device=device)

    def loss():
        return gaussian.diffusion_loss(
            lambda x, t, c: model(x, t, c, keep), model.config.schedule, x0, points, generator
        )

    return model, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("ae", "denoiser"), default="ae")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--json", help="append the result here (one JSON object per line)")
    args = parser.parse_args()
    device = torch.device(args.device)
    model, loss = build(args.model, args.batch, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with autocast:
            value = loss()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

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
        "device": str(device),
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
