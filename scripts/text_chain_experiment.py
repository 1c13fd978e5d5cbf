"""Issue 28's experiment: the paper's text route at CPU size — text → six depth maps (a small text-to-views
model trained here) → shape (a small DM6 model trained here) — scored as the direct text model is
(scripts/train_text_model.py): family accuracy on captions no training caption has, 2 seeds.

Stages:
- `prep`: the 10 procedural families × 40 seeds (training) and × 2 held-out seeds (1000–1001) at 64³, with
  the DM6 views' depth maps and 8 template captions per shape (`wala prep --views dm6 --captions`).
- `train`: configs/text/text2views64.yaml (`wala train-text2views`: its new VAE fitted first, then the
  UNet), then configs/text/dm6_64.yaml (`wala train-diffusion`).
- `eval`: for every family its 8 held-out captions (wala.text.captions.held_out_captions: 4 new templates,
  4 with a new noun) and as many seen training captions, 2 seeds each: the text model draws the six maps,
  the DM6 model makes the shape, and the shape's nearest training shape by occupancy IoU at 64³ names a
  family. Beside it: the family of the drawn maps alone (nearest training shape by mean squared
  difference of the six maps: is the text model's output already wrong?), the text guidance 0 control
  (the unconditional text model: chance), and the DM6 model given the true maps of the 20 held-out shapes
  (the chain's ceiling: how well the second stage reads perfect maps).
- `sheet`: one held-out caption per family → its drawn maps → the shape, one row each.

    python scripts/text_chain_experiment.py --stages prep,train,eval,sheet [--dm6-steps N] [--text-steps N]

What one run reached, and how it was run: docs/text-to-3d.md ("The paper's route at small scale").
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
from train_builtin import wala  # noqa: E402  (sibling scripts)
from train_text_model import family_of, nearest_family, training_occupancy  # noqa: E402

from wala.text.multiview import to_uint8  # noqa: E402

DM6, TEXT = "configs/text/dm6_64.yaml", "configs/text/text2views64.yaml"
MAP_SIZE = 64  # the text model's maps; the training maps are compared at this size


def prep(work: Path, workers: int) -> None:
    options = ["--resolution", "64", "--workers", str(workers), "--views", "dm6", "--captions", "--quiet"]
    wala("prep", "procedural:all:40", "-o", str(work / "data/train"), "--shard-size", "40", *options)
    wala("prep", "procedural:all:2:1000", "-o", str(work / "data/eval"), "--shard-size", "20", *options)


def train(work: Path, dm6_steps: int, text_steps: int) -> None:
    data = ["--set", f"train.data={work / 'data/train'}", "--set", f"train.eval_data={work / 'data/eval'}"]
    runs = {
        "text2views64": (TEXT, "train-text2views", text_steps),
        "dm6_64": (DM6, "train-diffusion", dm6_steps),
    }
    for name, (
        config,
        kind,
        steps,
    ) in runs.items():  # one after the other: side by side on 2 cores each ran 4–10× slower
        started = time.perf_counter()
        sets = ["--set", f"train.out={work / name}", "--set", f"train.steps={steps}"]
        sets += ["--set", f"train.eval_every={max(steps // 6, 1)}"]
        wala(kind, config, *data, *sets, log=work / f"{name}.log")
        print(f"{name}: {steps} steps in {time.perf_counter() - started:.0f} s", flush=True)
    (work / "steps.json").write_text(json.dumps({"dm6_64": dm6_steps, "text2views64": text_steps}) + "\n")


def models(work: Path):
    from wala.pipeline import WaLaPipeline
    from wala.text.multiview import TextToViews

    steps = json.loads((work / "steps.json").read_text())
    pipe = WaLaPipeline.from_pretrained(work / "dm6_64" / f"step-{steps['dm6_64']:08d}.safetensors")
    return pipe, TextToViews.load(work / "text2views64" / "model")


def drawn_shape(pipe, text_model, caption: str, seed: int, text_guidance: float, sampling: dict):
    """The shape the DM6 model makes of the six maps the text model draws for `caption` (on `.text_views`);
    `sampling`: steps, guidance, text_steps."""
    return pipe(
        text=caption, text_model=text_model, text_guidance=text_guidance, seed=seed, progress=False, **sampling
    )[0]


def small_maps(maps: np.ndarray) -> torch.Tensor:
    """(6, H, W[, 3]) uint8 depth maps → (6·64·64,) float in [0, 1], the size the text model draws."""
    maps = torch.from_numpy(np.ascontiguousarray(maps[..., 0] if maps.ndim == 4 else maps)).float()[:, None]
    return torch.nn.functional.interpolate(maps, size=(MAP_SIZE, MAP_SIZE), mode="area").flatten() / 255


def training_maps(work: Path, views) -> torch.Tensor:
    from wala.data.shards import WaveletTreeDataset

    shapes = WaveletTreeDataset(work / "data/train")
    picked = [shapes.views.index(str(v)) for v in views]
    return torch.stack([small_maps(shapes.arrays(i, ("depth",))["depth"][picked]) for i in range(len(shapes))])


def evaluate(work: Path, seeds: int, steps: int, guidance: float, text_steps: int, text_guidances: list[float]):
    from wala.text.captions import NOUNS, TEMPLATES, fill, held_out_captions

    pipe, text_model = models(work)
    views = pipe.text_views()
    occupancy, families = training_occupancy(work)
    maps = training_maps(work, views)
    result = {"seeds": seeds, "steps": steps, "guidance": guidance, "text_steps": text_steps}
    result["ceiling"] = true_maps_ceiling(work, pipe, occupancy, families, steps, guidance)
    result["ceiling_drawable"] = true_maps_ceiling(work, pipe, occupancy, families, steps, guidance, text_model)
    print(
        "DM6 given the true maps:",
        result["ceiling"],
        "as the text model's VAE gives them:",
        result["ceiling_drawable"],
        flush=True,
    )
    sets = {
        "held_out": {f: held_out_captions(f) for f in NOUNS},
        "seen": {f: [fill(t, NOUNS[f][0]) for t in TEMPLATES[: len(held_out_captions(f))]] for f in NOUNS},
    }
    sampling = {"steps": steps, "guidance": guidance, "text_steps": text_steps}
    runs = [("held_out", 0.0)] + [(name, g) for g in text_guidances for name in sets]
    for name, text_guidance in runs:
        rows = []
        for family, captions in sets[name].items():
            for k, caption in enumerate(captions):
                for seed in range(seeds):
                    shape = drawn_shape(pipe, text_model, caption, seed, text_guidance, sampling)
                    drawn = small_maps(shape.text_views.images)
                    shape_family = nearest_family(
                        torch.from_numpy(shape.tsdf <= 0).flatten().float(), occupancy, families
                    )
                    maps_family = families[int(torch.argmin(((maps - drawn) ** 2).mean(1)))]
                    # k < 4: a new template with a training noun; k ≥ 4: a training template, a new noun
                    rows.append((family, k < 4, shape_family == family, maps_family == family))
        hits = np.array([r[2] for r in rows])
        key = f"{name}_tg{text_guidance:g}"
        result[key] = {
            "accuracy": float(hits.mean()),
            "maps_accuracy": float(np.mean([r[3] for r in rows])),
            "n": len(rows),
            "per_family": {f: float(np.mean([r[2] for r in rows if r[0] == f])) for f in NOUNS},
        }
        if name == "held_out":
            result[key]["new_template"] = float(np.mean([r[2] for r in rows if r[1]]))
            result[key]["new_noun"] = float(np.mean([r[2] for r in rows if not r[1]]))
        print(key, json.dumps(result[key]), flush=True)
    return result


def true_maps_ceiling(work: Path, pipe, occupancy, families, steps: int, guidance: float, text_model=None) -> dict:
    """The DM6 model given each held-out shape's own six maps: family accuracy and IoU with the true shape.
    With `text_model`, the maps as that model could draw them at best: its crop and size, through its VAE."""
    from wala.config import RepresentationConfig
    from wala.data.shards import WaveletTreeDataset
    from wala.text.train import shared_crop, vae_input
    from wala.wavelet.tree import tree_to_tsdf

    shapes = WaveletTreeDataset(work / "data/eval")
    picked = [shapes.views.index(str(v)) for v in pipe.text_views()]
    config = RepresentationConfig(resolution=shapes.resolution)
    hits, ious = [], []
    for i, record in enumerate(shapes.records):
        stored = shapes.arrays(i, ("depth",))["depth"][picked]
        if text_model is not None:
            maps = vae_input(shared_crop(stored, text_model.config.image_size, crop=False))
            with torch.no_grad():
                latents = text_model.vae.encode(maps).latent_dist.mean
            stored = to_uint8(text_model.decode(latents * text_model.config.scale_factor))[..., 0]
        given = list(np.repeat(stored[..., None], 3, axis=-1))
        shape = pipe(depth=given, steps=steps, guidance=guidance, seed=0, progress=False)[0]
        made = shape.tsdf <= 0
        true = tree_to_tsdf(shapes.tree(i), config)[0].numpy() <= 0
        ious.append(float((made & true).sum() / max((made | true).sum(), 1)))
        occupied = torch.from_numpy(made).flatten().float()
        hits.append(nearest_family(occupied, occupancy, families) == family_of(record))
    return {"accuracy": float(np.mean(hits)), "iou": float(np.mean(ious)), "n": len(hits)}


def contact_sheet(work: Path, path: Path, steps: int, guidance: float, text_steps: int, text_guidance: float):
    """Per family, its first held-out caption (seed 0) → the six drawn maps → the shape, one row each."""
    from PIL import Image, ImageDraw

    from wala.render.preview import preview_png
    from wala.render.views import Pose, render_views
    from wala.text.captions import NOUNS, held_out_captions

    pipe, text_model = models(work)
    sampling = {"steps": steps, "guidance": guidance, "text_steps": text_steps}
    tile, rows = 112, []
    for family in NOUNS:
        caption = held_out_captions(family)[0]
        shape = drawn_shape(pipe, text_model, caption, 0, text_guidance, sampling)
        row = Image.new("RGB", (170 + 7 * tile, tile), "white")
        ImageDraw.Draw(row).multiline_text((4, 4), caption.replace(" of ", " of\n", 1), fill="black")
        for j, image in enumerate(shape.text_views.images):
            row.paste(Image.fromarray(image).resize((tile, tile), Image.NEAREST), (170 + j * tile, 0))
        render = render_views(shape.mesh, [Pose("sheet", 30.0, 20.0)], tile)[0].rgb
        row.paste(Image.fromarray(render), (170 + 6 * tile, 0))
        rows.append(np.asarray(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(preview_png([np.concatenate(rows, axis=0)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="runs/chain", type=Path)
    parser.add_argument("--stages", default="prep,train,eval,sheet")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dm6-steps", type=int, default=1000)
    parser.add_argument("--text-steps", type=int, default=1500, help="train: the text-to-views model's steps")
    parser.add_argument("--seeds", type=int, default=2, help="eval: shapes per caption")
    parser.add_argument("--sample-steps", type=int, default=10, help="the DM6 model's (README: 10)")
    parser.add_argument("--guidance", type=float, default=1.5, help="the DM6 model's (README: 1.5)")
    parser.add_argument("--views-steps", type=int, default=50, help="the text model's DDIM steps (released: 50)")
    parser.add_argument("--views-guidance", default="3,10", help="the text model's guidance scales (released: 10)")
    parser.add_argument("--sheet", type=Path, default=Path("docs/images/text_chain_held_out.png"))
    args = parser.parse_args()
    stages = args.stages.split(",")
    text_guidances = [float(g) for g in args.views_guidance.split(",")]
    if "prep" in stages:
        prep(args.work, args.workers)
    if "train" in stages:
        train(args.work, args.dm6_steps, args.text_steps)
    if "eval" in stages:
        result = evaluate(args.work, args.seeds, args.sample_steps, args.guidance, args.views_steps, text_guidances)
        (args.work / "eval_chain.json").write_text(json.dumps(result, indent=2) + "\n")
    if "sheet" in stages:
        contact_sheet(args.work, args.sheet, args.sample_steps, args.guidance, args.views_steps, text_guidances[-1])


if __name__ == "__main__":
    main()
