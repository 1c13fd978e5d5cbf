"""Sharded datasets: WebDataset-style tar shards with a JSON index beside each.

Why tar: one sequential file per shard streams well from any disk or object store, needs only the
standard library, and is what WebDataset readers expect; the index (member offsets) adds random
access, which balanced sampling and exact resume need. A shard counts as finished only when its
index exists — the index is written last, atomically — so an interrupted `wala prep` resumes by
skipping finished shards. The folder may be an fsspec URL (wala.io.store): shards are then one PUT
each, and a reader fetches a sample by a ranged GET, or whole shards into a bounded local cache.

Per sample the tar holds `{key}.npz` (the wavelet tree: coarse (M³), d0 (7, M³), d1 (7, M1³),
float32; the condition data: points (8192, 3) float32 surface samples and occupancy (16³) bool)
and `{key}.json` ({"key", "dataset", "id", "source", "resolution"}, with `--captions` also "captions": the texts).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from wala.errors import WalaError
from wala.io import store
from wala.sdf.grid import GRID_CONVENTION
from wala.wavelet.packing import pack_wavelet_tree
from wala.wavelet.tree import WaveletTree


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def write_shard(folder: str | Path, index: int, samples: list[tuple[dict, dict[str, np.ndarray]]]) -> str:
    """Writes one shard (tar, then its index) into a folder or URL. `samples`: (meta with "key", arrays)
    pairs. Returns the index's location."""
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
    store.write_bytes(store.join(folder, f"{shard_name(index)}.tar"), buffer.getvalue())
    # offsets of the .npz members, for random access
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        offsets = {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
    for entry in entries:
        entry["offset"], entry["size"] = offsets[entry["key"] + ".npz"]
    index_path = store.join(folder, f"{shard_name(index)}.index.json")
    store.write_bytes(index_path, json.dumps({"shard": f"{shard_name(index)}.tar", "samples": entries}).encode())
    return index_path


def read_shard(folder: str | Path, index: int) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """The (meta, arrays) samples of one shard, as `write_shard` took them, in stored order. Read from the tar
    alone, not through its index: a rewrite cut between the new tar and its index still reads whole."""
    location = store.join(folder, f"{shard_name(index)}.tar")
    try:
        with tarfile.open(fileobj=io.BytesIO(store.read_bytes(location))) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        samples = []
        for name in (n for n in members if n.endswith(".json")):
            key = name[: -len(".json")]
            with np.load(io.BytesIO(members[key + ".npz"])) as stored:
                samples.append((json.loads(members[name]), {k: stored[k] for k in stored.files}))
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        raise WalaError(f"corrupt shard {location}: {type(exc).__name__}: {exc}") from exc
    return samples


def finished_shards(folder: str | Path) -> set[int]:
    return {int(Path(p).name[6:11]) for p in store.glob(folder, "shard-*.index.json")}


class WaveletTreeDataset(torch.utils.data.Dataset):
    """Random access to every sample of a prepared folder; item i → (packed (64, M³), meta)."""

    def __init__(self, folder: str | Path, cache: store.Cache | None = None):
        """`folder`: a local folder or an fsspec URL. At a URL each sample is one ranged GET, or, with a
        `cache`, its whole shard is fetched once into that bounded local folder (streaming training)."""
        self.folder = str(folder)
        self.cache = cache
        indexes = store.glob(self.folder, "shard-*.index.json")
        if not indexes:
            raise WalaError(f"no prepared shards in {self.folder} (run `wala prep` first)")
        manifest = store.join(self.folder, "prep.json")
        settings = json.loads(store.read_bytes(manifest)) if store.exists(manifest) else {}
        self.views: list[str] = settings.get("views", [])  # renders' view names, stored order
        self.sketches: list[str] = settings.get("sketches", [])  # sketch techniques, stored order
        self.captions: bool = settings.get("captions", False)  # caption token ids (`--captions`)
        if settings and settings.get("grid") != GRID_CONVENTION:
            raise WalaError(
                f"{self.folder} was prepared on the old cell-centred grid; prepare it again "
                f"(wala now samples TSDFs corner-aligned, as the released models)"
            )
        self.records: list[dict] = []
        for number, path in enumerate(indexes):
            try:
                index = json.loads(store.read_bytes(path))
            except json.JSONDecodeError as exc:
                raise WalaError(f"corrupt shard index {path}: {exc}") from exc
            for sample in index["samples"]:
                self.records.append(
                    {**sample, "shard": store.join(self.folder, index["shard"]), "shard_number": number}
                )
        resolutions = {r["resolution"] for r in self.records}
        if len(resolutions) != 1:
            raise WalaError(f"{self.folder} mixes resolutions {sorted(resolutions)}")
        self.resolution = resolutions.pop()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def datasets(self) -> list[str]:
        return [r["dataset"] for r in self.records]

    @property
    def shards(self) -> list[int]:
        """The shard each sample is stored in (numbered in the folder's order)."""
        return [r["shard_number"] for r in self.records]

    def arrays(self, i: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The named arrays of sample i (tree: coarse, d0, d1; conditions: points, occupancy)."""
        record = self.records[i]
        shard, start, end = record["shard"], record["offset"], record["offset"] + record["size"]
        data = store.read_bytes(shard, start, end) if self.cache is None else self.cache.read(shard, start, end)
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


class PerShape(torch.utils.data.Dataset):
    """A dataset of one item per sample of `self.shapes` (a `WaveletTreeDataset`, or another `PerShape`):
    its length, and the source dataset and shard of each sample, which the trainer's epoch orders read
    (balanced sampling; shard-by-shard streaming). Subclasses set `shapes` and define `__getitem__`."""

    shapes: torch.utils.data.Dataset

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def datasets(self) -> list[str]:
        return self.shapes.datasets

    @property
    def shards(self) -> list[int]:
        return self.shapes.shards
