"""PyTorch checkpoint pickles (torch.save's zip format) read without running anything they hold.

The released WaLa checkpoints are Lightning pickles. They are read by torch's own weights-only
unpickler (`torch.load(weights_only=True)`): calls only to torch's allowlist, no BUILD on classes or
functions, persistent ids only for the archive's own storages. Classes of the training stack that a
Lightning checkpoint may hold (Lightning, omegaconf, argparse, the official `src.*` modules) are
allowed for that one load as inert stand-ins under their own names; a few plain data types (sets,
datetimes) as themselves; NumPy arrays as inert records and NumPy scalars of plain numeric dtypes by our
own builder (no NumPy code runs on a pickle's arguments: a crafted dtype can make NumPy read bytes as
object pointers); any other global is refused by name before unpickling starts (torch lists a pickle's
globals by reading its opcodes, not running them). The opcodes are first read once more to bound what
unpickling would cost: the pickle's size, its number of tensors, its mark depth, and how many objects
any object expands to (nested tuples reusing each other hash in exponential time).

Before torch opens the archive, its zip directory is checked: one top folder, no absolute or `..`
names, stored (uncompressed) records that fit in the file, no TorchScript archive (torch.load would
hand that to torch.jit.load, which runs its code) and no legacy tar or raw pickle. After loading, every
tensor is checked against its storage (inside it, no stride 0 on a dimension longer than one), and all
of them against the bytes the file stores, so nothing built from them later can be much larger than the
file; the callers then check keys, shapes and dtypes against the model before copying anything.
"""

from __future__ import annotations

import importlib
import pickle
import pickletools
import re
import zipfile
from pathlib import Path

import torch

from wala.errors import WalaError, one_line

TRAINING_STACK = (
    "lightning",
    "pytorch_lightning",
    "lightning_fabric",
    "lightning_utilities",
    "omegaconf",
    "argparse",
    "src",
    "build3d",
)
# plain data a training run pickles beside its weights, read as themselves (their constructors take
# only plain values); NumPy's are read by stand-ins below, so no NumPy code runs on a pickle's arguments
DATA_GLOBALS = (
    "collections.defaultdict",
    "builtins.frozenset",
    "builtins.slice",
    "datetime.datetime",
    "datetime.timedelta",
)
NUMPY_ARRAYS = ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray")
NUMPY_SCALARS = ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar")
NUMERIC_DTYPE = re.compile(r"[<>|=]?[biuf][1248]")  # what a NumPy scalar in a checkpoint may be
# The pickle itself is read opcode by opcode before anything is built (`check_pickle_shape`): a pickle
# without its tensors' data is small, holds a few thousand storages, and nests nothing deeply.
PICKLE_BYTES_LIMIT = 64 * 2**20
STORAGES_LIMIT = 100_000
MARK_DEPTH_LIMIT = 1_000
EXPANDED_LIMIT = 10_000_000  # objects an object holds, counting shared ones each time they are reached
TORCHSCRIPT_RECORDS = ("constants.pkl", "code/")
# Views may overlap (the official-format fixtures store their tiny weights so); the bytes they declare
# beyond those the file stores are capped, since each may become a full copy later.
REUSED_BYTES_LIMIT = 256 * 2**20


class Inert:
    """A stand-in for a training-stack class: keeps what it is given, does nothing with it."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


def read_archive_pickle(path: Path) -> bytes:
    """The data.pkl of a plain torch.save zip (stored records, one top folder, no TorchScript, at most
    PICKLE_BYTES_LIMIT); anything else is refused in one line."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
            top = _checked_top(path, records, size)
            pickled = archive.getinfo(f"{top}/data.pkl")
            if pickled.file_size > PICKLE_BYTES_LIMIT:
                raise WalaError(
                    f"{path}: its pickle is {pickled.file_size / 2**20:,.0f} MiB (at most "
                    f"{PICKLE_BYTES_LIMIT / 2**20:g} MiB without the tensors' data); refused"
                )
            return archive.read(pickled)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WalaError(
            f"corrupt checkpoint {path}: not a torch.save zip archive "
            f"(legacy tar or raw pickles are not read: {one_line(exc)})"
        ) from exc


