import numpy as np
import torch

from wala.conditions import PointCloudEncoder, VoxelEncoder
from wala.conditions.derive import occupancy_grid, surface_samples
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.grid import grid_points
from wala.sdf.shapes import box


def test_the_point_cloud_encoder_takes_any_count_and_ignores_point_order():
    encoder = PointCloudEncoder(width=32, tokens=8, heads=4).eval()
    points = torch.rand(2, 2500, 3)
    with torch.no_grad():
        tokens = encoder(points)
        shuffled = encoder(points[:, torch.randperm(2500)])
        many = encoder(torch.rand(2, 25_000, 3))
    assert tokens.shape == (2, 8, 32) and many.shape == (2, 8, 32)
    assert torch.allclose(tokens, shuffled, atol=1e-5)


def test_the_voxel_encoder_gives_512_tokens():
    encoder = VoxelEncoder(width=24, channels=8, groups=4)
    assert encoder((torch.rand(3, 16, 16, 16) > 0.5).float()).shape == (3, 512, 24)


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
