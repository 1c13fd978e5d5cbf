import numpy as np
import pytest

from wala.errors import WalaError
from wala.sdf import grid_points, tsdf_to_mesh


def test_sphere_surface_lands_on_the_radius_with_outward_normals():
    n = 64
    tsdf = np.clip(np.linalg.norm(grid_points(n).numpy(), axis=-1) - 0.5, -0.1, 0.1)
    mesh = tsdf_to_mesh(tsdf)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.5).max() < 2e-3  # cell-centre grid placed right: no half-voxel shift
    assert mesh.is_watertight and mesh.volume > 0
    assert abs(mesh.volume - 4 / 3 * np.pi * 0.125) < 0.01
    # every face normal points away from the centre
    assert np.all(np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center) > 0)


@pytest.mark.parametrize("grid, message", [(np.full((32, 32, 32), 0.1), "no surface"), (np.zeros((32, 32, 16)), "cubic"),
                                           (np.full((32, 32, 32), np.nan), "NaN")])
def test_grids_without_a_surface_are_refused(grid, message):
    with pytest.raises(WalaError, match=message):
        tsdf_to_mesh(grid)
