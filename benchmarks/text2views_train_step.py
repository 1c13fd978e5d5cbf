"""One training step of the text-to-views model at the released size (the SD2.1-base UNet with the camera
MLP and multi-view attention trained; the KL-f8 VAE and OpenCLIP ViT-H/14 text tower frozen; random
weights: the time does not depend on them), as `wala train-text2views` runs it: six 256² depth maps and a
caption per shape → VAE latents → ε-MSE → backward and an Adam step. Reports the seconds per step and per
shape, peak memory, and the FLOPs of a step (torch's FLOP counter) — what a fine-tune at the paper's
scale costs follows from those (docs/text-to-3d.md).

    python benchmarks/text2views_train_step.py [--batch 1] [--device cuda] [--precision bf16] [--checkpointing]
"""

from __future__ import annotations

import argparse
import time

import torch
from results import peak_memory_gib, report  # benchmarks/results.py (scripts run from their folder)
from torch.utils.flop_counter import FlopCounterMode

from wala.pipeline import resolve_device
from wala.text.checkpoint import build_components
from wala.text.config import TextModelConfig
from wala.text.tokenizer import clip_tokenizer
from wala.text.train import FrozenEncoders, MultiViewDenoiser, TextViewsTrainConfig, denoising_loss


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=1, help="shapes a step (six maps each)")
    p.add_argument("--steps", type=int, default=2, help="timed steps, after one warm-up step")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast, as on GPUs")
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = resolve_device(a.device)
    torch.manual_seed(0)
    model_config = TextModelConfig()
    unet, vae, text_encoder = build_components(model_config, empty=False)
    unet.to(device).train().requires_grad_(True)
    if a.checkpointing:
        unet.enable_gradient_checkpointing()
    model = MultiViewDenoiser(unet)
    frozen = FrozenEncoders(vae, text_encoder, model_config.scale_factor).to(device)
    config = TextViewsTrainConfig(caption_drop=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    empty = torch.from_numpy(clip_tokenizer()([""])[0]).long()
    generator = torch.Generator().manual_seed(0)
    batch = {
        "maps": torch.randint(0, 256, (a.batch, 6, 256, 256), dtype=torch.uint8, generator=generator).to(device),
        "tokens": torch.from_numpy(clip_tokenizer()(["a wooden chair, 3d asset"] * 8))
        .long()[None]
        .expand(a.batch, -1, -1),
    }

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = denoising_loss(model, batch, frozen, config, empty, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: allocations, Adam state
    started = time.perf_counter()
    for _ in range(a.steps):
        step()
    per_step = (time.perf_counter() - started) / a.steps
    with FlopCounterMode(display=False) as counter:
        step()
    report(
        {
            "benchmark": "text2views_train_step",
            "device": str(device),
            "precision": a.precision,
            "checkpointing": a.checkpointing,
            "batch": a.batch,
            "threads": torch.get_num_threads(),
            "step_s": round(per_step, 2),
            "shape_s": round(per_step / a.batch, 2),
            "tflop_per_shape": round(counter.get_total_flops() / a.batch / 1e12, 2),
            "peak_gib": round(peak_memory_gib(device), 2),
        },
        a.json,
    )


if __name__ == "__main__":
    main()
