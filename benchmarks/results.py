"""How the benchmarks report: one JSON object printed, and appended to a JSONL file when asked."""
from __future__ import annotations

import json
from pathlib import Path


def report(result: dict, path: str | None) -> None:
    print(json.dumps(result))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(result) + "\n")
