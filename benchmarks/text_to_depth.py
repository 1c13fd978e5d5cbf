"""Text → six depth maps with the released text-to-depth architecture at full size (SD2.1-base UNet
865.9M + camera MLP, OpenCLIP ViT-H/14 text tower, KL-f8 VAE; random weights: the time does not depend
on them): wall time of text encoding, the DDIM steps (CFG batch of 2·views), decoding, and peak memory.

    python benchmarks/text_to_depth.py [--steps 50] [--views 6] [--device cuda] [--dtype fp32|bf16|fp16]
"""

from __future__ import annotations

import argparse
import time

import torch
from results import peak_memory_gib, report  # benchmarks/results.py (scripts run from their folder)

from wala.nn import count_parameters
from wala.pipeline import DTYPES, resolve_device
from wala.text.checkpoint import build_components
from wala.text.config import TextModelConfig
from wala.text.multiview import VIEWS, TextToViews


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--views", type=int, choices=(4, 6), default=6)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    torch.manual_seed(0)
    config = TextModelConfig()  # the SD2.1-base layout the released checkpoints have
    started = time.perf_counter()
    model = TextToViews(*build_components(config, empty=False), config, "random").to(device, DTYPES[a.dtype])
    built = time.perf_counter() - started
    sizes = {name: count_parameters(getattr(model, name)) for name in ("unet", "text_encoder", "vae")}
    views = VIEWS["depth" if a.views == 6 else "rgb"]
    steps_done, marks = [], {}

    def on_step(i, n):
        if device.type == "cuda":
            torch.cuda.synchronize()
        steps_done.append(time.perf_counter())

    original = model.decode

    def timed_decode(latents):
        marks["sampled"] = time.perf_counter()
        out = original(latents)
        if device.type == "cuda":
            torch.cuda.synchronize()
        marks["decoded"] = time.perf_counter()
        return out

    model.decode = timed_decode
    started = time.perf_counter()
    model("a wooden chair", views=views, steps=a.steps, seed=0, on_step=on_step)
    total = time.perf_counter() - started
    first = steps_done[0]
    per_step = (steps_done[-1] - first) / max(1, len(steps_done) - 1)
    report(
        {
            "benchmark": "text_to_depth",
            "device": str(device),
            "dtype": a.dtype,
            "views": a.views,
            "steps": a.steps,
            "threads": torch.get_num_threads(),
            "params_m": {k: round(v / 1e6, 1) for k, v in sizes.items()},
            "build_s": round(built, 1),
            "total_s": round(total, 1),
            "first_step_s": round(first - started, 2),
            "step_s": round(per_step, 3),
            "decode_s": round(marks["decoded"] - marks["sampled"], 2),
            "peak_gib": round(peak_memory_gib(device), 2),
        },
        a.json,
    )


if __name__ == "__main__":
    main()
