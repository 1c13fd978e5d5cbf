"""What the benchmarks share: how they report (one JSON object printed, and appended to a JSONL file
when asked) and how they measure peak memory."""

from __future__ import annotations

import json
import resource
from pathlib import Path

# Appended to code run in a fresh interpreter: prints that process's own peak RSS in KiB (/proc VmHWM;
# ru_maxrss would carry the parent's peak over a fork).
PEAK = "\nprint(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]))"


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
