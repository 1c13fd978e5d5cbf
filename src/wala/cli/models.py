"""`wala generate`, `wala convert`, `wala models`, `wala pull`, `wala preview` and `wala serve`: the
commands that run a generator (released, converted or ours), find or fetch it, and show what it made."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from wala.cli import options as checked
from wala.errors import WalaError


def cmd_generate(args) -> None:
    from wala.batch import OutputOptions, batch_inputs, run_batch, write_shapes
    from wala.conditions import CONDITIONS, UNCONDITIONAL
    from wala.conditions.text import TEXT
    from wala.pipeline import WaLaPipeline, check_seeds

    given = next((k for k in CONDITIONS.values() if k.conditional and getattr(args, k.name, None)), UNCONDITIONAL)
    if args.text_model and given is not TEXT:
        raise WalaError("--text-model turns --text into the views a depth/RGB model reads: give --text")
    if args.text_model and args.batch:
        raise WalaError("--text-model takes one --text, not --batch")
    if args.faces < 0:
        raise WalaError("--faces must be 0 (keep all) or more")
    check_seeds(args.seed, args.samples)
    checked.check_output_folder(args.output)
    pipe = WaLaPipeline.from_pretrained(args.model, args.device, args.dtype, revision=args.revision)
    kind = pipe.model.kind
    if args.batch:
        if not kind.conditional:
            raise WalaError("--batch needs a conditional model (an unconditional one takes --samples)")
        given = kind
    elif given.joined:
        setattr(args, given.name, [" ".join(getattr(args, given.name))])  # unquoted words are one value
    text_model = None
    if args.text_model:  # text → views → shape
        from wala.cli.text import load_text_model

        pipe.text_views()  # this model reads views a text model can draw
        text_model = load_text_model(args.text_model, args.device, args.dtype)
    elif given is TEXT and kind.drawn_as:
        raise WalaError(
            f"this model reads {kind.flag} ({kind.name}); give --text-model to turn the text into its views"
        )
    steps, guidance = pipe.sampling(args.steps, args.guidance, args.seed, args.samples)
    options = OutputOptions(args.format, args.faces, not args.no_preview, args.gif)

    def generate(groups: list[list[str]]) -> list[tuple]:
        """Each input's files → (its shapes, the Normalization back to its frame or None); several inputs
        sample together, `--batch-size` of them per denoiser call."""
        conditions, backs = [], []
        for files in groups:
            condition, back = files, None
            if kind.normalize and args.normalize and args.original_frame:
                condition = pipe.read_condition(given.name, files)  # read once: the frame comes from these points
                back = kind.normalize(condition)[1]
            conditions.append({given.name: condition} if files else {})
            backs.append(back)
        common = dict(
            steps=steps,
            guidance=guidance,
            seed=args.seed,
            samples=args.samples,
            normalize=args.normalize,
            composite_alpha=args.composite_alpha,
            progress=sys.stderr.isatty(),
        )
        if len(conditions) > 1:
            return list(zip(pipe(conditions, batch_size=len(conditions) * args.samples, **common), backs))
        shapes = pipe(
            **conditions[0],
            text_model=text_model,
            text_steps=args.text_steps,
            text_guidance=args.text_guidance,
            **common,
        )
        return [(shapes, backs[0])]

    out = Path(args.output)
    start = time.perf_counter()
    if args.batch:
        inputs = batch_inputs(args.batch, kind.files(pipe.condition_config), kind.formats)
        settings = {
            "model": str(args.model),
            "steps": steps,
            "guidance": guidance,
            "seed": args.seed,
            "samples": args.samples,
            "format": args.format,
            "faces": args.faces,
            "dtype": args.dtype,
            "preview": not args.no_preview,
            "gif": args.gif,
            "normalize": args.normalize,
            "original_frame": args.original_frame,
            "composite_alpha": args.composite_alpha,
        }
        done, skipped, failures = run_batch(inputs, out, generate, options, settings, args.force, args.batch_size)
        elapsed = time.perf_counter() - start
        print(
            f"{done} inputs done, {skipped} already finished, {len(failures)} failed, in {elapsed:.1f}s "
            f"({done * args.samples / elapsed:.2f} shapes/s; {steps} steps, guidance {guidance:g})",
            file=sys.stderr,
        )
        if failures:
            raise WalaError(f"{len(failures)} of {len(inputs)} inputs failed (listed in {out / 'failed.log'})")
        return
    ((shapes, back),) = generate([getattr(args, given.name, None) or []])
    if shapes[0].text_views:
        for path in shapes[0].text_views.write(Path(args.output) / kind.drawn_as):
            print(path)
    written, empty = write_shapes(shapes, out, dataclasses.replace(options, back=back))
    for line in empty:
        print(line, file=sys.stderr)
    for path in written:
        print(path)
    elapsed = time.perf_counter() - start
    print(
        f"{len(shapes) - len(empty)} of {len(shapes)} shapes in {elapsed:.2f}s ({elapsed / len(shapes):.2f}s per "
        f"shape; {steps} steps, guidance {guidance:g})",
        file=sys.stderr,
    )
    if len(empty) == len(shapes):
        raise WalaError(
            "no sample has a surface (the generator or its autoencoder is undertrained, "
            "or the condition is far from the training data)"
        )


def cmd_convert(args) -> None:
    from wala.config import SamplingConfig
    from wala.diffusion.model import LatentDiffusion
    from wala.hub.download import find_model
    from wala.hub.generators import load_generator, save_model
    from wala.nn import count_parameters
    from wala.pipeline import DTYPES
    from wala.text.checkpoint import is_text_model
    from wala.text.multiview import TextToViews

    args.model = find_model(args.model)  # a hub id or short name: its cached snapshot
    if is_text_model(args.model):
        if args.steps or args.guidance is not None:
            raise WalaError("--steps / --scale record a generator's sampling; a text model takes them at text2depth")
        model = TextToViews.load(args.model)
        model.save(args.output, DTYPES[args.storage] if args.storage != "fp32" else None)
        print(
            f"wrote {args.output} (text-to-views model: unet/, vae/, text_encoder/; "
            f"{count_parameters(model) / 1e6:.1f}M parameters)"
        )
        return
    model = load_generator(args.model, LatentDiffusion)
    if args.guidance is not None and not model.guided:
        raise WalaError(
            f"{args.model} samples without guidance (no condition dropout in training): --scale does nothing"
        )
    if args.steps or args.guidance is not None:
        recorded = model.config.sampling
        sampling = SamplingConfig(
            args.steps or recorded.steps, recorded.guidance if args.guidance is None else args.guidance
        )
        model.config = dataclasses.replace(model.config, sampling=sampling)
    save_model(model, args.output, getattr(model, "source", "wala"), DTYPES[args.storage])
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
    from wala.hub.describe import list_models
    from wala.hub.paths import search_path

    found, problems = list_models(hub=True)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not found:
        print(
            f"no models in {', '.join(map(str, search_path()))} or the Hugging Face cache (put model directories "
            "there, set $WALA_MODELS, or `wala pull ID`)"
        )
        return
    width = max(len(m.name) for m in found)
    licence = max(len(m.licence) for m in found)
    print(f"{'name':<{width}}  {'source':<8}  {'condition':<32}  {'parameters':>10}  {'licence':<{licence}}  path")
    for m in found:
        print(
            f"{m.name:<{width}}  {m.source:<8}  {m.condition:<32}  {m.parameters / 1e6:>9.1f}M  "
            f"{m.licence:<{licence}}  {m.path}"
        )


def cmd_pull(args) -> None:
    from wala.hub.download import RELEASED, download, hub_id

    repo_id = hub_id(args.model)
    if repo_id is None:
        raise WalaError(
            f"{args.model} is neither a hub id (owner/name) nor a released model's short name ({', '.join(RELEASED)})"
        )
    print(download(repo_id, args.revision))


def cmd_serve(args) -> None:
    from wala.errors import require
    from wala.hub.describe import list_models

    require("wala serve and its page", "serve", "fastapi", "pydantic", "python_multipart", "uvicorn")
    from wala.serve.app import serve

    models = [Path(m) for m in args.model] or [m.path for m in list_models()[0] if m.kind != "text-to-views"]
    if args.max_upload_mb <= 0:
        raise WalaError("--max-upload-mb must be positive")
    if args.queue < 1:
        raise WalaError("--queue must be at least 1")
    serve(
        models,
        args.host,
        args.port,
        args.token,
        max_upload_mb=args.max_upload_mb,
        device=args.device,
        dtype=args.dtype,
        queue=args.queue,
        keep=args.keep,
        text_model=args.text_model,
    )


def add_commands(sub) -> None:
    """generate, models, pull, serve, preview, convert: the commands that run, fetch or show generators."""
    from wala.conditions import CONDITIONS as conditions
    from wala.io.mesh import WRITTEN_MESH_FORMATS

    p = sub.add_parser("generate", help="condition → meshes (or latents and TSDFs) with a generator")
    checked.generator_options(p, "model")
    given = p.add_mutually_exclusive_group(required=True)
    for kind in conditions.values():
        if kind.conditional:
            given.add_argument(
                kind.flag, *kind.aliases, dest=kind.name, nargs="+", metavar=kind.metavar, help=kind.help
            )
    given.add_argument("--unconditional", action="store_true")
    given.add_argument(
        "--batch",
        metavar="PATH",
        help="many inputs: a folder (one file, or for several views one "
        "subfolder, per input) or a list file (an input per line); resumable, OUT/NAME/ per input",
    )
    p.add_argument(
        "--batch-size",
        type=checked.samples,
        default=1,
        metavar="N",
        help="--batch: inputs sampled together, N × --samples per denoiser call (memory grows with N); "
        "the shapes are those of each input run alone",
    )
    p.add_argument("-o", "--output", required=True, help="folder")
    p.add_argument(
        "--samples",
        type=checked.samples,
        default=1,
        help=f"shapes per condition, 1…{checked.MAX_SAMPLES} (drawn as one batch: memory grows with them)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="--batch: redo every input, even one finished before or under other options",
    )
    p.add_argument(
        "--format",
        "--output_format",
        dest="format",
        choices=(*WRITTEN_MESH_FORMATS, "npz"),
        default="obj",
        help="npz: per sample `latent` (the decoder's input) and `tsdf` (N³ float32)",
    )
    checked.add_dtype(p)
    p.add_argument("--faces", type=int, default=0, help="decimate meshes to about N faces (quadric error; 0: keep all)")
    p.add_argument("--no-preview", action="store_true", help="no turntable PNG beside each mesh")
    p.add_argument("--gif", action="store_true", help="also an animated GIF preview")
    p.add_argument(
        "--composite-alpha",
        action="store_true",
        help="images: put transparent pixels over white (the official code drops alpha, keeping the "
        "stored colour, for single images)",
    )
    p.add_argument(
        "--normalize",
        action="store_true",
        help="map the point cloud into the ±0.9 cube first (released models take points as given)",
    )
    p.add_argument("--original-frame", action="store_true", help="with --normalize: meshes back in the cloud's frame")
    p.add_argument(
        "--text-model",
        help="with --text and a multi-view depth/RGB model (DM6, DM4, RGB4): the text-to-views "
        "model (WaLa-MVDream-DM6/-RGB4) that turns the text into the model's views, written to OUT/depth or OUT/rgb",
    )
    p.add_argument("--revision", help="a hub model's branch, tag or commit (default: main)")
    p.add_argument("--text-steps", type=checked.steps, default=50, help="--text-model's DDIM steps")
    p.add_argument("--text-guidance", type=checked.finite, default=10.0, help="--text-model's guidance")
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser(
        "models",
        help="model directories on the search path ($WALA_MODELS, ~/.cache/wala/models, the built-in ones) "
        "and WaLa models in the Hugging Face cache, with their licence",
    )
    p.set_defaults(run=cmd_models)

    p = sub.add_parser(
        "pull",
        help="download a model from the Hugging Face hub into its cache (HF_HOME) and print the folder; "
        "released weights: Autodesk's non-commercial licence",
    )
    p.add_argument("model", metavar="ID", help="a hub id (ADSKAILab/WaLa-SV-1B) or a released short name (WaLa-SV-1B)")
    p.add_argument("--revision", help="a branch, tag or commit (default: main)")
    p.set_defaults(run=cmd_pull)

    p = sub.add_parser("serve", help="a local web page: pick a model, upload a condition, see and download the shape")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="DIR",
        help="a model directory or name (repeatable; default: every model `wala models` lists)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--token",
        help="the API wants it (Authorization: Bearer TOKEN, or the page's ?token=); "
        "default: none on loopback, a new random one printed with the address on any other host",
    )
    p.add_argument("--max-upload-mb", type=float, default=20.0)
    p.add_argument("--queue", type=int, default=8, help="jobs waiting or running at once; more get HTTP 429")
    p.add_argument("--keep", default="1GB,24h", metavar="SIZE,AGE", help="results kept at most (oldest removed first)")
    p.add_argument(
        "--text-model",
        metavar="NAME",
        help="a text-to-views model (WaLa-MVDream-DM6): the page's prompt box then draws a depth/RGB model's views",
    )
    checked.add_device(p)
    checked.add_dtype(p)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("preview", help="a mesh → a shaded turntable PNG strip (and GIF), rendered headless")
    p.add_argument("mesh")
    p.add_argument("-o", "--output", help="PNG path (default: beside the mesh)")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--size", type=int, default=256, help="pixels per frame")
    p.add_argument("--gif", action="store_true", help="also an animated GIF beside the PNG")
    p.set_defaults(run=cmd_preview)

    p = sub.add_parser(
        "convert", help="a model directory → our pickle-free directory (config.json + model.safetensors)"
    )
    p.add_argument("model", help="a released WaLa directory, or any model wala reads")
    p.add_argument("-o", "--output", required=True)
    p.add_argument(
        "--storage",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="weights stored at this precision (fp16/bf16: half the size; computed in fp32 on load)",
    )
    p.add_argument(
        "--steps",
        type=checked.steps,
        help="record the sampling steps this model recommends (chosen on held-out shapes)",
    )
    p.add_argument("--scale", "--guidance", dest="guidance", type=checked.finite, help="… and its guidance scale")
    p.set_defaults(run=cmd_convert)
