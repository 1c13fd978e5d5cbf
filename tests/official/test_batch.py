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
