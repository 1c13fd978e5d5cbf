import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from wala.autoencoder import WaveletVQVAE
from wala.cli import main
from wala.config import load_config
from wala.errors import WalaError
from wala.train.autoencoder import AutoencoderTrainConfig, load_autoencoder, train_autoencoder
from wala.train.ema import EMA
from wala.train.trainer import TrainConfig, learning_rate

TINY = "configs/ae_tiny.yaml"


def _config(data, out, **train):
    overrides = [f"train.data={data}", f"train.out={out}", "train.log_every=1", "train.eval_samples=4"]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    return load_config(AutoencoderTrainConfig, TINY, overrides)


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_loss_decreases_on_procedural_shapes(prepared, tmp_path):
    train_autoencoder(_config(prepared, tmp_path, steps=40, checkpoint_every=0))
    losses = [r["rec"] for r in _records(tmp_path) if "rec" in r]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_the_surface_term_is_part_of_the_objective(prepared, tmp_path):
    config = _config(prepared, tmp_path, steps=3, checkpoint_every=0)
    train_autoencoder(dataclasses.replace(config, surface_weight=10.0))
    for r in [r for r in _records(tmp_path) if "rec" in r]:
        assert r["surface"] > 0
        assert r["loss"] == pytest.approx(r["rec"] + r["vq"] + 10 * r["surface"], rel=1e-5)
    with pytest.raises(WalaError, match="surface_weight must be a finite number ≥ 0, got -1"):
        train_autoencoder(dataclasses.replace(config, surface_weight=-1))


def test_learning_rate_schedules():
    cosine = TrainConfig(steps=12, lr=1e-3, min_lr=1e-5, lr_schedule="cosine", warmup_steps=2)
    rates = [learning_rate(cosine, step) for step in range(12)]
    assert rates[:3] == pytest.approx([5e-4, 1e-3, 1e-3])
    assert all(a > b for a, b in zip(rates[2:], rates[3:]))  # decays monotonically after warmup
    assert learning_rate(cosine, 12) == pytest.approx(1e-5)  # and ends at min_lr
    assert rates[7] == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))  # halfway through the decay
    assert {learning_rate(TrainConfig(lr=3e-4), s) for s in (0, 5, 999)} == {3e-4}
    with pytest.raises(WalaError, match="unknown lr_schedule 'step'"):  # refused with the config, before any work
        load_config(AutoencoderTrainConfig, TINY, ["train.lr_schedule=step"])


