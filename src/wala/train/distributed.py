"""torchrun-aware process-group set-up: gloo on CPU, nccl on GPU; a no-op when run alone."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str = "auto") -> Dist:
    """Reads torchrun's RANK/WORLD_SIZE/LOCAL_RANK; picks the device ("auto": a GPU if present)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local, dev)


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.active:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast(t: torch.Tensor, d: Dist) -> None:
    if d.active:
        dist.broadcast(t, src=0)


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        # both ranks leave together: gloo aborts a process ("terminate called without an active
        # exception") when its peer tears down while it is still in flight
        dist.barrier()
        dist.destroy_process_group()


@torch.no_grad()
def parameters_in_sync(model: torch.nn.Module, d: Dist) -> bool:
    """True when every rank holds bit-identical parameters (compared by a float64 checksum)."""
    if not d.active:
        return True
    from wala.train.fsdp import gathered

    full = gathered(dict(model.named_parameters()))  # FSDP shards differ by design; their gathers may not
    local = torch.stack([p.detach().double().sum() for p in full.values()]).to(d.device)
    gathered = [torch.zeros_like(local) for _ in range(d.world)]
    dist.all_gather(gathered, local)
    return all(torch.equal(g, gathered[0]) for g in gathered)