def _checked_top(path: Path, records: list[zipfile.ZipInfo], size: int) -> str:
    """The archive's one top folder, every record checked (names inside it, stored, within the file)."""
    for info in records:
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in name.split("/"):
            raise WalaError(f"corrupt checkpoint {path}: archive entry {name[:80]!r} points outside the archive")
    tops = {info.filename.split("/", 1)[0] for info in records}
    if len(tops) != 1:
        raise WalaError(f"corrupt checkpoint {path}: {len(tops)} top folders in the archive (torch.save writes one)")
    (top,) = tops
    for info in records:
        name = info.filename
        inner = name[len(top) + 1 :]
        if inner.startswith(TORCHSCRIPT_RECORDS):
            raise WalaError(f"{path} is a TorchScript archive, not a checkpoint: refused, nothing was run")
        if info.compress_type != zipfile.ZIP_STORED:
            raise WalaError(
                f"corrupt checkpoint {path}: archive entry {name[:80]!r} is compressed "
                f"(torch.save stores records uncompressed)"
            )
    if sum(info.file_size for info in records) > size:
        raise WalaError(f"corrupt checkpoint {path}: its records declare more bytes than the file holds")
    if f"{top}/data.pkl" not in {info.filename for info in records}:
        raise WalaError(f"corrupt checkpoint {path}: the archive holds no data.pkl")
    return top


class NumpyDType(Inert):
    """A stand-in for numpy.dtype: keeps its arguments; NumPy's BUILD state is ignored."""


def numpy_scalar(dtype, data=None):
    """A NumPy scalar of a plain numeric dtype from its bytes; anything else stays inert data."""
    import numpy as np

    code = dtype.args[0] if isinstance(dtype, NumpyDType) and dtype.args else None
    if isinstance(code, str) and NUMERIC_DTYPE.fullmatch(code) and isinstance(data, bytes):
        kind = np.dtype(code)
        if len(data) == kind.itemsize:
            return np.frombuffer(data, kind)[0]
    return Inert(dtype, data)


def _allowed(name: str):
    """The object a pickle's global `name` is read as, or None when it is refused."""
    module, _, attribute = name.rpartition(".")
    if name in DATA_GLOBALS:
        return getattr(importlib.import_module(module), attribute)
    if name in NUMPY_ARRAYS:  # arrays beside the weights are kept as inert records of their bytes
        return type(attribute, (Inert,), {"__module__": f"wala.inert.{module}"})
    if name in NUMPY_SCALARS:
        return numpy_scalar
    if name == "numpy.dtype":
        return NumpyDType
    if module.split(".")[0] in TRAINING_STACK:
        # a dict subclass (Lightning's AttributeDict) is filled item by item, which the unpickler
        # allows on plain dicts only: it is read as one
        if attribute.endswith("AttributeDict"):
            return dict
        return type(attribute, (Inert,), {"__module__": f"wala.inert.{module}"})
    return None


