"""`wala train-ae`, `eval-ae`, `train-diffusion`, `train-text2views`: training the VQ-VAE, the generator and the
multi-view text → depth-maps model (under torchrun for several processes), and scoring an autoencoder."""

from __future__ import annotations

import json
from pathlib import Path

from wala.config import load_config


def cmd_train_ae(args) -> None:
    from wala.train.autoencoder import KIND, AutoencoderTrainConfig, train_autoencoder

    logs = train_autoencoder(load_config(AutoencoderTrainConfig, args.config, args.set, KIND))
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


def cmd_train_diffusion(args) -> None:
    from wala.train.diffusion import KIND, DiffusionTrainConfig, train_diffusion

    logs = train_diffusion(load_config(DiffusionTrainConfig, args.config, args.set, KIND))
    print(json.dumps(logs))


def cmd_train_text2views(args) -> None:
    from wala.errors import WalaError
    from wala.text.train import KIND, TextViewsTrainConfig, export_text_views, train_text_views

    if args.export:
        if args.config or args.set:
            raise WalaError("--export takes a checkpoint and -o only (no config, no --set)")
        print(export_text_views(args.export, args.output, "model" if args.raw_weights else "ema"))
        return
    if args.output or args.raw_weights:
        raise WalaError("-o and --raw-weights go with --export CHECKPOINT")
    logs = train_text_views(load_config(TextViewsTrainConfig, args.config, args.set, KIND))
    print(json.dumps(logs))


def add_commands(sub) -> None:
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

    p = sub.add_parser(
        "train-text2views",
        help="fine-tune the text → six depth maps model (WaLa-MVDream-DM6) on prepared shapes (torchrun: DDP)",
    )
    p.add_argument("config", nargs="?", help="TextViewsTrainConfig YAML/JSON (configs/text2views_tiny.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=100")
    p.add_argument(
        "--export", metavar="CHECKPOINT", help="write this checkpoint as a model folder `wala text2depth` loads"
    )
    p.add_argument("-o", "--output", help="with --export: the folder (default: model/ beside the checkpoint)")
    p.add_argument("--raw-weights", action="store_true", help="with --export: the trained weights, not the EMA")
    p.set_defaults(run=cmd_train_text2views)
