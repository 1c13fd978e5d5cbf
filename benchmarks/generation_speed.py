"""Condition → mesh wall time per shape, by stage: condition encoding + respaced sampling (with
CFG), autoencoder decoding + IDWT, marching cubes.

    python benchmarks/generation_speed.py [--config tiny|small|paper] [--steps 8] [--device cuda]

Weights are random (the time does not depend on them); marching cubes runs on a procedural
chair's TSDF at the config's resolution, since a random model's output need not have a surface.
Configs: tiny = configs/diffusion_tiny.yaml + ae_tiny at 64³; small = configs/diffusion_pc_cpu.yaml
+ ae_cpu128 at 128³; paper = the 956M U-ViT + the 12.9M VQ-VAE at 256³.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from wala.autoencoder import WaveletVQVAE
from wala.config import AutoencoderConfig, ConditionConfig, DiffusionConfig, RepresentationConfig, load_config
from wala.diffusion import LatentDiffusion, guided, sample
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.families import family_tsdf
from wala.train.autoencoder import AutoencoderTrainConfig
from wala.train.diffusion import DiffusionTrainConfig
from wala.wavelet import tree_to_tsdf
from wala.wavelet.packing import packed_size, unpack_wavelet_tree


def configs(name: str) -> tuple[DiffusionConfig, AutoencoderConfig, int]:
    if name == "paper":
        return DiffusionConfig(condition=ConditionConfig(kind="pointcloud")), AutoencoderConfig(), 256
    diffusion_file, ae_file, resolution = {"tiny": ("configs/diffusion_tiny.yaml", "configs/ae_tiny.yaml", 64),
                                           "small": ("configs/diffusion_pc_cpu.yaml", "configs/ae_cpu128.yaml", 128)}[name]
    ae = load_config(AutoencoderTrainConfig, ae_file).model
    latent = WaveletVQVAE(ae).latent_size(packed_size(resolution))
    model = dataclasses.replace(load_config(DiffusionTrainConfig, diffusion_file).model, latent_size=latent)
    return model, ae, resolution


def timed(fn, device: torch.device, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("tiny", "small", "paper"), default="tiny")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--guidance", type=float, default=1.3)
    parser.add_argument("--points", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="autocast the diffusion model to bfloat16 (CUDA)")
    args = parser.parse_args()
    device = torch.device(args.device)
    model_config, ae_config, resolution = configs(args.config)
    model = LatentDiffusion(model_config).to(device).eval()
    autoencoder = WaveletVQVAE(ae_config).to(device).eval()
    with torch.no_grad():  # leave the zero init, so the sampled latents are not all zero
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    points = torch.rand(1, args.points, 3, device=device) * 1.8 - 0.9
    m, size = model_config.latent_size, packed_size(resolution)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.bf16 and device.type == "cuda")

    @torch.no_grad()
    def generate_latent():
        with autocast:
            tokens = model.encode_condition(points)
            noise = torch.randn(1, model_config.latent_channels, m, m, m, device=device)
            return sample(guided(model.denoiser, tokens, args.guidance), noise, model.alphas_cumprod, args.steps).float()

    @torch.no_grad()
    def decode(z):
        packed = autoencoder.decode(model.denormalize(z), size)
        return tree_to_tsdf(unpack_wavelet_tree(packed, resolution), RepresentationConfig(resolution=resolution))

    t_sample, z = timed(generate_latent, device, args.repeat)
    t_decode, _ = timed(lambda: decode(z), device, args.repeat)
    chair = family_tsdf("chair", 0, resolution)
    t_mesh, _ = timed(lambda: tsdf_to_mesh(chair), torch.device("cpu"), args.repeat)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    total = t_sample + t_decode + t_mesh
    print(f"{args.config} ({params:.1f}M generator, {resolution}³) on {device}, {args.steps} steps, "
          f"guidance {args.guidance}: sample {t_sample:.3f}s + decode {t_decode:.3f}s + mesh {t_mesh:.3f}s "
          f"= {total:.3f}s per shape")


if __name__ == "__main__":
    main()
