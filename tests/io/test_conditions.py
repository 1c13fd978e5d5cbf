import json

import h5py
import numpy as np
import pytest
import trimesh

from wala.errors import WalaError
from wala.io.conditions import load_point_cloud, load_voxels, normalize_points, read_binvox, write_binvox


@pytest.fixture
def cloud():
    return np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)


def test_point_clouds_read_the_same_from_every_format(tmp_path, cloud):
    np.save(tmp_path / "a.npy", cloud)
    np.savez(tmp_path / "a.npz", points=cloud, normals=cloud)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["points"] = cloud
    np.savetxt(tmp_path / "a.xyz", np.hstack([cloud, np.ones_like(cloud)]))  # x y z nx ny nz
    trimesh.PointCloud(cloud).export(tmp_path / "a.ply")
    for name in ("a.npy", "a.npz", "a.h5", "a.xyz", "a.ply"):
        points = load_point_cloud(tmp_path / name)
        assert points.shape == (500, 3) and points.dtype == np.float32
        assert np.allclose(points, cloud, atol=1e-5), name


def test_normalized_points_fill_the_cube_like_a_normalized_mesh(cloud):
    points, normalization = normalize_points(cloud * 7 + 3)
    extent = points.max(axis=0) - points.min(axis=0)
    assert extent.max() == pytest.approx(1.8, rel=1e-5)
    assert np.allclose((points.max(axis=0) + points.min(axis=0)) / 2, 0, atol=1e-5)
    assert np.allclose(normalization.to_world(points), cloud * 7 + 3, atol=1e-4)


@pytest.mark.parametrize(
    "content, message",
    [
        (np.zeros((5, 3)), "at least 16"),
        (np.zeros((100, 2)), r"shape \(P, 3\)"),
        (np.full((100, 3), np.nan), "NaN"),
        (np.ones((100, 3)), "all points coincide"),
    ],
)
def test_bad_point_clouds_are_named(tmp_path, content, message):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(WalaError, match=message):
        load_point_cloud(tmp_path / "bad.npy")


def test_unreadable_point_cloud_files_are_named(tmp_path, cloud):
    with pytest.raises(WalaError, match="not found"):
        load_point_cloud(tmp_path / "missing.ply")
    (tmp_path / "a.pcd").write_text("x")
    with pytest.raises(WalaError, match="unknown point cloud format"):
        load_point_cloud(tmp_path / "a.pcd")
    np.savez(tmp_path / "two.npz", xyz=cloud, rgb=cloud)
    with pytest.raises(WalaError, match="no 'points' array"):
        load_point_cloud(tmp_path / "two.npz")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(WalaError, match="cannot read point cloud"):
        load_point_cloud(tmp_path / "broken.npy")


def test_binvox_runs_y_fastest_then_z_then_x():
    # a 2×2×2 grid with only (x=1, y=0, z=1) set: flat binvox index x·4 + z·2 + y = 6
    header = b"#binvox 1\ndim 2 2 2\ntranslate 0 0 0\nscale 1\ndata\n"
    grid = read_binvox(header + bytes([0, 6, 1, 1, 0, 1]))
    assert grid.sum() == 1 and grid[1, 0, 1]
    shape = np.random.default_rng(1).random((16, 16, 16)) > 0.6
    assert np.array_equal(read_binvox(write_binvox(shape)), shape)


def test_voxels_read_the_same_from_every_format(tmp_path):
    grid = np.random.default_rng(2).random((16, 16, 16)) > 0.5
    np.save(tmp_path / "v.npy", grid)
    np.savez(tmp_path / "v.npz", occupancy=grid.astype(np.uint8))
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["occupancy"] = grid
    (tmp_path / "v.binvox").write_bytes(write_binvox(grid))
    (tmp_path / "v.json").write_text(json.dumps({"occupancy": grid.astype(int).tolist()}))
    for name in ("v.npy", "v.npz", "v.h5", "v.binvox", "v.json"):
        assert np.array_equal(load_voxels(tmp_path / name), grid), name


@pytest.mark.parametrize(
    "grid, message",
    [
        (np.ones((8, 8, 8)), r"shape \(16, 16, 16\)"),
        (np.zeros((16, 16, 16)), "empty"),
        (np.full((16, 16, 16), 0.5), "only 0 and 1"),
    ],
)
def test_bad_voxel_grids_are_named(tmp_path, grid, message):
    np.save(tmp_path / "bad.npy", grid)
    with pytest.raises(WalaError, match=message):
        load_voxels(tmp_path / "bad.npy")


def test_truncated_binvox_and_bad_json_are_named(tmp_path):
    grid = np.ones((16, 16, 16), dtype=bool)
    (tmp_path / "cut.binvox").write_bytes(write_binvox(grid)[:-3])
    with pytest.raises(WalaError, match="binvox"):
        load_voxels(tmp_path / "cut.binvox")
    (tmp_path / "v.json").write_text(json.dumps({"voxels": []}))
    with pytest.raises(WalaError, match="'occupancy' key"):
        load_voxels(tmp_path / "v.json")
    (tmp_path / "w.json").write_text("{not json")
    with pytest.raises(WalaError, match="cannot read voxels"):
        load_voxels(tmp_path / "w.json")
