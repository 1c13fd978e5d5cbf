"""Marching cubes in torch, where the TSDF already is (CUDA, MPS or the CPU), giving PyMCubes' mesh.

PyMCubes is what the released code meshes with (wala.sdf.extract). To give its mesh on a GPU without
copying the grid back, the case table here is not written out but read from PyMCubes itself: each of
the 256 corner patterns is meshed once as a single 2×2×2 cube (±1 values), and its triangles, as
edges of the cube, are that case's row, in PyMCubes' order and winding. A grid corner counts as
inside when its value is ≤ the level, as in PyMCubes; each crossing edge gets one vertex, linearly
interpolated, shared by the cells around it. Same vertex and face counts, vertices equal to float
rounding; only the order of the vertices and faces differs (PyMCubes' follows its scan).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

CORNERS = ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1))
# the 12 cube edges as (start corner offset, axis): every edge runs from its lower corner along one axis
EDGES = tuple(
    ((x, y, z), axis) for axis in range(3) for x in range(2) for y in range(2) for z in range(2) if (x, y, z)[axis] == 0
)


@functools.lru_cache(maxsize=1)
def case_table() -> tuple[np.ndarray, np.ndarray]:
    """(256, 15) edge indices of each case's triangles (-1 padded) and (256,) triangle counts, read from
    PyMCubes on single cubes."""
    import mcubes

    edge_of = {}
    for index, (start, axis) in enumerate(EDGES):
        middle = [float(c) for c in start]
        middle[axis] += 0.5
        edge_of[tuple(middle)] = index
    table = np.full((256, 15), -1, dtype=np.int64)
    counts = np.zeros(256, dtype=np.int64)
    for case in range(256):
        cube = np.ones((2, 2, 2), dtype=np.float32)
        for bit, corner in enumerate(CORNERS):
            if case >> bit & 1:
                cube[corner] = -1.0
        vertices, faces = mcubes.marching_cubes(cube, 0.0)
        edges = [edge_of[tuple(float(c) for c in v)] for v in vertices]
        row = [edges[i] for face in faces for i in face]
        table[case, : len(row)] = row
        counts[case] = len(faces)
    return table, counts


def marching_cubes(tsdf: torch.Tensor, level: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, 3) float32 vertices in index coordinates and (F, 3) int64 faces of the `level` isosurface of
    a (N0, N1, N2) grid, computed on its device: PyMCubes' mesh up to the order of vertices and faces."""
    device = tsdf.device
    grid = tsdf.float()
    n0, n1, n2 = grid.shape
    inside = grid <= level
    case = torch.zeros((n0 - 1, n1 - 1, n2 - 1), dtype=torch.int64, device=device)
    for bit, (x, y, z) in enumerate(CORNERS):
        case |= inside[x : x + n0 - 1, y : y + n1 - 1, z : z + n2 - 1].long() << bit
    cells = torch.nonzero((case != 0) & (case != 255))  # (C, 3) cells the surface passes through
    if len(cells) == 0:
        return torch.zeros((0, 3), device=device), torch.zeros((0, 3), dtype=torch.int64, device=device)
    table, counts = (torch.from_numpy(a).to(device) for a in case_table())
    cases = case[cells[:, 0], cells[:, 1], cells[:, 2]]
    rows = table[cases]  # (C, 15)
    used = torch.arange(15, device=device)[None] < 3 * counts[cases][:, None]
    cell_of, slot = torch.nonzero(used, as_tuple=True)  # one entry per triangle corner, in cell order
    edge = rows[cell_of, slot]
    starts = torch.tensor([s for s, _ in EDGES], device=device)
    axes = torch.tensor([a for _, a in EDGES], device=device)
    start = cells[cell_of] + starts[edge]  # the edge's lower grid corner
    axis = axes[edge]
    key = ((start[:, 0] * n1 + start[:, 1]) * n2 + start[:, 2]) * 3 + axis  # one id per grid edge
    unique, faces = torch.unique(key, return_inverse=True)
    axis = unique % 3
    corner = unique // 3
    p0 = torch.stack((corner // (n1 * n2), corner // n2 % n1, corner % n2), dim=1)
    p1 = p0 + torch.nn.functional.one_hot(axis, 3)
    v0 = grid[p0[:, 0], p0[:, 1], p0[:, 2]]
    v1 = grid[p1[:, 0], p1[:, 1], p1[:, 2]]
    t = (level - v0) / (v1 - v0)
    vertices = p0.float() + t[:, None] * (p1 - p0).float()
    return vertices, faces.reshape(-1, 3)
