"""`wala generate --batch`: a folder or list of inputs, one folder of results each, resumable; a bad
input is logged and skipped; meshes decimated with --faces and previewed."""

import json

import numpy as np
import trimesh
from PIL import Image

from wala.cli import main


def test_a_batch_folder_runs_every_input_skips_a_bad_one_and_resumes(official, tmp_path, capsys):
    folder, _, _ = official("sk")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "drawing.png").write_bytes((folder / "input.png").read_bytes())
    (inputs / "broken.png").write_bytes(b"not an image")
    (inputs / "notes.txt").write_text("not an input")  # not an image suffix: ignored
    out = tmp_path / "out"
    argv = ["generate", str(folder), "--batch", str(inputs), "-o", str(out), "--faces", "3000", "--gif"]
    assert main(argv) == 2  # one input failed: said at the end, after the others ran
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"wala: error: 1 of 2 inputs failed (listed in {out / 'failed.log'})"
    assert "broken: cannot read image" in (out / "failed.log").read_text()
    record = json.loads((out / "drawing" / "done.json").read_text())
    assert record["files"] == ["sample_0000.obj", "sample_0000.png", "sample_0000.gif"]
    mesh = trimesh.load(out / "drawing" / "sample_0000.obj", process=False)
    assert 0 < len(mesh.faces) <= 3000 * 1.01
    strip = Image.open(out / "drawing" / "sample_0000.png")
    assert strip.size == (6 * 256, 256) and np.asarray(strip).min() < 200  # something was drawn
    before = (out / "drawing" / "sample_0000.obj").stat().st_mtime_ns
    (inputs / "broken.png").unlink()
    assert main(argv) == 0  # the finished input is skipped, not redone
    assert (out / "drawing" / "sample_0000.obj").stat().st_mtime_ns == before
    assert "0 inputs done, 1 already finished, 0 failed" in capsys.readouterr().err
    assert not (out / "failed.log").exists()


def test_a_batch_list_of_multi_view_inputs_in_any_order(official, tmp_path, capsys):
    folder, E, meta = official("rgb4")
    files = [str(folder / name) for name in meta["inputs"]]
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# one object per line\n{' '.join(reversed(files))}\n{files[0]} {files[1]}\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "generate",
                str(folder),
                "--batch",
                str(listing),
                "-o",
                str(out),
                "--seed",
                str(meta["seed"]),
                "--format",
                "npz",
            ]
        )
        == 2
    )
    assert "reads 4 files (--views), got 2" in (out / "failed.log").read_text()  # the second line has two views
    done = [p.parent.name for p in out.glob("*/done.json")]
    assert len(done) == 1
    latent = np.load(out / done[0] / f"sample_{meta['seed']:04d}.npz")["latent"]
    assert np.abs(latent - E["latent"][0]).max() <= 1e-4


def test_a_batch_of_conditions_gives_each_the_samples_it_gives_alone(official):
    from wala.io.conditions import load_point_cloud
    from wala.pipeline import WaLaPipeline

    folder, _, _ = official("pc")
    pipe = WaLaPipeline.from_pretrained(folder, device="cpu")
    points = load_point_cloud(folder / "input.h5df")
    clouds = [points, points[::2], points[1::3]]
    together = pipe([{"pointcloud": c} for c in clouds], steps=3, seed=5, samples=2, batch_size=4, progress=False)
    assert len(together) == 3  # 6 samples in denoiser calls of 4 and 2
    for cloud, shapes in zip(clouds, together):
        alone = pipe(pointcloud=cloud, steps=3, seed=5, samples=2, progress=False)
        assert [s.seed for s in shapes] == [5, 6]
        for batched, single in zip(shapes, alone):
            assert float((batched.latent - single.latent).abs().max()) <= 1e-5
    assert float((together[0][0].latent - together[1][0].latent).abs().max()) > 1e-3  # the conditions count


def test_batch_size_groups_inputs_without_changing_their_shapes_and_a_bad_one_fails_alone(official, tmp_path, capsys):
    from wala.io.conditions import load_point_cloud

    folder, _, _ = official("pc")
    points = load_point_cloud(folder / "input.h5df")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        np.save(inputs / f"cloud{i}.npy", points[i::3])
    (inputs / "broken.npy").write_bytes(b"not an array")
    latents = {}
    for size in (1, 4):
        out = tmp_path / f"out{size}"
        argv = ["generate", str(folder), "--batch", str(inputs), "-o", str(out), "--steps", "2", "--format", "npz"]
        assert main([*argv, "--batch-size", str(size)]) == 2
        assert "broken:" in (out / "failed.log").read_text()
        latents[size] = [np.load(out / f"cloud{i}" / "sample_0000.npz")["latent"] for i in range(3)]
        assert "3 inputs done, 0 already finished, 1 failed" in capsys.readouterr().err
    for single, grouped in zip(latents[1], latents[4]):
        np.testing.assert_allclose(grouped, single, atol=1e-5)
