"""`wala …` — the command line. Bad input ends in one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from wala import cli_options as checked
from wala.config import RepresentationConfig, load_config
from wala.errors import WalaError


def _representation(args) -> RepresentationConfig:
    config = load_config(RepresentationConfig, args.config) if getattr(args, "config", None) else RepresentationConfig()
    if getattr(args, "resolution", None):
        config = replace(config, resolution=args.resolution)
    return config


def cmd_encode(args) -> None:
    from wala.io.shapefile import ShapeFile, save_shape
    from wala.pipeline import encode_mesh_file

    config = _representation(args)
    encoded = encode_mesh_file(args.mesh, config)
    shape = ShapeFile(config, encoded.normalization, str(args.mesh))
    if args.kind == "tsdf":
        shape.tsdf = encoded.tsdf
    else:
        shape.tree = encoded.tree
    save_shape(args.output, shape)
    print(f"wrote {args.output} ({args.kind}, {config.resolution}³)")


def cmd_decode(args) -> None:
    from wala.io.mesh import save_mesh
    from wala.io.shapefile import load_shape
    from wala.pipeline import tree_to_mesh
    from wala.sdf.extract import tsdf_to_mesh

    shape = load_shape(args.shape)
    mesh = tsdf_to_mesh(shape.tsdf) if shape.kind == "tsdf" else tree_to_mesh(shape.tree, shape.config)
    if args.original_frame:
        mesh.vertices = shape.normalization.to_world(mesh.vertices)
    save_mesh(mesh, args.output)
    print(f"wrote {args.output} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")


def cmd_roundtrip(args) -> None:
    from wala.eval.roundtrip import format_roundtrip_table, roundtrip_metrics
    from wala.pipeline import encode_mesh_file

    config = _representation(args)
    rows = []
    for path in args.meshes:
        start = time.perf_counter()
        encoded = encode_mesh_file(path, config)
        rows.append((Path(path).stem, roundtrip_metrics(encoded.tsdf, encoded.mesh, config, args.points)))
        print(f"{path}: {time.perf_counter() - start:.1f}s", file=sys.stderr)
    print(format_roundtrip_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({name: metrics for name, metrics in rows}, indent=2) + "\n")


def cmd_shapes(args) -> None:
    from wala.io.mesh import save_mesh
    from wala.sdf.families import FAMILIES, family_mesh

    families = list(FAMILIES) if args.family == "all" else [args.family]
    out = Path(args.output)
    for family in families:
        for seed in range(args.seed, args.seed + args.count):
            path = out / f"{family}_{seed:04d}.{args.format}"
            save_mesh(family_mesh(family, seed, args.resolution), path)
            print(path)


def cmd_prep(args) -> None:
    from wala.data.prep import prepare

    config = _representation(args)
    result = prepare(
        args.sources,
        args.output,
        config,
        args.shard_size,
        args.workers,
        progress=not args.quiet,
        views=args.views,
        sketches=args.sketches,
        captions=args.captions,
    )
    print(
        f"{args.output}: {result['samples']} samples, {result['skipped_shards']} finished shards skipped, "
        f"{len(result['errors'])} failed (see errors.jsonl)"
    )


def cmd_train_ae(args) -> None:
    from wala.config import load_config
    from wala.train.autoencoder import AutoencoderTrainConfig, train_autoencoder

    logs = train_autoencoder(load_config(AutoencoderTrainConfig, args.config, args.set))
    print(json.dumps(logs))


def cmd_eval_ae(args) -> None:
    from wala.data.shards import WaveletTreeDataset
    from wala.eval.autoencoder import evaluate_autoencoder, format_evaluation
    from wala.train.autoencoder import load_autoencoder

    model = load_autoencoder(args.checkpoint)
    dataset = WaveletTreeDataset(args.data)
    picked = range(min(args.limit, len(dataset))) if args.limit else None
    result = evaluate_autoencoder(
        model, dataset, picked, surface=not args.no_surface, points=args.points, quantize=not args.no_quantize
    )
    print(format_evaluation(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def cmd_ablate(args) -> None:
    if args.what == "diffusion":
        from wala.ablations.diffusion import format_diffusion_ablation, run_diffusion_ablation

        if not (args.autoencoder and args.data and args.eval_data):
            raise WalaError("ablate diffusion needs --autoencoder, --data and --eval-data")
        rows = run_diffusion_ablation(
            args.out or "runs/ablate_diffusion",
            args.config or "configs/diffusion_pc_cpu.yaml",
            args.autoencoder,
            args.data,
            args.eval_data,
            args.steps,
            args.width_scale,
            args.depth_scale,
            args.eval_count,
        )
        print(format_diffusion_ablation(rows))
        return
    from wala.ablations.autoencoder import format_ae_ablation, run_ae_ablation

    sizes = tuple(int(n) for n in args.sizes.split(","))
    rows = run_ae_ablation(
        args.out or "runs/ablate_ae",
        args.config or "configs/ae_tiny.yaml",
        args.resolution,
        args.base_steps,
        args.finetune_steps,
        sizes,
        args.meshes,
        args.workers,
    )
    print(format_ae_ablation(rows))


def cmd_train_diffusion(args) -> None:
    from wala.config import load_config
    from wala.train.diffusion import DiffusionTrainConfig, train_diffusion

    logs = train_diffusion(load_config(DiffusionTrainConfig, args.config, args.set))
    print(json.dumps(logs))


def cmd_eval_gen(args) -> None:
    from wala.data.shards import WaveletTreeDataset
    from wala.eval.generation import evaluate_generation, format_generation
    from wala.pipeline import WaLaPipeline

    generator = WaLaPipeline.from_pretrained(args.checkpoint, args.device)
    steps, guidance = generator.defaults()
    reference = WaveletTreeDataset(args.reference) if args.reference else None
    results = evaluate_generation(
        generator,
        WaveletTreeDataset(args.data),
        reference,
        args.limit,
        args.steps or steps,
        guidance if args.scale is None else args.scale,
        args.seed,
        args.points,
        lfd=args.lfd,
        view=args.view,
        technique=args.technique,
    )
    print(format_generation(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def _bar(quiet: bool, desc: str):
    from tqdm import tqdm

    return None if quiet else (lambda items: tqdm(items, desc=desc, unit="shape"))


def _write_evaluation(result: dict, json_path: str | None, csv_path: str | None) -> None:
    from wala.eval.harness import format_table, records_csv
    from wala.io.mesh import write_atomic

    print(format_table(result))
    if json_path:
        write_atomic(json_path, (json.dumps(result, indent=2) + "\n").encode())
    if csv_path:
        write_atomic(csv_path, records_csv(result["records"]).encode())


def cmd_eval(args) -> None:
    from wala.eval.harness import evaluate_folders

    result = evaluate_folders(
        args.generated, args.reference, args.resolution, args.points, args.frame, progress=_bar(args.quiet, "eval")
    )
    _write_evaluation(result, args.json, args.csv)


def cmd_bench(args) -> None:
    from wala.conditions import condition_kind
    from wala.eval.bench import UpsamplingBaseline, run_benchmark
    from wala.pipeline import WaLaPipeline

    if args.checkpoint.startswith("baseline:"):
        generator = UpsamplingBaseline(args.checkpoint.split(":", 1)[1], args.condition, args.resolution)
        kind = condition_kind(args.condition)
        steps, guidance = kind.steps, kind.guidance
    else:
        generator = WaLaPipeline.from_pretrained(args.checkpoint, args.device)
        steps, guidance = generator.defaults()
    result = run_benchmark(
        args.condition,
        generator,
        args.reference,
        args.output,
        args.steps or steps,
        guidance if args.scale is None else args.scale,
        args.seed,
        args.limit,
        args.resolution,
        args.points,
        progress=_bar(args.quiet, "bench"),
    )
    _write_evaluation(result, None, None)
    print(f"generated meshes, conditions, eval.json and eval.csv in {args.output}")


def cmd_refset(args) -> None:
    from wala.eval.refset import build_reference_set

    result = build_reference_set(
        args.manifest, args.output, args.meshes, args.resolution, progress=_bar(args.quiet, "refset")
    )
    changed = [s["id"] for s in result["shapes"] if s.get("source_changed")]
    print(f"{args.output}: {len(result['shapes'])} shapes from {args.manifest}")
    if changed:
        print(
            f"note: {len(changed)} source files differ from the manifest's hashes (newer packages?), e.g. {changed[0]}"
        )


def build_parser() -> argparse.ArgumentParser:
    from wala.conditions import CONDITIONS

    parser = checked.OneLineParser(prog="wala", description="WaLa: wavelet latent diffusion for 3D shapes")
    sub = parser.add_subparsers(dest="command", required=True)

    def representation_options(p):
        p.add_argument("--resolution", type=int, help="TSDF grid size N (default 256; any N ≥ 32)")
        p.add_argument("--config", help="RepresentationConfig YAML/JSON")

    p = sub.add_parser("encode", help="mesh → normalized TSDF or wavelet tree (.npz)")
    p.add_argument("mesh")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--kind", choices=("tree", "tsdf"), default="tree")
    representation_options(p)
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("decode", help="shape .npz → mesh (OBJ/PLY/STL/OFF/GLB)")
    p.add_argument("shape")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--original-frame", action="store_true", help="undo the normalization")
    p.set_defaults(run=cmd_decode)

    p = sub.add_parser("roundtrip", help="IoU/MSE/CD/F-score of TSDF, wavelet tree and C0 only")
    p.add_argument("meshes", nargs="+")
    p.add_argument("--points", type=int, default=100_000, help="surface samples for CD/F-score")
    p.add_argument("--json", help="also write the metrics here")
    representation_options(p)
    p.set_defaults(run=cmd_roundtrip)

    from wala.sdf.families import FAMILIES

    p = sub.add_parser("shapes", help="export procedural shapes as meshes")
    p.add_argument("family", choices=["all", *FAMILIES])
    p.add_argument("-o", "--output", required=True, help="folder")
    p.add_argument("--seed", type=checked.seed, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--format", choices=("obj", "ply", "stl", "off", "glb"), default="obj")
    p.set_defaults(run=cmd_shapes)

    p = sub.add_parser("prep", help="meshes / procedural families → sharded wavelet-tree dataset")
    p.add_argument(
        "sources", nargs="+", help="mesh files, folders, .txt lists, or procedural:FAMILY[,…|all]:COUNT[:SEED]"
    )
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--views",
        default="",
        help="also store RGB renders and depth maps at these views, for the "
        "image conditions: view ids of the 55-view table, front/right/left/back, AZ:EL, or a set "
        "(rgb4, dm4, dm6, sketch)",
    )
    p.add_argument(
        "--captions",
        action="store_true",
        help="also store captions for the text condition: "
        "template captions of procedural shapes, or the lines of a MESH.txt beside a mesh",
    )
    p.add_argument(
        "--sketches",
        default="",
        help="also store sketches of those views: lineart, canny, hed, "
        "hed_potrace, scribble, clipasso (comma-separated) or all",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    representation_options(p)
    p.set_defaults(run=cmd_prep)

    p = sub.add_parser("train-ae", help="train the wavelet VQ-VAE (run under torchrun for DDP)")
    p.add_argument("config", nargs="?", help="AutoencoderTrainConfig YAML/JSON")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=100")
    p.set_defaults(run=cmd_train_ae)

    p = sub.add_parser("eval-ae", help="IoU/MSE/D-IoU/D-MSE/CD/F-score of an autoencoder checkpoint on a dataset")
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("--limit", type=int, default=0, help="first N samples only")
    p.add_argument("--no-surface", action="store_true", help="skip CD/F-score")
    p.add_argument(
        "--no-quantize",
        action="store_true",
        help="decode the continuous latent (the quantizer's cost is the gap to a normal run)",
    )
    p.add_argument("--points", type=int, default=30_000)
    p.add_argument("--json")
    p.set_defaults(run=cmd_eval_ae)

    p = sub.add_parser("train-diffusion", help="train the latent generator (run under torchrun for DDP)")
    p.add_argument("config", nargs="?", help="DiffusionTrainConfig YAML/JSON")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=100")
    p.set_defaults(run=cmd_train_diffusion)

    from wala.cli_models import add_model_commands, generator_options

    add_model_commands(sub, CONDITIONS)
    from wala.cli_images import add_image_commands

    add_image_commands(sub)
    from wala.cli_text import add_text_commands

    add_text_commands(sub)

    p = sub.add_parser(
        "eval-gen", help="IoU/CD/F-score of generated vs true shapes, beside nearest/trilinear upsampling and retrieval"
    )
    generator_options(p)
    p.add_argument("data", help="held-out prepared shapes (conditions and references)")
    p.add_argument("--reference", help="the training set, for the retrieval reference")
    p.add_argument("--limit", type=int, default=0, help="first N shapes only")
    p.add_argument("--points", type=int, default=30_000, help="surface samples for CD/F-score")
    p.add_argument("--lfd", action="store_true", help="add Light Field Distance (about 1 s per mesh)")
    p.add_argument("--view", default="", help="image conditions: the prepared view given (default: the first)")
    p.add_argument(
        "--technique", default="", help="sketch conditions: the prepared technique given (default: the first)"
    )
    p.add_argument("--json")
    p.set_defaults(run=cmd_eval_gen)

    def scoring_options(p):
        p.add_argument("--resolution", type=int, default=256, help="grid for IoU/MSE (the paper: 256)")
        p.add_argument("--points", type=int, default=100_000, help="surface samples for CD/F-score")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("eval", help="LFD/IoU/CD/F-score/D-IoU/D-MSE of generated meshes vs a reference set")
    p.add_argument("generated", help="folder of generated meshes, named like the reference ids")
    p.add_argument("reference", help="reference folder (a `wala refset` output, or any folder of meshes)")
    p.add_argument(
        "--frame",
        choices=("own", "reference", "normalized"),
        default="own",
        help="where generated meshes live: own = normalize each by its bbox; reference = the "
        "reference file's frame; normalized = the reference's normalized frame",
    )
    p.add_argument("--json")
    p.add_argument("--csv")
    scoring_options(p)
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("bench", help="conditions from a reference set → generate → score")
    p.add_argument("condition", choices=("pointcloud", "voxel"))
    generator_options(p)  # checkpoint may also be baseline:nearest or baseline:trilinear
    p.add_argument("reference", help="reference folder (`make refset` builds data/refset)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--limit", type=int, default=0, help="first N reference shapes only")
    scoring_options(p)
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("refset", help="build a reference mesh set from a manifest of ids")
    p.add_argument("manifest", nargs="?", default="configs/refset.json")
    p.add_argument("-o", "--output", default="data/refset")
    p.add_argument("--meshes", default="data/meshes", help="where scripts/fetch_meshes.sh put the meshes")
    p.add_argument("--resolution", type=int, default=256, help="grid for procedural shapes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_refset)

    p = sub.add_parser("ablate", help="small-scale reproductions of the paper's ablations")
    p.add_argument(
        "what",
        choices=["ae", "diffusion"],
        help="ae: seed Table 1 (sampling loss, balanced fine-tuning); diffusion: seed Table 2 "
        "(U-ViT sizes, DiT, pre/post-quant latents)",
    )
    p.add_argument("--out", help="default runs/ablate_WHAT")
    p.add_argument(
        "--config", help="settings to start from (default configs/ae_tiny.yaml, configs/diffusion_pc_cpu.yaml)"
    )
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--base-steps", type=int, default=300)
    p.add_argument("--finetune-steps", type=int, default=100)
    p.add_argument("--sizes", default="2,4,8,16", help="shapes per dataset for balanced fine-tuning")
    p.add_argument("--meshes", default="data/meshes", help="folder of real meshes to add as a dataset")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--autoencoder", help="diffusion: the VQ-VAE checkpoint")
    p.add_argument("--data", help="diffusion: prepared training shapes")
    p.add_argument("--eval-data", help="diffusion: prepared held-out shapes")
    p.add_argument("--steps", type=int, default=1000, help="diffusion: training steps per row")
    p.add_argument("--eval-count", type=int, default=20, help="diffusion: held-out shapes generated per row")
    p.add_argument("--width-scale", type=float, default=1 / 6, help="diffusion: paper width × this (rounded to 32s)")
    p.add_argument("--depth-scale", type=float, default=1 / 4, help="diffusion: paper depth × this")
    p.set_defaults(run=cmd_ablate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return checked.run_command(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
