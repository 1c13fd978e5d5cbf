"""Render and sketch time per view on this machine (CPU: Mesa's llvmpipe renders, torch runs HED):
real meshes at the paper's 8 sketch views, each technique timed per view (median), CLIPasso-style on
one view with the paper's settings (16 strokes, at most 2,000 iterations, stop when the loss changes
by less than 1e-5).

    python benchmarks/render_sketch.py [--meshes a.off b.obj] [--clipasso-iterations 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from wala.io.mesh import load_mesh, normalize_mesh
from wala.render.shaded import MeshRenderer
from wala.render.views import parse_views, render_views
from wala.sketch import Sketcher

MESHES = Path(os.environ.get("WALA_MESHES", "data/meshes"))
DEFAULT = ["pymeshlab/cow.obj", "cgal/elephant.off", "cgal/bunny00.off"]
FAST = ("lineart", "canny", "hed", "hed_potrace", "scribble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meshes", nargs="+", default=[str(MESHES / m) for m in DEFAULT])
    parser.add_argument("--clipasso-iterations", type=int, default=2000)
    parser.add_argument("--json")
    args = parser.parse_args()
    poses = parse_views("sketch")
    times: dict[str, list[float]] = {name: [] for name in ("render", *FAST)}
    sketcher = Sketcher(clipasso_iterations=args.clipasso_iterations)
    _ = sketcher.hed  # load the weights outside the timings
    with MeshRenderer() as renderer:
        for path in args.meshes:
            mesh, _ = normalize_mesh(load_mesh(path))
            render_views(mesh, poses[:1], renderer=renderer)  # warm the GL pipeline
            for pose in poses:
                started = time.perf_counter()
                (view,) = render_views(mesh, [pose], renderer=renderer)
                times["render"].append(time.perf_counter() - started)
                for technique in FAST:  # each on its own: none reuses another's HED map
                    sketcher.forget()
                    started = time.perf_counter()
                    sketcher.draw(technique, mesh, view)
                    times[technique].append(time.perf_counter() - started)
        mesh, _ = normalize_mesh(load_mesh(args.meshes[0]))
        (view,) = render_views(mesh, poses[:1], renderer=renderer)
        started = time.perf_counter()
        sketch = sketcher.draw("clipasso", mesh, view)
        clipasso = time.perf_counter() - started
    result = {
        "threads": torch.get_num_threads(),
        "views": len(args.meshes) * len(poses),
        "seconds_per_view": {k: statistics.median(v) for k, v in times.items()},
        "clipasso": {
            "seconds": clipasso,
            "iterations": sketch.iterations,
            "seconds_per_iteration": clipasso / max(sketch.iterations, 1),
        },
    }
    for name, seconds in result["seconds_per_view"].items():
        print(f"{name:12s} {seconds * 1000:8.1f} ms/view (median of {result['views']})")
    print(
        f"clipasso     {clipasso:8.1f} s for one view ({sketch.iterations} iterations, "
        f"{result['clipasso']['seconds_per_iteration'] * 1000:.0f} ms each)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
