import numpy as np
import pytest

from wala.ablations.diffusion import format_diffusion_ablation, run_diffusion_ablation
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


def test_the_diffusion_ablation_trains_and_scores_each_row(prepared, tiny_autoencoder, tmp_path):
    rows = run_diffusion_ablation(
        tmp_path,
        "configs/diffusion_tiny.yaml",
        str(tiny_autoencoder),
        str(prepared),
        str(prepared),
        steps=2,
        eval_count=2,
        rows=[("uvit", 384, 8, "pre"), ("dit", 384, 8, "post")],
    )
    assert [(r["arch"], r["width"], r["depth"], r["latent"]) for r in rows] == [
        ("uvit", 64, 2, "pre"),
        ("dit", 96, 2, "post"),
    ]
    assert all(np.isfinite(r["x0_mse"]) and 0 <= r["iou"] <= 1 for r in rows)
    assert (tmp_path / "ablation_diffusion.json").is_file()
    assert "DiT" in format_diffusion_ablation(rows)
