"""`train.precision: bf16`: FSDP2's mixed-precision policy under torchrun, autocast in a single
process; the weights, Adam's state and so the checkpoints stay float32."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from wala.config import load_config
from wala.errors import WalaError
from wala.train.diffusion import DiffusionTrainConfig, train_diffusion

TINY = "configs/diffusion_tiny.yaml"


def _train(prepared, autoencoder, out, *extra) -> list[str]:
    """Overrides of the tiny point-cloud generator's config: 3 steps of 2 shapes."""
    return [
        f"train.data={prepared}",
        f"train.out={out}",
        f"autoencoder={autoencoder}",
        "train.steps=3",
        "train.batch_size=2",
        "train.eval_samples=2",
        "train.log_every=1",
        *extra,
    ]


def _torchrun(args: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sets = [arg for value in args for arg in ("--set", value)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "wala.cli"]
    done = subprocess.run([*cmd, "train-diffusion", TINY, *sets], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _assert_float32_and_finite(checkpoint: dict[str, torch.Tensor]) -> None:
    floats = {key: value for key, value in checkpoint.items() if value.is_floating_point()}
    assert any(key.startswith("optim.") for key in floats)  # Adam's moments are in the file too
    for key, value in floats.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), key


def test_fsdp_in_bf16_trains_and_keeps_float32_weights(prepared, tiny_autoencoder, tmp_path):
    _torchrun(_train(prepared, tiny_autoencoder, tmp_path / "bf16", "train.fsdp=true", "train.precision=bf16"))
    _torchrun(_train(prepared, tiny_autoencoder, tmp_path / "fp32", "train.fsdp=true", "train.precision=fp32"))
    records = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in records if "loss" in r)
    assert {"step": 3, "ranks_in_sync": True, "world": 2} in records
    bf16 = load_file(str(tmp_path / "bf16" / "step-00000003.safetensors"))
    fp32 = load_file(str(tmp_path / "fp32" / "step-00000003.safetensors"))
    _assert_float32_and_finite(bf16)
    # the same start and samples: only the arithmetic differs, so different weights show bf16 was used
    assert any(not torch.equal(bf16[key], fp32[key]) for key in fp32 if key.startswith("model.network."))


def test_bf16_autocasts_a_single_process_run_on_cpu_too(prepared, tiny_autoencoder, tmp_path):
    for precision in ("bf16", "fp32"):
        config = _train(prepared, tiny_autoencoder, tmp_path / precision, f"train.precision={precision}")
        train_diffusion(load_config(DiffusionTrainConfig, TINY, config))
    bf16 = load_file(str(tmp_path / "bf16" / "step-00000003.safetensors"))
    fp32 = load_file(str(tmp_path / "fp32" / "step-00000003.safetensors"))
    _assert_float32_and_finite(bf16)
    assert any(not torch.equal(bf16[key], fp32[key]) for key in fp32 if key.startswith("model.network."))


def test_an_unknown_precision_is_refused():
    with pytest.raises(WalaError, match="unknown precision 'fp16'"):
        load_config(DiffusionTrainConfig, TINY, ["train.precision=fp16"])
