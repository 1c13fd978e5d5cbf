import json

import numpy as np
import pytest

from wala.ablations.diffusion import (
    compare_orderings,
    format_diffusion_ablation,
    format_orderings,
    run_diffusion_ablation,
)
from wala.conditions.derive import points_to_occupancy
from wala.data.shards import WaveletTreeDataset
from wala.eval.generation import evaluate_generation, format_generation, upsampled_tsdf
from wala.pipeline import WaLaPipeline


def test_point_occupancy_fills_the_inside_of_a_closed_surface():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(20_000, 3))
    sphere = 0.8 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    grid = points_to_occupancy(sphere, 16)
    assert grid[8, 8, 8] and grid[4:12, 4:12, 4:12].all()  # filled, not a shell
    assert not grid[0, 0, 0]


def test_trilinear_upsampling_keeps_a_block_where_it_was():
    grid = np.zeros((16, 16, 16), dtype=bool)
    grid[4:12, 4:12, 4:12] = True
    tsdf = upsampled_tsdf(grid, 64, "trilinear")
    inside = tsdf < 0
    assert inside[18:46, 18:46, 18:46].all() and inside[16:48, 32, 32].all()  # faces stay where they were
    assert not inside[:16].any() and not inside[48:].any()
    assert not inside[16, 16, 16]  # trilinear interpolation rounds the corners


def test_nearest_upsampling_keeps_blocks_exactly():
    grid = np.zeros((16, 16, 16), dtype=bool)
    grid[4:12, 4:12, 4:12] = True
    inside = upsampled_tsdf(grid, 64, "nearest") < 0
    assert inside.sum() == 32**3 and inside[16:48, 16:48, 16:48].all()  # corners stay square


def test_scores_against_held_out_shapes_with_both_baselines(prepared, tiny_generator):
    generator = WaLaPipeline.from_pretrained(tiny_generator)
    shapes = WaveletTreeDataset(prepared)
    # held-out = training set: retrieval finds each shape itself
    results = evaluate_generation(generator, shapes, shapes, count=2, steps=2, guidance=1.3, points=20_000, lfd=True)
    assert set(results) == {"wala", "nearest", "trilinear", "retrieval", "autoencoder"}
    assert results["retrieval"]["overall"]["iou"] == pytest.approx(1.0)
    assert results["retrieval"]["overall"]["lfd"] == 0.0  # the very same mesh
    assert results["trilinear"]["overall"]["lfd"] > 0
    assert 0.0 < results["trilinear"]["overall"]["iou"] < 1.0
    # the same surface, sampled twice: only sampling noise is left
    assert results["retrieval"]["overall"]["cd"] < 0.2 * results["trilinear"]["overall"]["cd"]
    assert len(results["wala"]["samples"]) == 2
    table = format_generation(results)
    assert table.splitlines()[0].split()[:4] == ["method", "n", "LFD", "IoU"] and "retrieval" in table


def test_the_diffusion_ablation_trains_and_scores_each_row_with_every_seed(prepared, tiny_autoencoder, tmp_path):
    rows = run_diffusion_ablation(
        tmp_path,
        "configs/diffusion_tiny.yaml",
        str(tiny_autoencoder),
        str(prepared),
        str(prepared),
        steps=2,
        eval_count=2,
        rows=[("uvit", 384, 8, "pre"), ("dit", 384, 8, "post")],
        seeds=(0, 1),
    )
    assert [(r["arch"], r["width"], r["depth"], r["latent"]) for r in rows] == [
        ("uvit", 64, 2, "pre"),
        ("dit", 96, 2, "post"),
    ]
    for r in rows:
        assert [s["seed"] for s in r["seeds"]] == [0, 1]
        for metric in ("x0_mse", "iou", "lfd"):
            values = [s[metric] for s in r["seeds"]]
            assert all(np.isfinite(values)), (metric, values)
            assert r[metric] == pytest.approx(np.mean(values))
            assert r[f"{metric}_spread"] == pytest.approx((max(values) - min(values)) / 2)
        # the seed changes the initial weights, so the two runs of a row differ
        assert r["seeds"][0]["x0_mse"] != r["seeds"][1]["x0_mse"]
    assert len(list((tmp_path / "runs").iterdir())) == 4
    assert json.loads((tmp_path / "ablation_diffusion.json").read_text()) == rows
    table = format_diffusion_ablation(rows)
    assert "DiT" in table and "±" in table and len(table.splitlines()) == 3


def _row(arch, width, depth, latent, **seeds):
    """A result row as run_diffusion_ablation writes it, from each metric's per-seed scores."""
    runs = [dict(zip(seeds, values)) for values in zip(*seeds.values())]
    row = {"arch": arch, "paper_width": width, "paper_depth": depth, "latent": latent, "seeds": runs}
    for metric, values in seeds.items():
        row[metric], row[f"{metric}_spread"] = float(np.mean(values)), (max(values) - min(values)) / 2
    return row


def test_the_orderings_say_which_way_each_question_goes_and_whether_the_seeds_separate_it():
    rows = [
        _row("uvit", 384, 32, "pre", lfd=[2000, 2001], iou=[0.50, 0.51], cd=[0.010, 0.011]),
        _row("uvit", 1152, 32, "pre", lfd=[1900, 1901], iou=[0.55, 0.56], cd=[0.012, 0.012]),
        # the seeds spread wider than the rows differ: a mean gap without separation
        _row("dit", 1152, 32, "pre", lfd=[1800, 1810], iou=[0.50, 0.59], cd=[0.012, 0.012]),
    ]
    answers = {(a["question"].split(" (")[0], a["metric"]): a for a in compare_orderings(rows)}
    assert set(answers) == {(q, m) for q in ("width 384 → 1152", "DiT → U-ViT") for m in ("lfd", "iou", "cd")}
    # the paper, 384 → 1152 wide: LFD 1523.74 → 1507.43 and CD 0.001544 → 0.001482 better, IoU 0.8211 → 0.8199 worse
    assert [answers["width 384 → 1152", m]["paper"] for m in ("lfd", "iou", "cd")] == ["helps", "hurts", "helps"]
    # ours: lower LFD and higher IoU help, a higher CD hurts
    assert [answers["width 384 → 1152", m]["ours"] for m in ("lfd", "iou", "cd")] == ["helps", "helps", "hurts"]
    assert all(answers["width 384 → 1152", m]["separated"] for m in ("lfd", "iou", "cd"))
    assert answers["DiT → U-ViT", "iou"]["ours"] == "helps" and not answers["DiT → U-ViT", "iou"]["separated"]
    assert answers["DiT → U-ViT", "cd"]["ours"] == "ties"
    assert answers["DiT → U-ViT", "lfd"] == {
        "question": "DiT → U-ViT",
        "metric": "lfd",
        "paper": "helps",
        "ours": "hurts",
        "separated": True,
    }
    table = format_orderings(compare_orderings(rows))
    assert "hurts" in table and "ties" in table and len(table.splitlines()) == 7
    # one seed a row cannot say whether the rows separate; a missing score is no verdict
    single = [_row("uvit", 384, 32, "pre", iou=[0.5]), _row("uvit", 1152, 32, "pre", iou=[0.6], lfd=[float("nan")])]
    answers = {a["metric"]: a for a in compare_orderings(single)}
    assert answers["iou"]["ours"] == "helps" and answers["iou"]["separated"] is None
    assert answers["lfd"]["ours"] == "n/a" and answers["cd"]["ours"] == "n/a"
