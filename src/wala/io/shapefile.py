"""The `.npz` shape file written by `wala encode` and read by `wala decode`.

Two kinds share one layout: kind "tsdf" stores `tsdf` (N, N, N); kind "tree" stores `coarse`
(M, M, M), `d0` (7, M, M, M) and `d1` (7, ...). Both store `config` (the RepresentationConfig as
JSON), the normalization (`center`, `scale`: world = normalized / scale + center) and `source`.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wala.config import RepresentationConfig, from_dict, to_dict
from wala.errors import WalaError
from wala.io.mesh import Normalization, write_atomic
from wala.wavelet.tree import WaveletTree

FORMAT_VERSION = 1
KINDS = ("tsdf", "tree")


@dataclass
class ShapeFile:
    config: RepresentationConfig
    normalization: Normalization
    source: str
    tsdf: np.ndarray | None = None  # (N, N, N) for kind "tsdf"
    tree: WaveletTree | None = None  # batch of one for kind "tree"

    @property
    def kind(self) -> str:
        return "tsdf" if self.tsdf is not None else "tree"


def save_shape(path: str | Path, shape: ShapeFile) -> None:
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "kind": np.array(shape.kind),
        "config": np.array(json.dumps(to_dict(shape.config))),
        "center": np.asarray(shape.normalization.center, dtype=np.float64),
        "scale": np.array(shape.normalization.scale, dtype=np.float64),
        "source": np.array(shape.source),
    }
    if shape.tsdf is not None:
        arrays["tsdf"] = np.asarray(shape.tsdf, dtype=np.float32)
    else:
        arrays.update(shape.tree.to_arrays())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def load_shape(path: str | Path) -> ShapeFile:
    path = Path(path)
    if not path.is_file():
        raise WalaError(f"shape file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise WalaError(f"cannot read shape file {path}: not a valid .npz ({exc})") from exc
    if "kind" not in arrays or "config" not in arrays:
        raise WalaError(f"{path} is not a wala shape file (no 'kind'/'config' entries)")
    kind = str(arrays["kind"])
    if kind not in KINDS:
        raise WalaError(f"{path}: unknown shape kind '{kind}' (known: {', '.join(KINDS)})")
    config = from_dict(RepresentationConfig, json.loads(str(arrays["config"])))
    normalization = Normalization(arrays["center"], float(arrays["scale"]))
    shape = ShapeFile(config, normalization, str(arrays.get("source", "")))
    n = config.resolution
    if kind == "tsdf":
        tsdf = arrays.get("tsdf")
        if tsdf is None or tsdf.shape != (n, n, n):
            raise WalaError(f"{path}: 'tsdf' must be ({n}, {n}, {n}), got {None if tsdf is None else tsdf.shape}")
        _check_finite(path, tsdf)
        shape.tsdf = tsdf
    else:
        missing = [k for k in ("coarse", "d0", "d1") if k not in arrays]
        if missing:
            raise WalaError(f"{path}: wavelet tree lacks {', '.join(missing)}")
        for key in ("coarse", "d0", "d1"):
            _check_finite(path, arrays[key])
        if arrays["d0"].shape[0] != 7 or arrays["d1"].shape[0] != 7:
            raise WalaError(f"{path}: detail levels must hold 7 subbands")
        shape.tree = WaveletTree.from_arrays(arrays, n)
    return shape


def _check_finite(path: Path, array: np.ndarray) -> None:
    if not np.isfinite(array).all():
        raise WalaError(f"{path}: holds NaN or infinite values")
