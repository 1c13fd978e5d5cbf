import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wala.conditions import CONDITIONS, condition_kind
from wala.conditions.derive import occupancy_grid, points_to_occupancy, surface_samples
from wala.conditions.dinov2 import DinoV2, ImageEncoder
from wala.conditions.pointcloud import PointGridEncoder, PointNetEncoder
from wala.conditions.voxel import VoxelEncoder
from wala.config import ConditionConfig
from wala.errors import WalaError
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


def test_the_point_grid_encoder_bins_points_as_the_occupancy_baseline_does():
    from scipy.ndimage import binary_fill_holes

    c = ConditionConfig(width=24, encoder="grid", voxel_hidden=16)
    encoder = PointGridEncoder(c).eval()
    points = torch.rand(2, 3000, 3) * 2.2 - 1.1  # some past the cube: they land in its border cells
    binned = encoder.binned(points)
    assert binned.shape == (2, 4, 16, 16, 16)
    held = binned[:, 0].numpy() > 0
    for b in range(2):  # the baselines' grid is these cells with their interior filled
        assert np.array_equal(binary_fill_holes(held[b]), points_to_occupancy(points[b].numpy(), 16))
    # a cell's offsets are its points' mean position from the cell centre, in cells
    cell = torch.tensor([3, 7, 12])
    inside = (cell + torch.tensor([[0.1, 0.5, 0.9], [0.3, 0.5, 0.7]])) / 16 * 2 - 1
    one = encoder.binned(inside[None])
    assert torch.allclose(one[0, 1:, 3, 7, 12], torch.tensor([-0.3, 0.0, 0.3]), atol=1e-5)
    assert one[0, 0].sum() == 1 and one[0, 1:].abs().sum() > 0
    with torch.no_grad():
        tokens = encoder(points)
        assert tokens.shape == (2, 512, 24)
        assert torch.allclose(tokens, encoder(points[:, torch.randperm(3000)]), atol=1e-5)
    assert condition_kind("pointcloud").tokens(c) == 512
    with pytest.raises(WalaError, match="unknown point-cloud encoder 'gird'"):
        condition_kind("pointcloud").check(ConditionConfig(encoder="gird"))


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
    assert set(CONDITIONS) == {"none", "pointcloud", "voxel", "image", "sketch", "depth", "views", "text"}
    flags = [f for kind in CONDITIONS.values() for f in (kind.flag, *kind.aliases)]
    assert len(flags) == len(set(flags))  # one kind per command-line flag
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


def test_depth_defaults_follow_the_number_of_maps_as_the_official_readme():
    depth = condition_kind("depth")
    assert depth.recommended(ConditionConfig(kind="depth")) == (5, 1.8)
    assert depth.recommended(ConditionConfig(kind="depth", training_views=(3, 6, 10, 26))) == (5, 1.3)
    assert depth.recommended(ConditionConfig(kind="depth", training_views=(3, 6, 10, 26, 49, 50))) == (10, 1.5)
    assert depth.files(ConditionConfig(kind="depth", training_views=(3, 6, 10, 26))) == 4


def test_single_image_kinds_refuse_views_and_multi_view_needs_them():
    with pytest.raises(WalaError, match="one image"):
        condition_kind("sketch").check(ConditionConfig(kind="sketch", training_views=(3, 6)))
    with pytest.raises(WalaError, match="needs the model's training_views"):
        condition_kind("views").check(ConditionConfig(kind="views"))


def test_the_image_encoder_encodes_each_view_alone_and_keeps_the_view_axis():
    torch.manual_seed(0)
    encoder = ImageEncoder(ConditionConfig(kind="views", width=32, vit_depth=1, vit_heads=2)).eval()
    views = torch.rand(2, 3, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        tokens = encoder(views)
        alone = encoder(views[1, 2][None])
    assert tokens.shape == (2, 3, 256, 32) and torch.allclose(tokens[1, 2], alone[0], atol=1e-5)


def test_dinov2_positions_are_resized_with_the_offset_not_to_size_16():
    vit = DinoV2(width=8, depth=0, heads=2)
    table = vit.pos_embed[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    to_size = F.interpolate(table, size=(16, 16), mode="bicubic").permute(0, 2, 3, 1).reshape(1, 256, 8)
    with torch.no_grad():
        positions = vit.positions()
    assert positions.shape == (1, 257, 8) and torch.equal(positions[:, 0], vit.pos_embed[:, 0])
    assert not torch.allclose(positions[:, 1:], to_size, atol=1e-3)  # the 0.1 offset moves the samples
