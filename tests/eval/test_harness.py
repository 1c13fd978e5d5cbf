import json

import numpy as np
import pytest
import trimesh

from wala.cli import main
from wala.errors import WalaError
from wala.eval.bench import run_benchmark
from wala.eval.harness import evaluate_folders, format_table
from wala.eval.refset import build_reference_set
from wala.pipeline import WaLaPipeline


def _sphere(radius, center=(0.0, 0.0, 0.0)):
    return trimesh.creation.icosphere(subdivisions=4, radius=radius).apply_translation(center)


@pytest.fixture
def folders(tmp_path):
    """Reference: two spheres in dataset 'a', a box in dataset 'b'. Generated: smaller concentric
    spheres, nothing for the box."""
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    for folder in (ref / "a", ref / "b", gen / "a"):
        folder.mkdir(parents=True)
    _sphere(0.6).export(ref / "a" / "s1.obj")
    _sphere(0.6, (1.0, 2.0, 3.0)).export(ref / "a" / "s2.ply")
    trimesh.creation.box(extents=(0.5, 0.5, 0.5)).export(ref / "b" / "box.off")
    _sphere(0.5).export(gen / "a" / "s1.obj")
    _sphere(0.5, (1.0, 2.0, 3.0)).export(gen / "a" / "s2.obj")
    _sphere(0.5).export(gen / "stray.obj")
    return gen, ref


def test_scores_in_the_references_frame_match_the_analytic_values(folders):
    gen, ref = folders
    result = evaluate_folders(gen, ref, resolution=64, points=20_000, frame="reference")
    scored = {r["id"]: r for r in result["records"]}
    # radii 0.5 and 0.6 become 0.75 and 0.9 in the reference's frame (longest side 1.8)
    for name in ("a/s1", "a/s2"):
        assert scored[name]["iou"] == pytest.approx((0.75 / 0.9) ** 3, abs=0.03)
        assert scored[name]["cd"] == pytest.approx(2 * 0.15**2, rel=0.05)  # every point is 0.15 from the other sphere
        assert scored[name]["fscore"] == 0.0  # 0.15 > τ = 0.02
        assert scored[name]["lfd"] < 300  # the same shape up to scale
    assert scored["b/box"]["error"] == "no generated mesh"
    summary = result["summary"]
    assert summary["overall"]["failed"] == pytest.approx(1 / 3)
    # the missing box counts IoU 0 and F 0; it has no LFD, MSE or CD to average
    box = summary["per_dataset"]["b"]
    assert box["count"] == 1 and box["iou"] == 0.0 and box["fscore"] == 0.0 and np.isnan(box["cd"])
    assert summary["overall"]["cd"] == pytest.approx(summary["per_dataset"]["a"]["cd"])
    assert summary["overall"]["d_iou"] == pytest.approx(summary["per_dataset"]["a"]["iou"] / 2)
    assert result["unmatched"] == ["stray"]
    table = format_table(result)
    assert "D-IoU" in table and "failed b/box: no generated mesh" in table


def test_each_mesh_in_its_own_frame_makes_concentric_spheres_equal(folders):
    gen, ref = folders
    result = evaluate_folders(gen, ref, resolution=64, points=20_000, frame="own")
    s1 = next(r for r in result["records"] if r["id"] == "a/s1")
    assert s1["iou"] > 0.97 and s1["cd"] < 5e-4 and s1["lfd"] < 300


