"""Condition files at wala's boundary: point clouds and voxel grids.

Point clouds: PLY, XYZ/TXT (x y z [nx ny nz …] per line), NPY, NPZ and HDF5 (`points` key),
(P, 3) or wider (extra columns such as normals are dropped); `.h5df` is HDF5 as the official examples name it. Voxel grids: NPY, NPZ and HDF5
(`occupancy` key), binvox, JSON (nested 0/1 lists, or the official {"resolution", "occupancy": indices}); axes (x, y, z) as wala's TSDF grid,
values 0/1. Readers reject bad input with a one-line `WalaError`.

Bounds, so that a file (or a web upload) cannot exhaust memory or time; each is checked before the data
is read, from what the file declares, wherever the format allows:
- MAX_POINTS = 100,000 points, from the NPY/NPZ header, the HDF5 dataset shape, the PLY header, or
  counted while reading text. The released encoder keeps ~20 KB of activations per point (measured on CPU,
  fp32: 25,000 points +0.5 GB, 100,000 +2 GB), so 1M points would need ~20 GB. The official code does no
  resampling (OFFICIAL.md §5.3), so a bigger cloud is refused rather than silently subsampled: the user
  subsamples it (the official examples hold 25,000 points).
- MAX_FILE_BYTES = 64 MiB for any point-cloud or voxel file on disk; MAX_JSON_BYTES = 16 MiB for voxel
  JSON (Python lists cost ~10× the text). 100,000 float64 points with normals are 4.8 MB.
- Only regular files are read (a FIFO would wait forever, /dev/zero never ends; both say 0 bytes).
- MAX_ARRAY_BYTES = 64 MiB for one array's raw bytes as its header declares them (NPY, an NPZ member
  before it is decompressed, an HDF5 dataset); only arrays of numbers (dtype bool/int/uint/float) are read.
  An NPZ member also may not inflate more than MAX_COMPRESSION_RATIO (100:1) once over 4 MiB: a zip bomb;
  it must be stored or deflated (what numpy writes: zipfile inflates bzip2 and LZMA without a limit).
- A compressed HDF5 dataset may store at most MAX_STORED_OVERHEAD (64 KiB) more than its raw bytes (an
  honest one stores fewer), declare chunks of at most MAX_ARRAY_BYTES, and each gzip chunk is inflated here
  first, stopping at its declared size: HDF5's own gzip filter inflates a chunk without bound.
- MAX_VOXEL_RESOLUTION = 256 for a JSON `resolution` and binvox `dim` (the released models take 16³;
  arrays must have the model's exact shape), and a JSON lists at most resolution³ occupied indices.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from wala.errors import WalaError, one_line
from wala.io.files import check_regular_file, read_limited
from wala.io.mesh import Normalization, bbox_normalization, checked_path

POINT_CLOUD_FORMATS = (".ply", ".xyz", ".txt", ".npy", ".npz", ".h5", ".hdf5", ".h5df")  # .h5df: the official examples
VOXEL_FORMATS = (".npy", ".npz", ".h5", ".hdf5", ".binvox", ".json")

MAX_POINTS = 100_000
MAX_FILE_BYTES = 64 * 2**20
MAX_JSON_BYTES = 16 * 2**20
MAX_ARRAY_BYTES = 64 * 2**20
MAX_COMPRESSION_RATIO, COMPRESSION_CHECK_BYTES = 100, 4 * 2**20
MAX_STORED_OVERHEAD = 64 * 2**10
_NUMPY_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}  # np.savez and np.savez_compressed
_ZIP_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
MAX_VOXEL_RESOLUTION = 256
_PLY_HEADER_LINES = 1000  # a PLY header is a dozen lines; a runaway one is refused, not scanned to the end
_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def _check_header(shape: tuple, dtype: np.dtype, name: str, check_shape) -> None:
    """Refuses an array from its header alone, before any of it is read or decompressed."""
    if dtype.hasobject or dtype.kind not in "biuf":
        raise WalaError(f"{name} holds {dtype} values; wala reads arrays of numbers only")
    check_shape(tuple(shape), name)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise WalaError(
            f"{name} declares a {tuple(shape)} {dtype} array ({nbytes / 2**20:,.0f} MiB); "
            f"wala reads arrays up to {MAX_ARRAY_BYTES / 2**20:g} MiB"
        )


def _npy_header(stream) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from the header of an .npy stream (numpy's own parser, header length bounded)."""
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy version {version[0]}.{version[1]} (wala reads 1.0 and 2.0)")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(stream)
    return shape, dtype


