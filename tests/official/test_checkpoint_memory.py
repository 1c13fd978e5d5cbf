"""A released checkpoint.ckpt holds optimizer state beside the weights (WaLa-SV-1B's is 17.8 GB for 4–5 GB of
weights): it is read memory-mapped, and only the weights are touched, so the state never reaches memory."""

import shutil

import torch

GIB = 2**30


def padded_copy(folder, target, state_bytes: int):
    """The model folder with Adam-like optimizer state of `state_bytes` added to its checkpoint."""
    target.mkdir()
    shutil.copy(folder / "args.json", target / "args.json")
    checkpoint = torch.load(folder / "checkpoint.ckpt", map_location="cpu", weights_only=True)
    half = state_bytes // 2 // 4  # float32 elements of each moment
    moments = {"step": torch.tensor(1000.0), "exp_avg": torch.empty(half), "exp_avg_sq": torch.empty(half)}
    checkpoint["optimizer_states"] = [{"state": {0: moments}, "param_groups": [{"lr": 1e-4, "params": [0]}]}]
    torch.save(checkpoint, target / "checkpoint.ckpt")
    return target


def test_optimizer_state_does_not_grow_the_peak_memory_of_generate_or_convert(official, tmp_path, fresh_python):
    folder, _, _ = official("pc")
    padded = padded_copy(folder, tmp_path / "padded", 2 * GIB)
    assert (padded / "checkpoint.ckpt").stat().st_size > 2 * GIB
    run = "import sys\nfrom wala.cli import main\nmain(sys.argv[1:])"  # exit code 2 (no surface) is fine too
    generate = ["generate", "--pointcloud", folder / "input.h5df", "--steps", "2", "--no-preview", "--seed", "1"]
    _, plain_peak = fresh_python(run, generate[0], folder, *generate[1:], "-o", tmp_path / "plain-out")
    _, padded_peak = fresh_python(run, generate[0], padded, *generate[1:], "-o", tmp_path / "padded-out")
    assert padded_peak - plain_peak < 400, (
        plain_peak,
        padded_peak,
    )  # MiB; seen 1,070 vs 1,055 (read whole: 1,051 vs 2,393)
    _, convert_peak = fresh_python(run, "convert", padded, "-o", tmp_path / "converted")
    assert convert_peak < plain_peak + 400
    assert (tmp_path / "converted" / "model.safetensors").is_file()
