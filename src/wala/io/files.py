"""Files as wala reads them from others: regular files of a bounded size, nothing else.

A path may name a FIFO (reading it waits forever), a device such as /dev/zero (endless), or a file far
larger than what it should hold; `st_size` says 0 for the first two. Every reader of a small file a user
or a download hands wala (configs, args.json, condition files) goes through `check_regular_file` first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from wala.errors import WalaError


def check_regular_file(path: str | os.PathLike, limit: int, what: str) -> Path:
    """`path` when it is a regular file (symlinks followed) of at most `limit` bytes; else one line."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise WalaError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise WalaError(f"{what} {path} is not a regular file (a device, FIFO or folder is not read)")
    if info.st_size > limit:
        raise WalaError(
            f"{what} {path} is {info.st_size / 2**20:,.1f} MiB; wala reads such files up to {limit / 2**20:g} MiB"
        )
    return path


def read_limited(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (checked again while reading: it may grow)."""
    path = check_regular_file(path, limit, what)
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise WalaError(f"{what} {path} grew past {limit / 2**20:g} MiB while it was read")
    return data
