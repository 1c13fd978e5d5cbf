"""`wala text2depth`: text → the depth maps (or RGB views) of the released text-to-views model
(wala.text.multiview), written as PNGs named by view id, ready for the DM6/DM4/RGB4 models;
`wala generate DM6 --text … --text-model TEXT_MODEL` runs the whole chain; `wala caption DATA`: captions for a
prepared folder from renders of its shapes (wala.text.caption)."""

from __future__ import annotations

import sys
import time

from wala.cli import options as checked
from wala.errors import WalaError


def text_views(spec: str, kind: str | None = None) -> tuple[int, ...]:
    """--views: 6 (the depth model's 3, 6, 10, 26, 49, 50), 4 (the RGB model's 0, 6, 10, 26) or ids."""
    from wala.render.views import VIEW_TABLE
    from wala.text.multiview import VIEWS

    spec = spec.strip()
    if spec in ("6", "4"):
        return VIEWS["depth" if spec == "6" else "rgb"]
    try:
        views = tuple(int(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise WalaError(f"--views takes 6, 4 or view ids of the camera table (3,6,10,26), not '{spec}'") from None
    bad = [v for v in views if not 0 <= v < len(VIEW_TABLE)]
    if not views or bad or len(set(views)) != len(views):
        raise WalaError(f"--views: give distinct view ids 0–{len(VIEW_TABLE) - 1}, not '{spec}'")
    return views


def load_text_model(path: str, device: str, dtype: str):
    from wala.hub.download import find_model
    from wala.pipeline import DTYPES, resolve_device
    from wala.text.multiview import TextToViews

    return TextToViews.load(find_model(path), resolve_device(device), DTYPES[dtype])  # a hub id: its snapshot


def run_text_model(model, text: str, views, steps: int, guidance: float, seed: int, official_prompt: bool = False):
    from wala.pipeline import step_bar
    from wala.text.multiview import ddim_timesteps

    with step_bar(len(ddim_timesteps(steps)), "text → views", sys.stderr.isatty()) as step:
        return model(
            text, views=views, steps=steps, guidance=guidance, seed=seed, official_prompt=official_prompt, on_step=step
        )


def cmd_text2depth(args) -> None:
    text = " ".join(args.text)
    views = text_views(args.views)
    checked.check_output_folder(args.output)
    started = time.perf_counter()
    model = load_text_model(args.model, args.device, args.dtype)
    loaded = time.perf_counter()
    out = run_text_model(model, text, views, args.steps, args.guidance, args.seed, args.official_prompt)
    for path in out.write(args.output):
        print(path)
    print(
        f"{len(views)} views of {out.prompt!r} in {time.perf_counter() - loaded:.1f}s (+{loaded - started:.1f}s "
        f"loading; {args.steps} steps, guidance {args.guidance:g}, seed {args.seed})",
        file=sys.stderr,
    )


def cmd_caption(args) -> None:
    from dataclasses import replace

    from wala.config import load_config
    from wala.text.caption import CaptionConfig, caption_folder

    config = load_config(CaptionConfig, args.config, args.set or [])
    chosen = {
        "vision_model": args.vision_model,
        "language_model": args.language_model,
        "paraphrases": args.paraphrases,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
    }
    config = replace(config, **{k: v for k, v in chosen.items() if v is not None})
    started = time.perf_counter()
    result = caption_folder(args.data, config, args.device, progress=not args.quiet)
    print(
        f"{args.data}: {result['shapes']} shapes captioned in {result['shards']} shards "
        f"({time.perf_counter() - started:.1f}s), {result['skipped_shards']} captioned shards skipped"
        + (f", {result['uncaptioned']} shapes got no caption (empty texts stored)" if result["uncaptioned"] else "")
    )


def add_commands(sub) -> None:
    p = sub.add_parser(
        "text2depth",
        help="text → 6 depth maps (or 4 RGB views) with the released text-to-views "
        "model, named by view id for the DM6/DM4/RGB4 models",
    )
    p.add_argument(
        "model",
        help="WaLa-MVDream-DM6/-RGB4: a directory with checkpoint.ckpt (and optionally its "
        "official-layout .yaml), the file itself, or a `wala convert` directory",
    )
    p.add_argument("--text", nargs="+", required=True, help="the prompt (words may be unquoted)")
    p.add_argument("-o", "--output", required=True, help="folder: VIEW.png per view")
    p.add_argument("--views", default="6", help="6 (3,6,10,26,49,50: depth), 4 (0,6,10,26: the RGB model's) or ids")
    p.add_argument("--steps", type=checked.steps, default=50, help="DDIM steps (the official 50)")
    p.add_argument(
        "--guidance", "--scale", dest="guidance", type=checked.finite, default=10.0, help="classifier-free guidance"
    )
    p.add_argument(
        "--seed", type=checked.seed, default=0, help="x_T as torch.manual_seed(seed) on a CPU draws it, on any device"
    )
    p.add_argument(
        "--official-prompt",
        action="store_true",
        help="the prompt as the official CLI passes it (the repr of a list: \"['a cup'], 3d asset\"), for parity",
    )
    checked.add_device(p)
    checked.add_dtype(p)
    p.set_defaults(run=cmd_text2depth)

    p = sub.add_parser(
        "caption",
        help="captions for a prepared folder: renders of each shape → a vision-language model's captions → "
        "a language model's paraphrases, stored in its shards (`captions`) and in captions/*.jsonl",
    )
    p.add_argument("data", help="a `wala prep` folder (or URL); captioned shards are skipped, so a rerun resumes")
    p.add_argument("--config", help="CaptionConfig YAML/JSON (configs/captions.yaml holds the defaults)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    p.add_argument("--vision-model", help="image-text-to-text model: hub id or folder (default InternVL3-8B-hf)")
    p.add_argument("--language-model", help="text-generation model: hub id or folder (default Llama-3.1-8B-Instruct)")
    p.add_argument("--paraphrases", type=int, help="K paraphrases per caption (default 3)")
    p.add_argument("--batch-size", type=checked.steps, help="generations per model call (default 8)")
    p.add_argument("--dtype", choices=("auto", "fp32", "bf16", "fp16"), help="auto: bf16 on CUDA, else fp32")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    checked.add_device(p)
    p.set_defaults(run=cmd_caption)