def _npz_member(path: Path, key: str, check_shape) -> np.ndarray | list[str]:
    """The array `key` (or the only one) of an NPZ, checked by its zip entry and .npy header before it
    is decompressed; the member names when neither is there."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        if key not in members and len(members) != 1:
            return list(members)
        info = members[key] if key in members else next(iter(members.values()))
        name = f"{path} ['{info.filename}']"
        if info.compress_type not in _NUMPY_ZIP_METHODS:
            method = _ZIP_METHOD_NAMES.get(info.compress_type, f"zip method {info.compress_type}")
            raise WalaError(
                f"{name} is compressed with {method}; wala reads NPZ members stored or deflated, "
                f"as np.savez and np.savez_compressed write them"
            )
        if info.file_size > MAX_ARRAY_BYTES:
            raise WalaError(
                f"{name} inflates to {info.file_size / 2**20:,.0f} MiB; "
                f"wala reads arrays up to {MAX_ARRAY_BYTES / 2**20:g} MiB"
            )
        if info.file_size > COMPRESSION_CHECK_BYTES and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size:
            raise WalaError(
                f"{name} inflates {info.file_size / max(info.compress_size, 1):,.0f}:1 "
                f"({info.compress_size:,} bytes → {info.file_size:,}); refused as a zip bomb"
            )
        with archive.open(info) as member:  # zipfile stops inflating at the entry's declared size
            _check_header(*_npy_header(member), name, check_shape)
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)


def _keyed_array(path: Path, suffix: str, key: str, check_shape) -> np.ndarray:
    """The array under `key` of an NPZ/HDF5 file (or an NPZ's only array), or the array of an NPY file;
    its shape and dtype checked from the header (`check_shape(shape, name)` for the condition's rules)
    before anything is allocated."""
    if suffix == ".npy":
        with open(path, "rb") as f:
            _check_header(*_npy_header(f), str(path), check_shape)
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    if suffix == ".npz":
        found = _npz_member(path, key, check_shape)
        if isinstance(found, np.ndarray):
            return found
        names = found
    else:
        import h5py

        with h5py.File(path, "r") as f:
            if key in f:
                if not isinstance(f.get(key, getlink=True), h5py.HardLink):
                    raise WalaError(f"{path}: '{key}' is a link; wala reads arrays stored in the file under that name")
                dataset = f[key]
                if not isinstance(dataset, h5py.Dataset) or dataset.shape is None:
                    raise WalaError(f"{path}: '{key}' is not an array")
                if dataset.external or dataset.is_virtual:
                    raise WalaError(f"{path}: '{key}' is stored outside the file; wala reads arrays stored in it")
                _check_header(dataset.shape, dataset.dtype, str(path), check_shape)
                _check_hdf5_storage(dataset, f"{path}: '{key}'")
                return dataset[()]
            names = list(f.keys())
    listed = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
    raise WalaError(f"{path} holds no '{key}' array (found: {listed or 'nothing'})")


def _check_hdf5_storage(dataset, name: str) -> None:
    """Refuses a compressed (filtered) HDF5 dataset that could inflate past what it declares, before HDF5
    reads it: its gzip filter inflates a chunk without bound (1 MB stored → 1 GiB), whatever the chunk's size."""
    from h5py import h5z

    plist = dataset.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]  # in the order they were applied
    if not filters:
        return  # contiguous, compact or plain chunks: HDF5 reads the bytes the shape declares
    raw = math.prod(dataset.shape) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if stored > raw + MAX_STORED_OVERHEAD:  # compression stores fewer bytes than the data; a bomb stores more
        raise WalaError(
            f"{name} stores {stored:,} compressed bytes for {raw:,} bytes of data; refused as a compression bomb"
        )
    chunk_bytes = math.prod(dataset.chunks) * dataset.dtype.itemsize
    if chunk_bytes > MAX_ARRAY_BYTES:  # HDF5 inflates a whole chunk to read any of it
        raise WalaError(
            f"{name} declares {chunk_bytes / 2**20:,.0f} MiB chunks; wala reads compressed chunks up to "
            f"{MAX_ARRAY_BYTES / 2**20:g} MiB"
        )
    if h5z.FILTER_DEFLATE not in filters:
        return
    gzip = filters.index(h5z.FILTER_DEFLATE)
    if set(filters[gzip + 1 :]) - {h5z.FILTER_FLETCHER32}:  # the stored bytes would not be gzip's own
        raise WalaError(f"{name} applies filters after gzip; wala reads gzip last (a fletcher32 checksum aside)")

    def inflate(chunk) -> None:
        if chunk.filter_mask & 1 << gzip:
            return  # stored as it is: gzip did not shrink it
        _, data = dataset.id.read_direct_chunk(chunk.chunk_offset)
        if len(zlib.decompressobj().decompress(data, chunk_bytes + 1)) > chunk_bytes:
            raise WalaError(
                f"{name} holds a gzip chunk that inflates past its {chunk_bytes:,} bytes; refused as a compression bomb"
            )

    dataset.id.chunk_iter(inflate)


def _check_point_shape(shape: tuple, name: str) -> None:
    """(P, ≥3) or (1, P, ≥3) with P ≤ MAX_POINTS, or a WalaError naming what is wrong."""
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]  # a batch of one
    if len(shape) != 2 or shape[1] < 3:
        raise WalaError(f"{name} must have shape (P, 3), got {shape}")
    _check_point_count(shape[0], name)


