import pytest

from wala.eval.roundtrip import roundtrip_metrics
from wala.pipeline import encode_mesh_file


@pytest.mark.parametrize("name", ["cgal/bunny00.off", "cgal/armadillo.off", "pymeshlab/cow.obj"])
def test_wavelet_tree_keeps_the_shape_and_c0_alone_does_not(real_meshes, name):
    encoded = encode_mesh_file(real_meshes / name)  # 256³, the paper's setting
    metrics = roundtrip_metrics(encoded.tsdf, encoded.mesh, points=30_000)
    assert metrics["tsdf"]["iou"] == 1.0
    assert metrics["tree"]["iou"] >= 0.99
    assert metrics["c0"]["iou"] < metrics["tree"]["iou"] - 0.005
    assert metrics["tree"]["mse"] < metrics["c0"]["mse"] / 3
    assert metrics["tree"]["fscore"] > 0.95
