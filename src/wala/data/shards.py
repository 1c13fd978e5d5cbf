"""Sharded datasets: WebDataset-style tar shards with a JSON index beside each.

Why tar: one sequential file per shard streams well from any disk or object store, needs only the
standard library, and is what WebDataset readers expect; the index (member offsets) adds random
access, which balanced sampling and exact resume need. A shard counts as finished only when its
index exists — the index is written last, atomically — so an interrupted `wala prep` resumes by
skipping finished shards.

Per sample the tar holds `{key}.npz` (the wavelet tree: coarse (M³), d0 (7, M³), d1 (7, M1³),
float32; the condition data: points (8192, 3) float32 surface samples and occupancy (16³) bool)
and `{key}.json` ({"key", "dataset", "id", "source", "resolution"}).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from wala.errors import WalaError
from wala.io.mesh import write_atomic
from wala.sdf.grid import GRID_CONVENTION
from wala.wavelet.packing import pack_wavelet_tree
from wala.wavelet.tree import WaveletTree


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def write_shard(folder: Path, index: int, samples: list[tuple[dict, dict[str, np.ndarray]]]) -> Path:
    """Writes one shard (tar, then its index). `samples`: (meta with "key", arrays) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    entries = []
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for meta, arrays in samples:
            payload = io.BytesIO()
            np.savez_compressed(payload, **arrays)
            for suffix, data in ((".npz", payload.getvalue()), (".json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(meta["key"] + suffix)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            entries.append(dict(meta))
    write_atomic(folder / f"{shard_name(index)}.tar", buffer.getvalue())
    # offsets of the .npz members, for random access
    with tarfile.open(folder / f"{shard_name(index)}.tar") as tar:
        offsets = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
    for entry in entries:
        entry["offset"], entry["size"] = offsets[entry["key"] + ".npz"]
    index_path = folder / f"{shard_name(index)}.index.json"
    write_atomic(index_path, json.dumps({"shard": f"{shard_name(index)}.tar", "samples": entries}).encode())
    return index_path


def finished_shards(folder: Path) -> set[int]:
    return {int(p.name[6:11]) for p in folder.glob("shard-*.index.json")}


class WaveletTreeDataset(torch.utils.data.Dataset):
    """Random access to every sample of a prepared folder; item i → (packed (64, M³), meta)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        indexes = sorted(self.folder.glob("shard-*.index.json"))
        if not indexes:
            raise WalaError(f"no prepared shards in {self.folder} (run `wala prep` first)")
        manifest = self.folder / "prep.json"
        settings = json.loads(manifest.read_text()) if manifest.exists() else {}
        self.views: list[str] = settings.get("views", [])  # renders' view names, stored order
        self.sketches: list[str] = settings.get("sketches", [])  # sketch techniques, stored order
        self.captions: bool = settings.get("captions", False)  # caption token ids (`--captions`)
        if manifest.exists() and settings.get("grid") != GRID_CONVENTION:
            raise WalaError(
                f"{self.folder} was prepared on the old cell-centred grid; prepare it again "
                f"(wala now samples TSDFs corner-aligned, as the released models)"
            )
        self.records: list[dict] = []
        for path in indexes:
            try:
                index = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise WalaError(f"corrupt shard index {path}: {exc}") from exc
            for sample in index["samples"]:
                self.records.append({**sample, "shard": str(self.folder / index["shard"])})
        resolutions = {r["resolution"] for r in self.records}
        if len(resolutions) != 1:
            raise WalaError(f"{self.folder} mixes resolutions {sorted(resolutions)}")
        self.resolution = resolutions.pop()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def datasets(self) -> list[str]:
        return [r["dataset"] for r in self.records]

    def arrays(self, i: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The named arrays of sample i (tree: coarse, d0, d1; conditions: points, occupancy)."""
        record = self.records[i]
        with open(record["shard"], "rb") as f:
            f.seek(record["offset"])
            data = f.read(record["size"])
        try:
            with np.load(io.BytesIO(data)) as stored:
                missing = [k for k in keys if k not in stored]
                if not missing:
                    return {k: stored[k] for k in keys}
        except Exception as exc:
            raise WalaError(f"corrupt sample {record['key']} in {record['shard']}: {exc}") from exc
        raise WalaError(
            f"sample {record['key']} in {record['shard']} has no {', '.join(missing)} "
            "(prepared by an older `wala prep`; prepare the data again)"
        )

    def tree(self, i: int) -> WaveletTree:
        return WaveletTree.from_arrays(self.arrays(i, ("coarse", "d0", "d1")), self.records[i]["resolution"])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict]:
        return pack_wavelet_tree(self.tree(i))[0], self.records[i]