def check_pickle_shape(data: bytes, source) -> None:
    """Reads a pickle's opcodes without building anything and refuses, in one line, one whose objects
    would cost far more than its bytes: a mark depth or storage count past its limit, or an object that
    holds more than EXPANDED_LIMIT others when shared ones are counted each time (nested tuples that
    reuse each other: hashing one as a dict key takes exponential time)."""
    stack: list[int] = []  # per object on the pickle's stack: how many objects it expands to
    marks: list[int] = []
    memo: dict = {}
    storages = 0
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "MARK":
                marks.append(len(stack))
                if len(marks) > MARK_DEPTH_LIMIT:
                    raise WalaError(f"{source}: the pickle opens more than {MARK_DEPTH_LIMIT} nested marks; refused")
                continue
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if op.name == "MEMOIZE" else arg] = stack[-1]
                continue
            if op.name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
                continue
            storages += op.name in ("PERSID", "BINPERSID")
            if storages > STORAGES_LIMIT:
                raise WalaError(f"{source}: the pickle declares more than {STORAGES_LIMIT:,} tensors; refused")
            before = op.stack_before
            popped: list[int] = []
            if pickletools.markobject in before:
                start = marks.pop()
                popped, stack[start:] = stack[start:], []
                below = before.index(pickletools.markobject)
            else:
                below = len(before)
            if below:
                popped += stack[-below:]
                del stack[-below:]
            size = min(1 + sum(popped), EXPANDED_LIMIT + 1)
            stack.extend([size] * len(op.stack_after))
            if size > EXPANDED_LIMIT:
                raise WalaError(
                    f"{source}: the pickle builds an object of more than {EXPANDED_LIMIT:,} parts from "
                    f"{len(data):,} bytes (objects reused inside each other); refused"
                )
    except (ValueError, IndexError, KeyError) as exc:
        raise WalaError(f"corrupt checkpoint {source}: its pickle is malformed ({one_line(exc)})") from None


def read_torch_pickle(path: str | Path):
    """The object a torch.save checkpoint holds, on the CPU, read without running any of its code."""
    path = Path(path)
    if not path.is_file():
        raise WalaError(f"checkpoint not found: {path}")
    check_pickle_shape(read_archive_pickle(path), path)
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as exc:
        raise WalaError(f"corrupt checkpoint {path}: {one_line(exc)}") from exc
    allowed = []
    for name in names:
        target = _allowed(name)
        if target is None:
            raise WalaError(f"{path}: the checkpoint would run code ({name}); refused, nothing was run")
        allowed.append((target, name))
    try:
        with torch.serialization.safe_globals(allowed):
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise WalaError(
            f"{path}: the pickle does what no checkpoint does ({_unpickler_reason(exc)}); refused, nothing was run"
        ) from exc
    except Exception as exc:
        reason = "a tensor reaches past its storage" if "resize storage" in str(exc) else one_line(exc)
        raise WalaError(f"corrupt checkpoint {path}: {reason}") from exc
    return payload


def _unpickler_reason(exc: Exception) -> str:
    """The weights-only unpickler's own reason, without torch's advice to load the file unsafely."""
    text = str(exc)
    reason = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
    return " ".join(reason.split()) or one_line(exc)


def check_tensor_layouts(tensors: dict[str, torch.Tensor], source) -> None:
    """Every tensor dense, inside its storage, with no stride 0 on a dimension longer than one (a
    broadcast: a few stored bytes declaring any size), and, all together, declaring at most
    REUSED_BYTES_LIMIT more bytes than their storages hold: so no copy of them can be much larger than
    the file. Real checkpoints declare what they store; only overlapping views declare more."""
    stored: dict[int, int] = {}
    declared = 0
    for key, tensor in tensors.items():
        if not torch.is_tensor(tensor) or tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise WalaError(f"{source}: {key} is not a dense tensor with data")
        if tensor.numel() == 0:
            continue
        storage = tensor.untyped_storage()
        last = tensor.storage_offset() + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.stride()))
        if tensor.storage_offset() < 0 or (last + 1) * tensor.element_size() > storage.nbytes():
            raise WalaError(f"{source}: {key} reaches past its storage")
        if any(size > 1 and stride == 0 for size, stride in zip(tensor.shape, tensor.stride())):
            raise WalaError(
                f"{source}: {key} {tuple(tensor.shape)} repeats its elements (stride "
                f"{tuple(tensor.stride())}) over {storage.nbytes()} stored bytes"
            )
        stored[storage.data_ptr()] = storage.nbytes()
        declared += tensor.numel() * tensor.element_size()
    if declared > sum(stored.values()) + REUSED_BYTES_LIMIT:
        raise WalaError(
            f"{source}: its tensors declare {declared / 2**20:.0f} MiB over "
            f"{sum(stored.values()) / 2**20:.0f} MiB stored (overlapping views); refused"
        )
