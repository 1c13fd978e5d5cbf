"""Condition files at wala's boundary: point clouds and voxel grids.

Point clouds: PLY, XYZ/TXT (x y z [nx ny nz …] per line), NPY, NPZ and HDF5 (`points` key),
(P, 3) or wider (extra columns such as normals are dropped); `.h5df` is HDF5 as the official examples name it. Voxel grids: NPY, NPZ and HDF5
(`occupancy` key), binvox, JSON (nested 0/1 lists, or the official {"resolution", "occupancy": indices}); axes (x, y, z) as wala's TSDF grid,
values 0/1. Readers reject bad input with a one-line `WalaError`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from wala.errors import WalaError, one_line
from wala.io.mesh import Normalization, bbox_normalization, checked_path

POINT_CLOUD_FORMATS = (".ply", ".xyz", ".txt", ".npy", ".npz", ".h5", ".hdf5", ".h5df")  # .h5df: the official examples
VOXEL_FORMATS = (".npy", ".npz", ".h5", ".hdf5", ".binvox", ".json")


def _keyed_array(path: Path, suffix: str, key: str) -> np.ndarray:
    """The array under `key` of an NPZ/HDF5 file (or its only array), or the array of an NPY file."""
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            names = list(arrays.keys())
            if key in names or len(names) == 1:
                return arrays[key if key in names else names[0]]
    else:
        import h5py

        with h5py.File(path, "r") as f:
            if key in f:
                return np.asarray(f[key])
            names = list(f.keys())
    raise WalaError(f"{path} holds no '{key}' array (found: {', '.join(names) or 'nothing'})")


def load_point_cloud(path: str | os.PathLike) -> np.ndarray:
    """Reads a point cloud as (P, 3) float32 world coordinates."""
    path, suffix = checked_path(path, POINT_CLOUD_FORMATS, "point cloud")
    try:
        if suffix == ".ply":
            import trimesh

            loaded = trimesh.load(str(path), file_type="ply", process=False)
            points = np.asarray(loaded.vertices)
        elif suffix in (".xyz", ".txt"):
            points = np.loadtxt(path, ndmin=2, comments="#")
        else:
            points = _keyed_array(path, suffix, "points")
    except WalaError:
        raise
    except Exception as exc:  # numpy, h5py and trimesh raise many types for corrupt files
        raise WalaError(f"cannot read point cloud {path}: {one_line(exc)}") from exc
    return check_point_cloud(points, str(path))


def check_point_cloud(points, name: str = "point cloud") -> np.ndarray:
    """(P, ≥3) numbers → (P, 3) float32, or a WalaError naming what is wrong."""
    points = np.asarray(points)
    if points.dtype.kind not in "fiu":
        raise WalaError(f"{name} must hold numbers, got {points.dtype}")
    if points.ndim == 3 and points.shape[0] == 1:
        points = points[0]  # a batch of one
    if points.ndim != 2 or points.shape[1] < 3:
        raise WalaError(f"{name} must have shape (P, 3), got {points.shape}")
    points = points[:, :3].astype(np.float32)
    if len(points) < 16:
        raise WalaError(f"{name} has {len(points)} points; at least 16 are needed")
    if not np.isfinite(points).all():
        raise WalaError(f"{name} has NaN or infinite coordinates")
    if np.ptp(points, axis=0).max() <= 0:
        raise WalaError(f"{name} is degenerate: all points coincide")
    return points


def normalize_points(points: np.ndarray, bound: float = 0.9) -> tuple[np.ndarray, Normalization]:
    """The point-cloud twin of `normalize_mesh`: bbox centered, longest side spanning [-bound, bound]."""
    normalization = bbox_normalization(points, bound)
    return ((points - normalization.center) * normalization.scale).astype(np.float32), normalization


def load_voxels(path: str | os.PathLike, size: int = 16) -> np.ndarray:
    """Reads a (size, size, size) occupancy grid as bool."""
    path, suffix = checked_path(path, VOXEL_FORMATS, "voxel")
    try:
        if suffix == ".binvox":
            grid = read_binvox(path.read_bytes())
        elif suffix == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or "occupancy" not in data:
                raise WalaError(f"{path} must hold an object with an 'occupancy' key")
            grid = _json_grid(data, size, path)
        else:
            grid = _keyed_array(path, suffix, "occupancy")
    except WalaError:
        raise
    except Exception as exc:
        raise WalaError(f"cannot read voxels {path}: {one_line(exc)}") from exc
    return check_voxels(grid, size, str(path))


def _json_grid(data: dict, size: int, path: Path) -> np.ndarray:
    """A nested (size³) 0/1 list, or the official format: {"resolution": R, "occupancy": [[i, j, k], …]}
    (axes i, j, k as listed; colours ignored). Unlike the official reader, an index outside the
    grid is an error, not silently dropped or wrapped."""
    if "resolution" not in data:
        return np.asarray(data["occupancy"])
    resolution = data["resolution"]
    if resolution != size:
        raise WalaError(f"{path} is a {resolution}³ grid; this model takes {size}³")
    indices = np.asarray(data["occupancy"], dtype=np.int64).reshape(-1, 3) if data["occupancy"] else np.zeros((0, 3), np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= size):
        raise WalaError(f"{path} lists an occupied index outside 0..{size - 1}")
    grid = np.zeros((size,) * 3, dtype=bool)
    grid[tuple(indices.T)] = True
    return grid


def check_voxels(grid, size: int = 16, name: str = "voxel grid") -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim == 4 and grid.shape[0] == 1:
        grid = grid[0]
    if grid.shape != (size, size, size):
        raise WalaError(f"{name} must have shape ({size}, {size}, {size}), got {grid.shape}")
    if grid.dtype.kind not in "biuf":
        raise WalaError(f"{name} must hold 0/1 values, got {grid.dtype}")
    if grid.dtype.kind != "b" and not np.isin(grid, (0, 1)).all():
        raise WalaError(f"{name} must hold only 0 and 1 (occupancy), found other values")
    grid = grid.astype(bool)
    if not grid.any():
        raise WalaError(f"{name} is empty: no voxel is occupied")
    return grid


def read_binvox(data: bytes) -> np.ndarray:
    """Parses binvox bytes (header, then run-length (value, count) byte pairs) into a bool grid
    indexed (x, y, z). binvox runs y fastest, then z, then x."""
    header_end = data.find(b"data\n")
    if not data.startswith(b"#binvox") or header_end < 0:
        raise WalaError("not a binvox file (no '#binvox' header or 'data' line)")
    dims = None
    for line in data[:header_end].decode("ascii", "replace").splitlines():
        if line.startswith("dim "):
            dims = tuple(int(v) for v in line.split()[1:4])
    if dims is None:
        raise WalaError("binvox header has no 'dim' line")
    runs = np.frombuffer(data[header_end + 5:], dtype=np.uint8)
    if len(runs) % 2:
        raise WalaError("binvox data is truncated (odd number of run bytes)")
    values, counts = runs[0::2], runs[1::2].astype(np.int64)
    if counts.sum() != int(np.prod(dims)):
        raise WalaError(f"binvox data holds {counts.sum()} voxels, its header says {int(np.prod(dims))}")
    flat = np.repeat(values.astype(bool), counts)
    return flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)  # (x, z, y) → (x, y, z)


def write_binvox(grid: np.ndarray) -> bytes:
    """A bool (x, y, z) grid as binvox bytes (translate 0, scale 1)."""
    grid = np.asarray(grid, dtype=bool)
    flat = grid.transpose(0, 2, 1).reshape(-1).astype(np.uint8)
    out = bytearray(f"#binvox 1\ndim {grid.shape[0]} {grid.shape[1]} {grid.shape[2]}\ntranslate 0 0 0\nscale 1\ndata\n".encode())
    start = 0
    while start < len(flat):
        value, end = flat[start], start
        while end < len(flat) and flat[end] == value and end - start < 255:
            end += 1
        out += bytes((value, end - start))
        start = end
    return bytes(out)
