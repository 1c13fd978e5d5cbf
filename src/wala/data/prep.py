"""`wala prep`: meshes or procedural families → sharded wavelet-tree datasets.

Sources: a mesh file, a folder (searched recursively), a .txt list of mesh paths, or
`procedural:FAMILY[,FAMILY…|all]:COUNT[:SEED]`. Each sample records its source dataset: the
folder or list name for meshes, `procedural-FAMILY` for generated shapes (one dataset per family,
so balanced sampling and D-IoU see them as separate sources). The item list is sorted, so shard
contents are stable across runs; finished shards are skipped; shards run in parallel processes;
a mesh that fails is logged to `errors.jsonl` and skipped.

Beyond one machine: the output folder, and mesh sources, may be fsspec URLs (wala.io.store), and
`ray` runs the same shard jobs as Ray tasks, on a cluster started here (`"local"`) or joined at an
address (`ray start --head` prints it), instead of a process pool. Shards are the unit of work and of
resumption in both: a rerun, or a retried task, skips every shard whose index exists.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from tqdm import tqdm

from wala.conditions.derive import DEFAULT_STORED_POINTS
from wala.config import RepresentationConfig, to_dict
from wala.data.shards import finished_shards, write_shard
from wala.errors import WalaError, require
from wala.io import store
from wala.io.mesh import MESH_FORMATS
from wala.sdf.grid import GRID_CONVENTION

PROCEDURAL = "procedural:"


@dataclass(frozen=True)
class Item:
    dataset: str
    ident: str
    source: str  # a mesh path, or "procedural:FAMILY:SEED"

    @property
    def key(self) -> str:
        return f"{self.dataset}__{self.ident}".replace("/", "_").replace(".", "_")


def collect_items(sources: list[str]) -> list[Item]:
    items: list[Item] = []
    for source in sources:
        if source.startswith(PROCEDURAL):
            items += _procedural_items(source)
            continue
        if store.is_url(source):
            items += _url_items(source)
            continue
        path = Path(source)
        if path.is_dir():
            meshes = sorted(p for p in path.rglob("*") if p.suffix.lower() in MESH_FORMATS)
            items += [Item(path.name, str(p.relative_to(path)), str(p)) for p in meshes]
        elif path.suffix == ".txt" and path.is_file():
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            # ids relative to the entries' common folder, so cow.off and cow.obj stay apart
            root = Path(os.path.commonpath([str(Path(line).parent) for line in lines])) if lines else Path()
            items += [Item(path.stem, str(Path(line).relative_to(root)), line) for line in lines]
        elif path.is_file():
            items.append(Item(path.parent.name or "meshes", path.stem, str(path)))
        else:
            raise WalaError(f"source not found: {source}")
    if not items:
        raise WalaError("no meshes found in the given sources")
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        raise WalaError("two sources give the same dataset/id; rename one")
    return sorted(items, key=lambda i: i.key)


def _url_items(url: str) -> list[Item]:
    """The meshes at a URL: one file, or every mesh file under a prefix (named relative to it)."""
    fs, path = store.filesystem(url)
    scheme = url.split("://", 1)[0]
    if fs.isfile(path):
        name = PurePosixPath(path)
        return [Item(name.parent.name or "meshes", name.stem, url)]
    found = sorted(p for p in fs.find(path) if PurePosixPath(p).suffix.lower() in MESH_FORMATS)
    if not found:
        raise WalaError(f"source not found: {url} (no mesh files there)")
    root = PurePosixPath(path)
    return [Item(root.name, str(PurePosixPath(p).relative_to(root)), f"{scheme}://{p}") for p in found]


def _procedural_items(spec: str) -> list[Item]:
    from wala.sdf.families import FAMILIES

    parts = spec[len(PROCEDURAL) :].split(":")
    if len(parts) not in (2, 3):
        raise WalaError(f"procedural source must be procedural:FAMILY[,…]:COUNT[:SEED], got '{spec}'")
    families = list(FAMILIES) if parts[0] == "all" else parts[0].split(",")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise WalaError(f"unknown shape family '{unknown[0]}' (known: {', '.join(FAMILIES)})")
    count, seed = int(parts[1]), int(parts[2]) if len(parts) == 3 else 0
    return [
        Item(f"procedural-{f}", f"{s:06d}", f"{PROCEDURAL}{f}:{s}") for f in families for s in range(seed, seed + count)
    ]


def item_captions(item: Item) -> list[str]:
    """A procedural shape's template captions (wala.text.captions), or the lines of `MESH.txt` beside a
    mesh (the first 8, or repeated up to 8: every shape stores the same number)."""
    from wala.text.captions import PER_SHAPE, family_captions

    if item.source.startswith(PROCEDURAL):
        family, seed = item.source[len(PROCEDURAL) :].split(":")
        return family_captions(family, int(seed))
    sidecar = Path(item.source).with_suffix(".txt")
    lines = [line.strip() for line in sidecar.read_text().splitlines() if line.strip()] if sidecar.is_file() else []
    if not lines:
        raise WalaError(f"no captions for {item.source}: write them one per line in {sidecar}")
    return (lines * PER_SHAPE)[:PER_SHAPE]


def encode_item(item: Item, config: RepresentationConfig, views=None, captions: bool = False) -> dict[str, np.ndarray]:
    """The wavelet tree of one item as arrays (coarse, d0, d1) and its condition data: surface
    `points` (8192, 3) and 16³ `occupancy`, both in the normalized frame, with a
    `wala.data.renders.ViewMaker` its renders and sketches, and with `captions` (K, 32) caption token ids."""
    from wala.pipeline import encode_mesh_file
    from wala.sdf.extract import tsdf_to_mesh
    from wala.sdf.families import family_tsdf
    from wala.wavelet.tree import tsdf_to_tree

    if item.source.startswith(PROCEDURAL):
        family, seed = item.source[len(PROCEDURAL) :].split(":")
        tsdf = family_tsdf(family, int(seed), config.resolution, config.truncation)
        tree = tsdf_to_tree(torch.from_numpy(tsdf)[None], config)
        surface = tsdf_to_mesh(tsdf)  # the shape as the grid holds it
    else:
        encoded = encode_mesh_file(_local_mesh(item.source), config)
        tsdf, tree, surface = encoded.tsdf, encoded.tree, encoded.mesh
    from wala.conditions import CONDITIONS

    seed = zlib.crc32(item.key.encode())
    derived = {kind.array: kind.derive(surface, tsdf, seed) for kind in CONDITIONS.values() if kind.derive}
    if views is not None:
        derived.update(views.arrays(surface, seed))
    if captions:
        from wala.text.sentence import tokenize

        derived["captions"] = tokenize(item_captions(item))
    return {**tree.to_arrays(), **derived}


def _local_mesh(source: str) -> str:
    """A mesh source as a local path: at a URL, a copy in the bounded cache (reading meshes needs files)."""
    return str(store.Cache(limit=2**30).local(source)) if store.is_url(source) else source


def _prep_shard(job) -> tuple[int, int, list[dict]]:
    index, items, config, folder, view_spec, techniques, captions = job
    torch.set_num_threads(1)
    samples, errors = [], []
    views = None
    if view_spec:
        from wala.data.renders import ViewMaker
        from wala.render.views import parse_views

        views = ViewMaker(parse_views(view_spec), techniques)
    for item in items:
        try:
            arrays = encode_item(item, config, views, captions)
        except Exception as exc:  # a bad mesh is logged and skipped, never fatal
            errors.append({"key": item.key, "source": item.source, "error": f"{type(exc).__name__}: {exc}"})
            continue
        meta = {
            "key": item.key,
            "dataset": item.dataset,
            "id": item.ident,
            "source": item.source,
            "resolution": config.resolution,
        }
        if captions:  # the text too, for models with a tokenizer of their own (wala.text.train)
            meta["captions"] = item_captions(item)
        samples.append((meta, arrays))
    if views is not None:
        views.release()
    write_shard(folder, index, samples)
    return index, len(items), errors


def prepare(
    sources: list[str],
    folder: str | Path,
    config: RepresentationConfig = RepresentationConfig(),
    shard_size: int = 64,
    workers: int = 1,
    progress: bool = True,
    views: str = "",
    sketches: str = "",
    captions: bool = False,
    ray: str = "",
    task_memory_gb: float = 2.0,
) -> dict:
    """Writes the shards of `sources` into `folder`; returns {"samples", "skipped_shards", "errors"}.
    `views` ("3,6,10,26", "sketch", …: wala.render.views.parse_views) adds renders and depth maps,
    `sketches` ("lineart,canny" or "all": wala.sketch) drawings of those views, `captions` captions
    (`item_captions`) as token ids of the text condition's sentence encoder, and as text in each
    sample's JSON (`"captions"`). `folder` may be a URL.
    `ray`: "local" (a Ray cluster of `workers` CPUs started here) or a cluster's address runs the shards as
    Ray tasks, each reserving `task_memory_gb` of memory."""
    from wala.render.views import parse_views
    from wala.sketch import parse_techniques

    if sketches and not views:
        raise WalaError("sketches are drawn from renders: give --views too")
    poses = [p.name for p in parse_views(views)] if views else []
    techniques = parse_techniques(sketches) if sketches else []
    folder = str(folder)
    if not store.is_url(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
    items = collect_items(sources)
    manifest = store.join(folder, "prep.json")
    # the whole representation (grid convention included) is part of the data's identity
    settings = {
        "representation": to_dict(config),
        "grid": GRID_CONVENTION,
        "shard_size": shard_size,
        "items": len(items),
        "stored_points": DEFAULT_STORED_POINTS,
    }
    if poses:  # only then, so folders prepared without renders keep their manifest
        settings.update(views=poses, sketches=techniques)
    if captions:
        from wala.text.sentence import tokenizer

        tokenizer()  # missing: refused here, not logged as a failure per shape
        settings["captions"] = True
    if store.exists(manifest) and json.loads(store.read_bytes(manifest)) != settings:
        raise WalaError(f"{folder} was prepared with other settings ({manifest}); use a new folder")
    store.write_bytes(manifest, (json.dumps(settings, indent=2) + "\n").encode())
    done = finished_shards(folder)
    jobs = [
        (i, items[s : s + shard_size], config, str(folder), views, techniques, captions)
        for i, s in enumerate(range(0, len(items), shard_size))
        if i not in done
    ]
    errors: list[dict] = []
    bar = tqdm(total=sum(len(j[1]) for j in jobs), unit="shape", disable=not progress, desc="prep")
    if ray and jobs:
        errors = _run_on_ray(jobs, ray, workers, task_memory_gb, bar)
    elif workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for _, count, errs in pool.imap_unordered(_prep_shard, jobs):
                errors += errs
                bar.update(count)
            pool.close()  # let the workers exit on their own; the context's terminate() is for errors
            pool.join()
    else:
        for job in jobs:
            _, count, errs = _prep_shard(job)
            errors += errs
            bar.update(count)
    bar.close()
    if errors:
        log = store.join(folder, "errors.jsonl")
        before = store.read_bytes(log) if store.exists(log) else b""
        store.write_bytes(log, before + "".join(json.dumps(e) + "\n" for e in errors).encode())
    return {"samples": len(items) - len(errors), "skipped_shards": len(done), "errors": errors}


def _run_on_ray(jobs: list, address: str, workers: int, task_memory_gb: float, bar) -> list[dict]:
    """The shard jobs as Ray tasks (one CPU and `task_memory_gb` each; a task lost with its worker is
    retried, and skips nothing it did not finish). Returns the errors, as the pool path does."""
    require("wala prep --ray", "scale", "ray")
    import ray

    started = not ray.is_initialized()
    if started:
        local = address == "local"
        ray.init(
            address=None if local else address,
            num_cpus=max(workers, 1) if local else None,
            object_store_memory=200 * 2**20 if local else None,  # tasks return only their error lists
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        task = ray.remote(num_cpus=1, memory=int(task_memory_gb * 2**30), max_retries=2)(_prep_shard)
        pending = [task.remote(job) for job in jobs]
        errors: list[dict] = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            _, count, errs = ray.get(done[0])
            errors += errs
            bar.update(count)
        return errors
    finally:
        if started:
            ray.shutdown()
