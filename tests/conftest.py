import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def real_meshes() -> Path:
    """The folder `make meshes` fills (CGAL demo data, PyMeshLab samples)."""
    folder = Path(os.environ.get("WALA_MESHES", REPO / "data" / "meshes"))
    if not (folder / "cgal" / "bunny00.off").is_file():
        raise RuntimeError(f"real meshes missing under {folder}: run `make meshes` (make test does)")
    return folder
