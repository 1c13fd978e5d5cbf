"""What `wala prep` costs per shape, and what Ray adds: the figures behind docs/scale.md's cost sheet.

1. CPU-seconds per real mesh for each stored product, through `prepare` itself (one process, so the
   process's CPU time counts every thread: torch's and Mesa's): the 256³ TSDF + wavelet tree (+ the
   point-cloud and voxel conditions), then what renders and depth maps at 4 and at 6 views add, then
   what the sketches at the 8 sketch views add (lineart, canny, hed, hed_potrace, scribble).
2. The same shard jobs (tree only, one shape a shard: the most tasks, the worst case) on a process
   pool and as Ray tasks on a local cluster, both with `--workers` processes; the cluster's start-up
   is timed apart (a cluster serving a long run starts once).

    python benchmarks/prep_cost.py [--meshes a.off b.obj …] [--ray-meshes 8] [--workers 2] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from results import report

from wala.config import RepresentationConfig
from wala.data import prepare

MESHES = Path(os.environ.get("WALA_MESHES", "data/meshes"))
DEFAULT = ["cgal/bunny00.off", "cgal/elephant.off", "pymeshlab/cow.obj"]
RAY_SET = ["armadillo", "bull", "camel", "cow", "dino", "elk", "pig", "triceratops", "homer", "lion", "man", "hand"]
PRODUCTS = {  # name → prepare options
    "tree": {},
    "views4": {"views": "rgb4"},
    "views6": {"views": "dm6"},
    "sketches8x5": {"views": "sketch", "sketches": "lineart,canny,hed,hed_potrace,scribble"},
}


def cpu_seconds(meshes: list[str], options: dict, resolution: int) -> tuple[float, float]:
    """(CPU s, wall s) per shape of preparing `meshes` in this process."""
    out = Path(tempfile.mkdtemp(prefix="prep-cost-"))
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        result = prepare(meshes, out, RepresentationConfig(resolution=resolution), progress=False, **options)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if result["errors"]:
            raise RuntimeError(result["errors"][0]["error"])
        return cpu / len(meshes), wall / len(meshes)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def pool_against_ray(meshes: list[str], workers: int, resolution: int) -> dict:
    import ray

    config = RepresentationConfig(resolution=resolution)
    walls = {}
    for engine in ("pool", "ray"):
        out = Path(tempfile.mkdtemp(prefix=f"prep-{engine}-"))
        try:
            if engine == "ray":
                started = time.perf_counter()
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                walls["ray_start"] = time.perf_counter() - started
            started = time.perf_counter()
            prepare(
                meshes,
                out,
                config,
                shard_size=1,
                workers=workers,
                progress=False,
                ray="auto" if engine == "ray" else "",
            )
            walls[engine] = time.perf_counter() - started
        finally:
            if engine == "ray":
                ray.shutdown()
            shutil.rmtree(out, ignore_errors=True)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meshes", nargs="+", default=[str(MESHES / m) for m in DEFAULT])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--ray-meshes", type=int, default=8, help="meshes for the pool/Ray comparison (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()

    cpu_seconds(args.meshes[:1], PRODUCTS["sketches8x5"], 64)  # warm-up: numba's compiles, HED's weights
    costs = {name: cpu_seconds(args.meshes, options, args.resolution) for name, options in PRODUCTS.items()}
    tree_cpu = costs["tree"][0]
    result = {
        "benchmark": "prep_cost",
        "resolution": args.resolution,
        "meshes": [Path(m).name for m in args.meshes],
        "cpu_s_per_shape": {name: round(cpu, 2) for name, (cpu, _) in costs.items()},
        "wall_s_per_shape": {name: round(wall, 2) for name, (_, wall) in costs.items()},
        "added_cpu_s_per_shape": {name: round(cpu - tree_cpu, 2) for name, (cpu, _) in costs.items() if name != "tree"},
    }
    if args.ray_meshes:
        meshes = [str(MESHES / "cgal" / f"{name}.off") for name in RAY_SET[: args.ray_meshes]]
        walls = pool_against_ray(meshes, args.workers, args.resolution)
        result.update(
            ray_meshes=len(meshes),
            workers=args.workers,
            pool_s=round(walls["pool"], 2),
            ray_s=round(walls["ray"], 2),
            ray_start_s=round(walls["ray_start"], 2),
            ray_overhead=round(walls["ray"] / walls["pool"] - 1, 3),
        )
    report(result, args.json)


if __name__ == "__main__":
    main()
