import numpy as np
import pytest
import torch

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.io.mesh import Normalization
from wala.io.shapefile import ShapeFile, load_shape, save_shape
from wala.wavelet import tsdf_to_tree


def test_tree_shape_file_round_trips(tmp_path):
    config = RepresentationConfig(resolution=64)
    tree = tsdf_to_tree(torch.randn(1, 64, 64, 64), config)
    save_shape(tmp_path / "s.npz", ShapeFile(config, Normalization(np.array([1.0, 2, 3]), 0.5), "src.obj", tree=tree))
    back = load_shape(tmp_path / "s.npz")
    assert back.kind == "tree" and back.config == config and back.source == "src.obj"
    torch.testing.assert_close(back.tree.coarse, tree.coarse)
    torch.testing.assert_close(back.tree.details[1], tree.details[1])
    np.testing.assert_array_equal(back.normalization.center, [1, 2, 3])


def test_tsdf_of_wrong_size_is_refused(tmp_path):
    config = RepresentationConfig(resolution=64)
    save_shape(tmp_path / "s.npz", ShapeFile(config, Normalization(np.zeros(3), 1.0), "", tsdf=np.zeros((32, 32, 32))))
    with pytest.raises(WalaError, match=r"\(64, 64, 64\)"):
        load_shape(tmp_path / "s.npz")


@pytest.mark.parametrize("content, message", [(b"not a zip", "not a valid .npz"), (None, "not found")])
def test_corrupt_or_missing_shape_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WalaError, match=message):
        load_shape(path)


def test_foreign_npz_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", points=np.zeros((3, 3)))
    with pytest.raises(WalaError, match="not a wala shape file"):
        load_shape(tmp_path / "other.npz")
