import json
from pathlib import Path

import numpy as np
import pytest

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
