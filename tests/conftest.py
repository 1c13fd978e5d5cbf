import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wala.config import RepresentationConfig
from wala.data import prepare

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def fresh_python():
    """Runs Python `code` (args after it) in a new interpreter → (its last stdout line, the interpreter's
    own peak RSS in MiB). The peak is /proc's VmHWM, not ru_maxrss, which Linux carries over from the
    forking parent (pytest, after many tests) across exec."""

    def run(code: str, *args) -> tuple[str, float]:
        peak = "\nprint(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]))"
        done = subprocess.run(
            [sys.executable, "-c", code + peak, *map(str, args)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        *out, last = done.stdout.splitlines()
        return (out[-1] if out else ""), int(last) / 1024

    return run


@pytest.fixture(scope="session")
def real_meshes() -> Path:
    """The folder `make meshes` fills (CGAL demo data, PyMeshLab samples)."""
    folder = Path(os.environ.get("WALA_MESHES", REPO / "data" / "meshes"))
    if not (folder / "cgal" / "bunny00.off").is_file():
        raise RuntimeError(f"real meshes missing under {folder}: run `make meshes` (make test does)")
    return folder


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """12 procedural shapes (3 families × 4) at 64³, in shards of 5."""
    out = tmp_path_factory.mktemp("prepared")
    prepare(["procedural:chair,mug,table:4"], out, RepresentationConfig(resolution=64), shard_size=5, progress=False)
    return out


@pytest.fixture(scope="session")
def prepared256(tmp_path_factory):
    """2 procedural shapes at the released models' 256³, with renders at view 3 (image fine-tuning)."""
    out = tmp_path_factory.mktemp("prepared256")
    prepare(["procedural:mug,vase:1"], out, RepresentationConfig(resolution=256), progress=False, views="3")
    return out


@pytest.fixture(scope="session")
def tiny_autoencoder(prepared, tmp_path_factory):
    """A VQ-VAE checkpoint trained a few steps on `prepared` (its latents are what matter here)."""
    from wala.config import load_config
    from wala.train.autoencoder import AutoencoderTrainConfig, train_autoencoder

    out = tmp_path_factory.mktemp("ae")
    overrides = [f"train.data={prepared}", f"train.out={out}", "train.steps=4", "train.checkpoint_every=0"]
    train_autoencoder(load_config(AutoencoderTrainConfig, "configs/ae_tiny.yaml", overrides))
    return out / "step-00000004.safetensors"


@pytest.fixture(scope="session")
def tiny_generator(prepared, tiny_autoencoder, tmp_path_factory):
    """A point-cloud generator checkpoint trained 2 steps in `tiny_autoencoder`'s latent space."""
    from wala.config import load_config
    from wala.train.diffusion import DiffusionTrainConfig, train_diffusion

    out = tmp_path_factory.mktemp("generator")
    overrides = [f"train.data={prepared}", f"train.out={out}", f"autoencoder={tiny_autoencoder}", "train.steps=2"]
    train_diffusion(load_config(DiffusionTrainConfig, "configs/diffusion_tiny.yaml", overrides))
    return out / "step-00000002.safetensors"
