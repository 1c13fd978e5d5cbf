"""Peak RAM of `wala generate` for each released model family at full size, on random weights.

    python benchmarks/released_memory.py [--models PC,VX16,SV,RGB4,DM6,UN] [--dtype fp32] [--json out.jsonl]

Each model is built at the released size (the 954M U-ViT, the 12.9M VQ-VAE, its condition encoder:
PointNet_Large, the voxel encoder, or DINOv2 ViT-L/14 with registers), saved as a wala directory,
and run by `wala generate` in a fresh process on a synthetic condition of the right kind — one
sampling step with guidance (the peak of one step is the peak of all), decoding the 256³ TSDF, no
meshing (a random model's TSDF is noise: its mesh says nothing of a real one). The figure is the
process's own peak RSS (/proc VmHWM): weights + activations + the decoded grid. SK and DM1 share SV's
architecture, DM4 RGB4's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from results import PEAK, report  # benchmarks/results.py (scripts run from their folder)

from wala.config import ConditionConfig, DenoiserConfig, DiffusionConfig
from wala.diffusion.model import LatentDiffusion
from wala.hub.generators import save_model
from wala.nn import count_parameters

IMAGE = {"width": 1024, "camera_index": True}
FAMILIES = {  # name → (condition config, denoiser overrides, the flag and its files)
    "PC": (ConditionConfig(kind="pointcloud"), {}, "--pointcloud"),
    "VX16": (ConditionConfig(kind="voxel"), {}, "--voxel"),
    "SV": (ConditionConfig(kind="image", **IMAGE), {}, "--image"),
    "RGB4": (ConditionConfig(kind="views", training_views=(3, 6, 10, 26), **IMAGE), {}, "--views"),
    "DM6": (ConditionConfig(kind="depth", training_views=(3, 6, 10, 26, 49, 50), **IMAGE), {}, "--depth"),
    "UN": (ConditionConfig(kind="none", drop=0.0), {"cross": False}, "--unconditional"),
}


def condition_files(folder: Path, condition: ConditionConfig) -> list[str]:
    rng = np.random.default_rng(0)
    if condition.kind == "none":
        return []
    if condition.kind == "pointcloud":
        np.save(folder / "points.npy", (rng.random((25_000, 3), dtype=np.float32) * 1.8 - 0.9))
        return [str(folder / "points.npy")]
    if condition.kind == "voxel":
        np.save(folder / "voxels.npy", rng.random((16, 16, 16)) < 0.2)
        return [str(folder / "voxels.npy")]
    files = []
    for view in condition.training_views or (0,):
        path = folder / f"{view}.png"
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    return files


def measure(name: str, dtype: str, work: Path) -> dict:
    condition, denoiser, flag = FAMILIES[name]
    config = DiffusionConfig(condition=condition, denoiser=DenoiserConfig(**denoiser))
    started = time.perf_counter()
    model = LatentDiffusion(config)
    parameters = count_parameters(model)
    save_model(model, work / "model", "wala")
    del model
    files = condition_files(work, condition)
    args = ["generate", str(work / "model"), flag, *files, "--steps", "1", "--format", "npz"]
    args += ["--no-preview", "--dtype", dtype, "--device", "cpu", "-o", str(work / "out")]
    code = f"import sys\nfrom wala.cli import main\nmain({args!r})" + PEAK
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    peak = int(done.stdout.splitlines()[-1]) / 2**20
    return {
        "model": name,
        "dtype": dtype,
        "parameters_m": round(parameters / 1e6, 1),
        "weights_gib": round((work / "model" / "model.safetensors").stat().st_size / 2**30, 2),
        "peak_rss_gib": round(peak, 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(FAMILIES))
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--json", help="append each result here (one JSON object per line)")
    args = parser.parse_args()
    torch.manual_seed(0)
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="wala-memory-") as work:
            row = measure(name, args.dtype, Path(work))
        report(row, args.json)


if __name__ == "__main__":
    main()
