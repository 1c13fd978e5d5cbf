import numpy as np
import pytest
import trimesh

from wala.errors import WalaError
from wala.io import load_mesh, normalize_mesh, save_mesh


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_each_format_round_trips(tmp_path, suffix):
    box = trimesh.creation.box((1, 2, 3))
    path = tmp_path / f"box{suffix}"
    save_mesh(box, path)
    loaded = load_mesh(path)
    np.testing.assert_allclose(loaded.bounds, box.bounds, atol=1e-6)
    assert abs(loaded.area - box.area) < 1e-6


def test_gltf_scene_is_flattened_with_its_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box((1, 1, 1)), node_name="a")
    moved = np.eye(4)
    moved[:3, 3] = (5, 0, 0)
    scene.add_geometry(trimesh.creation.box((1, 1, 1)), node_name="b", transform=moved)
    path = tmp_path / "scene.glb"
    path.write_bytes(scene.export(file_type="glb"))
    mesh = load_mesh(path)
    assert len(mesh.faces) == 24
    np.testing.assert_allclose(mesh.bounds, [[-0.5, -0.5, -0.5], [5.5, 0.5, 0.5]], atol=1e-6)


def test_normalize_puts_the_longest_side_on_the_bound():
    mesh = trimesh.creation.box((2, 4, 1))
    mesh.apply_translation((10, -3, 7))
    normalized, norm = normalize_mesh(mesh, 0.9)
    np.testing.assert_allclose(normalized.bounds, [[-0.45, -0.9, -0.225], [0.45, 0.9, 0.225]], atol=1e-9)
    np.testing.assert_allclose(norm.to_world(normalized.vertices), mesh.vertices, atol=1e-9)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.obj", None, "not found"),
        ("shape.xyz3", b"", "unknown mesh format"),
        ("broken.glb", b"glTF\x02\x00\x00\x00garbage", "cannot read"),
        ("empty.obj", b"# nothing here\n", "empty|no faces|no triangle"),
        ("nan.obj", b"v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n", "NaN"),
        ("flat.obj", b"v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "degenerate"),
        ("point.obj", b"v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", "degenerate"),
    ],
)
def test_bad_mesh_files_raise_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WalaError, match=message) as info:
        load_mesh(path)
    assert "\n" not in str(info.value)


def test_save_refuses_unknown_formats(tmp_path):
    with pytest.raises(WalaError, match="cannot write"):
        save_mesh(trimesh.creation.box(), tmp_path / "x.fbx")


def test_plain_obj_writer_gives_trimesh_bytes(real_meshes, tmp_path):
    mesh = trimesh.load(real_meshes / "cgal" / "bunny00.off", process=False)  # 72k faces of arbitrary floats
    save_mesh(mesh, tmp_path / "ours.obj")
    assert (tmp_path / "ours.obj").read_text() == mesh.export(file_type="obj")
    coloured = trimesh.creation.box()
    coloured.visual.vertex_colors = [255, 0, 0, 255]  # trimesh's exporter keeps what ours would drop
    save_mesh(coloured, tmp_path / "coloured.obj")
    assert (tmp_path / "coloured.obj").read_text() == coloured.export(file_type="obj")
