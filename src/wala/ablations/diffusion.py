"""`wala ablate diffusion`: seed Table 2 at small scale — U-ViT widths and depths, DiT vs U-ViT,
pre- vs post-quantization latents — all trained the same number of steps on the same data, in
the same autoencoder's latent space, and scored on the same held-out shapes.

The paper's sizes (hidden 384/768/1152 × 8/16/32 blocks) are scaled down by `width_scale` and
`depth_scale` (defaults 1/6 and 1/4: 64/128/192 × 2/4/8) so that a CPU can train every row.
Columns: the validation x0 MSE at fixed timesteps and noise, and IoU / CD / F-score of generated
vs true shapes (LFD, the paper's first column, comes with the evaluation harness).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from wala.config import load_config
from wala.data.shards import WaveletTreeDataset
from wala.eval.generation import evaluate_generation
from wala.pipeline import WaLaPipeline
from wala.train.checkpoint import latest_checkpoint
from wala.train.diffusion import DiffusionTrainConfig, train_diffusion

# (arch, paper width, paper depth, latent): the rows of seed Table 2
TABLE2_ROWS = [
    ("uvit", 384, 32, "pre"),
    ("uvit", 768, 32, "pre"),
    ("uvit", 1152, 8, "pre"),
    ("uvit", 1152, 16, "pre"),
    ("uvit", 1152, 32, "pre"),
    ("dit", 1152, 32, "pre"),
    ("uvit", 1152, 32, "post"),
]


def run_diffusion_ablation(
    out: str | Path,
    config_path: str,
    autoencoder: str,
    data: str,
    eval_data: str,
    steps: int = 1000,
    width_scale: float = 1 / 6,
    depth_scale: float = 1 / 4,
    eval_count: int = 20,
    rows=TABLE2_ROWS,
) -> list[dict]:
    out = Path(out)
    base = load_config(DiffusionTrainConfig, config_path)
    held_out = WaveletTreeDataset(eval_data)
    results = []
    for arch, width, depth, latent in rows:
        unit = 96 if arch == "dit" else 32  # heads of 32; the DiT's 3-D sin-cos table also needs width % 6 == 0
        w, d = max(unit, round(width * width_scale / unit) * unit), max(1, round(depth * depth_scale))
        name = f"{arch}_{w}x{d}_{latent}"
        denoiser = dataclasses.replace(base.model.denoiser, arch=arch, width=w, depth=d, heads=w // 32)
        model = dataclasses.replace(base.model, denoiser=denoiser, latent=latent)
        train = dataclasses.replace(
            base.train,
            data=data,
            eval_data=eval_data,
            out=str(out / "runs" / name),
            steps=steps,
            checkpoint_every=steps,
            eval_every=0,
        )
        logs_path = Path(train.out) / "metrics.jsonl"
        _share_latent_caches(out / "runs", Path(train.out))
        train_diffusion(dataclasses.replace(base, model=model, train=train, autoencoder=autoencoder))
        evals = [json.loads(line)["eval"] for line in logs_path.read_text().splitlines() if '"eval"' in line]
        generator = WaLaPipeline.from_pretrained(latest_checkpoint(Path(train.out)))
        steps_, guidance = generator.defaults()
        scores = evaluate_generation(generator, held_out, None, eval_count, steps_, guidance, methods=("wala",))
        results.append(
            {
                "arch": arch,
                "width": w,
                "depth": d,
                "latent": latent,
                "paper_width": width,
                "paper_depth": depth,
                "parameters": sum(p.numel() for p in generator.model.network.parameters()),
                "x0_mse": evals[-1]["mse"],
                **scores["wala"]["overall"],
            }
        )
        (out / "ablation_diffusion.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _share_latent_caches(runs: Path, target: Path) -> None:
    """Copies another row's cached latents into a new row's folder: rows with the same autoencoder
    and latent kind reuse them (the cache key is checked on load), the others encode their own."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("latents-train.safetensors", "latents-eval.safetensors"):
        if not (target / name).exists():
            for found in sorted(runs.glob(f"*_pre/{name}"))[:1]:
                shutil.copyfile(found, target / name)


def format_diffusion_ablation(rows: list[dict]) -> str:
    lines = [
        f"{'model':6s} {'width':>5s} {'depth':>5s} {'latent':>6s} {'(paper)':>10s} {'params':>8s} "
        f"{'x0 MSE':>8s} {'IoU':>7s} {'CD':>9s} {'F':>6s}"
    ]
    for r in rows:
        lines.append(
            f"{'U-ViT' if r['arch'] == 'uvit' else 'DiT':6s} {r['width']:5d} {r['depth']:5d} {r['latent']:>6s} "
            f"{r['paper_width']:>5d}×{r['paper_depth']:<4d} {r['parameters'] / 1e6:7.2f}M {r['x0_mse']:8.4f} "
            f"{r['iou']:7.4f} {r['cd']:9.6f} {r['fscore']:6.3f}"
        )
    return "\n".join(lines)
