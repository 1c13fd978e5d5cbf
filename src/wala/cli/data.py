"""`wala encode`, `decode`, `roundtrip`, `shapes`, `prep`: meshes ⇄ TSDFs and wavelet trees, procedural
shapes, and prepared training data."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from wala.cli import options as checked
from wala.config import RepresentationConfig, load_config


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
        ray=args.ray,
        task_memory_gb=args.task_memory,
    )
    print(
        f"{args.output}: {result['samples']} samples, {result['skipped_shards']} finished shards skipped, "
        f"{len(result['errors'])} failed (see errors.jsonl)"
    )


def add_commands(sub) -> None:
    from wala.io.mesh import WRITTEN_MESH_FORMATS

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
    p.add_argument("--format", choices=WRITTEN_MESH_FORMATS, default="obj")
    p.set_defaults(run=cmd_shapes)

    p = sub.add_parser("prep", help="meshes / procedural families → sharded wavelet-tree dataset")
    p.add_argument(
        "sources", nargs="+", help="mesh files, folders, .txt lists, or procedural:FAMILY[,…|all]:COUNT[:SEED]"
    )
    p.add_argument("-o", "--output", required=True, help="a folder or an fsspec URL (s3://bucket/prefix)")
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
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default="",
        metavar="ADDRESS",
        help="run the shards as Ray tasks: on a cluster of --workers CPUs started here (no ADDRESS, or "
        "'local'), or on the cluster at ADDRESS (what `ray start --head` prints; 'auto' finds it)",
    )
    p.add_argument("--task-memory", type=float, default=2.0, metavar="GB", help="memory a Ray task reserves")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    representation_options(p)
    p.set_defaults(run=cmd_prep)
