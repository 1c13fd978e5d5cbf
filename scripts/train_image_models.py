"""Issue 14's experiment: small image-conditioned models trained on our own renders — single view (sv64),
four depth maps (dm4_64), a sketch model from scratch (sk64) and the same sketch model fine-tuned from
sv64 (sk64_ft, the paper's way) for the same number of steps — then scored on held-out shapes.

Stages:
- `prep`: the built-in models' 434 training shapes (procedural seeds 0–39 + the offline real meshes)
  and 20 held-out ones (seeds 1000–1001) at 64³, with renders, depth maps and line-art/Canny sketches
  at the paper's 8 sketch views (`wala prep --views sketch --sketches lineart,canny`).
- `pack`: only what training reads — the condition arrays at views 3, 6, 10, 26, the VQ-VAE and its
  latents of those shapes — into a folder small enough to send to a GPU machine (~30 MB).
- `train`: sv64, dm4_64 and sk64 one after the other, each for as many steps as fit `--seconds` (a
  short calibration run measures the step time), then sk64_ft from sv64's last checkpoint for sk64's count.
- `export`: each run's EMA weights as a pickle-free fp16 directory.
- `eval`: `wala eval-gen` of each model on the held-out shapes (view 3 for one image).

    python scripts/train_image_models.py --work runs/img --stages prep,pack --autoencoder AE --latents DIR
    python scripts/train_image_models.py --work PACKED --stages train,export --seconds 200      # on the GPU
    python scripts/train_image_models.py --work runs/img --models DIR --stages eval
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_builtin import ROOT, calibrated_steps, wala  # noqa: E402  (a sibling script)

RUNS = ("sv64", "dm4_64", "sk64")
PACKED_VIEWS = ("3", "6", "10", "26")


def prep(work: Path, workers: int) -> None:
    meshes = [
        str(ROOT / "data/meshes" / name) for name in ("cgal", "pymeshlab") if (ROOT / "data/meshes" / name).is_dir()
    ]
    options = [
        "--resolution",
        "64",
        "--workers",
        str(workers),
        "--views",
        "sketch",
        "--sketches",
        "lineart,canny",
        "--quiet",
    ]
    wala("prep", "procedural:all:40", *meshes, "-o", str(work / "data/train"), "--shard-size", "16", *options)
    wala("prep", "procedural:all:2:1000", "-o", str(work / "data/eval"), "--shard-size", "4", *options)


def pack(work: Path, packed: Path, autoencoder: Path, latents: Path) -> None:
    """The condition arrays at PACKED_VIEWS (no wavelet trees: training reads cached latents)."""
    from wala.data.shards import WaveletTreeDataset, write_shard

    for split in ("train", "eval"):
        shapes = WaveletTreeDataset(work / "data" / split)
        keep = [shapes.views.index(v) for v in PACKED_VIEWS]
        samples = []
        for i, record in enumerate(shapes.records):
            arrays = shapes.arrays(i, ("rgb", "depth", "sketch"))
            meta = {k: record[k] for k in ("key", "dataset", "id", "source", "resolution")}
            samples.append((meta, {k: v[keep] for k, v in arrays.items()}))
        folder = packed / "data" / split
        for index, start in enumerate(range(0, len(samples), 64)):
            write_shard(folder, index, samples[start : start + 64])
        settings = json.loads((work / "data" / split / "prep.json").read_text())
        (folder / "prep.json").write_text(json.dumps({**settings, "views": list(PACKED_VIEWS)}, indent=2) + "\n")
        shutil.copy(latents / f"latents-{split}.safetensors", packed / f"latents-{split}.safetensors")
    shutil.copy(autoencoder, packed / "ae.safetensors")


def _data(work: Path) -> list[str]:
    """The packed autoencoder and data, as `--set` arguments (every run and calibration reads them)."""
    return [
        "--set",
        f"autoencoder={work / 'ae.safetensors'}",
        "--set",
        f"train.data={work / 'data/train'}",
        "--set",
        f"train.eval_data={work / 'data/eval'}",
    ]


def _sets(work: Path, name: str, steps: int) -> list[str]:
    return [
        *_data(work),
        "--set",
        f"train.out={work / name}",
        "--set",
        f"train.steps={steps}",
        "--set",
        f"train.eval_every={max(steps // 4, 1)}",
        "--set",
        f"train.checkpoint_every={steps}",
    ]


def _with_latents(work: Path, name: str) -> None:
    """The packed latents where the run looks for its cache (they match its autoencoder and shapes)."""
    (work / name).mkdir(parents=True, exist_ok=True)
    for split in ("train", "eval"):
        shutil.copy(work / f"latents-{split}.safetensors", work / name / f"latents-{split}.safetensors")


def train(work: Path, seconds: float, calibration: int) -> None:
    """One run at a time: on one GPU, three small runs side by side spent most of their time contending
    for the CPU (~600 ms a step each, against ~40 ms for one alone)."""
    import yaml

    started = time.perf_counter()
    for name in (*RUNS, "sk64_ft", *(f"calibration/{n}" for n in RUNS)):
        _with_latents(work, name)
    steps: dict[str, int] = {}
    for name in RUNS:
        config = f"configs/image/{name}.yaml"
        batch = yaml.safe_load((ROOT / config).read_text())["train"]["batch_size"]
        steps[name] = calibrated_steps("train-diffusion", config, _data(work), work, seconds, batch, calibration)()
        wala("train-diffusion", config, *_sets(work, name, steps[name]), log=work / f"{name}.log")
    steps["sk64_ft"] = steps["sk64"]  # equal steps: the comparison the paper's recipe rests on
    single_view = work / "sv64" / f"step-{steps['sv64']:08d}.safetensors"
    wala(
        "train-diffusion",
        "configs/image/sk64.yaml",
        *_sets(work, "sk64_ft", steps["sk64"]),
        "--set",
        f"train.init_from={single_view}",
        log=work / "sk64_ft.log",
    )
    (work / "steps.json").write_text(json.dumps(steps))
    print(f"trained {steps} in {time.perf_counter() - started:.0f} s", flush=True)


def export(work: Path, models: Path) -> None:
    steps = json.loads((work / "steps.json").read_text())
    for name, count in steps.items():
        wala(
            "convert", str(work / name / f"step-{count:08d}.safetensors"), "-o", str(models / name), "--storage", "fp16"
        )


def evaluate(work: Path, models: Path, steps: int) -> None:
    """Each model on the 20 held-out shapes, `steps` sampling steps at its recommended guidance; one-image
    models see view 3 (sketches: line art), dm4_64 its four depth maps."""
    for name in (*RUNS, "sk64_ft"):
        if not (models / name).is_dir():
            continue
        view = [] if name.startswith("dm4") else ["--view", "3"]
        wala(
            "eval-gen",
            str(models / name),
            str(work / "data/eval"),
            "--reference",
            str(work / "data/train"),
            *view,
            "--points",
            "20000",
            "--steps",
            str(steps),
            "--json",
            str(models / f"eval_{name}_{steps}.json"),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="runs/img", type=Path)
    parser.add_argument("--packed", default=".gpu/img", type=Path, help="pack: where the packed data goes")
    parser.add_argument("--models", default="runs/img/models", type=Path)
    parser.add_argument("--stages", default="prep,pack")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--autoencoder", type=Path, help="pack: the VQ-VAE checkpoint of the built-in models")
    parser.add_argument("--latents", type=Path, help="pack: folder with its latents-{train,eval}.safetensors")
    parser.add_argument("--seconds", type=float, default=200.0, help="train: each run's budget")
    parser.add_argument("--calibration-steps", type=int, default=45)
    parser.add_argument(
        "--eval-steps",
        type=int,
        default=25,
        help="eval: sampling steps (the models are short-trained: "
        "the README's 5 steps score lower, see docs/images-and-sketches.md)",
    )
    args = parser.parse_args()
    stages = args.stages.split(",")
    if "prep" in stages:
        prep(args.work, args.workers)
    if "pack" in stages:
        pack(args.work, args.packed, args.autoencoder, args.latents)
    if "train" in stages:
        train(args.work, args.seconds, args.calibration_steps)
    if "export" in stages:
        export(args.work, args.models)
    if "eval" in stages:
        evaluate(args.work, args.models, args.eval_steps)


if __name__ == "__main__":
    main()
