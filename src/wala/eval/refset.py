"""A reference mesh set for benchmarks, built from a fixed manifest of ids.

The manifest (`configs/refset.json`) lists each shape's id, dataset and source: a mesh file under
the fetched meshes folder (`scripts/fetch_meshes.sh`: CGAL demo data, PyMeshLab samples), with
the SHA-256 of the file we built the manifest from, or a procedural family and seed
(`procedural:chair:3`). Building writes every shape normalized (bounding box centred, longest
side 1.8) as `OUT/<id>.obj`, and `OUT/manifest.json` with what was written, so `wala eval` and
`wala bench` read the same ids in the same order on every machine. A source whose hash differs
(a newer package) is built and flagged in the written manifest, not refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from wala.errors import WalaError, one_line
from wala.io.mesh import load_mesh, normalize_mesh, save_mesh, write_atomic
from wala.sdf.families import family_mesh


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise WalaError(f"reference manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text())
        ids = [shape["id"] for shape in manifest["shapes"]]
        for shape in manifest["shapes"]:
            shape["dataset"], shape["source"]  # noqa: B018 — both keys are required
    except (ValueError, KeyError, TypeError) as exc:
        raise WalaError(f"cannot read reference manifest {path}: {one_line(exc)}") from exc
    if len(set(ids)) != len(ids):
        raise WalaError(f"reference manifest {path} repeats an id")
    return manifest


def _source_digest(source: str, meshes: Path) -> str | None:
    """SHA-256 of a file source (None for a procedural one); a missing file is an error."""
    if source.startswith("procedural:"):
        return None
    path = meshes / source
    if not path.exists():
        raise WalaError(f"reference source {path} not found (run `make meshes`, or pass --meshes)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_mesh(source: str, meshes: Path, resolution: int):
    if source.startswith("procedural:"):
        try:
            _, family, seed = source.split(":")
            seed = int(seed)
        except ValueError as exc:
            raise WalaError(f"bad procedural source '{source}' (procedural:FAMILY:SEED)") from exc
        return family_mesh(family, seed, resolution)
    return load_mesh(meshes / source)


def build_reference_set(
    manifest_path: str | Path, out: str | Path, meshes: str | Path = "data/meshes", resolution: int = 256, progress=None
) -> dict:
    """Write the manifest's shapes to `out`; returns the written manifest. Shapes already written
    from the same source (file hash, or procedural resolution) are kept: the build resumes."""
    manifest, out, meshes = read_manifest(manifest_path), Path(out), Path(meshes)
    previous = {}
    if (out / "manifest.json").exists():
        previous = {s["id"]: s for s in json.loads((out / "manifest.json").read_text()).get("shapes", [])}
    written = []
    shapes = manifest["shapes"]
    for shape in progress(shapes) if progress else shapes:
        target = out / f"{shape['id']}.obj"
        digest = _source_digest(shape["source"], meshes)
        built = {"source": shape["source"], "built_sha256": digest, "resolution": None if digest else resolution}
        done = previous.get(shape["id"])
        if done and target.exists() and all(done.get(k) == v for k, v in built.items()):
            written.append(done)
            continue
        normalized, _ = normalize_mesh(_source_mesh(shape["source"], meshes, resolution))
        target.parent.mkdir(parents=True, exist_ok=True)
        save_mesh(normalized, target)
        entry = {**shape, **built, "vertices": len(normalized.vertices), "faces": len(normalized.faces)}
        if digest is not None and shape.get("sha256") and digest != shape["sha256"]:
            entry["source_changed"] = True
        written.append(entry)
    result = {**{k: v for k, v in manifest.items() if k != "shapes"}, "shapes": written}
    write_atomic(out / "manifest.json", json.dumps(result, indent=1).encode())
    return result