def test_eval_command_writes_json_and_csv_and_rejects_bad_folders(folders, tmp_path, capsys):
    gen, ref = folders
    assert (
        main(
            [
                "eval",
                str(gen),
                str(ref),
                "--resolution",
                "32",
                "--points",
                "5000",
                "--quiet",
                "--json",
                str(tmp_path / "e.json"),
                "--csv",
                str(tmp_path / "e.csv"),
            ]
        )
        == 0
    )
    assert "LFD" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "e.json").read_text())["records"]) == 3
    assert (tmp_path / "e.csv").read_text().splitlines()[0] == "id,dataset,lfd,iou,mse,cd,fscore,error"
    assert main(["eval", str(tmp_path / "nope"), str(ref)]) == 2
    assert main(["eval", str(gen), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("wala: error:") and "not found" in line for line in err)


def test_a_broken_generated_mesh_is_a_failure_not_a_crash(folders):
    gen, ref = folders
    (gen / "a" / "s1.obj").write_text("this is not a mesh\n")
    result = evaluate_folders(gen, ref, resolution=32, points=2000)
    broken = next(r for r in result["records"] if r["id"] == "a/s1")
    assert "s1.obj" in broken["error"] and broken["iou"] == 0.0
    assert result["summary"]["overall"]["failed"] == pytest.approx(2 / 3)


def test_reference_set_is_built_from_its_manifest_and_resumes(real_meshes, tmp_path):
    manifest = {
        "name": "t",
        "shapes": [
            {"id": "cgal/bunny00", "dataset": "cgal", "source": "cgal/bunny00.off"},
            {"id": "procedural/mug_7", "dataset": "procedural", "source": "procedural:mug:7"},
        ],
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    built = build_reference_set(tmp_path / "m.json", tmp_path / "ref", real_meshes, resolution=32)
    assert [s["id"] for s in built["shapes"]] == ["cgal/bunny00", "procedural/mug_7"]
    bunny = trimesh.load(tmp_path / "ref" / "cgal" / "bunny00.obj")
    assert np.ptp(bunny.vertices, axis=0).max() == pytest.approx(1.8, rel=1e-4)
    stamp = (tmp_path / "ref" / "cgal" / "bunny00.obj").stat().st_mtime_ns
    build_reference_set(tmp_path / "m.json", tmp_path / "ref", real_meshes, resolution=32)
    assert (tmp_path / "ref" / "cgal" / "bunny00.obj").stat().st_mtime_ns == stamp  # kept, not rebuilt
    manifest["shapes"].append({"id": "x/y", "dataset": "x", "source": "cgal/missing.off"})
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(WalaError, match="missing.off not found"):
        build_reference_set(tmp_path / "m.json", tmp_path / "ref", real_meshes, resolution=32)


def test_the_shipped_manifest_names_unique_ids_with_sources(tmp_path):
    from wala.eval.refset import read_manifest

    shapes = read_manifest("configs/refset.json")["shapes"]
    assert len(shapes) >= 50 and {s["dataset"] for s in shapes} == {"cgal", "pymeshlab", "procedural"}


def test_bench_derives_conditions_generates_and_scores(tiny_generator, folders, tmp_path):
    _, ref = folders
    generator = WaLaPipeline.from_pretrained(tiny_generator)
    result = run_benchmark(
        "pointcloud", generator, ref, tmp_path / "run", steps=2, guidance=1.3, limit=2, resolution=32, points=2000
    )
    assert [r["id"] for r in result["records"]] == ["a/s1", "a/s2"]
    points = np.load(tmp_path / "run" / "conditions" / "a" / "s1.npy")
    assert points.shape == (generator.condition_config.points, 3) and np.abs(points).max() <= 0.9 + 1e-5
    for record in result["records"]:  # a 2-step model may give no surface: then it is a named failure
        generated = (tmp_path / "run" / "generated" / f"{record['id']}.obj").exists()
        assert generated == ("error" not in record)
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["condition"] == "pointcloud"
    with pytest.raises(WalaError, match="conditioned on 'pointcloud', not 'voxel'"):
        run_benchmark("voxel", generator, ref, tmp_path / "run2", steps=2, guidance=1.3)


def test_bench_runs_the_papers_upsampling_baselines_without_a_checkpoint(folders, tmp_path, capsys):
    _, ref = folders
    code = main(
        [
            "bench",
            "voxel",
            "baseline:trilinear",
            str(ref),
            "-o",
            str(tmp_path / "tri"),
            "--resolution",
            "64",
            "--points",
            "5000",
            "--quiet",
        ]
    )
    assert code == 0 and "D-IoU" in capsys.readouterr().out
    result = json.loads((tmp_path / "tri" / "eval.json").read_text())
    assert np.load(tmp_path / "tri" / "conditions" / "a" / "s1.npy").shape == (16, 16, 16)
    assert all("error" not in r for r in result["records"])
    box = next(r for r in result["records"] if r["id"] == "b/box")
    assert box["iou"] > 0.8  # an axis-aligned box survives 16³ well
    assert main(["bench", "voxel", "baseline:cubic", str(ref), "-o", str(tmp_path / "x")]) == 2
