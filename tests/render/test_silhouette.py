import numpy as np
import trimesh

from wala.render import render_silhouettes, view_basis


def test_a_sphere_casts_a_disc_of_its_area_from_any_direction():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    directions = np.random.default_rng(0).normal(size=(5, 3))
    masks = render_silhouettes(sphere.vertices, sphere.faces, directions, size=128)
    radius_px = 0.5 * 128 / 2
    assert np.allclose(masks.sum(axis=(1, 2)), np.pi * radius_px**2, rtol=0.02)


def test_a_box_seen_along_z_is_its_xy_rectangle_with_x_to_the_right():
    box = trimesh.creation.box(extents=(0.5, 1.0, 1.5))
    mask = render_silhouettes(box.vertices, box.faces, np.array([[0.0, 0.0, 1.0]]), size=128)[0]
    rows, cols = np.nonzero(mask)
    assert cols.max() - cols.min() + 1 == 32 and rows.max() - rows.min() + 1 == 64  # 0.5 and 1.0 of 2 over 128 px
    assert mask.sum() == 32 * 64
    right, up = view_basis(np.array([[0.0, 0.0, 1.0]]))
    assert np.allclose(right, [[1, 0, 0]]) and np.allclose(up, [[0, 1, 0]])


def test_looking_straight_down_y_still_has_a_basis():
    right, up = view_basis(np.array([[0.0, 1.0, 0.0], [0.0, -2.0, 0.0]]))
    assert np.allclose(np.linalg.norm(right, axis=1), 1) and np.allclose(np.linalg.norm(up, axis=1), 1)
    assert np.allclose(np.sum(right * up, axis=1), 0)
