"""Scoring a conditional generator on held-out prepared shapes, beside the paper's two baselines.

Each held-out shape gives its condition (the stored surface points or 16³ occupancy, as at
training; for the image conditions its stored render, depth map(s) or sketch at one chosen view) and
its reference (the TSDF of its stored wavelet tree, at the dataset's resolution).
Methods:
- `wala`: the generator, one sample per shape (seed + index).
- `nearest`, `trilinear`: the paper's two baselines — the 16³ occupancy upsampled to N³ by
  nearest-neighbour (blocks) or trilinear interpolation and cut at 0.5. For a point cloud the grid
  is first voxelized from the points and its interior filled.
- `retrieval`: the training shape whose condition is closest (Chamfer between point clouds,
  Hamming between occupancy grids, mean squared pixel difference between images of the same view,
  at 56²), returned as is — a stronger reference than the paper's baselines when the held-out
  shapes resemble the training set (as procedural families do). The upsampling baselines need a
  voxel grid, so image conditions have only this one.
- `autoencoder`: the true shape encoded and decoded by the generator's VQ-VAE — not a competitor
  but the ceiling: the best any generator in this latent space can score.
Scores: IoU on the N³ grid, Chamfer distance and F-score between marching-cubes surfaces. A
method that yields no surface scores IoU 0 and F 0 and is left out of the CD mean (counted in
`failed`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.eval.autoencoder import summarize
from wala.eval.lfd import descriptor_distance, light_field_descriptor
from wala.eval.metrics import iou, surface_metrics
from wala.sdf.extract import tsdf_to_mesh
from wala.wavelet.packing import unpack_wavelet_tree
from wala.wavelet.tree import tree_to_tsdf

METHODS = ("wala", "nearest", "trilinear", "retrieval", "autoencoder")
UPSAMPLING = ("nearest", "trilinear")
METRICS = ["iou", "cd", "fscore", "failed"]


def upsampled_tsdf(occupancy: np.ndarray, resolution: int, mode: str = "trilinear") -> np.ndarray:
    """A (N³) field negative where the occupancy, upsampled by `mode` (nearest, trilinear), exceeds 0.5."""
    grid = torch.from_numpy(occupancy.astype(np.float32))[None, None]
    corners = {"align_corners": False} if mode == "trilinear" else {}
    up = F.interpolate(grid, size=(resolution,) * 3, mode=mode, **corners)[0, 0]
    field = (0.5 - up).numpy()
    # beyond the grid is empty: a shape touching the border (e.g. a box filling the cube) is closed
    # there instead of having no surface at all
    field[[0, -1]], field[:, [0, -1]], field[:, :, [0, -1]] = 0.5, 0.5, 0.5
    return field


class HeldOutConditions:
    """The condition array of prepared shape i as evaluation uses it: the stored points or occupancy,
    or for an image kind the stored images at one view (by name; default the first stored view; a
    multi-view model's own views) and, for sketches, one technique (default the first)."""

    def __init__(self, kind, c, shapes, view: str = "", technique: str = ""):
        from wala.conditions.images import IMAGE_ARRAYS, stored_views

        self.kind, self.c, self.shapes = kind, c, shapes
        self.pick: tuple = ()
        if kind.array in IMAGE_ARRAYS:
            multi = stored_views(c, shapes.views, kind.array)
            if multi is None:
                if view and view not in shapes.views:
                    raise WalaError(f"view '{view}' is not among the prepared views {shapes.views}")
                multi = shapes.views.index(view) if view else 0
            self.pick = (multi,)
            if kind.per_technique:
                if technique and technique not in shapes.sketches:
                    raise WalaError(f"technique '{technique}' is not among the prepared sketches {shapes.sketches}")
                self.pick += (shapes.sketches.index(technique) if technique else 0,)
        elif technique or view:
            raise WalaError(f"--view and --technique choose an image condition; this generator reads {kind.name}")

    def __call__(self, i: int) -> np.ndarray:
        stored = self.shapes.arrays(i, (self.kind.array,))[self.kind.array]
        return stored[self.pick] if self.pick else self.kind.held_out(stored, self.c)

    def model_input(self, array: np.ndarray, c) -> torch.Tensor:
        """(1, …) the model's input for one held-out array (images as training reads them, unaugmented)."""
        if self.kind.per_technique:
            array = array[None, None]  # one view, one technique
        elif self.pick and isinstance(self.pick[0], int):
            array = array[None]  # one view
        return self.kind.training_input(torch.from_numpy(np.ascontiguousarray(array))[None], c, None)


class Retrieval:
    """Retrieval over a reference (training) set by the condition kind's signature and distance."""

    def __init__(self, conditions: HeldOutConditions):
        self.kind = conditions.kind
        self.signatures = [self.kind.signature(conditions(i)) for i in range(len(conditions.shapes))]

    def nearest(self, condition: np.ndarray) -> int:
        query = self.kind.signature(condition)
        return int(np.argmin([self.kind.distance(query, s) for s in self.signatures]))


def score_tsdf(pred: np.ndarray, truth: np.ndarray, truth_mesh, points: int, truth_lfd=None) -> dict:
    """IoU, CD, F-score (and LFD against `truth_lfd`, a LightFieldDescriptor, when given)."""
    row = {"iou": iou(pred < 0, truth < 0), "failed": 0}
    try:
        mesh = tsdf_to_mesh(pred)
        row.update(surface_metrics(mesh, truth_mesh, points))
        if truth_lfd is not None:
            row["lfd"] = float(descriptor_distance(light_field_descriptor(mesh), truth_lfd))
    except WalaError:
        row.update(cd=float("nan"), fscore=0.0, failed=1, **({"lfd": float("nan")} if truth_lfd is not None else {}))
    return row


@torch.no_grad()
def _reconstructed(generator, shapes, i: int, config: RepresentationConfig) -> np.ndarray:
    ae = generator.autoencoder
    x = shapes[i][0][None].to(generator.device)
    tree = unpack_wavelet_tree(ae.decode(ae.encode(x), x.shape[-1]).float(), shapes.resolution)
    return tree_to_tsdf(tree, config)[0].cpu().numpy()


def evaluate_generation(
    generator,
    held_out,
    reference=None,
    count: int = 0,
    steps: int = 8,
    guidance: float = 1.3,
    seed: int = 0,
    points: int = 30_000,
    methods=METHODS,
    lfd: bool = False,
    view: str = "",
    technique: str = "",
) -> dict:
    """{method: summary} over the first `count` (0: all) held-out shapes; `reference` (the training
    set) is needed for the retrieval reference. `lfd` adds Light Field Distance (~1 s a mesh).
    `view`/`technique` choose the stored image an image-conditioned model is given (HeldOutConditions)."""
    kind = generator.model.kind
    if not kind.conditional:
        raise WalaError("generation is scored against a condition; this generator is unconditional")
    if not kind.array:
        raise WalaError(f"'{kind.name}' conditions are not stored in prepared data; nothing to score against")
    c = generator.condition_config
    config = RepresentationConfig(resolution=held_out.resolution)
    conditions = HeldOutConditions(kind, c, held_out, view, technique)
    voxel_grid = kind.occupancy is not None
    retrieval = (
        Retrieval(HeldOutConditions(kind, c, reference, view, technique))
        if "retrieval" in methods and reference is not None and kind.signature
        else None
    )
    rows: dict[str, list[dict]] = {
        m: [] for m in methods if (m != "retrieval" or retrieval is not None) and (m not in UPSAMPLING or voxel_grid)
    }
    for i in range(min(count, len(held_out)) if count else len(held_out)):
        record = held_out.records[i]
        condition = conditions(i)
        with torch.no_grad():
            truth = tree_to_tsdf(held_out.tree(i), config)[0].numpy()
        made = {}
        if "wala" in rows:
            tensor = conditions.model_input(condition, c).to(generator.device, next(generator.model.parameters()).dtype)
            made["wala"] = generator.generate_tsdf(tensor, 1, steps, guidance, seed + i)[0]
        if "retrieval" in rows:
            with torch.no_grad():
                made["retrieval"] = tree_to_tsdf(reference.tree(retrieval.nearest(condition)), config)[0].numpy()
        if "autoencoder" in rows:
            made["autoencoder"] = _reconstructed(generator, held_out, i, config)
        if voxel_grid:
            grid = kind.occupancy(condition, c)
            for mode in UPSAMPLING:
                if mode in rows:
                    made[mode] = upsampled_tsdf(grid, held_out.resolution, mode)
        truth_mesh = tsdf_to_mesh(truth)  # once per shape, shared by every method's scores
        truth_lfd = light_field_descriptor(truth_mesh) if lfd else None
        for method, pred in made.items():
            rows[method].append(
                {
                    "key": record["key"],
                    "dataset": record["dataset"],
                    **score_tsdf(pred, truth, truth_mesh, points, truth_lfd),
                }
            )
    return {method: summarize(r, METRICS + (["lfd"] if lfd else [])) for method, r in rows.items()}


def format_generation(results: dict) -> str:
    with_lfd = any("lfd" in r["overall"] for r in results.values())
    lines = [
        f"{'method':11s} {'n':>4s} "
        + (f"{'LFD':>8s} " if with_lfd else "")
        + f"{'IoU':>8s} {'CD':>10s} {'F-score':>8s} {'no surface':>10s}"
    ]
    for method, result in results.items():
        o = result["overall"]
        lines.append(
            f"{method:11s} {len(result['samples']):4d} "
            + (f"{o['lfd']:8.1f} " if with_lfd else "")
            + f"{o['iou']:8.4f} {o['cd']:10.6f} {o['fscore']:8.4f} {int(round(o['failed'] * len(result['samples']))):10d}"
        )
    datasets = sorted(next(iter(results.values()))["per_dataset"]) if results else []
    if datasets:
        lines.append(
            "IoU per dataset: "
            + "  ".join(
                f"{name}: " + "/".join(f"{results[m]['per_dataset'][name]['iou']:.3f}" for m in results)
                for name in datasets
            )
            + f"  ({'/'.join(results)})"
        )
    return "\n".join(lines)
