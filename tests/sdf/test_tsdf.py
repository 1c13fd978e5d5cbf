import igl
import numpy as np
import pytest
import trimesh

from wala.errors import WalaError
from wala.io import load_mesh, normalize_mesh
from wala.sdf import grid_points, mesh_to_tsdf, voxel_size


def _sphere_mesh():
    return trimesh.creation.icosphere(subdivisions=5, radius=0.6)


def test_sphere_distances_are_within_a_tenth_of_a_voxel():
    n = 64
    tsdf = mesh_to_tsdf(_sphere_mesh(), n)
    radius = np.linalg.norm(grid_points(n).numpy(), axis=-1)
    truth = np.clip(radius - 0.6, -0.1, 0.1)
    # the icosphere sits within 1e-4 of the sphere; the rest is closest-triangle propagation
    assert np.abs(tsdf - truth).max() < 0.1 * voxel_size(n)
    assert np.abs(tsdf - truth).mean() < 0.01 * voxel_size(n)
    assert tsdf.dtype == np.float32 and tsdf.shape == (n, n, n)


def test_triangles_with_two_equal_vertices_change_nothing():
    # marching cubes emits a few such triangles; each one of the three ways must not divide by zero
    sphere = _sphere_mesh()
    v, f = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    degenerate = np.array(
        [
            [f[0, 0], f[0, 0], f[0, 1]],
            [f[1, 0], f[1, 1], f[1, 1]],
            [f[2, 2], f[2, 0], f[2, 2]],
            [f[3, 0], f[3, 0], f[3, 0]],
        ]
    )
    with_them = trimesh.Trimesh(v, np.concatenate([f, degenerate]), process=False)
    np.testing.assert_array_equal(mesh_to_tsdf(with_them, 32), mesh_to_tsdf(sphere, 32))


def test_distances_and_signs_match_libigl_on_a_real_mesh(real_meshes):
    n = 96
    mesh, _ = normalize_mesh(load_mesh(real_meshes / "cgal" / "armadillo.off"))
    tsdf = mesh_to_tsdf(mesh, n).reshape(-1)
    band = np.flatnonzero(np.abs(tsdf) < 0.095)
    pick = np.random.default_rng(0).choice(band, 5000, replace=False)
    points = grid_points(n).numpy().reshape(-1, 3)[pick].astype(np.float64)
    ref = igl.signed_distance(points, np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))[0]
    h = voxel_size(n)
    assert np.abs(np.abs(tsdf[pick]) - np.abs(ref)).max() < 0.5 * h  # propagation error stays sub-voxel
    assert np.mean(np.abs(np.abs(tsdf[pick]) - np.abs(ref))) < 0.02 * h
    assert np.all(np.sign(tsdf[pick]) == np.sign(ref))


def _box_pair():
    """Two overlapping boxes as one soup: the overlap must be inside, not cancelled."""
    a = trimesh.creation.box((0.8, 0.8, 0.8))
    b = trimesh.creation.box((0.8, 0.8, 0.8))
    b.apply_translation((0.4, 0.3, 0.2))
    return trimesh.util.concatenate([a, b])


def test_overlapping_parts_are_inside():
    n = 48
    tsdf = mesh_to_tsdf(_box_pair(), n)
    p = grid_points(n).numpy()
    in_a = np.all(np.abs(p) < 0.4, axis=-1)
    in_b = np.all(np.abs(p - (0.4, 0.3, 0.2)) < 0.4, axis=-1)
    h = voxel_size(n)
    clear = np.abs(tsdf) > h  # away from the surface the answer is unambiguous
    np.testing.assert_array_equal((tsdf < 0)[clear], (in_a | in_b)[clear])


def test_flipped_faces_do_not_change_the_signs(real_meshes):
    n = 64
    mesh, _ = normalize_mesh(load_mesh(real_meshes / "cgal" / "elephant.off"))
    flipped = mesh.copy()
    faces = np.asarray(flipped.faces).copy()
    rows = np.random.default_rng(0).random(len(faces)) < 0.3
    faces[rows] = faces[rows][:, ::-1]
    flipped = trimesh.Trimesh(mesh.vertices, faces, process=False)
    assert not flipped.is_winding_consistent
    np.testing.assert_array_equal(mesh_to_tsdf(flipped, n) < 0, mesh_to_tsdf(mesh, n) < 0)


def test_small_holes_keep_the_inside(real_meshes):
    n = 64
    mesh, _ = normalize_mesh(load_mesh(real_meshes / "cgal" / "bunny00.off"))
    holed = trimesh.Trimesh(
        mesh.vertices, np.asarray(mesh.faces)[np.random.default_rng(1).random(len(mesh.faces)) > 0.02], process=False
    )
    assert not holed.is_watertight
    full, with_holes = mesh_to_tsdf(mesh, n), mesh_to_tsdf(holed, n)
    clear = np.abs(full) > voxel_size(n)
    assert np.mean((full < 0)[clear] == (with_holes < 0)[clear]) > 0.999


def test_large_holes_keep_most_of_the_inside(real_meshes):
    """CGAL's elephant with holes (removed patches up to 0.4 wide) against the closed elephant."""
    n = 64
    closed = mesh_to_tsdf(normalize_mesh(load_mesh(real_meshes / "cgal" / "elephant.off"))[0], n) < 0
    holed_mesh = load_mesh(real_meshes / "cgal" / "elephant-with-holes.off")
    # normalize with the closed elephant's box so that the grids line up
    ref = load_mesh(real_meshes / "cgal" / "elephant.off")
    _, norm = normalize_mesh(ref)
    holed_mesh = trimesh.Trimesh((holed_mesh.vertices - norm.center) * norm.scale, holed_mesh.faces, process=False)
    holed = mesh_to_tsdf(holed_mesh, n) < 0
    inter, union = np.logical_and(closed, holed).sum(), np.logical_or(closed, holed).sum()
    assert inter / union > 0.85
    assert holed.sum() > 0.8 * closed.sum()  # without the crossing test it leaks to nearly nothing


def test_open_sheet_becomes_a_thin_shell_not_nothing():
    sheet = trimesh.Trimesh([[-0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, 0.5], [-0.5, 0, 0.5]], [[0, 1, 2], [0, 2, 3]])
    tsdf = mesh_to_tsdf(sheet, 32)
    assert (tsdf < 0).sum() > 0
    assert np.all(np.abs(grid_points(32).numpy()[tsdf < 0][:, 1]) < 2 * voxel_size(32))


@pytest.mark.parametrize(
    "mesh, message",
    [
        (trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int)), "empty"),
        (trimesh.Trimesh([[0, 0, 0], [np.nan, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False), "NaN"),
        (trimesh.creation.box((3, 3, 3)), "outside"),
    ],
)
def test_bad_meshes_raise_one_clear_error(mesh, message):
    with pytest.raises(WalaError, match=message):
        mesh_to_tsdf(mesh, 32)


def test_resolution_below_32_is_refused():
    with pytest.raises(WalaError, match="at least 32"):
        mesh_to_tsdf(_sphere_mesh(), 16)
