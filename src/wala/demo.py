"""Point-cloud and voxel generators on bundled held-out examples (`python -m wala.demo`, `make demo`).

The examples (`examples/`: PLY point clouds and official voxel JSON) are procedural shapes of a seed
no training run here uses (5000; prep draws seeds 0… for training and 1000… for validation), stored
as the inputs a user would give. For each example and each model given, the demo writes the
generated mesh and its turntable preview and prints IoU and Chamfer distance against the true shape
beside the paper's baselines (the 16³ grid upsampled by nearest neighbour and by trilinear
interpolation). The models must work at 64³, the examples' resolution: the built-in `pc64` and `vx64`
(src/wala/builtin/, trained by scripts/train_builtin.py from configs/builtin/) do.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parent / "examples"
RESOLUTION = 64
EXAMPLE_SEED = 5000  # training used seeds 0–39 of each family, validation 1000–1001
EXAMPLE_POINTS = 2048


def true_tsdf(family: str, seed: int) -> np.ndarray:
    from wala.sdf.families import family_tsdf

    return family_tsdf(family, seed, RESOLUTION)


def example_conditions(tsdf: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """A true shape's conditions as the examples hold them: {"pointcloud": (2048, 3) surface points,
    "voxel": the 16³ occupancy}."""
    from wala.conditions.derive import occupancy_grid, surface_samples
    from wala.sdf.extract import tsdf_to_mesh

    return {
        "pointcloud": surface_samples(tsdf_to_mesh(tsdf), EXAMPLE_POINTS, seed=seed),
        "voxel": occupancy_grid(tsdf),
    }


def make_examples(folder: Path = EXAMPLES, seed: int = EXAMPLE_SEED, families: list[str] | None = None) -> None:
    """Writes one point cloud and one voxel grid per procedural family (held-out `seed`), as prep
    derives them, and their manifest."""
    import trimesh

    from wala.io.mesh import write_atomic
    from wala.sdf.families import FAMILIES

    examples = []
    for family in families or FAMILIES:
        name = f"{family}_{seed}"
        conditions = example_conditions(true_tsdf(family, seed), seed)
        (folder / "pointcloud").mkdir(parents=True, exist_ok=True)
        ply = trimesh.PointCloud(conditions["pointcloud"]).export(file_type="ply")
        write_atomic(folder / "pointcloud" / f"{name}.ply", ply)
        cells = np.argwhere(conditions["voxel"]).tolist()
        voxels = {"resolution": 16, "occupancy": cells, "color": [[128, 128, 128]] * len(cells)}
        write_atomic(folder / "voxel" / f"{name}.json", json.dumps(voxels, separators=(",", ":")).encode())
        examples.append({"name": name, "family": family, "seed": seed})
    write_atomic(folder / "manifest.json", (json.dumps(examples, indent=1) + "\n").encode())


def score(tsdf: np.ndarray, truth: np.ndarray, truth_mesh, points: int = 10_000) -> dict:
    """IoU on the grid and Chamfer distance between surfaces (None where `tsdf` has no surface)."""
    from wala.eval.generation import score_tsdf

    row = score_tsdf(tsdf, truth, truth_mesh, points)
    return {"iou": float(row["iou"]), "cd": None if row["failed"] else float(row["cd"])}


def run_demo(models: dict[str, str], out: Path, seed: int = 0, names: list[str] | None = None) -> list[dict]:
    """Every bundled example (or those in `names`) through each model of `models` ({"pointcloud":
    path or name, "voxel": …}): files written to `out/KIND/NAME/`, one printed line and one row each."""
    from wala.batch import OutputOptions, write_shapes
    from wala.errors import WalaError
    from wala.eval.generation import UPSAMPLING, upsampled_tsdf
    from wala.pipeline import WaLaPipeline
    from wala.sdf.extract import tsdf_to_mesh

    examples = [e for e in json.loads((EXAMPLES / "manifest.json").read_text()) if not names or e["name"] in names]
    rows, truths = [], {}
    for kind, model in models.items():
        suffix = {"pointcloud": "ply", "voxel": "json"}[kind]
        pipe = WaLaPipeline.from_pretrained(model, device="cpu")
        if pipe.resolution != RESOLUTION:
            raise WalaError(f"{model} works at {pipe.resolution}³; the examples are {RESOLUTION}³")
        for example in examples:
            start = time.perf_counter()
            path = EXAMPLES / kind / f"{example['name']}.{suffix}"
            (shape,) = pipe(**{kind: str(path)}, seed=seed, progress=False)
            write_shapes([shape], out / kind / example["name"], OutputOptions())
            if example["name"] not in truths:  # once: every model and method is scored against it
                truth = true_tsdf(example["family"], example["seed"])
                truths[example["name"]] = truth, tsdf_to_mesh(truth)
            truth, truth_mesh = truths[example["name"]]
            grid = pipe.model.kind.occupancy(pipe.read_condition(kind, [path]), pipe.condition_config)
            row = {
                "kind": kind,
                "name": example["name"],
                "wala": score(shape.tsdf, truth, truth_mesh),
                **{mode: score(upsampled_tsdf(grid, RESOLUTION, mode), truth, truth_mesh) for mode in UPSAMPLING},
                "seconds": round(time.perf_counter() - start, 2),
            }
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    def cell(s):
        return f"IoU {s['iou']:.3f} CD {s['cd']:.4f}" if s["cd"] is not None else f"IoU {s['iou']:.3f} CD –"

    return (
        f"{row['kind']:<10} {row['name']:<16} wala {cell(row['wala'])} | nearest {cell(row['nearest'])} | "
        f"trilinear {cell(row['trilinear'])}  ({row['seconds']:.1f}s)"
    )


def summary(rows: list[dict]) -> list[str]:
    lines = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        cells = []
        for method in ("wala", "nearest", "trilinear"):
            distances = [r[method]["cd"] for r in mine if r[method]["cd"] is not None]
            cd = f"{np.mean(distances):.4f}" if distances else "–"
            cells.append(f"{method} IoU {np.mean([r[method]['iou'] for r in mine]):.3f} CD {cd}")
        lines.append(f"{kind} mean over {len(mine)}: " + " | ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    from wala.cli import options

    parser = options.OneLineParser(
        prog="wala.demo", description="generators on the bundled held-out examples, beside the baselines"
    )
    parser.add_argument("--pointcloud-model", help="a point-cloud generator working at 64³ (path or name)")
    parser.add_argument("--voxel-model", help="a voxel generator working at 64³ (path or name)")
    parser.add_argument("-o", "--output", default="out/demo/examples")
    parser.add_argument("--seed", type=options.seed, default=0)
    parser.add_argument("--json", help="write the scores here")
    return options.run_command(run, parser.parse_args(argv))


def run(args) -> None:
    from wala.errors import WalaError

    models = {k: v for k, v in (("pointcloud", args.pointcloud_model), ("voxel", args.voxel_model)) if v}
    if not models:
        raise WalaError("give --pointcloud-model and/or --voxel-model")
    start = time.perf_counter()
    rows = run_demo(models, Path(args.output), args.seed)
    for line in summary(rows):
        print(line)
    print(f"{len(rows)} shapes with meshes and previews in {args.output} ({time.perf_counter() - start:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
