"""Issue 15's experiment: a small direct text → shape model trained on CPU, scored on captions it never saw.

Stages:
- `prep`: the 10 procedural families × 40 seeds (training) and × 2 held-out seeds (1000–1001) at 64³,
  with 8 template captions per shape (`wala prep --captions`, wala.text.captions).
- `train`: configs/text/text64.yaml (`--steps` to override its 1,500).
- `eval`: for every family, its held-out captions (new templates, and the training templates with a noun
  no training caption has: wala.text.captions.held_out_captions) and as many seen training captions;
  one shape per caption and seed; the shape's nearest training shape by occupancy IoU at 64³ names a
  family. Reported: how often that family is the captioned one, against chance (the captioned family's
  share of the training shapes, 1/10), and against retrieval by the sentence encoder alone (the family
  of the nearest training caption by mean-pooled MiniLM embedding: what the text side can tell).

    python scripts/train_text_model.py --stages prep,train,eval [--steps 1500] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_builtin import wala  # noqa: E402  (a sibling script)

CONFIG = "configs/text/text64.yaml"


def prep(work: Path, workers: int) -> None:
    options = ["--resolution", "64", "--workers", str(workers), "--captions", "--quiet"]
    wala("prep", "procedural:all:40", "-o", str(work / "data/train"), "--shard-size", "40", *options)
    wala("prep", "procedural:all:2:1000", "-o", str(work / "data/eval"), "--shard-size", "20", *options)


def train(work: Path, steps: int) -> Path:
    sets = [
        "--set",
        f"train.data={work / 'data/train'}",
        "--set",
        f"train.eval_data={work / 'data/eval'}",
        "--set",
        f"train.out={work / 'text64'}",
        "--set",
        f"train.steps={steps}",
    ]
    started = time.perf_counter()
    wala("train-diffusion", CONFIG, *sets, log=work / "text64.log")
    print(f"trained {steps} steps in {time.perf_counter() - started:.0f} s", flush=True)
    return work / "text64" / f"step-{steps:08d}.safetensors"


def family_of(record: dict) -> str:
    return record["dataset"].removeprefix("procedural-")


def training_occupancy(work: Path) -> tuple[torch.Tensor, list[str]]:
    from wala.config import RepresentationConfig
    from wala.data.shards import WaveletTreeDataset
    from wala.wavelet.tree import tree_to_tsdf

    shapes = WaveletTreeDataset(work / "data/train")
    config = RepresentationConfig(resolution=shapes.resolution)
    grids = []
    for i in range(len(shapes)):
        grids.append((tree_to_tsdf(shapes.tree(i), config)[0] <= 0).flatten())
    return torch.stack(grids).float(), [family_of(r) for r in shapes.records]


def nearest_family(occupancy: torch.Tensor, reference: torch.Tensor, families: list[str]) -> str:
    inter = reference @ occupancy
    union = reference.sum(1) + occupancy.sum() - inter
    return families[int(torch.argmax(inter / union.clamp(min=1)))]


def caption_retrieval(captions: list[str], work: Path) -> list[str]:
    """The family of each caption's nearest training caption by mean-pooled MiniLM embedding."""
    from wala.data.shards import WaveletTreeDataset
    from wala.text.captions import family_captions
    from wala.text.sentence import SentenceEncoder, tokenize

    shapes = WaveletTreeDataset(work / "data/train")
    pool: dict[str, str] = {}
    for record in shapes.records:
        family, seed = record["source"].split(":")[1:]
        for caption in family_captions(family, int(seed)):
            pool[caption] = family
    encoder = SentenceEncoder()

    def embed(texts):
        ids = torch.from_numpy(tokenize(texts))
        mask = (ids != 0).float()[..., None]
        with torch.no_grad():
            return torch.nn.functional.normalize((encoder(ids) * mask).sum(1) / mask.sum(1), dim=-1)

    known = list(pool)
    nearest = (embed(captions) @ embed(known).T).argmax(1)
    return [pool[known[int(i)]] for i in nearest]


