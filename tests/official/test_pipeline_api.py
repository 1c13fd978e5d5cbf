"""The Python API and model management on released-format models: one call per condition, files or
arrays alike, the official shape for the official seed; model directories found by name."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from wala.cli import main
from wala.errors import WalaError
from wala.hub.describe import list_models
from wala.io.conditions import load_point_cloud
from wala.pipeline import GeneratedShape, WaLaPipeline


def test_one_call_with_shuffled_depth_files_gives_the_official_shape(official):
    folder, E, meta = official("dm4")
    pipe = WaLaPipeline.from_pretrained(folder, device="cpu")
    files = [folder / name for name in reversed(meta["inputs"])]
    (shape,) = pipe(depth=files, seed=meta["seed"], progress=False)
    assert shape.seed == meta["seed"] and shape.latent.shape == (4, 12, 12, 12)
    assert float((shape.latent - torch.from_numpy(E["latent"][0])).abs().max()) <= 1e-5 * np.abs(E["latent"]).max()
    assert shape.tsdf.shape == (256, 256, 256)
    assert abs(len(shape.mesh.faces) - meta["mesh"]["n_faces"]) <= 1e-3 * meta["mesh"]["n_faces"]


def test_files_pillow_images_and_arrays_are_the_same_condition(official):
    folder, E, meta = official("sv")
    pipe = WaLaPipeline.from_pretrained(folder, device="cpu")
    by_file = pipe(image=folder / "input.png", seed=3, progress=False)[0].latent
    by_pillow = pipe(image=Image.open(folder / "input.png"), seed=3, progress=False)[0].latent
    by_array = pipe(image=np.asarray(Image.open(folder / "input.png")), seed=3, progress=False)[0].latent
    assert torch.equal(by_file, by_pillow) and torch.equal(by_file, by_array)
    pc_folder, pc_E, pc_meta = official("pc")
    pc = WaLaPipeline.from_pretrained(pc_folder, device="cpu")
    from_file = pc(pointcloud=str(pc_folder / "input.h5df"), seed=pc_meta["seed"], progress=False)[0].latent
    from_array = pc(pointcloud=load_point_cloud(pc_folder / "input.h5df"), seed=pc_meta["seed"], progress=False)[
        0
    ].latent
    assert torch.equal(from_file, from_array)
    assert float((from_file - torch.from_numpy(pc_E["latent"][0])).abs().max()) <= 1e-4  # guidance 3.0 by default


def test_samples_use_consecutive_seeds_and_bad_calls_are_one_line(official):
    folder, _, meta = official("sk")
    pipe = WaLaPipeline.from_pretrained(folder, device="cpu")
    two = pipe(sketch=folder / "input.png", samples=2, seed=10, progress=False)
    alone = pipe(sketch=folder / "input.png", seed=11, progress=False)[0]
    assert [s.seed for s in two] == [10, 11] and torch.allclose(two[1].latent, alone.latent, atol=1e-5)
    for call, message in (
        (lambda: pipe(), "not no condition"),
        (lambda: pipe(image="a.png", sketch="b.png"), "give one condition"),
        (lambda: pipe(voxel=np.zeros((16, 16, 16))), "not a voxel condition"),
        (lambda: pipe(sketch=folder / "input.png", samples=0), "at least 1"),
    ):
        with pytest.raises(WalaError, match=message):
            call()
    with pytest.raises(WalaError, match="unknown dtype"):
        WaLaPipeline.from_pretrained(folder, dtype="fp8")


def test_a_tsdf_without_surface_has_no_mesh():
    empty = GeneratedShape(torch.zeros(4, 12, 12, 12), 0, lambda latent: np.full((32, 32, 32), 0.1, np.float32))
    assert empty.tsdf.shape == (32, 32, 32)
    with pytest.raises(WalaError):
        _ = empty.mesh


@pytest.fixture
def model_path(official, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    shutil.copytree(official("vx16")[0], first / "WaLa-VX16-tiny")
    assert main(["convert", str(official("rgb4")[0]), "-o", str(second / "rgb4-converted")]) == 0
    (second / "broken").mkdir()
    (second / "broken" / "args.json").write_text("{not json")
    (second / "broken" / "checkpoint.ckpt").write_bytes(b"")
    (second / "notes").mkdir()  # not a model directory: not listed
    monkeypatch.setenv("WALA_MODELS", f"{first}:{second}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return first, second


def test_wala_models_lists_what_the_search_path_holds(model_path, capsys):
    found, problems = list_models()
    assert [(m.name, m.source, m.condition) for m in found] == [
        ("WaLa-VX16-tiny", "official", "voxel"),
        ("rgb4-converted", "official", "views ×4 (3, 6, 10, 26)"),
        ("pc64", "builtin", "pointcloud"),
        ("vx64", "builtin", "voxel"),
    ]  # the package's own come last
    assert all(m.parameters > 1e6 for m in found) and len(problems) == 1 and "broken" in problems[0]
    assert main(["models"]) == 0
    out = capsys.readouterr()
    assert "WaLa-VX16-tiny" in out.out and "rgb4-converted" in out.out and "skipped" in out.err


def test_wala_generate_finds_a_model_by_name(model_path, official, tmp_path, capsys):
    folder, E, meta = official("vx16")
    assert (
        main(
            [
                "generate",
                "WaLa-VX16-tiny",
                "--voxel",
                str(folder / "input.json"),
                "--seed",
                str(meta["seed"]),
                "-o",
                str(tmp_path / "out"),
                "--format",
                "npz",
            ]
        )
        == 0
    )
    latent = np.load(tmp_path / "out" / f"sample_{meta['seed']:04d}.npz")["latent"]
    assert np.abs(latent - E["latent"][0]).max() <= 1e-4
    capsys.readouterr()
    assert main(["generate", "WaLa-nothing", "--unconditional", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "model not found: WaLa-nothing" in err and "wala models" in err and err.count("\n") == 1
