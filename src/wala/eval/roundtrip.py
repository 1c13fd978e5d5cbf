"""How much the representation loses: a TSDF through the wavelet tree and back, scored.

Variants, each decoded to a TSDF and a marching-cubes mesh:
- tsdf:          the N³ TSDF itself (what discretization and truncation lose)
- tree:          C0 + D0 + D1, D2 dropped (the WaLa wavelet tree)
- tree_filtered: the tree with only important detail coefficients (|c| > subband max / 32)
- c0:            the coarse coefficients alone
IoU and MSE compare with the TSDF on the N³ grid; CD and F-score compare each mesh with the
reference surface (the normalized input mesh), as defined in wala.eval.metrics.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.eval.metrics import DEFAULT_SURFACE_POINTS, iou, surface_metrics, tsdf_mse
from wala.sdf.extract import tsdf_to_mesh
from wala.wavelet.tree import tree_to_tsdf, tsdf_to_tree

VARIANTS = ("tsdf", "tree", "tree_filtered", "c0")


def roundtrip_metrics(
    tsdf: np.ndarray,
    reference: trimesh.Trimesh,
    config: RepresentationConfig = RepresentationConfig(),
    points: int = DEFAULT_SURFACE_POINTS,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """{variant: {iou, mse, cd, fscore}} for one (N, N, N) TSDF and its reference mesh."""
    with torch.no_grad():
        tree = tsdf_to_tree(torch.from_numpy(np.asarray(tsdf, dtype=np.float32))[None], config)
        decoded = {
            "tsdf": np.asarray(tsdf, dtype=np.float32),
            "tree": tree_to_tsdf(tree, config)[0].numpy(),
            "tree_filtered": tree_to_tsdf(tree.filtered(config.importance_ratio), config)[0].numpy(),
            "c0": tree_to_tsdf(tree.coarse_only(), config)[0].numpy(),
        }
    inside = decoded["tsdf"] < 0
    results = {}
    for name, grid in decoded.items():
        row = {"iou": iou(grid < 0, inside), "mse": tsdf_mse(grid, decoded["tsdf"])}
        try:
            row.update(surface_metrics(tsdf_to_mesh(grid), reference, points, seed=seed))
        except WalaError:  # the variant lost the whole surface
            row.update(cd=float("inf"), fscore=0.0)
        results[name] = row
    return results


def format_roundtrip_table(rows: list[tuple[str, dict[str, dict[str, float]]]]) -> str:
    """A fixed-width table: one line per (shape, variant)."""
    lines = [f"{'shape':24s} {'variant':14s} {'IoU':>8s} {'MSE':>10s} {'CD':>10s} {'F-score':>8s}"]
    for name, metrics in rows:
        for variant in VARIANTS:
            m = metrics[variant]
            lines.append(
                f"{name[:24]:24s} {variant:14s} {m['iou']:8.4f} {m['mse']:10.2e} {m['cd']:10.2e} {m['fscore']:8.4f}"
            )
    if len(rows) > 1:
        for variant in VARIANTS:
            mean = {k: float(np.mean([m[variant][k] for _, m in rows])) for k in ("iou", "mse", "cd", "fscore")}
            lines.append(
                f"{'mean':24s} {variant:14s} {mean['iou']:8.4f} {mean['mse']:10.2e} {mean['cd']:10.2e} {mean['fscore']:8.4f}"
            )
    return "\n".join(lines)
