"""The built-in models on the bundled examples (`make demo`, `python -m wala.demo`).

wala ships two small generators of the released architecture, trained here on CPU (configs/builtin/,
scripts/train_builtin.sh): `wala-pc64` (point cloud → shape) and `wala-vx64` (16³ voxels → shape), at
64³. The examples are procedural shapes of held-out seeds — never seen in training — stored as the
inputs a user would give (`builtin/examples/`: PLY point clouds, official voxel JSON). For each, the
demo writes the generated mesh and its turntable preview and prints IoU and Chamfer distance against
the true shape, beside the paper's baselines (the 16³ grid upsampled by nearest neighbour and by
trilinear interpolation).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BUILTIN = Path(__file__).parent / "builtin"
EXAMPLES = BUILTIN / "examples"
RESOLUTION = 64
EXAMPLE_SEED = 5000   # training used seeds 0–39 of each family, validation 1000–1001
EXAMPLE_POINTS = 2048


def true_tsdf(family: str, seed: int) -> np.ndarray:
    from wala.sdf.families import family_tsdf

    return family_tsdf(family, seed, RESOLUTION)


def make_examples(folder: Path = EXAMPLES, seed: int = EXAMPLE_SEED) -> None:
    """Writes one point cloud and one voxel grid per procedural family (held-out `seed`), as prep derives them."""
    import trimesh

    from wala.conditions.derive import occupancy_grid, surface_samples
    from wala.io.mesh import write_atomic
    from wala.sdf.extract import tsdf_to_mesh
    from wala.sdf.families import FAMILIES

    examples = []
    for family in FAMILIES:
        tsdf = true_tsdf(family, seed)
        name = f"{family}_{seed}"
        points = surface_samples(tsdf_to_mesh(tsdf), EXAMPLE_POINTS, seed=seed)
        (folder / "pointcloud").mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "pointcloud" / f"{name}.ply", trimesh.PointCloud(points).export(file_type="ply"))
        cells = np.argwhere(occupancy_grid(tsdf)).tolist()
        voxels = {"resolution": 16, "occupancy": cells, "color": [[128, 128, 128]] * len(cells)}
        write_atomic(folder / "voxel" / f"{name}.json", json.dumps(voxels, separators=(",", ":")).encode())
        examples.append({"name": name, "family": family, "seed": seed})
    write_atomic(folder / "manifest.json", (json.dumps(examples, indent=1) + "\n").encode())


def score(tsdf: np.ndarray, truth: np.ndarray, points: int = 10_000) -> dict:
    """IoU on the grid and Chamfer distance between surfaces (None where a TSDF has no surface)."""
    from wala.errors import WalaError
    from wala.eval.metrics import iou, surface_metrics
    from wala.sdf.extract import tsdf_to_mesh

    result = {"iou": float(iou(tsdf < 0, truth < 0)), "cd": None}
    try:
        result["cd"] = float(surface_metrics(tsdf_to_mesh(tsdf), tsdf_to_mesh(truth), points)["cd"])
    except WalaError:
        pass
    return result


def run_demo(out: Path, seed: int = 0) -> list[dict]:
    from wala.batch import OutputOptions, write_shapes
    from wala.eval.generation import points_to_occupancy, upsampled_tsdf
    from wala.io.conditions import load_point_cloud, load_voxels
    from wala.pipeline import WaLaPipeline

    examples = json.loads((EXAMPLES / "manifest.json").read_text())
    rows = []
    for kind, model, suffix in (("pointcloud", "wala-pc64", "ply"), ("voxel", "wala-vx64", "json")):
        pipe = WaLaPipeline.from_pretrained(BUILTIN / "models" / model, device="cpu")
        for example in examples:
            start = time.perf_counter()
            path = EXAMPLES / kind / f"{example['name']}.{suffix}"
            shape, = pipe(**{kind: str(path)}, seed=seed, progress=False)
            write_shapes([shape], out / kind / example["name"], OutputOptions())
            truth = true_tsdf(example["family"], example["seed"])
            grid = load_voxels(path) if kind == "voxel" else points_to_occupancy(load_point_cloud(path))
            row = {"kind": kind, "name": example["name"], "wala": score(shape.tsdf, truth),
                   **{mode: score(upsampled_tsdf(grid, RESOLUTION, mode), truth) for mode in ("nearest", "trilinear")},
                   "seconds": round(time.perf_counter() - start, 2)}
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    def cell(s):
        return f"IoU {s['iou']:.3f} CD {s['cd']:.4f}" if s["cd"] is not None else f"IoU {s['iou']:.3f} CD –"

    return (f"{row['kind']:<10} {row['name']:<16} wala {cell(row['wala'])} | nearest {cell(row['nearest'])} | "
            f"trilinear {cell(row['trilinear'])}  ({row['seconds']:.1f}s)")


def summary(rows: list[dict]) -> list[str]:
    lines = []
    for kind in ("pointcloud", "voxel"):
        mine = [r for r in rows if r["kind"] == kind]
        means = {m: (np.mean([r[m]["iou"] for r in mine]),
                     np.mean([r[m]["cd"] for r in mine if r[m]["cd"] is not None])) for m in ("wala", "nearest", "trilinear")}
        lines.append(f"{kind} mean over {len(mine)}: " + " | ".join(f"{m} IoU {i:.3f} CD {c:.4f}" for m, (i, c) in means.items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the built-in models on the bundled held-out examples")
    parser.add_argument("-o", "--output", default="out/demo/builtin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the scores here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run_demo(Path(args.output), args.seed)
    for line in summary(rows):
        print(line)
    print(f"{len(rows)} shapes with meshes and previews in {args.output} ({time.perf_counter() - start:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
