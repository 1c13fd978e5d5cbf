"""Metrics (IoU, MSE, Chamfer, F-score, per-dataset averages) and evaluation harnesses."""

from wala.eval.metrics import chamfer_distance, dataset_average, fscore, iou, surface_metrics, surface_points, tsdf_mse

__all__ = ["chamfer_distance", "dataset_average", "fscore", "iou", "surface_metrics", "surface_points", "tsdf_mse"]
