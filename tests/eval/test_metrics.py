import numpy as np
import pytest
import trimesh
from scipy.spatial.distance import cdist

from wala.eval import chamfer_distance, dataset_average, fscore, iou, surface_points, tsdf_mse


def test_iou_of_two_offset_cubes():
    a = np.zeros((10, 10, 10), bool)
    b = np.zeros((10, 10, 10), bool)
    a[0:4, 0:4, 0:4] = True  # 64 voxels
    b[2:6, 0:4, 0:4] = True  # 64 voxels, 32 shared
    assert iou(a, b) == pytest.approx(32 / 96)
    assert iou(a, a) == 1.0


def test_mse():
    assert tsdf_mse(np.zeros(8), np.full(8, 0.1)) == pytest.approx(0.01)


def test_chamfer_matches_brute_force():
    rng = np.random.default_rng(0)
    p, q = rng.random((300, 3)), rng.random((200, 3))
    d = cdist(p, q)
    expected = (d.min(1) ** 2).mean() + (d.min(0) ** 2).mean()
    assert chamfer_distance(p, q) == pytest.approx(expected)


def test_chamfer_of_concentric_spheres_is_the_gap_squared_twice():
    a = trimesh.creation.icosphere(5, radius=0.5)
    b = trimesh.creation.icosphere(5, radius=0.55)
    cd = chamfer_distance(surface_points(a, 50_000, 0), surface_points(b, 50_000, 1))
    assert cd == pytest.approx(2 * 0.05**2, rel=0.1)


def test_fscore_counts_points_within_the_threshold():
    ref = np.zeros((4, 3))
    pred = np.array([[0.0, 0, 0], [0.01, 0, 0], [0.5, 0, 0], [0.6, 0, 0]])
    # precision 2/4, recall 4/4
    assert fscore(pred, ref, 0.02) == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_surface_points_are_on_the_surface_and_seeded():
    box = trimesh.creation.box((1, 1, 1))
    p = surface_points(box, 1000, seed=3)
    assert np.allclose(np.abs(p).max(axis=1), 0.5)
    np.testing.assert_array_equal(p, surface_points(box, 1000, seed=3))


def test_dataset_average_weighs_datasets_equally():
    records = [{"dataset": "a", "iou": 1.0}] * 9 + [{"dataset": "b", "iou": 0.0}]
    assert dataset_average(records, "iou") == pytest.approx(0.5)
