import numpy as np
import pytest

from wala.errors import WalaError
from wala.eval import iou
from wala.sdf import mesh_to_tsdf, voxel_size
from wala.sdf.families import FAMILIES, family_mesh, family_tsdf


def test_at_least_eight_families():
    assert len(FAMILIES) >= 8


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_shapes_are_normalized_closed_and_agree_with_their_mesh(family):
    n = 64
    tsdf = family_tsdf(family, seed=3, resolution=n)
    mesh = family_mesh(family, seed=3, resolution=n)
    lo, hi = mesh.bounds
    assert abs((hi - lo).max() - 1.8) < 2 * voxel_size(n)
    assert np.all(np.abs((hi + lo) / 2) < 2 * voxel_size(n))
    assert mesh.volume > 0  # outward normals
    # the analytic TSDF and the TSDF of its own mesh describe the same solid
    assert iou(tsdf < 0, mesh_to_tsdf(mesh, n) < 0) > 0.97


def test_families_are_deterministic_by_seed_and_vary_with_it():
    a, b, c = (family_tsdf("chair", s, 48) for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert iou(a < 0, c < 0) < 0.95


def test_unknown_family_is_refused():
    with pytest.raises(WalaError, match="unknown shape family"):
        family_tsdf("spaceship", 0, 32)
