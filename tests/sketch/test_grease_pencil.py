"""Blender's Grease Pencil Line Art (the paper's way) draws the lines wala's numpy line art draws, at
the same cameras, within a couple of pixels; without Blender, asking for it is one line naming the fix."""

import numpy as np
import pytest
import trimesh
from scipy import ndimage
from skimage.morphology import skeletonize

from wala.cli import main
from wala.errors import WalaError
from wala.io.mesh import load_mesh, normalize_mesh
from wala.render.views import CAMERA_DISTANCE, FIELD_OF_VIEW, parse_views, render_views
from wala.sketch import TECHNIQUES, Sketcher, parse_techniques
from wala.sketch.greasepencil import grease_pencil_lines

SIZE = 256
VIEWS = "3,26"
BOX = trimesh.creation.box((1.2, 0.9, 0.7))


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Two ink masks → (share of a's ink within 2 px of b's, the same of b within a, the symmetric mean
    chamfer distance in px)."""
    to_a, to_b = ndimage.distance_transform_edt(~a), ndimage.distance_transform_edt(~b)
    return (to_b[a] <= 2).mean(), (to_a[b] <= 2).mean(), (to_b[a].mean() + to_a[b].mean()) / 2


# Measured at 256² over the 8 sketch views (docs/images-and-sketches.md): numpy's lines lie within 2 px of
# Blender's at every view of the box, cow, elephant and bunny (share 1.00). Blender's lie within 2 px of
# numpy's at 0.97–1.00 on the cow, but only 0.81–0.98 on the box: numpy's depth test drops the back top
# edge of a box seen from 15–25° above (and breaks up the bunny's 75k-face silhouette). Chamfer: cow
# 0.20–0.28 px, box 0.29–1.27 px. On the cow at view 3 these bounds fail for Blender's lines moved 2 px
# (0.92 of numpy's within 2 px, chamfer 0.59) or a 42° field of view for 40° (0.81).
@pytest.mark.parametrize(("name", "blender_in_numpy", "chamfer_max"), [("box", 0.8, 1.5), ("cow", 0.95, 0.6)])
def test_blender_line_art_lies_on_the_numpy_line_art(name, blender_in_numpy, chamfer_max, real_meshes):
    mesh = BOX if name == "box" else normalize_mesh(load_mesh(real_meshes / "pymeshlab" / "cow.obj"))[0]
    poses = parse_views(VIEWS)
    views = render_views(mesh, poses, size=SIZE)
    drawn = grease_pencil_lines(mesh, [(p.azimuth, p.elevation) for p in poses], SIZE, CAMERA_DISTANCE, FIELD_OF_VIEW)
    sketcher = Sketcher()
    for view, image in zip(views, drawn):
        assert image.shape == (SIZE, SIZE) and image.dtype == np.uint8 and image.max() == 255
        blender, numpy = image < 128, sketcher.draw("lineart", mesh, view).image < 128
        blender_near, numpy_near, chamfer = agreement(blender, numpy)
        assert numpy_near >= 0.95 and blender_near >= blender_in_numpy and chamfer <= chamfer_max, (
            view.pose.name,
            name,
        )
        if name == "box":  # thickness 2: about 2 px of ink across a line
            ink = (255.0 - image) / 255.0
            assert 1.4 < ink.sum() / skeletonize(blender).sum() < 2.5


def test_the_sketcher_draws_grease_pencil_at_the_view_size():
    (view,) = render_views(BOX, parse_views("front"), size=96)
    sketch = Sketcher().draw("grease_pencil", BOX, view)
    assert sketch.technique == "grease_pencil" and sketch.image.shape == (96, 96)
    ink = sketch.image < 128
    outline = (view.depth > 0) ^ ndimage.binary_erosion(view.depth > 0)
    reach = ndimage.distance_transform_edt(~ink) <= 3
    assert 0 < ink.mean() < 0.12 and (outline & reach).sum() / outline.sum() > 0.8  # lines, round the outline


def test_without_blender_asking_for_it_is_one_line_naming_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WALA_BLENDER", str(tmp_path / "no-blender"))
    with pytest.raises(WalaError, match="apt-get install blender"):
        parse_techniques("lineart,grease_pencil")
    assert parse_techniques("all") == list(TECHNIQUES)  # "all" never needs Blender
    monkeypatch.delenv("WALA_BLENDER")
    monkeypatch.setenv("PATH", str(tmp_path))  # no blender on PATH either
    with pytest.raises(WalaError, match="'blender' was not found"):
        parse_techniques("grease_pencil")
    monkeypatch.setenv("WALA_BLENDER", str(tmp_path / "no-blender"))
    mesh = tmp_path / "box.obj"
    BOX.export(mesh)
    args = ["sketch", str(mesh), "-o", str(tmp_path / "out"), "--technique", "grease_pencil", "--views", "3"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "needs Blender" in err and "make test" in err
    assert not (tmp_path / "out").exists()  # refused before any work
