"""The bundled examples and the demo that scores generators on them."""
import json

import numpy as np

from wala.demo import EXAMPLES, main, make_examples, run_demo, summary
from wala.io.conditions import load_point_cloud, load_voxels


def test_the_bundled_examples_are_the_held_out_shapes_they_claim(tmp_path):
    make_examples(tmp_path, families=["chair", "ring"])  # regenerated from their families and seed: the same files
    bundled = json.loads((EXAMPLES / "manifest.json").read_text())
    assert len(bundled) == 10 and {e["seed"] for e in bundled} == {5000}  # no training or validation seed
    assert json.loads((tmp_path / "manifest.json").read_text()) == [e for e in bundled if e["family"] in ("chair", "ring")]
    for name in ("chair_5000", "ring_5000"):
        assert np.allclose(load_point_cloud(tmp_path / "pointcloud" / f"{name}.ply"),
                           load_point_cloud(EXAMPLES / "pointcloud" / f"{name}.ply"))
        assert np.array_equal(load_voxels(tmp_path / "voxel" / f"{name}.json"), load_voxels(EXAMPLES / "voxel" / f"{name}.json"))


def test_the_demo_scores_a_generator_beside_the_baselines(tiny_generator, tmp_path, capsys):
    rows = run_demo({"pointcloud": str(tiny_generator)}, tmp_path, names=["mug_5000", "vase_5000"])
    assert [r["name"] for r in rows] == ["mug_5000", "vase_5000"]
    for row in rows:
        assert 0 <= row["wala"]["iou"] <= 1
        assert row["trilinear"]["iou"] > 0.2 and row["trilinear"]["cd"] < 0.05  # the baselines have surfaces
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("pointcloud mug_5000") and "| trilinear IoU" in printed[0]
    assert summary(rows)[0].startswith("pointcloud mean over 2:")
    assert main([]) == 2  # no model given: one line
