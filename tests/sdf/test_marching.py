"""Marching cubes in torch (run on CPU tensors here, the code path a GPU takes) gives PyMCubes' mesh: equal
vertex and face counts, vertices within 1e-5, the same triangles — on TSDFs of real meshes, on noise
(every ambiguous case), and on grids with values exactly at the level."""

import mcubes
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from wala.errors import WalaError
from wala.io.mesh import load_mesh, normalize_mesh
from wala.sdf import tsdf_to_mesh
from wala.sdf.marching import case_table, marching_cubes
from wala.sdf.tsdf import mesh_to_tsdf


def same_mesh(grid: np.ndarray, tolerance: float = 1e-5) -> None:
    vertices, faces = mcubes.marching_cubes(grid, 0.0)
    ours, our_faces = (a.numpy() for a in marching_cubes(torch.from_numpy(grid)))
    assert (len(ours), len(our_faces)) == (len(vertices), len(faces))
    distance, match = cKDTree(vertices).query(ours)
    assert distance.max() <= tolerance, distance.max()
    assert len(set(match)) == len(vertices)  # one to one

    def triangles(f: np.ndarray) -> set:  # each triangle from its lowest vertex: winding kept
        return {tuple(np.roll(row, -int(np.argmin(row)))) for row in f}

    assert triangles(match[our_faces]) == triangles(faces)


@pytest.mark.parametrize("name", ["cgal/bunny00.off", "cgal/armadillo.off", "pymeshlab/bone.ply"])
def test_real_surfaces_give_pymcubes_mesh(real_meshes, name):
    mesh, _ = normalize_mesh(load_mesh(real_meshes / name))
    same_mesh(mesh_to_tsdf(mesh, 96))


def test_noise_gives_pymcubes_mesh_in_every_ambiguous_case():
    same_mesh(np.random.default_rng(0).standard_normal((20, 20, 20)).astype(np.float32))


def test_values_exactly_at_the_level_count_as_inside_as_in_pymcubes():
    grid = np.round(np.random.default_rng(1).standard_normal((12, 12, 12))).astype(np.float32)
    vertices, faces = mcubes.marching_cubes(grid, 0.0)
    ours, our_faces = marching_cubes(torch.from_numpy(grid))
    assert (len(ours), len(our_faces)) == (len(vertices), len(faces))
    by_position = lambda v: np.sort(np.round(v, 5).view([("", v.dtype)] * 3).ravel())  # noqa: E731
    assert np.array_equal(by_position(np.asarray(ours.numpy(), np.float64)), by_position(vertices))


def test_the_case_table_is_read_from_pymcubes_and_is_symmetric_in_its_counts():
    table, counts = case_table()
    assert counts[0] == counts[255] == 0 and counts.max() == 5
    assert (table >= 0).sum(axis=1).tolist() == (3 * counts).tolist()


def test_tsdf_to_mesh_of_a_tensor_is_the_numpy_mesh_in_world_coordinates(real_meshes):
    mesh, _ = normalize_mesh(load_mesh(real_meshes / "cgal" / "bunny00.off"))
    tsdf = mesh_to_tsdf(mesh, 64)
    a, b = tsdf_to_mesh(tsdf), tsdf_to_mesh(torch.from_numpy(tsdf))
    assert (len(a.vertices), len(a.faces)) == (len(b.vertices), len(b.faces))
    assert cKDTree(a.vertices).query(b.vertices)[0].max() < 1e-6
    assert abs(a.volume - b.volume) < 1e-9 and b.volume > 0  # same winding: outward normals
    for bad, message in ((torch.full((8, 8, 8), 0.1), "no surface"), (torch.full((8, 8, 8), float("nan")), "NaN")):
        with pytest.raises(WalaError, match=message):
            tsdf_to_mesh(bad)
