"""Writing generated shapes, one input or a batch of them (`wala generate`).

One result: `sample_SEED.{obj,ply,stl,off,glb}` (optionally decimated to `faces` triangles) and its
turntable preview `sample_SEED.png` (+ `.gif`), or `sample_SEED.npz` (`latent`, `tsdf`).
A batch — a folder, or a list file with one input per line — writes each input into its own folder
`OUT/NAME/` and finishes it with `done.json`; a rerun skips the finished inputs, so an interrupted
batch resumes where it stopped. An input that fails is logged (stderr and `OUT/failed.log`) and
skipped; the others still run.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wala.errors import WalaError


@dataclass
class OutputOptions:
    format: str = "obj"  # obj, ply, stl, off, glb, npz
    faces: int = 0  # decimate meshes to this many faces (0: keep all)
    preview: bool = True  # a turntable PNG beside each mesh
    gif: bool = False  # and an animated GIF
    back: object | None = None  # a Normalization mapping meshes back to the input's frame


@dataclass
class BatchInput:
    name: str  # its output folder
    files: list[str] = field(default_factory=list)


def decimate(mesh, faces: int):
    """Quadric-error decimation (trimesh over fast-simplification: C++, keeps the shape's volume
    and silhouette far better than vertex clustering) to about `faces` triangles."""
    if faces <= 0 or len(mesh.faces) <= faces:
        return mesh
    try:
        return mesh.simplify_quadric_decimation(face_count=faces)
    except ImportError as exc:
        raise WalaError("--faces needs the fast-simplification package (pip install fast-simplification)") from exc


def write_shape(shape, directory: Path, options: OutputOptions, renderer=None) -> list[Path]:
    """One GeneratedShape → its files in `directory`; a sample without a surface raises WalaError."""
    from wala.io.mesh import save_mesh, write_atomic

    stem = directory / f"sample_{shape.seed:04d}"
    if options.format == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, latent=shape.latent.numpy(), tsdf=shape.tsdf)
        write_atomic(stem.with_suffix(".npz"), buffer.getvalue())
        return [stem.with_suffix(".npz")]
    mesh = decimate(shape.mesh, options.faces)
    if options.back is not None:
        mesh = mesh.copy()
        mesh.vertices = options.back.to_world(mesh.vertices)
    path = stem.with_suffix(f".{options.format}")
    save_mesh(mesh, path)
    written = [path]
    if options.preview:
        try:
            from wala.render.preview import write_preview

            written += write_preview(mesh, stem.with_suffix(".png"), gif=options.gif, renderer=renderer)
        except WalaError as exc:  # no OpenGL here: the mesh is what matters
            print(f"no preview for {path}: {exc}", file=sys.stderr)
    return written


def write_shapes(shapes, directory: Path, options: OutputOptions) -> tuple[list[Path], list[str]]:
    """(files written, one line per sample that had no surface)."""
    renderer = _renderer() if options.preview and options.format != "npz" else None
    written, empty = [], []
    try:
        for shape in shapes:
            try:
                written += write_shape(shape, directory, options, renderer)
            except WalaError as exc:  # one empty sample is reported; the others are still written
                empty.append(f"sample {shape.seed}: {exc}")
    finally:
        if renderer is not None:
            renderer.release()
    return written, empty


def _renderer():
    try:
        from wala.render.shaded import MeshRenderer

        return MeshRenderer(256)
    except (WalaError, ImportError):
        return None  # write_shape then names the problem once per mesh


def batch_inputs(source: str | Path, files_per_input: int, formats: tuple[str, ...]) -> list[BatchInput]:
    """The inputs of a batch. A folder: each file in `formats` is an input, or, for conditions of
    several files, each subfolder (its files in `formats`). A list file: one input per line, its
    files separated by spaces (relative to the list's folder); `#` starts a comment."""
    source = Path(source)
    if source.is_dir():
        if files_per_input == 1:
            inputs = [
                BatchInput(p.stem, [str(p)])
                for p in sorted(source.iterdir())
                if p.is_file() and p.suffix.lower() in formats
            ]
        else:
            inputs = [
                BatchInput(d.name, [str(p) for p in sorted(d.iterdir()) if p.suffix.lower() in formats])
                for d in sorted(source.iterdir())
                if d.is_dir()
            ]
    elif source.is_file():
        inputs = []
        for line in source.read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if parts:
                files = [str(Path(p) if Path(p).is_absolute() else source.parent / p) for p in parts]
                inputs.append(BatchInput(Path(files[0]).stem if len(files) == 1 else Path(files[0]).parent.name, files))
    else:
        raise WalaError(f"batch not found: {source}")
    if not inputs:
        raise WalaError(f"no inputs in {source} (files ending in {', '.join(formats)})")
    seen: dict[str, int] = {}
    for item in inputs:  # two inputs of one name would overwrite each other
        seen[item.name] = seen.get(item.name, 0) + 1
        if seen[item.name] > 1:
            item.name = f"{item.name}_{seen[item.name]}"
    return inputs


def run_batch(
    inputs: list[BatchInput],
    out: Path,
    generate,
    options: OutputOptions,
    settings: dict | None = None,
    force: bool = False,
    group: int = 1,
) -> tuple[int, int, list[str]]:
    """Runs `generate([files, …]) → [(shapes, back), …]` on the unfinished inputs, `group` at a time
    (`back`: a Normalization to the input's frame, or None); a group that fails is run again one input
    at a time, so a bad input fails alone. (inputs done now, inputs skipped as finished before, failure
    lines). `settings` (what the shapes depend on) are kept in OUT/batch.json: a rerun under others is
    refused unless `force`, which redoes every input."""
    import dataclasses

    from wala.io.mesh import write_atomic

    out.mkdir(parents=True, exist_ok=True)
    recorded = out / "batch.json"
    if settings is not None:
        if recorded.is_file() and not force:
            try:
                before = json.loads(recorded.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise WalaError(f"cannot read {recorded}: {exc}") from exc
            changed = [f"{k} {before.get(k)!r} → {v!r}" for k, v in settings.items() if before.get(k) != v]
            if changed:
                raise WalaError(
                    f"{out} holds a batch made with other options ({', '.join(changed)}): give --force "
                    f"to redo every input there, or another output folder"
                )
        write_atomic(recorded, (json.dumps(settings, indent=1) + "\n").encode())
    (out / "failed.log").unlink(missing_ok=True)  # this run's failures only: earlier ones are retried
    done = 0
    failures = []
    todo = [item for item in inputs if force or not (out / item.name / "done.json").is_file()]
    skipped = len(inputs) - len(todo)
    for first in range(0, len(todo), max(1, group)):
        items = todo[first : first + max(1, group)]
        made: dict[str, tuple | WalaError] = {}  # input → (shapes, back, seconds), or its error
        start = time.perf_counter()
        try:
            for item, result in zip(items, generate([item.files for item in items])):
                made[item.name] = (*result, (time.perf_counter() - start) / len(items))
        except WalaError as exc:
            if len(items) == 1:
                made[items[0].name] = exc
            else:  # a group fails as a whole: each input alone, so a bad one fails alone
                for item in items:
                    start = time.perf_counter()
                    try:
                        made[item.name] = (*generate([item.files])[0], time.perf_counter() - start)
                    except WalaError as alone:
                        made[item.name] = alone
        for item in items:
            folder = out / item.name
            start = time.perf_counter()
            try:
                if isinstance(made[item.name], WalaError):
                    raise made[item.name]
                shapes, back, seconds = made[item.name]
                written, empty = write_shapes(shapes, folder, dataclasses.replace(options, back=back))
                if not written:
                    raise WalaError("; ".join(empty) or "nothing written")
            except WalaError as exc:
                failures.append(f"{item.name}: {exc}")
                print(f"failed {item.name}: {exc}", file=sys.stderr)
                with open(out / "failed.log", "a") as log:
                    log.write(failures[-1] + "\n")
                continue
            record = {
                "input": item.files,
                "files": [p.name for p in written],
                "empty": empty,
                "seconds": round(seconds + time.perf_counter() - start, 2),
            }
            write_atomic(folder / "done.json", (json.dumps(record, indent=1) + "\n").encode())
            print(f"{item.name}: {len(written)} files in {record['seconds']}s", file=sys.stderr)
            done += 1
    return done, skipped, failures
