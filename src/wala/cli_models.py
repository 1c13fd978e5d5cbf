"""`wala generate`, `wala convert` and `wala preview`: the commands that run a generator (released,
converted or ours) and show what it made."""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from wala.errors import WalaError


def cmd_generate(args) -> None:
    import numpy as np
    import torch

    from wala.conditions import CONDITIONS
    from wala.io.conditions import normalize_points
    from wala.io.mesh import save_mesh, write_atomic
    from wala.pipeline import WaLaPipeline
    from wala.sdf.extract import tsdf_to_mesh

    given = next((name for name in CONDITIONS if name != "none" and getattr(args, name, None)), "none")
    paths = getattr(args, given, None) or []
    generator = WaLaPipeline.from_pretrained(args.model, args.device, args.dtype)
    generator.check_condition(given)
    if args.samples < 1:
        raise WalaError("--samples must be at least 1")
    array = generator.read_condition(given, paths, args.composite_alpha) if paths else None
    condition = generator.condition_tensor(**({given: array} if paths else {}), normalize=args.normalize)
    steps, guidance = generator.defaults()
    steps, guidance = args.steps or steps, guidance if args.scale is None else args.scale
    start = time.perf_counter()
    latents = generator.generate_latents(condition, args.samples, steps, guidance, args.seed)
    back = normalize_points(array)[1] if given == "pointcloud" and args.normalize and args.original_frame else None
    out = Path(args.output)
    written = 0
    for i, latent in enumerate(latents):
        tsdf = generator.model.decode(latent[None])[0].cpu().numpy()
        path = out / f"sample_{args.seed + i:04d}.{args.format}"
        if args.format == "npz":
            buffer = io.BytesIO()
            np.savez(buffer, latent=latent.float().cpu().numpy(), tsdf=tsdf)
            write_atomic(path, buffer.getvalue())
        else:
            try:
                mesh = tsdf_to_mesh(tsdf)
            except WalaError as exc:  # one empty sample is reported; the others are still written
                print(f"sample {args.seed + i}: {exc}", file=sys.stderr)
                continue
            if back is not None:
                mesh.vertices = back.to_world(mesh.vertices)
            save_mesh(mesh, path)
        print(path)
        written += 1
    elapsed = time.perf_counter() - start
    print(f"{written} of {len(latents)} shapes in {elapsed:.2f}s ({elapsed / len(latents):.2f}s per shape; "
          f"{steps} steps, guidance {guidance:g})", file=sys.stderr)
    if not written:
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
