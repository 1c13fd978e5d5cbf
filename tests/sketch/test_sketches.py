"""The paper's sketch techniques draw thin lines where the shape's edges are; traced sketches keep
their outlines as vectors; HED reads the offline weights; the CLI writes sketches and a contact sheet."""

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy import ndimage

from wala.cli import main
from wala.errors import WalaError
from wala.render.shaded import look_at, orbit_eye, perspective
from wala.render.views import CAMERA_DISTANCE, FIELD_OF_VIEW, parse_views, render_views
from wala.sketch import TECHNIQUES, Sketcher
from wala.sketch.trace import fill_paths, jitter_paths, trace

SIZE = 160
BOX = trimesh.creation.box((1.2, 0.9, 0.7))


def box_edges(pose) -> np.ndarray:
    """(SIZE, SIZE) bool: the box's 12 edges projected by the view's camera, 1 px wide."""
    from PIL import ImageDraw

    view = look_at(orbit_eye(pose.azimuth, pose.elevation, CAMERA_DISTANCE))
    projection = perspective(FIELD_OF_VIEW, 1.0, 0.1, 100.0)
    corners = np.c_[BOX.vertices, np.ones(8)] @ (projection @ view).T
    xy = corners[:, :2] / corners[:, 3:]
    pixels = np.c_[(xy[:, 0] + 1) / 2 * SIZE, (1 - xy[:, 1]) / 2 * SIZE]
    canvas = Image.new("1", (SIZE, SIZE), 0)
    for a, b in BOX.edges_unique:
        if np.count_nonzero(BOX.vertices[a] != BOX.vertices[b]) == 1:  # an edge, not a face diagonal
            ImageDraw.Draw(canvas).line([tuple(pixels[a]), tuple(pixels[b])], fill=1)
    return np.array(canvas, dtype=bool)


@pytest.fixture(scope="module")
def box_view():
    (view,) = render_views(BOX, parse_views("3"), size=SIZE)
    return view


@pytest.fixture(scope="module")
def sketcher():
    return Sketcher(clipasso_iterations=8, clipasso_canvas=112)  # CLIPasso-style at test size


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_each_technique_draws_thin_lines_along_the_edges(technique, box_view, sketcher):
    sketch = sketcher.draw(technique, BOX, box_view)
    assert sketch.image.shape == (SIZE, SIZE) and sketch.image.dtype == np.uint8
    ink = sketch.image < 128
    edges = box_edges(box_view.pose)
    near_edges = ndimage.distance_transform_edt(~edges) <= (8 if technique == "clipasso" else 4)
    assert 0 < ink.mean() < 0.12  # lines, not fills
    if technique == "clipasso":
        assert 1 <= sketch.iterations <= 8  # stopped within its budget
    assert (ink & near_edges).sum() / ink.sum() > (0.7 if technique == "clipasso" else 0.85)
    if technique != "clipasso":  # 16 strokes draw part of a shape; the others its outline at least
        outline = (box_view.depth > 0) ^ ndimage.binary_erosion(box_view.depth > 0)
        reach = ndimage.distance_transform_edt(~ink) <= 4
        assert (outline & reach).sum() / outline.sum() > 0.8


def test_traced_outlines_fill_back_to_the_drawing_and_stay_closed_under_noise():
    ink = np.zeros((64, 64), dtype=bool)
    ink[10:50, 20:26] = True
    ink[30:36, 5:60] = True
    paths = trace(ink)
    filled = fill_paths(paths, ink.shape)
    assert (filled & ink).sum() / (filled | ink).sum() > 0.9
    noisy = jitter_paths(paths, 0.8, np.random.default_rng(0))
    for before, after in zip(paths, noisy):
        assert np.allclose(after[1:, 0], after[:-1, 3]) and np.allclose(after[0, 0], after[-1, 3])  # closed
        assert 0.1 < np.abs(after - before).mean() < 2.0
    assert not trace(np.zeros((32, 32), dtype=bool))  # nothing to trace


def test_hed_finds_the_silhouette_of_a_depth_map(box_view, sketcher):
    from wala.sketch.hed import hed_edges, load_hed

    edges = hed_edges(sketcher.hed, np.repeat(box_view.depth[..., None], 3, axis=2))
    outline = (box_view.depth > 0) ^ ndimage.binary_erosion(box_view.depth > 0, iterations=2)
    assert edges[outline].mean() > 0.4 and edges[box_view.depth == 0].mean() < 0.1
    with pytest.raises(WalaError, match="not found"):
        load_hed("/nonexistent/hed.weights.h5")


def test_sketch_cli_writes_each_technique_svgs_and_a_contact_sheet(tmp_path, capsys, monkeypatch):
    mesh = tmp_path / "box.obj"
    BOX.export(mesh)
    args = [
        "sketch",
        str(mesh),
        "-o",
        str(tmp_path / "out"),
        "--views",
        "3,front",
        "--size",
        "96",
        "--technique",
        "lineart,canny",
        "--svg",
        "--svg-variants",
        "1",
        "--sheet",
        str(tmp_path / "sheet.png"),
    ]
    assert main(args) == 0
    assert (tmp_path / "out" / "lineart" / "front.png").is_file() and (tmp_path / "out" / "canny" / "3.svg").is_file()
    assert (tmp_path / "out" / "canny" / "3_noise0.svg").read_text().startswith("<svg")
    assert Image.open(tmp_path / "sheet.png").size == (96 * 4, 96 * 2)  # depth, rgb, 2 techniques × 2 views
    assert main(["sketch", str(mesh), "-o", str(tmp_path / "x"), "--technique", "pencil"]) == 2
    assert "unknown sketch technique 'pencil'" in capsys.readouterr().err
    from wala.sketch.hed import default_weights

    weights = str(default_weights())
    monkeypatch.setenv("WALA_HED_WEIGHTS", str(tmp_path / "none.weights.h5"))
    assert main(["sketch", str(mesh), "-o", str(tmp_path / "x"), "--technique", "lineart,scribble"]) == 2
    assert "HED weights not found" in capsys.readouterr().err  # before any work, naming what needs them
    assert (
        main(
            [
                "sketch",
                str(mesh),
                "-o",
                str(tmp_path / "y"),
                "--technique",
                "scribble",
                "--views",
                "3",
                "--size",
                "64",
                "--hed-weights",
                weights,
            ]
        )
        == 0
    )  # a file given by hand is the one checked
