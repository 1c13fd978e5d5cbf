"""Peak RAM of one training step of a mid-size generator, with and without activation checkpointing.

    python benchmarks/train_memory.py [--size mid] [--batch 4] [--dtype fp32|bf16] [--json out.jsonl]

Each figure is a fresh process's own peak RSS (/proc VmHWM) on the CPU: the generator of
benchmarks/train_throughput.py's `--size` (mid: the released U-ViT at width 512 and 12 blocks with a
smaller PointNet, 105.9M parameters of which 92.9M train; the 12.9M VQ-VAE rides along frozen) built,
then two steps of forward, loss, backward, clipping and Adam on the released 12³ latents (1,732
tokens a shape): the second runs its forward and backward with Adam's moments in place, as every
step of a run does. A first process only builds the model: the steps' rows less that one are the
gradients, Adam's two moments and the activations; checkpointing (`model.denoiser.checkpointing`) keeps one
block's input instead of every block's activations and recomputes the rest in the backward.

Each step is measured twice: under glibc's default malloc, whose threshold for giving a freed block
back to the system rises with the blocks freed (up to 32 MiB), so freed activations stay resident and
the peak RSS overstates the live tensors; and with MALLOC_MMAP_THRESHOLD_ fixed at 128 KiB, where every
tensor's pages go back when it is freed and the peak RSS follows the peak of live memory (what a GPU's
allocator would see), at the price of page faults (a slower step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from results import PEAK, report  # benchmarks/results.py (scripts run from their folder)
from train_throughput import build, training_step

from wala.nn import count_parameters

HERE = Path(__file__).resolve().parent
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's initial threshold, kept fixed


def train_steps(size: str, batch: int, checkpointing: bool, dtype: str, step: bool, adam: bool = True) -> dict:
    """Builds the generator on the CPU and (if `step`) trains it two steps: what the fresh process runs.
    Without `adam`, one forward and backward only (weights, gradients and activations: the released
    size's activations per shape, on a machine without room for its Adam state)."""
    torch.manual_seed(0)
    device = torch.device("cpu")
    model, loss = build("denoiser", batch, device, size, checkpointing)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    started = time.perf_counter()
    passes = 0
    if step and not adam:
        loss().backward()
        passes = 1
    elif step:
        train = training_step(model, loss, device, dtype)
        train()
        train()
        passes = 2
    return {
        "parameters_m": round(count_parameters(model) / 1e6, 1),
        "trained_m": round(trained / 1e6, 1),
        "step_s": round((time.perf_counter() - started) / passes, 1) if step else None,
    }


def measure(
    size: str, batch: int, checkpointing: bool, dtype: str, step: bool, mmap_threshold: int = 0, adam: bool = True
) -> dict:
    """One fresh process's figures; `mmap_threshold` (bytes, 0: glibc's default) fixes malloc's."""

    code = (
        f"import json, sys\nsys.path.insert(0, {str(HERE)!r})\nfrom train_memory import train_steps\n"
        f"print(json.dumps(train_steps({size!r}, {batch}, {checkpointing}, {dtype!r}, {step}, {adam})))" + PEAK
    )
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(mmap_threshold)} if mmap_threshold else None
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    *_, figures, peak = done.stdout.splitlines()
    return {
        "model": f"denoiser-{size}",
        "device": "cpu",
        "dtype": dtype,
        "batch": batch,
        "step": step,
        "checkpointing": checkpointing if step else None,
        "malloc_mmap_threshold": mmap_threshold or None,
        "adam": adam if step else None,
        **json.loads(figures),
        "peak_rss_gib": round(int(peak) / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="mid", help="a size of benchmarks/train_throughput.py (mid, tiny, …)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--json", help="append each result here (one JSON object per line)")
    parser.add_argument(
        "--activations",
        action="store_true",
        help="instead: one checkpointed forward and backward without Adam at batch 1 and 2 (malloc threshold "
        "fixed), and the activations per shape from their difference; fits the released size in ~12 GB",
    )
    args = parser.parse_args()
    if args.activations:
        one, two = (measure(args.size, b, True, args.dtype, True, MMAP_THRESHOLD, adam=False) for b in (1, 2))
        for row in (one, two):
            report(row, args.json)
        per_shape = round(two["peak_rss_gib"] - one["peak_rss_gib"], 2)
        report({"model": f"denoiser-{args.size}", "checkpointed_activations_gib_per_shape": per_shape}, args.json)
        return
    report(measure(args.size, args.batch, False, args.dtype, step=False), args.json)
    for threshold in (0, MMAP_THRESHOLD):
        for checkpointing in (False, True):
            report(measure(args.size, args.batch, checkpointing, args.dtype, True, threshold), args.json)


if __name__ == "__main__":
    main()
