"""`wala eval-gen`, `eval`, `bench`, `refset`, `ablate`: scoring generators and generated meshes against
held-out shapes or a reference set, and the paper's ablations at small scale."""

from __future__ import annotations

import json
from pathlib import Path

from wala.cli import options as checked


def cmd_ablate(args) -> None:
    if args.what == "diffusion":
        from wala.ablations.diffusion import (
            compare_orderings,
            format_diffusion_ablation,
            format_orderings,
            run_diffusion_ablation,
        )

        rows = run_diffusion_ablation(
            args.out or "runs/ablate_diffusion",
            args.config or "configs/ablate_table2.yaml",
            args.autoencoder,
            args.data,
            args.eval_data,
            args.steps,
            args.width_scale,
            args.depth_scale,
            args.eval_count,
            seeds=args.seeds,
            lfd=not args.no_lfd,
        )
        print(format_diffusion_ablation(rows))
        print(format_orderings(compare_orderings(rows)))
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
        guidance if args.guidance is None else args.guidance,
        args.seed,
        args.points,
        lfd=args.lfd,
        view=args.view,
        technique=args.technique,
    )
    print(format_generation(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


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
        args.generated,
        args.reference,
        args.resolution,
        args.points,
        args.frame,
        progress=checked.shape_bar(args.quiet, "eval"),
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
        guidance if args.guidance is None else args.guidance,
        args.seed,
        args.limit,
        args.resolution,
        args.points,
        progress=checked.shape_bar(args.quiet, "bench"),
    )
    _write_evaluation(result, None, None)
    print(f"generated meshes, conditions, eval.json and eval.csv in {args.output}")


def cmd_refset(args) -> None:
    from wala.eval.refset import build_reference_set

    result = build_reference_set(
        args.manifest, args.output, args.meshes, args.resolution, progress=checked.shape_bar(args.quiet, "refset")
    )
    changed = [s["id"] for s in result["shapes"] if s.get("source_changed")]
    print(f"{args.output}: {len(result['shapes'])} shapes from {args.manifest}")
    if changed:
        print(
            f"note: {len(changed)} source files differ from the manifest's hashes (newer packages?), e.g. {changed[0]}"
        )


def add_commands(sub) -> None:
    from wala.conditions import CONDITIONS

    p = sub.add_parser(
        "eval-gen", help="IoU/CD/F-score of generated vs true shapes, beside nearest/trilinear upsampling and retrieval"
    )
    checked.generator_options(p)
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
    p.add_argument("condition", choices=[name for name, kind in CONDITIONS.items() if kind.benchmarked])
    checked.generator_options(p)  # checkpoint may also be baseline:nearest or baseline:trilinear
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
    p.add_argument("--config", help="settings to start from (default configs/ae_tiny.yaml, configs/ablate_table2.yaml)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--base-steps", type=int, default=300)
    p.add_argument("--finetune-steps", type=int, default=100)
    p.add_argument("--sizes", default="2,4,8,16", help="shapes per dataset for balanced fine-tuning")
    p.add_argument("--meshes", default="data/meshes", help="folder of real meshes to add as a dataset")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--autoencoder", help="diffusion: the VQ-VAE checkpoint (default: the config's)")
    p.add_argument("--data", help="diffusion: prepared training shapes (default: the config's)")
    p.add_argument("--eval-data", help="diffusion: prepared held-out shapes (default: the config's)")
    p.add_argument("--steps", type=checked.steps, help="diffusion: training steps per run (default: the config's)")
    p.add_argument("--eval-count", type=int, default=20, help="diffusion: held-out shapes generated per row")
    p.add_argument("--width-scale", type=float, default=1 / 6, help="diffusion: paper width × this (rounded to 32s)")
    p.add_argument("--depth-scale", type=float, default=1 / 4, help="diffusion: paper depth × this")
    p.add_argument(
        "--seeds", type=checked.seeds, default=(0, 1), help="diffusion: seeds each row is trained and scored with"
    )
    p.add_argument("--no-lfd", action="store_true", help="diffusion: skip Light Field Distance (~1 s a mesh)")
    p.set_defaults(run=cmd_ablate)
