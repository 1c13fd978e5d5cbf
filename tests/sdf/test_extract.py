import numpy as np
import pytest

from wala.errors import WalaError
from wala.sdf import grid_points, tsdf_to_mesh


def test_sphere_surface_lands_on_the_radius_with_outward_normals():
    n = 64
    tsdf = np.clip(np.linalg.norm(grid_points(n).numpy(), axis=-1) - 0.5, -0.1, 0.1)
    mesh = tsdf_to_mesh(tsdf)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.5).max() < 2e-3  # corner-aligned grid placed right: no half-voxel shift
    assert mesh.volume > 0
    assert abs(mesh.volume - 4 / 3 * np.pi * 0.125) < 0.01
    # every face normal points away from the centre (PyMCubes, like the official code, also emits
    # zero-area faces where the surface passes exactly through grid points: they have no normal)
    real = mesh.area_faces > 1e-12
    assert real.mean() > 0.9
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals[real], mesh.triangles_center[real]) > 0)


def test_vertices_map_through_the_official_grid():
    tsdf = np.full((32, 32, 32), 0.1, dtype=np.float32)
    tsdf[10:20, 10:20, 10:20] = -0.1  # a box whose faces sit midway between grid indices
    mesh = tsdf_to_mesh(tsdf)
    # index 9.5 → -1 + 9.5 · 2/32; index 19.5 → -1 + 19.5 · 2/32
    assert np.allclose(mesh.bounds, [[-1 + 9.5 / 16] * 3, [-1 + 19.5 / 16] * 3])


@pytest.mark.parametrize(
    "grid, message",
    [
        (np.full((32, 32, 32), 0.1), "no surface"),
        (np.zeros((32, 32, 16)), "cubic"),
        (np.full((32, 32, 32), np.nan), "NaN"),
    ],
)
def test_grids_without_a_surface_are_refused(grid, message):
    with pytest.raises(WalaError, match=message):
        tsdf_to_mesh(grid)
