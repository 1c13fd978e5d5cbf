"""Shapes per second with batched sampling: the built-in pc64 on the ten bundled example point clouds, with
up to 1 or 8 of them per denoiser call (`WaLaPipeline.__call__(batch, batch_size=…)`).

    python benchmarks/batch_throughput.py [--model pc64] [--sizes 1,8] [--repeat 2] [--json out.jsonl]

Sampling (the condition encoders and the guided chain) and the end to end figure (plus decoding and
marching cubes of every shape) are timed apart; the best of `--repeat` runs is kept.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from results import report  # benchmarks/results.py (scripts run from their folder)

from wala.pipeline import WaLaPipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "wala" / "examples" / "pointcloud"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pc64")
    parser.add_argument("--sizes", default="1,8")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="append the results here (one JSON object per line)")
    args = parser.parse_args()
    pipe = WaLaPipeline.from_pretrained(args.model, device=args.device)
    batch = [{"pointcloud": str(path)} for path in sorted(EXAMPLES.glob("*.ply"))]
    for size in map(int, args.sizes.split(",")):
        sampling, total = float("inf"), float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            shapes = pipe(batch, batch_size=size, seed=0, progress=False)
            if args.device != "cpu":
                torch.cuda.synchronize()
            sampled = time.perf_counter() - start
            faces = sum(len(s.mesh.faces) for group in shapes for s in group)
            sampling, total = min(sampling, sampled), min(total, time.perf_counter() - start)
        row = {
            "model": args.model,
            "batch_size": size,
            "shapes": len(batch),
            "sampling_shapes_per_s": round(len(batch) / sampling, 2),
            "end_to_end_shapes_per_s": round(len(batch) / total, 2),
            "faces": faces,
            "threads": torch.get_num_threads(),
        }
        report(row, args.json)


if __name__ == "__main__":
    main()
