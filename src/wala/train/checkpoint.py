"""Checkpoints: one safetensors file per save, written atomically, with the run's config and
counters in its metadata (and the config also as `config.json` beside it, for people).

Tensors: `model.*` and `ema.*` (state dicts), `optim.{i}.{name}` (optimizer state per parameter),
`rng.*` (generator states). Metadata: "wala" = kind, "config" = JSON, "state" = JSON with step,
epoch, position in the epoch and the optimizer's param groups. That is everything exact resume needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from wala.errors import WalaError, one_line
from wala.io import store
from wala.io.mesh import write_safetensors


def _prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().contiguous().cpu() for k, v in state.items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Splits an optimizer state dict into tensors and a JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict) -> None:
    """Inverse of `optimizer_tensors`; full tensors are cut to the shards of FSDP parameters."""
    from wala.train.fsdp import shard_like

    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(rest["scalars"].items()):
        index, name = key.split(".", 1)
        if torch.is_tensor(value):
            value = shard_like(value, params[int(index)])
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


def save_checkpoint(
    path: str | Path, kind: str, config: dict, state: dict, tensors: dict[str, dict[str, torch.Tensor]]
) -> Path:
    """`tensors`: {prefix: state dict}. Written to a temporary file, fsynced, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat: dict[str, torch.Tensor] = {}
    for prefix, values in tensors.items():
        flat.update(_prefixed(prefix, values))
    metadata = {"wala": kind, "config": json.dumps(config), "state": json.dumps(state)}
    write_safetensors(path, flat, metadata)
    (path.parent / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def load_checkpoint(path: str | Path, kind: str | None = None) -> tuple[dict, dict, dict[str, dict[str, torch.Tensor]]]:
    """Returns (config, state, {prefix: tensors}); a missing, corrupt or foreign file is a WalaError.
    `path` may be a URL (fetched into the local cache)."""
    path = store.Cache().local(str(path)) if store.is_url(path) else Path(path)
    if not path.is_file():
        raise WalaError(f"checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WalaError(f"corrupt checkpoint {path}: {exc}") from exc
    if "wala" not in metadata:
        raise WalaError(f"{path} is not a wala checkpoint (no 'wala' metadata)")
    if kind is not None and metadata["wala"] != kind:
        raise WalaError(f"{path} is a '{metadata['wala']}' checkpoint, expected '{kind}'")
    prefixes = {k.split(".", 1)[0] for k in tensors}
    return json.loads(metadata["config"]), json.loads(metadata["state"]), {p: _unprefixed(p, tensors) for p in prefixes}


def load_weights(model: torch.nn.Module, tensors: dict[str, dict[str, torch.Tensor]], weights: str, path) -> None:
    """Loads the `weights` state ("ema" or "model") of a checkpoint into a model built from its config."""
    try:
        model.load_state_dict(tensors[weights])
    except (RuntimeError, KeyError) as exc:
        raise WalaError(f"checkpoint {path} does not fit its own model config: {one_line(exc)}") from exc


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The highest-step `step-*.safetensors` in `folder`, or None."""
    found = sorted(Path(folder).glob("step-*.safetensors"))
    return found[-1] if found else None


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.safetensors"
