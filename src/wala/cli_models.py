"""`wala generate`, `wala convert`, `wala models`, `wala preview` and `wala serve`: the commands that run
a generator (released, converted or ours), find it, and show what it made."""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from wala.errors import WalaError


def cmd_generate(args) -> None:
    from wala.batch import OutputOptions, batch_inputs, run_batch, write_shapes
    from wala.conditions import CONDITIONS
    from wala.io.conditions import normalize_points
    from wala.pipeline import WaLaPipeline

    given = next((name for name in CONDITIONS if name != "none" and getattr(args, name, None)), "none")
    if args.samples < 1:
        raise WalaError("--samples must be at least 1")
    if args.faces < 0:
        raise WalaError("--faces must be 0 (keep all) or more")
    pipe = WaLaPipeline.from_pretrained(args.model, args.device, args.dtype)
    kind = pipe.model.kind
    if args.batch:
        if not kind.conditional:
            raise WalaError("--batch needs a conditional model (an unconditional one takes --samples)")
        given = kind.name
    pipe.check_condition(given)
    steps, guidance = pipe.defaults()
    steps, guidance = args.steps or steps, guidance if args.scale is None else args.scale
    options = OutputOptions(args.format, args.faces, not args.no_preview, args.gif)

    def generate(files: list[str]):
        back = None
        if given == "pointcloud" and args.normalize and args.original_frame:
            back = normalize_points(pipe.read_condition(given, files))[1]
        shapes = pipe(**({given: files} if files else {}), steps=steps, scale=guidance, seed=args.seed,
                      samples=args.samples, normalize=args.normalize, composite_alpha=args.composite_alpha,
                      progress=sys.stderr.isatty())
        return shapes, back

    out = Path(args.output)
    start = time.perf_counter()
    if args.batch:
        inputs = batch_inputs(args.batch, kind.files(pipe.condition_config), kind.formats)
        done, skipped, failures = run_batch(inputs, out, generate, options)
        print(f"{done} inputs done, {skipped} already finished, {len(failures)} failed, in "
              f"{time.perf_counter() - start:.1f}s ({steps} steps, guidance {guidance:g})", file=sys.stderr)
        if failures:
            raise WalaError(f"{len(failures)} of {len(inputs)} inputs failed (listed in {out / 'failed.log'})")
        return
    shapes, back = generate(getattr(args, given, None) or [])
    written, empty = write_shapes(shapes, out, dataclasses.replace(options, back=back))
    for line in empty:
        print(line, file=sys.stderr)
    for path in written:
        print(path)
    elapsed = time.perf_counter() - start
    print(f"{len(shapes) - len(empty)} of {len(shapes)} shapes in {elapsed:.2f}s ({elapsed / len(shapes):.2f}s per "
          f"shape; {steps} steps, guidance {guidance:g})", file=sys.stderr)
    if len(empty) == len(shapes):
        raise WalaError("no sample has a surface (the generator or its autoencoder is undertrained, "
                        "or the condition is far from the training data)")


def cmd_convert(args) -> None:
    from wala.checkpoints import load_generator, save_model
    from wala.autoencoder.model import count_parameters

    model = load_generator(args.model)
    save_model(model, args.output, getattr(model, "source", "wala"))
    print(f"wrote {args.output} ({model.kind.name} generator, {count_parameters(model) / 1e6:.1f}M parameters)")


def cmd_preview(args) -> None:
    from wala.io.mesh import load_mesh
    from wala.render.preview import write_preview

    if args.frames < 1 or args.size < 16:
        raise WalaError("--frames must be at least 1 and --size at least 16")
    output = Path(args.output or Path(args.mesh).with_suffix(".png"))
    for path in write_preview(load_mesh(args.mesh), output, args.frames, args.size, args.gif):
        print(path)


def cmd_models(args) -> None:
    from wala.models import list_models, search_path

    found, problems = list_models()
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not found:
        print(f"no models in {', '.join(map(str, search_path()))} (put model directories there, or set $WALA_MODELS)")
        return
    width = max(len(m.name) for m in found)
    print(f"{'name':<{width}}  {'source':<8}  {'condition':<32}  {'parameters':>10}  path")
    for m in found:
        print(f"{m.name:<{width}}  {m.source:<8}  {m.condition:<32}  {m.parameters / 1e6:>9.1f}M  {m.path}")


def cmd_serve(args) -> None:
    from wala.models import list_models
    from wala.serve.app import serve

    models = [Path(m) for m in args.model] or [m.path for m in list_models()[0]]
    if args.max_upload_mb <= 0:
        raise WalaError("--max-upload-mb must be positive")
    serve(models, args.host, args.port, max_upload_mb=args.max_upload_mb, device=args.device, dtype=args.dtype)
