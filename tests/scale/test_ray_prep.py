"""`wala prep --ray`: the same shard jobs as Ray tasks on a local Ray cluster the test starts, with the
arrays of a local run, bad meshes logged and skipped, and finished shards skipped on a rerun."""

import json
import shutil

import numpy as np
import pytest

from wala.cli import build_parser
from wala.config import RepresentationConfig
from wala.data import WaveletTreeDataset, prepare

KEYS = ("coarse", "d0", "d1", "points", "occupancy")


def _sources(real_meshes, tmp_path) -> list[str]:
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    shutil.copy(real_meshes / "cgal" / "bunny00.off", meshes)
    (meshes / "broken.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    return [str(meshes), "procedural:mug,vase:2"]


def test_ray_tasks_give_the_local_arrays_and_resume(real_meshes, tmp_path):
    ray = pytest.importorskip("ray")  # the `scale` extra; dev installs it, so CI runs this
    sources, config = _sources(real_meshes, tmp_path), RepresentationConfig(resolution=64)
    local = prepare(sources, tmp_path / "local", config, shard_size=2, progress=False)
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    try:
        remote = prepare(sources, tmp_path / "ray", config, shard_size=2, workers=2, progress=False, ray="auto")
        assert remote["samples"] == local["samples"] == 5
        assert [e["key"] for e in remote["errors"]] == [e["key"] for e in local["errors"]] == ["meshes__broken_obj"]
        a, b = WaveletTreeDataset(tmp_path / "local"), WaveletTreeDataset(tmp_path / "ray")
        assert [r["key"] for r in a.records] == [r["key"] for r in b.records]
        for i in range(len(a)):
            x, y = a.arrays(i, KEYS), b.arrays(i, KEYS)
            assert all(np.array_equal(x[k], y[k]) for k in KEYS), a.records[i]["key"]
        # a worker died with shard 0 (the bunny, the broken mesh) unfinished: the rerun does it alone, to the same bytes
        shard = tmp_path / "ray" / "shard-00000.tar"
        written = shard.read_bytes()
        (tmp_path / "ray" / "shard-00000.index.json").unlink()
        shard.unlink()
        again = prepare(sources, tmp_path / "ray", config, shard_size=2, workers=2, progress=False, ray="auto")
        assert again["skipped_shards"] == 2 and shard.read_bytes() == written
        logged = (tmp_path / "ray" / "errors.jsonl").read_text().splitlines()
        assert [json.loads(line)["key"] for line in logged] == ["meshes__broken_obj"] * 2  # each run's failures
    finally:
        ray.shutdown()


def test_the_ray_flag():
    parse = build_parser().parse_args
    assert parse(["prep", "x", "-o", "y"]).ray == ""
    assert parse(["prep", "x", "-o", "y", "--ray"]).ray == "local"
    assert parse(["prep", "x", "-o", "y", "--ray", "10.0.0.1:6379", "--task-memory", "4"]).task_memory == 4.0
