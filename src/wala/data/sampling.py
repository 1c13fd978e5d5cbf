"""Epoch orders over a dataset, deterministic by (seed, epoch), split across ranks.

"uniform" shuffles every sample once per epoch. "balanced" draws `per_dataset` samples from each
source dataset (without replacement while it has enough, with replacement when it is smaller):
the paper's balanced fine-tuning, N shapes per dataset.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from wala.errors import WalaError


def epoch_order(datasets: list[str], epoch: int, seed: int, mode: str = "uniform", per_dataset: int = 0) -> list[int]:
    """The sample indices of one epoch, in order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if mode == "uniform":
        return torch.randperm(len(datasets), generator=g).tolist()
    if mode != "balanced":
        raise WalaError(f"unknown sampling mode '{mode}' (uniform or balanced)")
    if per_dataset <= 0:
        raise WalaError("balanced sampling needs per_dataset > 0")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(datasets):
        groups[name].append(i)
    chosen: list[int] = []
    for name in sorted(groups):
        members = torch.tensor(groups[name])
        if len(members) >= per_dataset:
            pick = torch.randperm(len(members), generator=g)[:per_dataset]
        else:
            pick = torch.randint(len(members), (per_dataset,), generator=g)
        chosen += members[pick].tolist()
    return [chosen[i] for i in torch.randperm(len(chosen), generator=g).tolist()]


def rank_slice(order: list[int], rank: int, world: int) -> list[int]:
    """This rank's share of an epoch; every rank gets the same count (the tail is dropped)."""
    usable = len(order) - len(order) % world
    return order[rank:usable:world]
