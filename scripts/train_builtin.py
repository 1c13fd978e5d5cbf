"""Trains the built-in 64³ models (src/wala/builtin/) within a time budget per stage, on a GPU or a CPU.

Stages: `prep` (procedural families, seeds 0…N-1, + the offline real meshes → train; seeds 1000–1001 →
validation), `train` (the VQ-VAE, then the point-cloud and voxel generators side by side) and `export`
(pickle-free directories, weights stored as fp16). Each training stage first runs a short calibration
to measure its step time, then trains for as many steps as fit its budget, so the cosine schedule
ends where the budget does. Usage:

    python scripts/train_builtin.py --work runs/builtin --stages prep,train,export \\
        --ae-seconds 150 --gen-seconds 170 --models src/wala/builtin

`--autoencoder configs/builtin/ae64_fine.yaml` trains the generators in the finer 4×11³ latent space;
`--ae-set KEY=VALUE` changes the VQ-VAE's run only (e.g. `model.width=48`). A trained VQ-VAE instead
of a config (`--autoencoder checkpoints/ae64_fine/ema.safetensors`) skips its stage: the whole budget
goes to the generators, in its latent space (and `--ae-set`, which would change nothing, is refused).

(`make meshes` first, for the real meshes.) What one run reached: docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATORS = ("pc64", "vx64")


def wala(*args: str, log: Path | None = None, wait: bool = True):
    command = [sys.executable, "-m", "wala.cli", *args]
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "w") if log else None
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT if out else None)
    if not wait:
        return process
    if process.wait():
        raise SystemExit(f"failed ({process.returncode}): {' '.join(args)}" + (f" — see {log}" if log else ""))
    return process


def prep(work: Path, seeds: int, workers: int) -> None:
    meshes = [
        str(ROOT / "data/meshes" / name) for name in ("cgal", "pymeshlab") if (ROOT / "data/meshes" / name).is_dir()
    ]
    started = time.perf_counter()
    wala(
        "prep",
        f"procedural:all:{seeds}",
        *meshes,
        "-o",
        str(work / "data/train"),
        "--resolution",
        "64",
        "--workers",
        str(workers),
        "--shard-size",
        "16",
        "--quiet",
    )
    wala(
        "prep",
        "procedural:all:2:1000",
        "-o",
        str(work / "data/eval"),
        "--resolution",
        "64",
        "--workers",
        str(workers),
        "--shard-size",
        "4",
        "--quiet",
    )
    print(f"prep: {time.perf_counter() - started:.0f} s", flush=True)


def step_seconds(metrics: Path, batch: int) -> float:
    """Seconds per step between the first and last logged step (the trainer logs cumulative shapes/s)."""
    rows = [r for r in map(json.loads, metrics.read_text().splitlines()) if "shapes_per_s" in r]
    (s0, r0), (s1, r1) = [(r["step"], r["shapes_per_s"]) for r in (rows[0], rows[-1])]
    return (s1 * batch / r1 - s0 * batch / r0) / (s1 - s0)


def as_sets(overrides: list[str]) -> list[str]:
    """KEY=VALUE overrides as `--set` arguments."""
    return [item for pair in overrides for item in ("--set", pair)]


def batch_size(overrides: list[str]) -> int | None:
    """The batch size the overrides set (the last one wins, as in `--set`), or None."""
    sizes = [int(pair.split("=", 1)[1]) for pair in overrides if pair.startswith("train.batch_size=")]
    return sizes[-1] if sizes else None


def common(work: Path, overrides: list[str]) -> list[str]:
    """The data paths and the user's KEY=VALUE overrides, as `--set` arguments of every training run."""
    data = [f"train.data={work / 'data/train'}", f"train.eval_data={work / 'data/eval'}"]
    return as_sets([*data, *overrides])


def calibrated_steps(
    kind: str, config: str, sets: list[str], work: Path, seconds: float, batch: int, calibration: int
) -> Callable[[], int]:
    """Starts a calibration run of `calibration` steps; returns a function giving the step count that
    fits `seconds` (`sets`: the run's `--set` arguments)."""
    out = work / "calibration" / Path(config).stem
    process = wala(
        kind,
        config,
        *sets,
        "--set",
        f"train.out={out}",
        "--set",
        f"train.steps={calibration}",
        "--set",
        f"train.log_every={calibration // 3}",
        "--set",
        "train.eval_samples=2",
        log=out.parent / f"{out.name}.log",
        wait=False,
    )

    def steps() -> int:
        if process.wait():
            raise SystemExit(f"calibration of {config} failed: see {out.parent / out.name}.log")
        per_step = step_seconds(out / "metrics.jsonl", batch)
        # four evaluations and three checkpoints cost little; keep 10 % for them
        count = int(0.9 * seconds / per_step) // 100 * 100
        print(f"{Path(config).stem}: {per_step * 1000:.1f} ms/step → {count} steps in {seconds:.0f} s", flush=True)
        return max(count, 200)

    return steps


