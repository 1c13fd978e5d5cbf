"""Prepared data, runs and model folders on object storage: a real S3-API server on 127.0.0.1 (moto),
s3fs through fsspec, and the same results as on a local disk."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from wala.cli import main
from wala.config import RepresentationConfig, load_config
from wala.data import WaveletTreeDataset, epoch_order, prepare
from wala.data.sampling import streaming_order
from wala.errors import WalaError
from wala.io import store
from wala.train.autoencoder import AutoencoderTrainConfig, train_autoencoder

BUILTIN = Path(__file__).parents[2] / "src" / "wala" / "builtin" / "pc64"


def test_writes_reads_listings_and_a_bounded_cache(bucket, tmp_path):
    store.write_bytes(f"{bucket}/a/x.bin", b"0123456789")
    assert store.read_bytes(f"{bucket}/a/x.bin", 2, 5) == b"234"  # one ranged GET
    assert store.glob(f"{bucket}/a", "*.bin") == [f"{bucket}/a/x.bin"]
    assert store.exists(f"{bucket}/a/x.bin") and not store.exists(f"{bucket}/a/y.bin")
    cache = store.Cache(tmp_path / "c", limit=2500)
    for i in range(4):
        store.write_bytes(f"{bucket}/f{i}.bin", bytes([i]) * 1000)
        assert cache.local(f"{bucket}/f{i}.bin").read_bytes() == bytes([i]) * 1000
    kept = list((tmp_path / "c").iterdir())
    assert sum(p.stat().st_size for p in kept) <= 2500 and cache.local(f"{bucket}/f3.bin") in kept
    cache.local(f"{bucket}/f3.bin").unlink()  # evicted by another process sharing the folder: fetched again
    assert cache.read(f"{bucket}/f3.bin", 10, 13) == bytes([3]) * 3
    with pytest.raises(WalaError, match="not found: s3://"):
        store.read_bytes(f"{bucket}/missing.bin")


def test_prep_to_s3_gives_the_local_arrays(bucket, prepared):
    prepare(["procedural:chair,mug,table:4"], f"{bucket}/data", RepresentationConfig(resolution=64), 5, progress=False)
    assert [Path(p).name for p in store.glob(f"{bucket}/data", "shard-*")] == [
        f"shard-0000{i}.{suffix}" for i in range(3) for suffix in ("index.json", "tar")
    ]
    remote, local = WaveletTreeDataset(f"{bucket}/data"), WaveletTreeDataset(prepared)
    assert [r["key"] for r in remote.records] == [r["key"] for r in local.records]
    keys = ("coarse", "d0", "d1", "points", "occupancy")
    for i in range(len(local)):
        a, b = remote.arrays(i, keys), local.arrays(i, keys)
        assert all(np.array_equal(a[k], b[k]) for k in keys)
    # a rerun finds every shard finished on the store
    again = prepare(["procedural:chair,mug,table:4"], f"{bucket}/data", RepresentationConfig(resolution=64), 5)
    assert again["skipped_shards"] == 3


def _train(data, out, cache_dir, **train):
    overrides = [f"train.data={data}", f"train.out={out}", "train.log_every=1", "train.eval_samples=2"]
    overrides += [f"train.cache_dir={cache_dir}", "train.shuffle_buffer=4", "train.cache_gb=0.0001"]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    train_autoencoder(load_config(AutoencoderTrainConfig, "configs/ae_tiny.yaml", overrides))


def _checkpoint(location: str) -> dict[str, torch.Tensor]:
    return load_file(str(store.Cache().local(location)))


def test_streaming_from_s3_trains_as_local_data_and_resumes_bit_exactly(bucket, prepared, tmp_path, monkeypatch):
    shutil.copytree(prepared, tmp_path / "up")
    for path in sorted((tmp_path / "up").iterdir()):
        store.upload(path, f"{bucket}/data/{path.name}")
    shards = tmp_path / "shards"
    _train(prepared, tmp_path / "local", shards, steps=6, checkpoint_every=3)
    _train(f"{bucket}/data", f"{bucket}/straight", shards, steps=6, checkpoint_every=3, workers=2)  # loaders fork
    # the shard cache held at most its bound (0.0001 GB) beyond the shard just fetched
    largest = max(p.stat().st_size for p in (prepared).glob("*.tar"))
    assert sum(p.stat().st_size for p in shards.iterdir()) <= 0.0001 * 2**30 + largest
    # killed after step 4, before its checkpoint landed; resumed on "another machine" (an empty cache)
    _train(f"{bucket}/data", f"{bucket}/broken", shards, steps=4, checkpoint_every=3)
    store.filesystem(bucket)[0].rm(f"{bucket[5:]}/broken/step-00000004.safetensors")
    monkeypatch.setenv("WALA_CACHE", str(tmp_path / "elsewhere"))
    _train(f"{bucket}/data", f"{bucket}/broken", tmp_path / "shards2", steps=6, checkpoint_every=3)

    local = load_file(str(tmp_path / "local" / "step-00000006.safetensors"))
    for run in ("straight", "broken"):
        remote = _checkpoint(f"{bucket}/{run}/step-00000006.safetensors")
        assert remote.keys() == local.keys()
        assert all(torch.equal(remote[k], local[k]) for k in local), run
    metrics = store.read_bytes(f"{bucket}/broken/metrics.jsonl").decode().splitlines()
    assert [json.loads(line).get("step") for line in metrics if "loss" in line] == [1, 2, 3, 4, 4, 5, 6]


def test_streaming_order_deals_shards_to_ranks():
    datasets = ["a"] * 9 + ["b"] * 9
    shards = [i // 4 for i in range(18)]  # 5 shards: 4, 4, 4, 4, 2 samples
    order = epoch_order(datasets, 0, 3)
    parts = [streaming_order(order, shards, 0, 3, rank, 2, buffer=3) for rank in range(2)]
    assert len(parts[0]) == len(parts[1]) > 0
    assert not {shards[i] for i in parts[0]} & {shards[i] for i in parts[1]}  # a shard is read by one rank
    assert parts[0] == streaming_order(order, shards, 0, 3, 0, 2, buffer=3)  # a pure function: exact resume
    assert parts[0] != streaming_order(epoch_order(datasets, 1, 3), shards, 1, 3, 0, 2, buffer=3)
    whole = streaming_order(order, shards, 0, 3, 0, 1, buffer=1)  # buffer 1: shard after shard
    assert sorted(whole) == list(range(18))
    runs = [shards[i] for i in whole]
    assert sum(a != b for a, b in zip(runs, runs[1:])) == 4
    balanced = epoch_order(datasets, 0, 3, "balanced", per_dataset=12)  # with replacement: repeats kept
    assert len(streaming_order(balanced, shards, 0, 3, 0, 1, buffer=5)) == 24


def test_model_folders_and_errors_at_urls(bucket, capsys):
    from wala.pipeline import WaLaPipeline

    for path in BUILTIN.iterdir():
        store.upload(path, f"{bucket}/models/pc64/{path.name}")
    points = torch.rand(1, 2048, 3) - 0.5

    def latent(pipe):
        return pipe.generate_latents(pipe.condition_tensor(pointcloud=points), steps=2, seed=5)

    assert torch.equal(
        latent(WaLaPipeline.from_pretrained(f"{bucket}/models/pc64", "cpu")),
        latent(WaLaPipeline.from_pretrained(BUILTIN, "cpu")),
    )
    assert main(["prep", "procedural:mug:1", "-o", "s3://no-such-bucket-wala/data", "--resolution", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "s3://no-such-bucket-wala/data" in err
    with pytest.raises(WalaError, match="not found: s3://"):
        WaLaPipeline.from_pretrained(f"{bucket}/models/none", "cpu")


def test_meshes_at_a_url_prepare_as_local_files(bucket, real_meshes, tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    shutil.copy(real_meshes / "cgal" / "bunny00.off", meshes)
    (meshes / "broken.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    for path in meshes.iterdir():
        store.upload(path, f"{bucket}/meshes/{path.name}")
    config = RepresentationConfig(resolution=64)
    remote = prepare([f"{bucket}/meshes"], f"{bucket}/data", config, progress=False)
    local = prepare([str(meshes)], tmp_path / "data", config, progress=False)
    assert remote["samples"] == local["samples"] == 1
    logged = [json.loads(line) for line in store.read_bytes(f"{bucket}/data/errors.jsonl").splitlines()]
    assert [e["key"] for e in logged] == ["meshes__broken_obj"] and logged[0]["source"].startswith("s3://")
    keys = ("coarse", "d0", "d1", "points", "occupancy")
    a, b = WaveletTreeDataset(f"{bucket}/data").arrays(0, keys), WaveletTreeDataset(tmp_path / "data").arrays(0, keys)
    assert all(np.array_equal(a[k], b[k]) for k in keys)
