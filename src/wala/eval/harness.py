"""Score a folder of generated meshes against a folder of reference meshes, the way the paper's
tables do: LFD, IoU, CD, F-score per shape, per dataset, and dataset-balanced (D-IoU, D-MSE).

Pairing: a generated mesh belongs to the reference with the same relative path without suffix
(`gen/cgal/bunny.obj` ↔ `ref/cgal/bunny.off`); a reference set's `manifest.json` (see
`wala.eval.refset`) names the ids and their datasets, otherwise the first folder of the relative
path is the dataset. A reference without a generated mesh, or with an unreadable, empty or
out-of-cube one, is a failure: counted and listed, scored IoU 0 and F 0 (as `wala eval-gen` scores
a sample without a surface), and left out of the LFD, MSE and CD means, which it has no value for.

Alignment: the reference is always normalized by its bounding box (centred, longest side 1.8,
as everywhere in wala). The generated mesh is, by `frame`: "own" (default) normalized by its own
bounding box, so a generator is scored on shape, not placement; "reference" moved by the
reference's normalization, for output in the reference file's frame (`wala generate
--original-frame`); "normalized" taken as it is, for output already in the reference's
normalized frame (`wala generate`'s default, `wala bench`). LFD normalizes by itself. IoU and MSE are
measured on the N³ TSDF grid (256³ by default, as in the paper), CD and F-score on surface
samples (wala.eval.metrics).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from wala.errors import WalaError
from wala.eval.autoencoder import summarize
from wala.eval.lfd import descriptor_distance, light_field_descriptor
from wala.eval.metrics import DEFAULT_SURFACE_POINTS, iou, surface_metrics, tsdf_mse
from wala.eval.refset import read_manifest
from wala.io.mesh import MESH_FORMATS, Normalization, load_mesh, normalize_mesh
from wala.sdf.tsdf import mesh_to_tsdf

METRICS = ("lfd", "iou", "mse", "cd", "fscore")


@dataclass(frozen=True)
class ReferenceShape:
    id: str  # relative path without suffix, "/"-separated
    dataset: str
    path: Path


def mesh_files(folder: Path) -> dict[str, Path]:
    """{relative id: path} of every mesh file under `folder`."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in MESH_FORMATS:
            found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return found


def reference_shapes(folder: str | Path) -> list[ReferenceShape]:
    """The reference set in `folder`: from its manifest.json when present, else every mesh file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WalaError(f"reference folder not found: {folder}")
    files = mesh_files(folder)
    manifest = folder / "manifest.json"
    if manifest.exists():
        entries = read_manifest(manifest)["shapes"]
        missing = [e["id"] for e in entries if e["id"] not in files]
        if missing:
            raise WalaError(f"reference set {folder} lacks {len(missing)} manifest ids, e.g. {missing[0]} (rebuild it)")
        return [ReferenceShape(e["id"], e["dataset"], files[e["id"]]) for e in entries]
    if not files:
        raise WalaError(f"no mesh files ({', '.join(MESH_FORMATS)}) under {folder}")
    return [ReferenceShape(i, i.split("/")[0] if "/" in i else folder.name, p) for i, p in files.items()]


FRAMES = ("own", "reference", "normalized")


def _in_frame(generated: trimesh.Trimesh, norm: Normalization, frame: str) -> trimesh.Trimesh:
    """The generated mesh in the reference's normalized frame (`norm`), read as `frame` says."""
    if frame == "own":
        return normalize_mesh(generated)[0]
    if frame == "normalized":
        return generated
    moved = generated.copy()
    moved.vertices = (np.asarray(generated.vertices) - norm.center) * norm.scale
    return moved


def score_pair(
    generated: trimesh.Trimesh,
    reference: trimesh.Trimesh,
    resolution: int = 256,
    points: int = DEFAULT_SURFACE_POINTS,
    frame: str = "own",
) -> dict:
    """{lfd, iou, mse, cd, fscore} of one generated mesh against its reference."""
    ref, norm = normalize_mesh(reference)
    gen = _in_frame(generated, norm, frame)
    if np.abs(gen.vertices).max() > 1.0:
        raise WalaError(
            f"generated mesh leaves the [-1, 1]³ cube in the reference's normalized frame (frame '{frame}')"
        )
    gen_tsdf, ref_tsdf = mesh_to_tsdf(gen, resolution), mesh_to_tsdf(ref, resolution)
    return {
        "lfd": float(descriptor_distance(light_field_descriptor(generated), light_field_descriptor(reference))),
        "iou": iou(gen_tsdf < 0, ref_tsdf < 0),
        "mse": tsdf_mse(gen_tsdf, ref_tsdf),
        **surface_metrics(gen, ref, points),
    }


