"""Renders at the official cameras: the view table and the 8-bit depth encoding are the camera that
made them (a depth map back-projects onto the surface), a known shape has the silhouette the pinhole
model predicts, and `wala render` writes files the multi-view models read by view id."""

import numpy as np
import pytest
import trimesh
from PIL import Image

from wala.cli import main
from wala.errors import WalaError
from wala.render.shaded import look_at, orbit_eye
from wala.render.views import (
    CAMERA_DISTANCE,
    FIELD_OF_VIEW,
    VIEW_TABLE,
    depth_to_u8,
    parse_views,
    render_views,
    u8_to_depth,
)


def test_views_are_read_from_ids_sets_names_and_angles():
    assert [p.name for p in parse_views("dm6")] == ["3", "6", "10", "26", "49", "50"]
    assert [p.name for p in parse_views("sketch")][4:] == ["front", "right", "left", "back"]
    three = parse_views("3")[0]
    assert (three.azimuth, three.elevation) == VIEW_TABLE[3] and abs(three.azimuth - 57.27) < 0.01
    assert (parse_views("45:-10")[0].azimuth, parse_views("45:-10")[0].elevation) == (45.0, -10.0)
    for bad, message in [
        ("55", "not in the 55-view"),
        ("top", "unknown view"),
        ("3,3", "twice"),
        ("1:x", "azimuth:elevation"),
    ]:
        with pytest.raises(WalaError, match=message):
            parse_views(bad)


def test_depth_is_nearer_brighter_background_zero_and_invertible():
    depth = np.array([[CAMERA_DISTANCE - 1.5, CAMERA_DISTANCE, CAMERA_DISTANCE + 1.5, np.inf]])
    encoded = depth_to_u8(depth)
    assert encoded.dtype == np.uint8 and encoded[0, 0] > encoded[0, 1] > encoded[0, 2] > 0 and encoded[0, 3] == 0
    assert abs(int(encoded[0, 1]) - 128) <= 1  # the centre of the frame is mid-gray
    assert np.abs(u8_to_depth(encoded)[0, :3] - depth[0, :3]).max() < 0.007  # half a step of 2r/254
    assert np.isinf(u8_to_depth(encoded)[0, 3])


@pytest.mark.parametrize("view", ["3", "26", "49", "50"])
def test_a_depth_png_back_projects_onto_the_surface_through_the_view_table(view):
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.7)
    (out,) = render_views(sphere, parse_views(view), size=128)
    pose = out.pose
    rows, cols = np.nonzero(out.depth)
    z = u8_to_depth(out.depth[rows, cols])  # from the 8-bit PNG value alone
    f = 1 / np.tan(np.radians(FIELD_OF_VIEW) / 2)
    x_ndc, y_ndc = (cols + 0.5) / 128 * 2 - 1, 1 - (rows + 0.5) / 128 * 2
    eye = np.stack([x_ndc * z / f, y_ndc * z / f, -z, np.ones_like(z)])
    world = (np.linalg.inv(look_at(orbit_eye(pose.azimuth, pose.elevation, CAMERA_DISTANCE))) @ eye)[:3].T
    assert len(world) > 1500
    assert np.abs(np.linalg.norm(world, axis=1) - 0.7).max() < 0.03  # quantization (0.012) and facets
    assert (world @ orbit_eye(pose.azimuth, pose.elevation, 1.0) > -0.05).all()  # the camera's side


def test_a_sphere_has_the_silhouette_of_the_pinhole_model():
    (out,) = render_views(trimesh.creation.icosphere(subdivisions=5, radius=0.9), parse_views("10"), size=200)
    # the cone tangent to the sphere: half-angle asin(r/d), imaged at tan(·)/tan(fov/2) of the half-size
    radius = 100 * np.tan(np.arcsin(0.9 / CAMERA_DISTANCE)) / np.tan(np.radians(FIELD_OF_VIEW / 2))
    mask = out.depth > 0
    assert abs(mask.sum() / (np.pi * radius**2) - 1) < 0.02
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - 99.5) < 0.5 and abs(cols.mean() - 99.5) < 0.5  # centred: the camera aims at the origin
    assert (out.rgb[~mask] == 255).all()  # white paper around it


def test_render_writes_rgb_and_depth_named_by_view_for_the_depth_models(tmp_path, capsys):
    from wala.conditions.images import read_condition_images
    from wala.config import ConditionConfig

    mesh = tmp_path / "box.obj"
    trimesh.creation.box((1.0, 0.6, 0.4)).export(mesh)
    assert main(["render", str(mesh), "-o", str(tmp_path / "out"), "--views", "dm4", "--size", "64"]) == 0
    files = sorted(p.name for p in (tmp_path / "out" / "depth").iterdir())
    assert files == ["10.png", "26.png", "3.png", "6.png"] and (tmp_path / "out" / "rgb" / "3.png").is_file()
    depth = np.array(Image.open(tmp_path / "out" / "depth" / "3.png"))
    assert depth.dtype == np.uint8 and depth[0, 0] == 0 and depth.max() > 128
    c = ConditionConfig(kind="depth", training_views=(3, 6, 10, 26), width=32, vit_depth=1, vit_heads=2)
    crops = read_condition_images(list((tmp_path / "out" / "depth").iterdir()), c)
    assert crops.shape == (4, 224, 224, 3)  # ordered by view id, as the DM4 model reads them
    assert main(["render", str(tmp_path / "missing.obj"), "-o", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err
