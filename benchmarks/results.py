"""What the benchmarks share: how they report (one JSON object printed, and appended to a JSONL file
when asked) and how they measure peak memory."""

from __future__ import annotations

import json
import resource
from pathlib import Path


def report(result: dict, path: str | None) -> None:
    print(json.dumps(result))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(result) + "\n")


def peak_memory_gib(device) -> float:
    """The CUDA allocator's peak on a GPU, else the process's max RSS."""
    if device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
