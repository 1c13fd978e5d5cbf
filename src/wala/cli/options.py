"""What every command shares: checked values (a bad option is one line and exit 2, found before anything
loads: argparse calls them as `type=`), the one-line parser, the options several commands declare
(device, dtype, a generator and its sampling), progress bars, and how a command is run."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from wala.errors import WalaError

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed's signed range; sample i uses seed + i


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (`wala generate: error: …`), exit 2, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def steps(text: str) -> int:
    """A step count: a whole number, at least 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0…2**63-1, got {text}")
    return value


def finite(text: str) -> float:
    """A finite number (no nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def check_output_folder(path: str | Path) -> Path:
    """`path` as an output folder, checked before any work (nothing is made yet): one line when a file
    is there or the folder (or the nearest existing folder above it) cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WalaError(f"-o {path}: a file is there, not a folder")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise WalaError(f"-o {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WalaError(f"-o {path}: {existing} is not writable")
    return path


def run_command(run, args) -> int:
    """Runs a parsed command: a WalaError or a failed write is one line and exit 2, Ctrl-C one line
    and exit 130 (the shell's code for SIGINT); files are written atomically, so none is left half-done."""
    try:
        run(args)
    except WalaError as exc:
        print(f"wala: error: {exc}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        print(f"wala: error: cannot write {exc.filename or 'the output'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wala: interrupted", file=sys.stderr)
        return 130
    return 0


def add_device(p) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")


def add_dtype(p) -> None:
    p.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="weights: bf16 halves memory (and CPU time where bf16 is native), fp16 for GPUs; "
        "fp32 reproduces the official numbers",
    )


def generator_options(p, what="checkpoint"):
    p.add_argument(
        what,
        help="a model: a released WaLa directory (checkpoint.ckpt + args.json), "
        "a `wala convert` directory, or a train-diffusion checkpoint",
    )
    p.add_argument(
        "--steps",
        "--diffusion_rescale_timestep",
        dest="steps",
        type=steps,
        help="sampling steps (default: the condition's recommended)",
    )
    p.add_argument(
        "--scale",
        "--guidance",
        dest="scale",
        type=finite,
        help="classifier-free guidance scale (default: the condition's; for released point-cloud "
        "and voxel models 3.0, what their run.py really uses)",
    )
    p.add_argument("--seed", type=seed, default=0, help="sample i uses seed + i (seed 42 = run.py's default)")
    add_device(p)


def shape_bar(quiet: bool, desc: str):
    """A per-shape progress bar for a loop over items (None when quiet)."""
    from tqdm import tqdm

    return None if quiet else (lambda items: tqdm(items, desc=desc, unit="shape"))
