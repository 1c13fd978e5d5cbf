import numpy as np
import trimesh

from wala.cli import main
from wala.io import load_mesh


def _sphere_file(tmp_path):
    path = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(4, radius=3.0).export(path)
    return path


def test_encode_decode_round_trip(tmp_path, capsys):
    src = _sphere_file(tmp_path)
    assert main(["encode", str(src), "-o", str(tmp_path / "s.npz"), "--resolution", "64"]) == 0
    assert main(["decode", str(tmp_path / "s.npz"), "-o", str(tmp_path / "back.obj")]) == 0
    mesh = load_mesh(tmp_path / "back.obj")
    assert abs(np.linalg.norm(mesh.vertices, axis=1).mean() - 0.9) < 0.02  # normalized frame
    assert main(["decode", str(tmp_path / "s.npz"), "-o", str(tmp_path / "world.stl"), "--original-frame"]) == 0
    assert abs(np.linalg.norm(load_mesh(tmp_path / "world.stl").vertices, axis=1).mean() - 3.0) < 0.07


def test_tsdf_kind_and_roundtrip_report(tmp_path, capsys):
    src = _sphere_file(tmp_path)
    assert main(["encode", str(src), "-o", str(tmp_path / "t.npz"), "--kind", "tsdf", "--resolution", "48"]) == 0
    assert main(["decode", str(tmp_path / "t.npz"), "-o", str(tmp_path / "t.glb")]) == 0
    assert (
        main(["roundtrip", str(src), "--resolution", "64", "--points", "5000", "--json", str(tmp_path / "r.json")]) == 0
    )
    out = capsys.readouterr().out
    for variant in ("tsdf", "tree", "tree_filtered", "c0"):
        assert variant in out
    assert (tmp_path / "r.json").is_file()


def test_shapes_command_writes_meshes(tmp_path):
    assert main(["shapes", "mug", "--count", "2", "--resolution", "48", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mug_0000.obj", "mug_0001.obj"]


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty.obj").write_text("# nothing\n")
    (tmp_path / "bad.npz").write_bytes(b"junk")
    cases = [
        ["encode", str(tmp_path / "missing.obj"), "-o", str(tmp_path / "x.npz")],
        ["encode", str(tmp_path / "empty.obj"), "-o", str(tmp_path / "x.npz")],
        ["encode", str(_sphere_file(tmp_path)), "-o", str(tmp_path / "x.npz"), "--resolution", "8"],
        ["decode", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "x.obj")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("wala: error: ") and err.count("\n") == 1
