"""`wala prep`: meshes or procedural families → sharded wavelet-tree datasets.

Sources: a mesh file, a folder (searched recursively), a .txt list of mesh paths, or
`procedural:FAMILY[,FAMILY…|all]:COUNT[:SEED]`. Each sample records its source dataset: the
folder or list name for meshes, `procedural-FAMILY` for generated shapes (one dataset per family,
so balanced sampling and D-IoU see them as separate sources). The item list is sorted, so shard
contents are stable across runs; finished shards are skipped; shards run in parallel processes;
a mesh that fails is logged to `errors.jsonl` and skipped.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wala.conditions.derive import DEFAULT_STORED_POINTS
from wala.config import RepresentationConfig, to_dict
from wala.data.shards import finished_shards, write_shard
from wala.errors import WalaError
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
        encoded = encode_mesh_file(item.source, config)
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
        samples.append((meta, arrays))
    if views is not None:
        views.release()
    write_shard(Path(folder), index, samples)
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
) -> dict:
    """Writes the shards of `sources` into `folder`; returns {"samples", "skipped_shards", "errors"}.
    `views` ("3,6,10,26", "sketch", …: wala.render.views.parse_views) adds renders and depth maps,
    `sketches` ("lineart,canny" or "all": wala.sketch) drawings of those views, `captions` captions
    (`item_captions`) as token ids of the text condition's sentence encoder."""
    from wala.render.views import parse_views
    from wala.sketch import parse_techniques

    if sketches and not views:
        raise WalaError("sketches are drawn from renders: give --views too")
    poses = [p.name for p in parse_views(views)] if views else []
    techniques = parse_techniques(sketches) if sketches else []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = collect_items(sources)
    manifest = folder / "prep.json"
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
    if manifest.exists() and json.loads(manifest.read_text()) != settings:
        raise WalaError(f"{folder} was prepared with other settings ({manifest}); use a new folder")
    manifest.write_text(json.dumps(settings, indent=2) + "\n")
    done = finished_shards(folder)
    jobs = [
        (i, items[s : s + shard_size], config, str(folder), views, techniques, captions)
        for i, s in enumerate(range(0, len(items), shard_size))
        if i not in done
    ]
    errors: list[dict] = []
    bar = tqdm(total=sum(len(j[1]) for j in jobs), unit="shape", disable=not progress, desc="prep")
    if workers > 1 and len(jobs) > 1:
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
        with open(folder / "errors.jsonl", "a") as log:
            for e in errors:
                log.write(json.dumps(e) + "\n")
    return {"samples": len(items) - len(errors), "skipped_shards": len(done), "errors": errors}
