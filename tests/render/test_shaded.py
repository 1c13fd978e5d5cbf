"""Headless shaded rendering: the camera model is the one its depth maps say (depth back-projects onto
the surface), the lit side is brighter, previews hold the whole shape."""

import numpy as np
import pytest
import trimesh
from PIL import Image

from wala.cli import main
from wala.render.preview import turntable, write_preview
from wala.render.shaded import MeshRenderer, look_at, orbit_eye


@pytest.fixture(scope="module")
def renderer():
    with MeshRenderer(128) as r:
        yield r


def back_project(depth, azimuth, elevation, distance, fov=30.0):
    """World points of the pixels with a surface, from eye-space depth and the orbit camera."""
    n = depth.shape[0]
    rows, cols = np.nonzero(np.isfinite(depth))
    f = 1 / np.tan(np.radians(fov) / 2)
    x_ndc, y_ndc = (cols + 0.5) / n * 2 - 1, 1 - (rows + 0.5) / n * 2
    z = depth[rows, cols].astype(np.float64)
    eye_points = np.stack([x_ndc * z / f, y_ndc * z / f, -z, np.ones_like(z)], axis=1)
    world = np.linalg.inv(look_at(orbit_eye(azimuth, elevation, distance))) @ eye_points.T
    return world[:3].T


def test_a_cube_seen_from_the_front_has_the_size_and_depth_of_the_pinhole_model(renderer):
    out = renderer.render(trimesh.creation.box((1, 1, 1)), azimuth=0, elevation=0, distance=4.0)
    assert out.rgb.shape == (128, 128, 3) and out.depth.dtype == np.float32
    assert abs(out.depth[64, 64] - 3.5) < 1e-3  # the front face, 0.5 before the centre
    assert np.isinf(out.depth[0, 0]) and (out.rgb[0, 0] == 255).all()  # white background, no depth
    rows = np.nonzero(np.isfinite(out.depth).any(axis=1))[0]
    half = 64 * (0.5 / 3.5) / np.tan(np.radians(15))  # the front face's half height in pixels
    assert abs((rows.max() - rows.min() + 1) / 2 - half) <= 1.0


@pytest.mark.parametrize("azimuth, elevation", [(0, 0), (57.27, 25.34), (230.76, 13.27), (0, -60)])
def test_depth_back_projects_onto_the_surface(renderer, azimuth, elevation):
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.6)
    out = renderer.render(sphere, azimuth, elevation, distance=3.0)
    points = back_project(out.depth, azimuth, elevation, 3.0)
    assert len(points) > 2000
    assert np.abs(np.linalg.norm(points, axis=1) - 0.6).max() < 0.01  # on the (faceted) sphere
    facing = points @ orbit_eye(azimuth, elevation, 1.0)
    assert (facing > -0.05).all()  # only the camera's side is seen


def test_the_side_toward_the_key_light_is_brighter(renderer):
    out = renderer.render(trimesh.creation.icosphere(subdivisions=3, radius=0.6), 0, 0, distance=3.0)
    gray = out.rgb.astype(float).mean(axis=2)
    assert gray[40, 40] > gray[88, 88] + 30  # light from above left of the camera


def test_a_turntable_preview_shows_the_whole_shape_in_every_frame(tmp_path):
    mesh = trimesh.creation.cylinder(radius=0.2, height=1.6)
    mesh.apply_translation([5.0, 2.0, 0.0])  # anywhere: previews centre the shape
    views = turntable(mesh, frames=4, size=96)
    assert len(views) == 4
    for view in views:
        shape = (view < 250).any(axis=2)
        assert shape.sum() > 300 and not shape[0].any() and not shape[-1].any() and not shape[:, 0].any()
    png, gif = write_preview(mesh, tmp_path / "p.png", frames=4, size=96, gif=True)
    assert Image.open(png).size == (4 * 96, 96)
    assert Image.open(gif).n_frames == 4


def test_wala_preview_writes_the_strip_and_refuses_bad_input_in_one_line(tmp_path, capsys):
    trimesh.creation.box((1, 1, 1)).export(tmp_path / "box.obj")
    assert main(["preview", str(tmp_path / "box.obj"), "--frames", "3", "--size", "64"]) == 0
    assert Image.open(tmp_path / "box.png").size == (192, 64)
    (tmp_path / "empty.obj").write_text("# nothing\n")
    for argv in (
        ["preview", str(tmp_path / "missing.obj")],
        ["preview", str(tmp_path / "empty.obj")],
        ["preview", str(tmp_path / "box.obj"), "--frames", "0"],
    ):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("wala: error:") and err.count("\n") == 1, err
