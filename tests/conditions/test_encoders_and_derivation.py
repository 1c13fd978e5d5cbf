import numpy as np
import torch

from wala.conditions import CONDITIONS, condition_kind
from wala.conditions.derive import occupancy_grid, surface_samples
from wala.conditions.pointcloud import PointNetEncoder
from wala.conditions.voxel import VoxelEncoder
from wala.config import ConditionConfig
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.grid import grid_points
from wala.sdf.shapes import box


def test_the_point_cloud_encoders_take_any_count_and_ignore_point_order():
    for kind in ("large", "simple"):
        encoder = PointNetEncoder(ConditionConfig(width=32, encoder_width=32, tokens=8, encoder=kind)).eval()
        points = torch.rand(2, 2500, 3)
        with torch.no_grad():
            tokens = encoder(points)
            shuffled = encoder(points[:, torch.randperm(2500)])
            many = encoder(torch.rand(2, 25_000, 3))
        assert tokens.shape == (2, 8, 32) and many.shape == (2, 8, 32)
        assert torch.allclose(tokens, shuffled, atol=1e-5)


def test_the_voxel_encoder_gives_512_tokens_x_major():
    encoder = VoxelEncoder(ConditionConfig(kind="voxel", width=24))
    grid = (torch.rand(3, 1, 16, 16, 16) > 0.5).float()
    tokens = encoder(grid)
    assert tokens.shape == (3, 512, 24)
    with torch.no_grad():  # token i·64 + j·8 + k is cell (i, j, k) of the pooled 8³ grid
        h = encoder.res_3(encoder.res_2(encoder.res_1(encoder.in_conv(grid))))
        h = encoder.out_conv(encoder.res_6(encoder.res_5(encoder.res_4(torch.nn.functional.avg_pool3d(h, 3, 2, 1)))))
    assert torch.allclose(tokens[:, 1 * 64 + 2 * 8 + 3], h[:, :, 1, 2, 3], atol=1e-6)


def test_every_condition_is_one_registered_record():
    assert set(CONDITIONS) == {"none", "pointcloud", "voxel"}
    assert condition_kind("pointcloud").array == "points" and condition_kind("voxel").array == "occupancy"
    assert not condition_kind("none").conditional
    # the released run.py ignores --scale for these two and guides with 3.0
    assert condition_kind("pointcloud").official_guidance == condition_kind("voxel").official_guidance == 3.0


def test_occupancy_marks_cells_holding_any_inside_voxel():
    tsdf = np.full((64, 64, 64), 0.1, dtype=np.float32)
    tsdf[4:6, 40:41, 0:64] = -0.05  # a thin bar: 2 × 1 voxels across, crossing z
    grid = occupancy_grid(tsdf, 16)
    assert grid.shape == (16, 16, 16)
    assert grid[1, 10, :].all() and grid.sum() == 16


def test_surface_samples_lie_on_the_surface():
    tsdf = box(grid_points(64), (0.0, 0.0, 0.0), (0.5, 0.3, 0.4)).numpy()
    points = surface_samples(tsdf_to_mesh(tsdf), 4000, seed=1)
    assert points.shape == (4000, 3) and points.dtype == np.float32
    on_face = np.isclose(np.abs(points) / [0.5, 0.3, 0.4], 1, atol=0.05).any(axis=1)
    assert on_face.mean() > 0.99
