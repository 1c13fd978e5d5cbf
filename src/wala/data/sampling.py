"""Epoch orders over a dataset, deterministic by (seed, epoch), split across ranks (by sample, or for
streaming from object storage by shard, through a shuffle buffer: `streaming_order`).

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


def streaming_order(
    order: list[int], shards: list[int], epoch: int, seed: int, rank: int, world: int, buffer: int
) -> list[int]:
    """This rank's share of an epoch read shard by shard, for data on object storage: the epoch's
    samples (`order`, from `epoch_order`: uniform or balanced) grouped by the shard that stores them,
    the shards in a random order dealt to the ranks in turn (each rank reads only its own shards), and
    each rank's stream shuffled through a buffer of `buffer` samples. Every rank gets the same count
    (the smallest rank's). A function of (seed, epoch, rank) alone, so a resumed run gets the same batches."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 500_009)
    by_shard: dict[int, list[int]] = defaultdict(list)
    for i in order:
        by_shard[shards[i]].append(i)
    names = sorted(by_shard)
    dealt = [names[j] for j in torch.randperm(len(names), generator=g).tolist()]
    mine = [i for shard in dealt[rank::world] for i in by_shard[shard]]
    usable = min(sum(len(by_shard[s]) for s in dealt[r::world]) for r in range(world))
    g.manual_seed(seed * 1_000_003 + epoch * 7_919 + rank + 900_001)
    out: list[int] = []
    held: list[int] = []
    for i in mine:
        held.append(i)
        if len(held) >= buffer:
            out.append(held.pop(int(torch.randint(len(held), (1,), generator=g))))
    while held:
        out.append(held.pop(int(torch.randint(len(held), (1,), generator=g))))
    return out[:usable]