def _check_point_count(count: int, name: str, exact: bool = True) -> None:
    """A WalaError when `count` is over MAX_POINTS (not `exact`: reading stopped there, the file holds more)."""
    if count > MAX_POINTS:
        raise WalaError(
            f"{name} has {f'{count:,}' if exact else f'more than {MAX_POINTS:,}'} points; wala reads at "
            f"most {MAX_POINTS:,} (the official code does not resample: subsample it, the official "
            f"examples hold 25,000)"
        )


def _read_ply_points(path: Path) -> np.ndarray:
    """The vertex (x, y, z) of an ASCII or binary PLY, read as its header declares: at most MAX_POINTS
    rows, never more than declared. Elements before the vertices must have fixed-size rows; faces
    and other elements after them are not read."""
    with open(path, "rb") as f:
        if f.readline(1024).strip() != b"ply":
            raise WalaError(f"{path} is not a PLY file (no 'ply' line)")
        encoding, elements = None, []  # [(name, count, [(property, dtype or None for a list)])]
        for _ in range(_PLY_HEADER_LINES):
            words = f.readline(1024).decode("ascii", "replace").split()
            if words[:1] == ["format"]:
                encoding = words[1:2]
            elif words[:1] == ["element"] and len(words) == 3:
                if int(words[2]) < 0:
                    raise WalaError(f"{path} declares {words[2]} '{words[1]}' elements")
                elements.append((words[1], int(words[2]), []))
            elif words[:1] == ["property"] and elements:
                listed = words[1:2] == ["list"]
                if not listed and (len(words) != 3 or words[1] not in _PLY_TYPES):
                    raise WalaError(f"{path} has a PLY property wala cannot read: {' '.join(words)}")
                elements[-1][2].append((words[-1], None if listed else _PLY_TYPES[words[1]]))
            elif words[:1] == ["end_header"]:
                break
        else:
            raise WalaError(f"{path} has no 'end_header' within {_PLY_HEADER_LINES} header lines")
        if encoding not in (["ascii"], ["binary_little_endian"], ["binary_big_endian"]):
            raise WalaError(
                f"{path} has no PLY format line wala knows (ascii, binary_little_endian, binary_big_endian)"
            )
        ascii_ = encoding == ["ascii"]
        endian = ">" if encoding == ["binary_big_endian"] else "<"
        for name, count, properties in elements:
            if any(t is None for _, t in properties):
                raise WalaError(
                    f"{path}: the PLY element '{name}' has list properties; wala reads "
                    f"fixed-size vertex rows (and skips only fixed-size elements before them)"
                )
            names = [p for p, _ in properties]
            if name != "vertex":  # skip an element before the vertices
                if ascii_:
                    for _ in range(count):
                        if not f.readline():
                            break
                else:
                    f.seek(count * np.dtype([(p, endian + t) for p, t in properties]).itemsize, os.SEEK_CUR)
                continue
            _check_point_count(count, str(path))
            if not {"x", "y", "z"} <= set(names):
                raise WalaError(f"{path}: PLY vertices have no x, y, z properties (found: {', '.join(names)})")
            if ascii_:
                rows = (
                    np.loadtxt(f, ndmin=2, max_rows=count, usecols=[names.index(a) for a in "xyz"])
                    if count and f.peek(1)
                    else np.zeros((0, 3))
                )  # (loadtxt warns on an empty rest)
            else:
                data = np.fromfile(f, np.dtype([(p, endian + t) for p, t in properties]), count=count)
                rows = np.stack([data[a] for a in "xyz"], axis=1)
            if len(rows) != count:
                raise WalaError(f"{path} is truncated: its header declares {count:,} vertices, it holds {len(rows):,}")
            return rows
    raise WalaError(f"{path} has no PLY vertex element")


def load_point_cloud(path: str | os.PathLike) -> np.ndarray:
    """Reads a point cloud as (P, 3) float32 world coordinates, P ≤ MAX_POINTS."""
    path, suffix = checked_path(path, POINT_CLOUD_FORMATS, "point cloud")
    path = check_regular_file(path, MAX_FILE_BYTES, "point cloud")
    try:
        if suffix == ".ply":
            points = _read_ply_points(path)
        elif suffix in (".xyz", ".txt"):
            points = np.loadtxt(path, ndmin=2, comments="#", max_rows=MAX_POINTS + 1)
            _check_point_count(len(points), str(path), exact=False)
        else:
            points = _keyed_array(path, suffix, "points", _check_point_shape)
    except WalaError:
        raise
    except Exception as exc:  # numpy, h5py and zipfile raise many types for corrupt files
        raise WalaError(f"cannot read point cloud {path}: {one_line(exc)}") from exc
    return check_point_cloud(points, str(path))


