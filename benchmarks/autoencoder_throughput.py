"""Training throughput of the wavelet VQ-VAE in shapes/s (forward + adaptive loss + backward + Adam).

    python benchmarks/autoencoder_throughput.py [--config paper|small] [--batch 8] [--steps 10] [--device cuda]

Synthetic packed trees of the real size (64×46³) stand in for data, so the figure is the model's,
not the disk's. On CUDA the step runs under bf16 autocast, as `wala train-ae` does.
"""
from __future__ import annotations

import argparse
import time

import torch

from wala.autoencoder import WaveletVQVAE, count_parameters, reconstruction_loss
from wala.config import AutoencoderConfig
from wala.wavelet import pack_wavelet_tree, tsdf_to_tree

CONFIGS = {"paper": AutoencoderConfig(), "small": AutoencoderConfig(width=32, groups=8, blocks=(1, 1, 2), codebook_size=512)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=CONFIGS, default="paper")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = WaveletVQVAE(CONFIGS[args.config]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    tsdf = torch.randn(args.batch, 256, 256, 256).clamp(-0.1, 0.1)
    x = pack_wavelet_tree(tsdf_to_tree(tsdf)).to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with autocast:
            recon, q = model(x)
            loss = reconstruction_loss(recon, x, "adaptive", 256) + q.loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    memory = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else ""
    print(f"{args.config} AE ({count_parameters(model) / 1e6:.2f}M params) on {device}: "
          f"{args.batch * args.steps / elapsed:.2f} shapes/s at batch {args.batch}{memory}")


if __name__ == "__main__":
    main()
