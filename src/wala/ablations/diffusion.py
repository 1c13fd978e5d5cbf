"""`wala ablate diffusion`: seed Table 2 at small scale — U-ViT widths and depths, DiT vs U-ViT,
pre- vs post-quantization latents — all trained the same number of steps on the same data, in
the same autoencoder's latent space, with the same seeds, and scored on the same held-out shapes.

The paper's sizes (hidden 384/768/1152 × 8/16/32 blocks) are scaled down by `width_scale` and
`depth_scale` (defaults 1/6 and 1/4: 64/128/192 × 2/4/8) so that a CPU can train every row.
Each row is trained and scored once per seed (the seed sets the initial weights, the batch order
and the sampling noise); columns are the mean over seeds with half their range: LFD, IoU and CD
of generated vs true held-out shapes, as in the paper, plus the validation x0 MSE.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

from wala.config import load_config
from wala.data.shards import WaveletTreeDataset
from wala.eval.generation import evaluate_generation
from wala.pipeline import WaLaPipeline
from wala.train.checkpoint import latest_checkpoint
from wala.train.diffusion import DiffusionTrainConfig, train_diffusion

# the rows of seed Table 2, (arch, paper width, paper depth, latent) → the paper's (LFD, IoU, CD) after
# 400k iterations
PAPER_TABLE2 = {
    ("uvit", 384, 32, "pre"): (1523.74, 0.8211, 0.001544),
    ("uvit", 768, 32, "pre"): (1618.73, 0.7966, 0.001540),
    ("uvit", 1152, 8, "pre"): (1596.88, 0.8020, 0.001561),
    ("uvit", 1152, 16, "pre"): (1521.81, 0.8237, 0.001573),
    ("uvit", 1152, 32, "pre"): (1507.43, 0.8199, 0.001482),
    ("dit", 1152, 32, "pre"): (1527.16, 0.8145, 0.001602),
    ("uvit", 1152, 32, "post"): (1576.07, 0.8176, 0.001695),
}
TABLE2_ROWS = list(PAPER_TABLE2)
PAPER_METRICS = ("lfd", "iou", "cd")  # the paper's columns, in PAPER_TABLE2's order
METRICS = (*PAPER_METRICS, "x0_mse")  # averaged over seeds
HIGHER_IS_BETTER = {"iou"}
# the questions the paper's Table 2 answers: (question, row a, row b) — does b beat a?
COMPARISONS = [
    ("width 384 → 1152 (depth 32)", ("uvit", 384, 32, "pre"), ("uvit", 1152, 32, "pre")),
    ("width 768 → 1152 (depth 32)", ("uvit", 768, 32, "pre"), ("uvit", 1152, 32, "pre")),
    ("depth 8 → 32 (width 1152)", ("uvit", 1152, 8, "pre"), ("uvit", 1152, 32, "pre")),
    ("depth 16 → 32 (width 1152)", ("uvit", 1152, 16, "pre"), ("uvit", 1152, 32, "pre")),
    ("DiT → U-ViT", ("dit", 1152, 32, "pre"), ("uvit", 1152, 32, "pre")),
    ("post- → pre-quantization", ("uvit", 1152, 32, "post"), ("uvit", 1152, 32, "pre")),
]


def run_diffusion_ablation(
    out: str | Path,
    config_path: str,
    autoencoder: str | None = None,
    data: str | None = None,
    eval_data: str | None = None,
    steps: int | None = None,
    width_scale: float = 1 / 6,
    depth_scale: float = 1 / 4,
    eval_count: int = 20,
    rows=TABLE2_ROWS,
    seeds: tuple[int, ...] = (0, 1),
    lfd: bool = True,
) -> list[dict]:
    """One result per row: its sizes, the paper's, and each metric's mean and half-range over
    `seeds` (`{metric}` and `{metric}_spread`), with the per-seed scores under "seeds". The
    autoencoder, the data and `steps` (every run's length) default to the config's. The JSON is
    rewritten after every run, so an interrupted ablation keeps what it measured."""
    out = Path(out)
    base = load_config(DiffusionTrainConfig, config_path)
    autoencoder, steps = autoencoder or base.autoencoder, steps or base.train.steps
    data = data or base.train.data
    eval_data = eval_data or base.train.eval_data or data
    held_out = WaveletTreeDataset(eval_data)
    results = []
    for arch, width, depth, latent in rows:
        unit = 96 if arch == "dit" else 32  # heads of 32; the DiT's 3-D sin-cos table also needs width % 6 == 0
        w, d = max(unit, round(width * width_scale / unit) * unit), max(1, round(depth * depth_scale))
        denoiser = dataclasses.replace(base.model.denoiser, arch=arch, width=w, depth=d, heads=w // 32)
        model = dataclasses.replace(base.model, denoiser=denoiser, latent=latent)
        row = {
            "arch": arch,
            "width": w,
            "depth": d,
            "latent": latent,
            "paper_width": width,
            "paper_depth": depth,
            "seeds": [],
        }
        results.append(row)
        for seed in seeds:
            train = dataclasses.replace(
                base.train,
                data=data,
                eval_data=eval_data,
                out=str(out / "runs" / f"{arch}_{w}x{d}_{latent}_seed{seed}"),
                steps=steps,
                seed=seed,
                checkpoint_every=steps,
                eval_every=0,
            )
            _share_latent_caches(out / "runs", Path(train.out), latent)
            train_diffusion(dataclasses.replace(base, model=model, train=train, autoencoder=autoencoder))
            logs = (Path(train.out) / "metrics.jsonl").read_text().splitlines()
            evals = [json.loads(line)["eval"] for line in logs if '"eval"' in line]
            generator = WaLaPipeline.from_pretrained(latest_checkpoint(Path(train.out)))
            steps_, guidance = generator.defaults()
            scores = evaluate_generation(
                generator, held_out, None, eval_count, steps_, guidance, seed=seed, methods=("wala",), lfd=lfd
            )
            row["parameters"] = sum(p.numel() for p in generator.model.network.parameters())
            row["seeds"].append({"seed": seed, "x0_mse": evals[-1]["mse"], **scores["wala"]["overall"]})
            row.update(_over_seeds(row["seeds"]))
            (out / "ablation_diffusion.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _over_seeds(runs: list[dict]) -> dict:
    """{metric: mean, metric_spread: half the range} over the seeds' finite scores."""
    summary = {}
    for metric in METRICS:
        values = [r[metric] for r in runs if metric in r and math.isfinite(r[metric])]
        if values:  # a seed whose every sample failed (no surface: NaN CD and LFD) is left out
            summary[metric] = sum(values) / len(values)
            summary[f"{metric}_spread"] = (max(values) - min(values)) / 2
    return summary


def _share_latent_caches(runs: Path, target: Path, latent: str) -> None:
    """Copies another run's cached latents of the same kind into a new run's folder (the cache key,
    checked on load, still guards against a different autoencoder)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("latents-train.safetensors", "latents-eval.safetensors"):
        if not (target / name).exists():
            for found in sorted(runs.glob(f"*_{latent}_seed*/{name}"))[:1]:
                shutil.copyfile(found, target / name)


def _key(row: dict) -> tuple:
    return row["arch"], row["paper_width"], row["paper_depth"], row["latent"]


def format_diffusion_ablation(rows: list[dict]) -> str:
    """Our rows (mean ± half-range over seeds) beside the paper's."""
    lines = [
        f"{'model':6s} {'(paper)':>10s} {'ours':>7s} {'latent':>6s} {'params':>7s} {'x0 MSE':>17s} "
        f"{'LFD':>14s} {'IoU':>15s} {'CD':>19s} │ {'paper LFD':>9s} {'IoU':>6s} {'CD':>8s}"
    ]
    for r in rows:
        paper = PAPER_TABLE2.get(_key(r))
        lines.append(
            f"{'U-ViT' if r['arch'] == 'uvit' else 'DiT':6s} {r['paper_width']:>5d}×{r['paper_depth']:<4d} "
            f"{r['width']:>3d}×{r['depth']:<3d} {r['latent']:>6s} {r.get('parameters', 0) / 1e6:6.2f}M "
            f"{_pm(r, 'x0_mse', 4)} {_pm(r, 'lfd', 0)} {_pm(r, 'iou', 3)} {_pm(r, 'cd', 5)} │ "
            + (f"{paper[0]:9.1f} {paper[1]:6.4f} {paper[2]:8.6f}" if paper else "")
        )
    return "\n".join(lines)


def _pm(row: dict, metric: str, digits: int) -> str:
    if metric not in row:
        return f"{'–':>{14 if metric == 'lfd' else 9 + 2 * digits}s}"
    width, spread = (6, 5) if metric == "lfd" else (4 + digits, 2 + digits)
    return f"{row[metric]:{width}.{digits}f} ± {row[metric + '_spread']:<{spread}.{digits}f}"


def compare_orderings(rows: list[dict]) -> list[dict]:
    """For each question of the paper's Table 2 whose two rows were run, per metric: whether the change
    (row a → row b) "helps", "hurts" or "ties" in the paper and here ("n/a" where a score is missing or
    not finite), and whether ours is `separated`: the two rows' per-seed scores do not overlap (None
    with fewer than two seeds a row), i.e. whether the small scale can answer the question at all."""
    found = {_key(r): r for r in rows}
    answers = []
    for question, a, b in COMPARISONS:
        if a not in found or b not in found:
            continue
        for index, metric in enumerate(PAPER_METRICS):
            sign = 1 if metric in HIGHER_IS_BETTER else -1
            paper = sign * (PAPER_TABLE2[b][index] - PAPER_TABLE2[a][index])
            va, vb = (found[key].get(metric, math.nan) for key in (a, b))
            ours = sign * (vb - va)
            runs = [[s[metric] for s in found[key].get("seeds", []) if metric in s] for key in (a, b)]
            separated = None
            if all(len(r) >= 2 and all(map(math.isfinite, r)) for r in runs):
                separated = max(runs[0]) < min(runs[1]) or max(runs[1]) < min(runs[0])
            answers.append(
                {
                    "question": question,
                    "metric": metric,
                    "paper": _verdict(paper),
                    "ours": _verdict(ours),
                    "separated": separated,
                }
            )
    return answers


def _verdict(gain: float) -> str:
    if not math.isfinite(gain):
        return "n/a"
    return "helps" if gain > 0 else "hurts" if gain < 0 else "ties"


def format_orderings(answers: list[dict]) -> str:
    """One line per question and metric: the paper's verdict, ours, and whether the seeds separate ours."""
    shown = {True: "yes", False: "no (the seeds overlap)", None: "– (fewer than 2 seeds)"}
    lines = [f"{'question':30s} {'metric':6s} {'paper':>7s} {'ours':>7s}  separated"]
    for a in answers:
        lines.append(f"{a['question']:30s} {a['metric']:6s} {a['paper']:>7s} {a['ours']:>7s}  {shown[a['separated']]}")
    return "\n".join(lines)