def check_point_cloud(points, name: str = "point cloud") -> np.ndarray:
    """(P, ≥3) numbers, P ≤ MAX_POINTS → (P, 3) float32, or a WalaError naming what is wrong."""
    points = np.asarray(points)
    if points.dtype.kind not in "fiu":
        raise WalaError(f"{name} must hold numbers, got {points.dtype}")
    _check_point_shape(points.shape, name)
    if points.ndim == 3:
        points = points[0]  # a batch of one
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
    limit = MAX_JSON_BYTES if suffix == ".json" else MAX_FILE_BYTES
    path = check_regular_file(path, limit, "voxel grid")
    try:
        if suffix == ".binvox":
            grid = read_binvox(read_limited(path, limit, "voxel grid"))
        elif suffix == ".json":
            data = json.loads(read_limited(path, limit, "voxel grid"))
            if not isinstance(data, dict) or "occupancy" not in data:
                raise WalaError(f"{path} must hold an object with an 'occupancy' key")
            grid = _json_grid(data, size, path)
        else:
            grid = _keyed_array(path, suffix, "occupancy", lambda shape, name: _check_voxel_shape(shape, size, name))
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
    resolution, occupancy = data["resolution"], data["occupancy"]
    if type(resolution) is not int or not 1 <= resolution <= MAX_VOXEL_RESOLUTION:
        raise WalaError(
            f"{path}: 'resolution' must be a whole number from 1 to {MAX_VOXEL_RESOLUTION}, got {str(resolution)[:40]}"
        )
    if resolution != size:
        raise WalaError(f"{path} is a {resolution}³ grid; this model takes {size}³")
    if not isinstance(occupancy, list) or len(occupancy) > size**3:
        raise WalaError(
            f"{path}: 'occupancy' must list at most {size**3:,} [i, j, k] indices "
            f"(got {f'{len(occupancy):,}' if isinstance(occupancy, list) else type(occupancy).__name__})"
        )
    indices = np.asarray(occupancy, dtype=np.int64).reshape(-1, 3) if occupancy else np.zeros((0, 3), np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= size):
        raise WalaError(f"{path} lists an occupied index outside 0..{size - 1}")
    grid = np.zeros((size,) * 3, dtype=bool)
    grid[tuple(indices.T)] = True
    return grid


def _check_voxel_shape(shape: tuple, size: int, name: str) -> None:
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]  # a batch of one
    if tuple(shape) != (size, size, size):
        raise WalaError(f"{name} must have shape ({size}, {size}, {size}), got {tuple(shape)}")


def check_voxels(grid, size: int = 16, name: str = "voxel grid") -> np.ndarray:
    grid = np.asarray(grid)
    _check_voxel_shape(grid.shape, size, name)
    if grid.ndim == 4:
        grid = grid[0]
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
    if len(dims) != 3 or not all(1 <= d <= MAX_VOXEL_RESOLUTION for d in dims):
        raise WalaError(f"binvox dims {' '.join(map(str, dims))} are not 3 sizes from 1 to {MAX_VOXEL_RESOLUTION}")
    runs = np.frombuffer(data[header_end + 5 :], dtype=np.uint8)
    if len(runs) % 2:
        raise WalaError("binvox data is truncated (odd number of run bytes)")
    values, counts = runs[0::2], runs[1::2].astype(np.int64)
    if counts.sum() != math.prod(dims):
        raise WalaError(f"binvox data holds {counts.sum()} voxels, its header says {math.prod(dims)}")
    flat = np.repeat(values.astype(bool), counts)
    return flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)  # (x, z, y) → (x, y, z)


def write_binvox(grid: np.ndarray) -> bytes:
    """A bool (x, y, z) grid as binvox bytes (translate 0, scale 1)."""
    grid = np.asarray(grid, dtype=bool)
    flat = grid.transpose(0, 2, 1).reshape(-1).astype(np.uint8)
    out = bytearray(
        f"#binvox 1\ndim {grid.shape[0]} {grid.shape[1]} {grid.shape[2]}\ntranslate 0 0 0\nscale 1\ndata\n".encode()
    )
    start = 0
    while start < len(flat):
        value, end = flat[start], start
        while end < len(flat) and flat[end] == value and end - start < 255:
            end += 1
        out += bytes((value, end - start))
        start = end
    return bytes(out)
