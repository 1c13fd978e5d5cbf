"""scripts/train_builtin.py refuses options that would be ignored, before any stage runs."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_builtin.py"


def test_ae_set_with_a_trained_autoencoder_is_refused(tmp_path):
    work = tmp_path / "work"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(work), "--stages", "train"]
        + ["--autoencoder", "checkpoints/ae64_fine/ema.safetensors", "--ae-set", "model.width=48"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--ae-set" in run.stderr.splitlines()[-1] and "trained already" in run.stderr
    assert not work.exists()
