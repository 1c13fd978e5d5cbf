"""`wala ablate ae`: seed Table 1 at small scale — adaptive sampling loss vs plain MSE, and balanced
fine-tuning with N shapes per dataset.

Training data is deliberately imbalanced (many chairs, few rings, a handful of real meshes) so that
balancing has something to fix; evaluation uses held-out seeds of every family plus held-out real
meshes, scored with IoU/MSE and their per-dataset averages D-IoU/D-MSE.

Rows, as in the paper: plain MSE (base steps), adaptive loss (base steps), then from the adaptive
base: "-" = the same number of extra steps without balancing, and one row per fine-tuning size N.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from wala.config import RepresentationConfig, load_config
from wala.data.prep import prepare
from wala.data.shards import WaveletTreeDataset
from wala.eval.autoencoder import evaluate_autoencoder
from wala.train.autoencoder import AutoencoderTrainConfig, load_autoencoder, train_autoencoder
from wala.train.checkpoint import latest_checkpoint

# seeds 0.. for training, 1000.. held out
TRAIN_MIX = [
    "procedural:chair:32",
    "procedural:table:16",
    "procedural:bookshelf:8",
    "procedural:mug:8",
    "procedural:vase:4",
    "procedural:airplane:4",
    "procedural:ring:2",
    "procedural:lamp:2",
]
EVAL_MIX = ["procedural:chair,table,bookshelf,mug,vase,airplane,ring,lamp:3:1000"]


def _split_meshes(folder: Path, out: Path) -> tuple[str, str]:
    """Real meshes as one more dataset ("real"): every other file trains, the rest is held out."""
    files = sorted(p.resolve() for p in folder.rglob("*") if p.suffix.lower() in (".off", ".obj", ".ply"))
    lists = []
    for split, chosen in (("train", files[::2]), ("eval", files[1::2])):
        path = out / split / "real.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(map(str, chosen)) + "\n")
        lists.append(str(path))
    return lists[0], lists[1]


def run_ae_ablation(
    out: str | Path,
    config_path: str = "configs/ae_tiny.yaml",
    resolution: int = 64,
    base_steps: int = 300,
    finetune_steps: int = 100,
    sizes: tuple[int, ...] = (2, 4, 8, 16),
    meshes: str | None = None,
    workers: int = 1,
    train_mix: list[str] = TRAIN_MIX,
    eval_mix: list[str] = EVAL_MIX,
) -> list[dict]:
    out = Path(out)
    rep = RepresentationConfig(resolution=resolution)
    train_sources, eval_sources = list(train_mix), list(eval_mix)
    if meshes and Path(meshes).is_dir():
        real_train, real_eval = _split_meshes(Path(meshes), out / "lists")
        train_sources.append(real_train)
        eval_sources.append(real_eval)
    prepare(train_sources, out / "data" / "train", rep, shard_size=16, workers=workers, progress=False)
    prepare(eval_sources, out / "data" / "eval", rep, shard_size=16, workers=workers, progress=False)
    eval_set = WaveletTreeDataset(out / "data" / "eval")
    base = load_config(AutoencoderTrainConfig, config_path)

    def run(name: str, loss: str, steps: int, init: str = "", sampling: str = "uniform", per_dataset: int = 0) -> dict:
        train = replace(
            base.train,
            data=str(out / "data" / "train"),
            out=str(out / "runs" / name),
            steps=steps,
            checkpoint_every=steps,
            eval_every=0,
            eval_samples=1,
            init_from=init,
            sampling=sampling,
            per_dataset=per_dataset,
        )
        train_autoencoder(replace(base, train=train, loss=loss))
        checkpoint = latest_checkpoint(out / "runs" / name)
        metrics = evaluate_autoencoder(load_autoencoder(checkpoint), eval_set)["overall"]
        return {"checkpoint": str(checkpoint), **metrics}

    rows = [
        {"loss": "mse", "finetune": None, **run("mse", "mse", base_steps)},
        {"loss": "adaptive", "finetune": None, **run("adaptive", "adaptive", base_steps)},
    ]
    base_ckpt = rows[1]["checkpoint"]
    rows.append({"loss": "adaptive", "finetune": "-", **run("continue", "adaptive", finetune_steps, base_ckpt)})
    for n in sizes:
        rows.append(
            {
                "loss": "adaptive",
                "finetune": n,
                **run(f"balanced_{n}", "adaptive", finetune_steps, base_ckpt, "balanced", n),
            }
        )
    (out / "ablation_ae.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def format_ae_ablation(rows: list[dict]) -> str:
    lines = [f"{'sampling loss':14s} {'finetune N':>10s} {'IoU':>8s} {'MSE':>9s} {'D-IoU':>8s} {'D-MSE':>9s}"]
    for r in rows:
        ft = "" if r["finetune"] is None else str(r["finetune"])
        lines.append(
            f"{'yes' if r['loss'] != 'mse' else 'no':14s} {ft:>10s} {r['iou']:8.5f} {r['mse']:9.6f} "
            f"{r['d_iou']:8.5f} {r['d_mse']:9.6f}"
        )
    return "\n".join(lines)