def evaluate(work: Path, checkpoint: Path, seeds: int, steps: int, guidances: list[float]) -> dict:
    from wala.pipeline import WaLaPipeline
    from wala.text.captions import NOUNS, TEMPLATES, fill, held_out_captions

    pipe = WaLaPipeline.from_pretrained(checkpoint)
    reference, families = training_occupancy(work)
    result = {"checkpoint": str(checkpoint), "steps": steps, "seeds": seeds, "chance": {}}
    for family in NOUNS:
        result["chance"][family] = families.count(family) / len(families)
    sets = {
        "held_out": {f: held_out_captions(f) for f in NOUNS},
        "seen": {f: [fill(t, NOUNS[f][0]) for t in TEMPLATES[: len(held_out_captions(f))]] for f in NOUNS},
    }
    for name, captions in sets.items():
        flat = [(f, c) for f, cs in captions.items() for c in cs]
        retrieved = caption_retrieval([c for _, c in flat], work)
        result[f"{name}_caption_retrieval"] = float(np.mean([r == f for (f, _), r in zip(flat, retrieved)]))
        for guidance in guidances:
            hits, per_family = [], {f: [] for f in NOUNS}
            for family, caption in flat:
                for seed in range(seeds):
                    shape = pipe(text=caption, steps=steps, guidance=guidance, seed=seed, progress=False)[0]
                    occupancy = torch.from_numpy(shape.tsdf <= 0).flatten().float()
                    hit = nearest_family(occupancy, reference, families) == family
                    hits.append(hit)
                    per_family[family].append(hit)
            result[f"{name}_g{guidance:g}"] = {
                "accuracy": float(np.mean(hits)),
                "n": len(hits),
                "per_family": {f: float(np.mean(v)) for f, v in per_family.items()},
            }
            print(name, guidance, result[f"{name}_g{guidance:g}"]["accuracy"], flush=True)
    return result


def contact_sheet(checkpoint: Path, path: Path, guidance: float, steps: int) -> None:
    """One shape per family from its first held-out caption (seed 0), rendered and captioned, 5 a row."""
    from PIL import Image, ImageDraw

    from wala.pipeline import WaLaPipeline
    from wala.render.preview import preview_png
    from wala.render.views import Pose, render_views
    from wala.text.captions import NOUNS, held_out_captions

    pipe = WaLaPipeline.from_pretrained(checkpoint)
    tiles = []
    for family in NOUNS:
        caption = held_out_captions(family)[0]
        mesh = pipe(text=caption, steps=steps, guidance=guidance, seed=0, progress=False)[0].mesh
        tile = Image.fromarray(render_views(mesh, [Pose("sheet", 30.0, 20.0)], 192)[0].rgb)
        canvas = Image.new("RGB", (192, 222), "white")
        canvas.paste(tile, (0, 30))
        ImageDraw.Draw(canvas).multiline_text((4, 2), caption.replace(" of ", " of\n", 1), fill="black")
        tiles.append(np.asarray(canvas))
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [np.concatenate(tiles[i : i + 5], axis=1) for i in range(0, len(tiles), 5)]  # 10 families: 2 rows
    path.write_bytes(preview_png([np.concatenate(rows, axis=0)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="runs/text", type=Path)
    parser.add_argument("--stages", default="prep,train,eval")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500, help="train: steps")
    parser.add_argument("--checkpoint", type=Path, help="eval: this checkpoint instead of the trained one")
    parser.add_argument("--seeds", type=int, default=2, help="eval: shapes per caption")
    parser.add_argument("--sample-steps", type=int, default=10)
    parser.add_argument(
        "--guidance",
        default="0,1.5,3",
        help="eval: comma-separated guidance scales (0: the "
        "unconditional model, a control that should score near chance)",
    )
    parser.add_argument(
        "--sheet", type=Path, help="eval: also a contact sheet of one shape per family (held-out captions)"
    )
    args = parser.parse_args()
    stages = args.stages.split(",")
    checkpoint = args.checkpoint or args.work / "text64" / f"step-{args.steps:08d}.safetensors"
    if "prep" in stages:
        prep(args.work, args.workers)
    if "train" in stages:
        checkpoint = train(args.work, args.steps)
    if "eval" in stages:
        result = evaluate(
            args.work, checkpoint, args.seeds, args.sample_steps, [float(g) for g in args.guidance.split(",")]
        )
        (args.work / "eval_text64.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "chance"}, indent=2))
        if args.sheet:
            contact_sheet(checkpoint, args.sheet, 3.0, args.sample_steps)


if __name__ == "__main__":
    main()
