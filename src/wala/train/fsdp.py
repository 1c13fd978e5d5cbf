"""Fully sharded data parallel (FSDP2 `fully_shard`) for the large generators.

Each unit (an attention block) and then the whole model are sharded, so a rank holds 1/world of
the weights, gradients and Adam state and gathers one block at a time. Checkpoints stay in the
single-file, full-tensor format: every rank joins the gathers, rank 0 writes; loading scatters the
full tensors back into shards, so a run can resume with or without FSDP.

With bf16 (the trainer's `precision`), each unit gathers its weights in bfloat16 and computes in it,
so gathered weights and saved activations take half the memory; the shards (the weights the
optimizer steps and the checkpoint holds), the gradient reduce-scatter and Adam stay float32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor


def shard(model: nn.Module, units: list[nn.Module], bf16: bool = False) -> None:
    """Shards each unit, then the rest of `model`. bf16: mixed precision (the module docstring); the
    model's outputs come back float32, so the loss is computed in float32."""
    half = dict(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else {}
    for unit in units:
        fully_shard(unit, mp_policy=MixedPrecisionPolicy(**half))
    fully_shard(model, mp_policy=MixedPrecisionPolicy(**half, output_dtype=torch.float32 if bf16 else None))


def gathered(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Full tensors of a (possibly sharded) state dict. A collective: every rank must call it."""
    return {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in state.items()}


def load_full_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Loads full tensors into a sharded model (each rank keeps its shard)."""
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=True))


def shard_like(value: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """A full optimizer-state tensor cut like its (sharded) parameter."""
    if isinstance(param, DTensor) and not isinstance(value, DTensor) and value.shape == param.shape:
        return distribute_tensor(value.to(param.device), param.device_mesh, param.placements)
    return value
