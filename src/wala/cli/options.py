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

MAX_SAMPLES = 256  # `wala generate --samples`: all are drawn as one batch, so memory grows with them
INTERRUPTED = 130  # the shell's exit status for SIGINT


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (`wala generate: error: …`), exit 2, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def printable(message: str) -> str:
    """`message` with every non-printable character (newline, ANSI escape, bidi override, …) escaped as
    `repr` writes it (`\\n`, `\\x1b`): text from a file or an argument can neither break the line nor
    forge or colour others."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def steps(text: str) -> int:
    """A step count: a whole number, at least 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def samples(text: str) -> int:
    """A sample count: a whole number in 1…MAX_SAMPLES."""
    value = _whole(text)
    if not 1 <= value <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"must be in 1…{MAX_SAMPLES}, got {value}")
    return value


def seed(text: str) -> int:
    """A seed: a whole number in 0…2**63-1 (`wala.pipeline.SEED_MAX`)."""
    from wala.pipeline import SEED_MAX  # argparse calls this after build_parser has imported torch

    value = _whole(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0…2**63-1, got {value}")
    return value


def seeds(text: str) -> tuple[int, ...]:
    """Distinct seeds separated by commas ("0,1"), each as `seed` checks it, in the order given."""
    values = tuple(seed(part) for part in text.split(","))
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"names a seed twice: {text!r}")
    return values


def device(text: str) -> str:
    """A device name `wala.pipeline.resolve_device` takes (auto, cpu, cuda, cuda:N, mps) and finds here."""
    from wala.pipeline import resolve_device

    try:
        resolve_device(text)
    except WalaError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


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
    is there, the folder (or the nearest existing folder above it) cannot be written, or the path itself
    cannot be used (a symlink loop, a name too long, a folder that may not be searched: any OSError)."""
    path = Path(path)
    try:
        existing = next(p for p in (path, *path.absolute().parents) if _exists(p))
        if not existing.is_dir():
            raise WalaError(f"-o {path}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise WalaError(f"-o {path}: {existing} is not writable")
    except OSError as exc:
        raise WalaError(f"-o {path}: cannot be used: {exc.strerror or exc}") from None
    return path


def _exists(path: Path) -> bool:
    """Whether `path` is there; unlike Path.exists, a symlink loop or a name too long raises (OSError),
    where mkdir would fail later."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):  # not there, or under a file (found one level up)
        return False
    return True


def run_command(run, args) -> int:
    """Runs a parsed command: a WalaError or a failed write is one line (control characters escaped:
    messages quote files and arguments) and exit 2, Ctrl-C one line and exit 130; files are written
    atomically, so none is left half-done."""
    try:
        run(args)
    except WalaError as exc:
        return _fail(str(exc))
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        return _fail(f"cannot write {exc.filename or 'the output'}: {exc.strerror or exc}")
    except OSError as exc:  # ENOSPC, ELOOP, EIO, … on a path met while running
        return _fail(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        return interrupted()
    return 0


def _fail(message: str) -> int:
    print(f"wala: error: {printable(message)}", file=sys.stderr)
    return 2


def interrupted() -> int:
    """Ctrl-C: one line, and the exit status for SIGINT."""
    print("wala: interrupted", file=sys.stderr)
    return INTERRUPTED


def add_device(p) -> None:
    p.add_argument(
        "--device", type=device, default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
    )


def add_dtype(p) -> None:
    p.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="weights: bf16 halves the model in memory (not the loading peak) and CPU time where bf16 is "
        "native, fp16 for GPUs; fp32 reproduces the official numbers",
    )


def generator_options(p, what="checkpoint"):
    p.add_argument(
        what,
        help="a model: a released WaLa directory (checkpoint.ckpt + args.json), a `wala convert` directory, "
        "a train-diffusion checkpoint, a name on the search path (`wala models`), or a Hugging Face hub id "
        "(ADSKAILab/WaLa-PC-1B) or released short name (WaLa-PC-1B), fetched into the hub's cache",
    )
    p.add_argument(
        "--steps",
        "--diffusion_rescale_timestep",
        dest="steps",
        type=steps,
        help="sampling steps (default: the model's recorded ones, else the condition's recommended)",
    )
    p.add_argument(
        "--scale",
        "--guidance",
        dest="guidance",
        type=finite,
        help="classifier-free guidance scale (default: the model's recorded one, else the condition's; "
        "for released point-cloud and voxel models 3.0, what their run.py really uses)",
    )
    p.add_argument("--seed", type=seed, default=0, help="sample i uses seed + i (seed 42 = run.py's default)")
    add_device(p)


def shape_bar(quiet: bool, desc: str):
    """A per-shape progress bar for a loop over items (None when quiet)."""
    from tqdm import tqdm

    return None if quiet else (lambda items: tqdm(items, desc=desc, unit="shape"))