def train(
    work: Path,
    ae_config: str,
    ae_seconds: float,
    gen_seconds: float,
    calibration: int,
    overrides: list[str],
    ae_overrides: list[str],
) -> None:
    import yaml

    trained = ae_config.endswith(".safetensors")  # a trained VQ-VAE: no stage of its own
    ae = Path(ae_config).stem
    configs = {**({} if trained else {ae: ae_config}), **{name: f"configs/builtin/{name}.yaml" for name in GENERATORS}}
    batch = {name: yaml.safe_load((ROOT / path).read_text())["train"]["batch_size"] for name, path in configs.items()}
    if batch_size(overrides):
        batch = dict.fromkeys(batch, batch_size(overrides))
    if batch_size(ae_overrides) and not trained:
        batch[ae] = batch_size(ae_overrides)
    sets = common(work, overrides)
    recorded = {}  # steps of each run, for the export
    if trained:
        autoencoder = Path(ae_config).resolve()
    else:
        ae_sets = [*sets, *as_sets(ae_overrides)]
        started = time.perf_counter()
        recorded[ae] = calibrated_steps("train-ae", ae_config, ae_sets, work, ae_seconds, batch[ae], calibration)()
        wala(
            "train-ae",
            ae_config,
            *ae_sets,
            "--set",
            f"train.out={work / ae}",
            "--set",
            f"train.steps={recorded[ae]}",
            "--set",
            f"train.eval_every={max(recorded[ae] // 4, 1)}",
            log=work / f"{ae}.log",
        )
        autoencoder = work / ae / f"step-{recorded[ae]:08d}.safetensors"
        print(f"{ae}: {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    sets = [*sets, "--set", f"autoencoder={autoencoder}"]
    counts = [
        calibrated_steps(
            "train-diffusion", f"configs/builtin/{name}.yaml", sets, work, gen_seconds, batch[name], calibration
        )
        for name in GENERATORS
    ]
    counts = [count() for count in counts]  # both calibrations ran side by side, as the runs will
    runs = [
        wala(
            "train-diffusion",
            f"configs/builtin/{name}.yaml",
            *sets,
            "--set",
            f"train.out={work / name}",
            "--set",
            f"train.steps={steps}",
            "--set",
            f"train.eval_every={max(steps // 4, 1)}",
            log=work / f"{name}.log",
            wait=False,
        )
        for name, steps in zip(GENERATORS, counts)
    ]
    for name, run in zip(GENERATORS, runs):
        if run.wait():
            raise SystemExit(f"training {name} failed: see {work / name}.log")
    (work / "steps.json").write_text(json.dumps({**recorded, **dict(zip(GENERATORS, counts))}))
    print(f"generators: {time.perf_counter() - started:.0f} s", flush=True)


def export(work: Path, models: Path) -> None:
    steps = json.loads((work / "steps.json").read_text())
    for name in GENERATORS:
        wala(
            "convert",
            str(work / name / f"step-{steps[name]:08d}.safetensors"),
            "-o",
            str(models / name),
            "--storage",
            "fp16",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="runs/builtin", type=Path)
    parser.add_argument("--models", default="src/wala/builtin", type=Path)
    parser.add_argument("--stages", default="prep,train,export")
    parser.add_argument("--seeds", type=int, default=100, help="procedural shapes per family")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--autoencoder", default="configs/builtin/ae64.yaml", help="the VQ-VAE's config")
    parser.add_argument("--ae-seconds", type=float, default=3600)
    parser.add_argument("--gen-seconds", type=float, default=3600)
    parser.add_argument("--calibration-steps", type=int, default=120)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every training run"
    )
    parser.add_argument(
        "--ae-set", action="append", default=[], metavar="KEY=VALUE", help="an override for the VQ-VAE's run only"
    )
    args = parser.parse_args()
    if args.ae_set and args.autoencoder.endswith(".safetensors"):
        parser.error(f"--ae-set changes the VQ-VAE's training run; {args.autoencoder} is trained already")
    stages = args.stages.split(",")
    if "prep" in stages:
        prep(args.work, args.seeds, args.workers)
    if "train" in stages:
        train(
            args.work,
            args.autoencoder,
            args.ae_seconds,
            args.gen_seconds,
            args.calibration_steps,
            args.set,
            args.ae_set,
        )
    if "export" in stages:
        export(args.work, args.models)


if __name__ == "__main__":
    main()