def evaluate_folders(
    generated: str | Path,
    reference: str | Path,
    resolution: int = 256,
    points: int = DEFAULT_SURFACE_POINTS,
    frame: str = "own",
    progress=None,
    ids: list[str] | None = None,
) -> dict:
    """Per-shape records and the summary (per dataset, overall, D-IoU/D-MSE) of GEN vs REF
    (only the reference `ids` when given)."""
    if frame not in FRAMES:
        raise WalaError(f"unknown frame '{frame}' ({', '.join(FRAMES)})")
    generated = Path(generated)
    if not generated.is_dir():
        raise WalaError(f"generated folder not found: {generated}")
    shapes = reference_shapes(reference)
    if ids is not None:
        wanted = set(ids)
        shapes = [s for s in shapes if s.id in wanted]
    outputs = mesh_files(generated)
    records = []
    for shape in progress(shapes) if progress else shapes:
        record = {"id": shape.id, "dataset": shape.dataset}
        ref = load_mesh(shape.path)  # a broken reference is the user's error: it stops the run
        if shape.id not in outputs:
            record = _failure(record, "no generated mesh")
        else:
            try:
                record.update(score_pair(load_mesh(outputs[shape.id]), ref, resolution, points, frame), failed=0)
            except WalaError as exc:
                record = _failure(record, str(exc))
        records.append(record)
    unmatched = sorted(set(outputs) - {s.id for s in shapes})
    return {
        "resolution": resolution,
        "frame": frame,
        "records": records,
        "unmatched": unmatched,
        "summary": _summary(records),
    }


def _summary(records: list[dict]) -> dict:
    """{"overall", "per_dataset"} means (NaN left out), D-IoU/D-MSE, "failed" as a fraction."""
    summary = summarize(records, [*METRICS, "failed"])
    summary.pop("samples")  # they are the records
    return summary


def _failure(record: dict, error: str) -> dict:
    return {
        **record,
        "error": error,
        "failed": 1,
        "iou": 0.0,
        "fscore": 0.0,
        **{m: math.nan for m in METRICS if m not in ("iou", "fscore")},
    }


def format_table(result: dict) -> str:
    """The paper's layout: one row per dataset, then all shapes, then the dataset-balanced row."""
    head = f"{'dataset':16s} {'n':>4s} {'fail':>4s} {'LFD ↓':>8s} {'IoU ↑':>7s} {'MSE ↓':>9s} {'CD ↓':>9s} {'F ↑':>6s}"
    lines = [head, "-" * len(head)]

    def row(name, m, count):
        return (
            f"{name[:16]:16s} {count:4d} {round(m['failed'] * count):4d} {m['lfd']:8.1f} {m['iou']:7.4f} "
            f"{m['mse']:9.2e} {m['cd']:9.2e} {m['fscore']:6.3f}"
        )

    summary = result["summary"]
    lines += [row(name, m, m["count"]) for name, m in summary["per_dataset"].items()]
    overall = summary["overall"]
    lines.append(row("all", overall, len(result["records"])))
    lines.append(
        f"{'D-IoU':16s} {overall['d_iou']:.4f}   D-MSE {overall['d_mse']:.2e}"
        f"   (dataset means averaged; IoU/MSE on {result['resolution']}³; failures count IoU 0, F 0)"
    )
    failures = [r for r in result["records"] if "error" in r]
    for r in failures[:10]:
        lines.append(f"failed {r['id']}: {r['error']}")
    if len(failures) > 10:
        lines.append(f"… and {len(failures) - 10} more failures (see the JSON)")
    if result["unmatched"]:
        lines.append(
            f"{len(result['unmatched'])} generated meshes match no reference id, e.g. {result['unmatched'][0]}"
        )
    return "\n".join(lines)


def records_csv(records: list[dict]) -> str:
    """One CSV row per reference shape (a failure: IoU 0, F 0, nan elsewhere, and its error)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "dataset", *METRICS, "error"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
