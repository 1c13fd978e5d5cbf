import json
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"


def fixture_dir(kind: str) -> Path:
    folder = FIXTURES / kind
    if not (folder / "expected.npz").is_file():
        raise RuntimeError(f"official fixtures missing under {folder} (shared/fixtures/official)")
    return folder


@pytest.fixture(scope="session")
def official():
    """kind → (directory, expected arrays, meta) of the official-code fixtures."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            folder = fixture_dir(kind)
            expected = np.load(folder / "expected.npz")
            cache[kind] = folder, expected, json.loads(str(expected["meta_json"]))
        return cache[kind]

    return get


@pytest.fixture
def copy_model():
    """A copy of an official-format model folder, its state dict or args changed by the callables given."""

    def copy(folder, target, state=None, args=None):
        target.mkdir()
        checkpoint = torch.load(folder / "checkpoint.ckpt", map_location="cpu", weights_only=True)
        if state is not None:
            checkpoint["state_dict"] = state(checkpoint["state_dict"])
        torch.save(checkpoint, target / "checkpoint.ckpt")
        values = json.loads((folder / "args.json").read_text())
        (target / "args.json").write_text(json.dumps(args(values) if args else values))
        return target

    return copy
