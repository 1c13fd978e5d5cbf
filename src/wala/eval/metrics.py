"""Reconstruction metrics, as pure functions. Definitions (all in the normalized [-1, 1]³ frame):

- IoU: |A ∩ B| / |A ∪ B| of the occupancies (TSDF < 0) on the N³ grid (256³ by default).
- MSE: mean over all N³ voxels of the squared TSDF difference (TSDFs clipped at ±0.1).
- Chamfer distance (CD): with P, Q points sampled uniformly by area on the two surfaces
  (`surface_points`, 100,000 each by default, so sampling gaps stay well under τ), CD = mean_p min_q |p-q|² + mean_q min_p |q-p|²:
  squared distances, summed over the two directions (the "L2 Chamfer" of ShapeNet benchmarks).
- F-score at τ (default 0.02, 1% of the cube side): precision = fraction of P within τ of Q,
  recall = fraction of Q within τ of P, F = 2PR / (P + R).
- D-IoU / D-MSE: the metric averaged per source dataset first, then over datasets, so each
  dataset weighs the same whatever its size (seed Table 1).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from wala.sdf.surface import DEFAULT_SURFACE_POINTS, surface_points

DEFAULT_FSCORE_THRESHOLD = 0.02


def iou(occupancy_a: np.ndarray, occupancy_b: np.ndarray) -> float:
    a, b = np.asarray(occupancy_a, dtype=bool), np.asarray(occupancy_b, dtype=bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def tsdf_mse(tsdf_a: np.ndarray, tsdf_b: np.ndarray) -> float:
    diff = np.asarray(tsdf_a, dtype=np.float64) - np.asarray(tsdf_b, dtype=np.float64)
    return float(np.mean(diff * diff))


def nearest_distances(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest reference point (KD-tree). (P,)."""
    return cKDTree(reference).query(points, k=1)[0]


def chamfer_distance(points_a: np.ndarray, points_b: np.ndarray) -> float:
    return float(
        np.mean(nearest_distances(points_a, points_b) ** 2) + np.mean(nearest_distances(points_b, points_a) ** 2)
    )


def fscore(points_pred: np.ndarray, points_ref: np.ndarray, threshold: float = DEFAULT_FSCORE_THRESHOLD) -> float:
    precision = float(np.mean(nearest_distances(points_pred, points_ref) < threshold))
    recall = float(np.mean(nearest_distances(points_ref, points_pred) < threshold))
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def surface_metrics(
    pred: trimesh.Trimesh,
    ref: trimesh.Trimesh,
    count: int = DEFAULT_SURFACE_POINTS,
    threshold: float = DEFAULT_FSCORE_THRESHOLD,
    seed: int = 0,
) -> dict[str, float]:
    """Chamfer distance and F-score between two meshes' surfaces."""
    p, q = surface_points(pred, count, seed), surface_points(ref, count, seed + 1)
    return {"cd": chamfer_distance(p, q), "fscore": fscore(p, q, threshold)}


def nan_mean(values: list[float]) -> float:
    """Mean with NaN (a value that does not exist, e.g. the CD of a missing surface) left out;
    NaN when nothing is left."""
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def dataset_average(records: list[dict], metric: str, key: str = "dataset") -> float:
    """Mean of `metric` per `key` group, then the mean of those means (D-IoU, D-MSE); NaN values
    are left out as in `nan_mean`."""
    groups: dict[str, list[float]] = defaultdict(list)
    for record in records:
        groups[record[key]].append(record[metric])
    return nan_mean([nan_mean(values) for values in groups.values()])
