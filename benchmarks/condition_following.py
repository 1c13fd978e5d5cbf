"""Does a generator follow its condition, or draw its family's typical shape? On held-out procedural
shapes (seeds 5000…, as the bundled examples), each family's extent along x, y and z in the generated
grid against the true one, beside the error of always answering the family's mean extent.

    python benchmarks/condition_following.py MODEL [--families table,chair] [--seeds 6] [--first-seed 5000]
        [--steps N] [--guidance G] [--json out.jsonl]

`following` = 1 − (the model's extent error) / (the family-mean answer's error): 1 when every extent
is right, 0 or below when the model is no better than knowing the family. Also the mean IoU, and how
far apart the encoder puts the conditions of one family against those of two families (`token_ratio`:
mean distance within a family over mean distance across; small when the encoder keeps only the class).
IoU and Chamfer distance are the demo's (`wala.demo.score`: the grid's IoU, CD between surfaces).
The family mean is fitted on the same seeds, which flatters it a little. Beside the model's IoU, the
trilinear baseline's on the same conditions, and how many families the model leads on it (issue 29's
bar); `--first-seed 5001` leaves out the bundled examples (seed 5000), e.g. to choose sampling settings
without looking at them.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch
from results import report  # benchmarks/results.py (scripts run from their folder)

from wala.demo import EXAMPLE_SEED, example_conditions, score, true_tsdf
from wala.eval.generation import upsampled_tsdf
from wala.pipeline import WaLaPipeline
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.families import FAMILIES


def extents(tsdf: np.ndarray) -> np.ndarray:
    """Voxels spanned by the inside along each axis (0 where there is none)."""
    inside = np.argwhere(tsdf < 0)
    return inside.max(axis=0) - inside.min(axis=0) + 1 if len(inside) else np.zeros(3)


def mean_of(rows: list[dict], key: str, digits: int) -> float | None:
    """The mean of one score over the rows that have it (as the demo's summary: a shape without a
    surface has no CD; `failed` counts them)."""
    values = [r[key] for r in rows if r[key] is not None]
    return round(float(np.mean(values)), digits) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=EXAMPLE_SEED)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the model's)")
    parser.add_argument("--json", help="append the result here (one JSON object per line)")
    args = parser.parse_args()
    pipe = WaLaPipeline.from_pretrained(args.model, device="cpu")
    rows, tokens = {}, {}
    for family in args.families.split(","):
        true, made, scores, trilinear = [], [], [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            truth = true_tsdf(family, seed)
            truth_mesh = tsdf_to_mesh(truth)
            given = {pipe.condition: example_conditions(truth, seed)[pipe.condition]}
            (shape,) = pipe(**given, steps=args.steps, guidance=args.guidance, seed=0, progress=False)
            true.append(extents(truth))
            made.append(extents(shape.tsdf))
            scores.append(score(shape.tsdf, truth, truth_mesh))
            grid = pipe.model.kind.occupancy(given[pipe.condition], pipe.condition_config)
            trilinear.append(score(upsampled_tsdf(grid, truth.shape[0]), truth, truth_mesh))
            with torch.no_grad():
                tokens[family, seed] = pipe.model.encoder(pipe.condition_tensor(**given)).flatten()
        true, made = np.array(true), np.array(made)
        model_error = float(np.abs(made - true).mean())
        mean_error = float(np.abs(true.mean(axis=0) - true).mean())
        rows[family] = {
            "extent_error": round(model_error, 2),
            "family_mean_error": round(mean_error, 2),
            "iou": mean_of(scores, "iou", 3),
            "trilinear_iou": mean_of(trilinear, "iou", 3),
            "cd": mean_of(scores, "cd", 5),
            "trilinear_cd": mean_of(trilinear, "cd", 5),
            "failed": sum(s["cd"] is None for s in scores),
        }
        print(family, rows[family], flush=True)
    keys = list(tokens)
    within = [torch.dist(tokens[a], tokens[b]) for a, b in itertools.combinations(keys, 2) if a[0] == b[0]]
    across = [torch.dist(tokens[a], tokens[b]) for a, b in itertools.combinations(keys, 2) if a[0] != b[0]]
    ratio = torch.stack(within).mean() / torch.stack(across).mean() if within and across else None
    families = list(rows.values())
    model_error = np.mean([r["extent_error"] for r in families])
    mean_error = np.mean([r["family_mean_error"] for r in families])
    result = {
        "benchmark": "condition_following",
        "model": args.model,
        "seeds": [args.first_seed, args.first_seed + args.seeds - 1],
        "sampling": list(pipe.sampling(args.steps, args.guidance)),
        "following": round(float(1 - model_error / mean_error), 3) if mean_error else None,
        "extent_error": round(float(model_error), 2),
        "family_mean_error": round(float(mean_error), 2),
        "iou": mean_of(families, "iou", 3),
        "trilinear_iou": mean_of(families, "trilinear_iou", 3),
        "cd": mean_of(families, "cd", 5),
        "trilinear_cd": mean_of(families, "trilinear_cd", 5),
        "families_ahead": sum(r["iou"] > r["trilinear_iou"] for r in families),
        "families_ahead_cd": sum(r["cd"] is not None and r["cd"] < r["trilinear_cd"] for r in families),
        "failed": sum(r["failed"] for r in families),
        "token_ratio": None if ratio is None else round(float(ratio), 3),
        "families": rows,
    }
    report(result, args.json)


if __name__ == "__main__":
    main()
