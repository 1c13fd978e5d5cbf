"""`wala export onnx`: a generator as ONNX graphs (condition encoder, one guided denoiser step, decoder to
the TSDF) with a manifest, for onnxruntime here and TensorRT elsewhere (docs/export.md)."""

from __future__ import annotations

import sys

from wala.cli import options as checked
from wala.errors import WalaError


def cmd_export_onnx(args) -> None:
    from wala.errors import require

    require("wala export onnx", "export", "onnx", "onnxruntime", "onnxscript")
    from wala.export.graphs import OPSET, export_onnx, graph_parity
    from wala.pipeline import WaLaPipeline

    if args.opset < OPSET:
        raise WalaError(f"--opset {args.opset}: the dynamo exporter writes opset {OPSET} or later")
    checked.check_output_folder(args.output)
    model = WaLaPipeline.from_pretrained(args.model, device="cpu", revision=args.revision).model
    manifest = export_onnx(args.model, args.output, batch=args.batch, opset=args.opset, model=model)
    for name, graph in manifest["graphs"].items():
        seconds = manifest["export_seconds"][name]
        print(f"{args.output}/{graph['file']}  {graph['bytes'] / 1e6:.1f} MB  exported in {seconds:.1f}s")
    if args.check:
        for name, diff in graph_parity(args.output, model).items():
            print(f"{name}: max abs diff onnxruntime vs torch {diff:.2e}", file=sys.stderr)


def add_commands(sub) -> None:
    p = sub.add_parser(
        "export",
        help="a generator as ONNX graphs for onnxruntime or TensorRT",
        description="Writes a generator as ONNX graphs (docs/export.md).",
    )
    formats = p.add_subparsers(dest="format", required=True)
    q = formats.add_parser(
        "onnx",
        help="encoder.onnx, denoiser.onnx (one guided step), decoder.onnx (latent → TSDF) and manifest.json",
        description="Exports the condition encoder, one guided denoiser step at a fixed batch and the decoder to "
        "the TSDF with torch.onnx's dynamo exporter, and a manifest.json the runner "
        "(wala.export.runner.OnnxPipeline) reads.",
    )
    q.add_argument("model", help="a model directory, a name on the search path (`wala models`) or a hub id")
    q.add_argument("-o", "--output", required=True, help="the folder to write")
    q.add_argument(
        "--batch",
        type=checked.samples,
        default=1,
        help="rows the denoiser graph samples at once (fixed; the guidance pair doubles it inside)",
    )
    q.add_argument("--opset", type=checked.steps, default=18, help="ONNX opset (18 or later)")
    q.add_argument("--revision", help="a hub id's branch, tag or commit")
    q.add_argument(
        "--check",
        action="store_true",
        help="run each graph in onnxruntime (CPU) beside the torch model and print the max abs difference",
    )
    q.set_defaults(run=cmd_export_onnx)