def test_resume_after_a_kill_gives_the_uninterrupted_weights(prepared, tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train_autoencoder(_config(prepared, straight, steps=12, checkpoint_every=6))
    # the broken run dies after step 9 but before that checkpoint lands: it only has step 6
    train_autoencoder(_config(prepared, broken, steps=9, checkpoint_every=6))
    (broken / "step-00000009.safetensors").unlink()
    train_autoencoder(_config(prepared, broken, steps=12, checkpoint_every=6))
    _assert_same_checkpoints(straight / "step-00000012.safetensors", broken / "step-00000012.safetensors")


def test_ema_warmup_weighs_each_update_by_its_step(prepared, tmp_path):
    """train.ema_warmup: update n (from 0) keeps min(decay, (1 + n) / (10 + n)) of the average, so update 1
    keeps 2/11 of it (an update that ignored its step would keep 1/10) and 4,000 steps keep no trace of the
    random start (the fixed 0.999 keeps 2 %)."""
    config = _config(prepared, tmp_path, steps=2, checkpoint_every=1, ema_warmup="true")
    train_autoencoder(config)
    one, two = (load_file(str(tmp_path / f"step-0000000{n}.safetensors")) for n in (1, 2))
    names = [n for n, _ in WaveletVQVAE(config.model).named_parameters() if not n.startswith("quantize.")]
    for name in names:  # (the codebook's dead-code restarts come after the average)
        expected = 2 / 11 * one[f"ema.{name}"] + 9 / 11 * two[f"model.{name}"]
        torch.testing.assert_close(two[f"ema.{name}"], expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(two["ema.encoder.in_conv.weight"], two["model.encoder.in_conv.weight"])
    warm, fixed = EMA(torch.nn.Linear(2, 2), 0.999, warmup=True), EMA(torch.nn.Linear(2, 2), 0.999)
    assert math.prod(warm.decay_at(n) for n in range(4000)) < 1e-9 < 0.018 < math.prod([fixed.decay_at(0)] * 4000)
    assert warm.decay_at(10**5) == 0.999


def test_resume_follows_the_learning_rate_schedule(prepared, tmp_path):
    schedule = {"steps": 8, "checkpoint_every": 4, "lr_schedule": "cosine", "warmup_steps": 2, "min_lr": 1e-5}
    train_autoencoder(_config(prepared, tmp_path / "straight", **schedule))
    # the cosine decay spans `steps`, so this run keeps the whole config and loses its last checkpoint
    train_autoencoder(_config(prepared, tmp_path / "broken", **schedule))
    (tmp_path / "broken" / "step-00000008.safetensors").unlink()
    train_autoencoder(_config(prepared, tmp_path / "broken", **schedule))
    _assert_same_checkpoints(
        tmp_path / "straight" / "step-00000008.safetensors", tmp_path / "broken" / "step-00000008.safetensors"
    )
    rates = [r["lr"] for r in _records(tmp_path / "straight") if "lr" in r]
    assert rates[:2] == pytest.approx([5e-4, 1e-3]) and rates[-1] < rates[2]


def test_an_in_memory_cache_trains_the_same_weights(prepared, tmp_path):
    train_autoencoder(_config(prepared, tmp_path / "read", steps=3, checkpoint_every=0))
    train_autoencoder(_config(prepared, tmp_path / "cached", steps=3, checkpoint_every=0, cache="true"))
    _assert_same_checkpoints(
        tmp_path / "read" / "step-00000003.safetensors", tmp_path / "cached" / "step-00000003.safetensors"
    )
    with pytest.raises(WalaError, match="train.cache .* needs train.workers 0"):
        _config(prepared, tmp_path, cache="true", workers=2)


def _assert_same_checkpoints(path_a, path_b):
    a, b = load_file(str(path_a)), load_file(str(path_b))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_missing_and_corrupt_checkpoints_are_clear_errors(prepared, tmp_path, capsys):
    with pytest.raises(WalaError, match="checkpoint not found"):
        load_autoencoder(tmp_path / "nope.safetensors")
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "step-00000005.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(WalaError, match="corrupt checkpoint"):
        train_autoencoder(_config(prepared, bad, steps=6))  # never silently starts over
    assert main(["eval-ae", str(bad / "step-00000005.safetensors"), str(prepared)]) == 2
    assert capsys.readouterr().err.startswith("wala: error: corrupt checkpoint")


def test_eval_ae_prints_the_per_dataset_table(prepared, tmp_path, capsys):
    train_autoencoder(_config(prepared, tmp_path, steps=3))
    ckpt = tmp_path / "step-00000003.safetensors"
    assert main(["eval-ae", str(ckpt), str(prepared), "--points", "2000", "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    for name in ("procedural-chair", "procedural-mug", "procedural-table", "D-IoU", "FSCORE"):
        assert name in out
    assert "codebook: " in out and "decoded without quantizing" not in out
    result = json.loads((tmp_path / "e.json").read_text())
    overall = result["overall"]
    assert len(result["samples"]) == 12 and 0 <= overall["iou"] <= 1
    assert 1 <= overall["perplexity"] <= overall["codes_used"] <= overall["codebook_size"]
    # the continuous latent decodes to something else than its codes (the quantizer's share of the error)
    assert (
        main(["eval-ae", str(ckpt), str(prepared), "--no-surface", "--no-quantize", "--json", str(tmp_path / "c.json")])
        == 0
    )
    assert "decoded without quantizing" in capsys.readouterr().out
    continuous = json.loads((tmp_path / "c.json").read_text())["overall"]
    assert continuous["quantized"] is False and continuous["mse"] != overall["mse"]


def test_two_process_torchrun_keeps_ranks_in_sync(prepared, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "wala.cli",
        "train-ae",
        TINY,
        "--set",
        f"train.data={prepared}",
        "--set",
        f"train.out={tmp_path}",
        "--set",
        "train.steps=4",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.eval_samples=2",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    records = _records(tmp_path)
    assert {"step": 4, "ranks_in_sync": True, "world": 2} in records
    assert (tmp_path / "step-00000004.safetensors").is_file()


def test_the_autoencoder_of_a_released_model_fine_tunes_with_its_architecture(prepared256, tmp_path):
    from pathlib import Path

    released = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official" / "vx16"
    config = load_config(
        AutoencoderTrainConfig,
        None,
        [
            f"train.data={prepared256}",
            f"train.out={tmp_path}",
            f"train.init_from={released}",
            "train.steps=1",
            "train.batch_size=1",
            "train.eval_samples=0",
        ],
    )
    train_autoencoder(config)
    tuned, original = load_autoencoder(tmp_path / "step-00000001.safetensors"), load_autoencoder(released)
    assert tuned.config == original.config  # the released 12.9M architecture, whatever the run's model block said
    key = "decoder.out_conv.2.weight"
    assert not torch.equal(tuned.state_dict()[key], original.state_dict()[key])
    assert torch.allclose(tuned.state_dict()[key], original.state_dict()[key], atol=1e-2)  # started from it


def test_a_trained_vqvae_grows_deeper_and_starts_where_it_was(prepared, tmp_path):
    from wala.data.shards import WaveletTreeDataset
    from wala.train.autoencoder import start_state

    train_autoencoder(_config(prepared, tmp_path / "shallow", steps=3, checkpoint_every=3))
    shallow = tmp_path / "shallow" / "step-00000003.safetensors"
    deeper = _config(prepared, tmp_path / "deep", steps=1, init_from=shallow)
    deeper = dataclasses.replace(deeper, model=dataclasses.replace(deeper.model, blocks=(1, 2, 2)))
    model, original = WaveletVQVAE(deeper.model), load_autoencoder(shallow)
    before = original.state_dict()
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(start_state(model, shallow))
    # only the added blocks keep the deeper model's own tensors
    assert {k.split(".")[1] for k in fresh.keys() - before.keys()} == {"res_2_1", "res_3_1"}
    x = WaveletTreeDataset(prepared)[0][0][None]
    with torch.no_grad():  # the added blocks start as the identity: the same reconstruction
        assert torch.allclose(model.eval()(x)[0], original(x)[0], atol=1e-6)
    train_autoencoder(deeper)
    trained = load_autoencoder(tmp_path / "deep" / "step-00000001.safetensors")
    assert trained.config.blocks == (1, 2, 2)
    key = "decoder.out_conv.2.weight"  # one step from the checkpoint's weights, far from a fresh start
    assert torch.allclose(trained.state_dict()[key], before[key], atol=1e-2)
    assert not torch.allclose(fresh[key], before[key], atol=1e-2)
    assert json.loads((tmp_path / "deep" / "config.json").read_text())["train"]["init_from"] == str(shallow)
    shallow.rename(tmp_path / "moved.safetensors")  # resuming reads the run's own checkpoint, not init_from
    train_autoencoder(dataclasses.replace(deeper, train=dataclasses.replace(deeper.train, steps=2)))
    assert (tmp_path / "deep" / "step-00000002.safetensors").is_file()
    shallow = tmp_path / "moved.safetensors"
    start = start_state(WaveletVQVAE(original.config), shallow)  # the same architecture: the EMA weights
    assert all(torch.equal(start[k], v) for k, v in before.items())
    for change, refusal in [
        ({"blocks": (1, 1, 0)}, r"blocks \(1, 1, 1\) → \(1, 1, 0\)"),
        ({"width": 8}, "width 16 → 8"),
        ({"blocks": (1, 2, 2), "codebook_size": 64}, "codebook_size 128 → 64"),
    ]:
        with pytest.raises(WalaError, match=refusal):
            start_state(WaveletVQVAE(dataclasses.replace(deeper.model, groups=4, **change)), shallow)
