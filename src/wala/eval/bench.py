"""`wala bench`: derive a condition from every mesh of a reference set, generate from it, score.

Each reference mesh is normalized (bounding box centred, longest side 1.8 — a built reference
set already is), and its condition derived there as at prep time: a point cloud of surface
points (the generator's training count, seeded by the id) or the 16³ occupancy of its TSDF at the
generator's resolution. The conditions are saved beside the generated meshes so a run can be
inspected or repeated by `wala generate`. The generated shapes stay in that normalized frame,
so they are scored with `frame="normalized"`: placement and scale count, as they do for a
conditional generator.

In place of a checkpoint, `baseline:nearest` and `baseline:trilinear` run the paper's two
baselines on the same conditions: the 16³ grid (voxelized from the points, interior filled, for a
point cloud) upsampled to the scoring resolution and cut at 0.5.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from wala.conditions import CONDITIONS, condition_kind
from wala.config import ConditionConfig
from wala.errors import WalaError
from wala.eval.generation import UPSAMPLING, upsampled_tsdf
from wala.eval.harness import evaluate_folders, records_csv, reference_shapes
from wala.io.mesh import load_mesh, normalize_mesh, save_mesh, write_atomic
from wala.sdf.extract import tsdf_to_mesh

BENCHMARKED = tuple(name for name, kind in CONDITIONS.items() if kind.benchmarked)


class UpsamplingBaseline:
    """The paper's voxel baselines behind the generator interface `run_benchmark` uses."""

    def __init__(self, mode: str, condition: str, resolution: int = 256):
        if mode not in UPSAMPLING:
            raise WalaError(f"unknown baseline '{mode}' ({', '.join(UPSAMPLING)})")
        self.mode, self.resolution = mode, resolution
        self.condition_config = ConditionConfig(kind=condition)
        self.kind = condition_kind(condition)
        if not self.kind.occupancy:
            raise WalaError(f"the upsampling baselines start from a voxel grid; a {condition} condition has none")

    @property
    def condition(self) -> str:
        return self.condition_config.kind

    def generate(self, **given) -> list:
        grid = self.kind.occupancy(given[self.kind.name], self.condition_config)
        return [tsdf_to_mesh(upsampled_tsdf(grid, self.resolution, self.mode))]


def run_benchmark(
    condition: str,
    generator,
    reference: str | Path,
    out: str | Path,
    steps: int,
    guidance: float,
    seed: int = 0,
    limit: int = 0,
    resolution: int = 256,
    points: int = 100_000,
    progress=None,
) -> dict:
    """Generate one shape per reference and score them; writes OUT/generated, OUT/conditions,
    OUT/eval.json and OUT/eval.csv. `generator` is a wala.pipeline.WaLaPipeline or an
    UpsamplingBaseline."""
    if condition not in BENCHMARKED:
        raise WalaError(f"unknown benchmark condition '{condition}' ({', '.join(BENCHMARKED)})")
    if generator.condition != condition:
        raise WalaError(f"the checkpoint is conditioned on '{generator.condition}', not '{condition}'")
    out = Path(out)
    shapes = reference_shapes(reference)[: limit or None]
    failures = {}
    for shape in progress(shapes) if progress else shapes:
        mesh, _ = normalize_mesh(load_mesh(shape.path))
        value = condition_kind(condition).from_mesh(
            mesh, generator.condition_config, generator.resolution, zlib.crc32(shape.id.encode())
        )
        saved = out / "conditions" / f"{shape.id}.npy"
        saved.parent.mkdir(parents=True, exist_ok=True)
        np.save(saved, value)
        try:
            generated = generator.generate(**{condition: value}, samples=1, steps=steps, guidance=guidance, seed=seed)[
                0
            ]
        except WalaError as exc:  # the sample has no surface: scored as a failure
            failures[shape.id] = str(exc)
            continue
        target = out / "generated" / f"{shape.id}.obj"
        target.parent.mkdir(parents=True, exist_ok=True)
        save_mesh(generated, target)
    (out / "generated").mkdir(parents=True, exist_ok=True)
    result = evaluate_folders(
        out / "generated",
        reference,
        resolution,
        points,
        frame="normalized",
        progress=progress,
        ids=[s.id for s in shapes],
    )
    for record in result["records"]:
        if record["id"] in failures:
            record["error"] = failures[record["id"]]
    result.update(condition=condition, steps=steps, guidance=guidance, seed=seed)
    write_atomic(out / "eval.json", json.dumps(result, indent=2).encode())
    write_atomic(out / "eval.csv", records_csv(result["records"]).encode())
    return result
