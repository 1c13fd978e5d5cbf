"""Where data lives: a local path, or an fsspec URL (`s3://bucket/prefix`, `gs://…`, `hf://…`).

Prepared shards, checkpoints, run folders and model folders may live on object storage. fsspec picks the
filesystem from the URL's scheme (s3fs for s3://, the package for each other scheme installed beside it),
and credentials and endpoints come from each store's standard environment (for S3: AWS_ENDPOINT_URL,
AWS_PROFILE, AWS_ACCESS_KEY_ID …). Local paths keep plain file calls.

Writes are atomic for readers: locally a temporary file renamed into place (`write_atomic`); on an object
store one PUT, which the store makes visible only once complete; elsewhere a temporary name moved into
place. Reads of whole files from a URL go through `Cache`, a local folder of bounded size.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from pathlib import Path

from wala.errors import WalaError, one_line, require

# Stores whose one PUT is already all-or-nothing: no temporary name needed.
ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "memory"}


def is_url(location: str | os.PathLike) -> bool:
    """True for `scheme://…` other than file://."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def filesystem(url: str):
    """(fsspec filesystem, path within it) for `url`; a missing package is one line."""
    scheme = url.split("://", 1)[0]
    require(f"{scheme}:// locations", "scale", "fsspec", *(("s3fs",) if scheme in ("s3", "s3a") else ()))
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # no package for the scheme, or no such scheme
        raise WalaError(f"cannot open {url}: {one_line(exc)}") from None


def join(location: str | os.PathLike, *names: str) -> str:
    """`location/name/…`, for URLs and paths alike."""
    if is_url(location):
        return posixpath.join(str(location), *names)
    return str(Path(location, *names))


def write_bytes(location: str | os.PathLike, data: bytes) -> None:
    """Writes `data` so that no reader ever sees part of it under the final name."""
    if not is_url(location):
        from wala.io.mesh import write_atomic

        write_atomic(location, data)
        return
    _place(str(location), lambda fs, path: fs.pipe_file(path, data))


def upload(local: str | os.PathLike, location: str) -> None:
    """Copies a local file to URL `location` (atomically for readers, as `write_bytes`), streamed from
    disk: a checkpoint of many GB is never held in memory (s3fs sends it in parts, completed at the end)."""
    _place(location, lambda fs, path: fs.put_file(str(local), path))


def _place(location: str, send) -> None:
    """Runs `send(fs, path)` so that the file appears whole at `location`: straight to its name on a store
    whose PUT is all-or-nothing, else to a temporary name moved into place."""
    fs, path = filesystem(location)
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    try:
        if protocols & ATOMIC_PUT:
            send(fs, path)
        else:
            temporary = f"{path}.{os.getpid()}.tmp"
            send(fs, temporary)
            fs.mv(temporary, path)
    except OSError as exc:
        raise WalaError(f"cannot write {location}: {one_line(exc)}") from None


def read_bytes(location: str | os.PathLike, start: int | None = None, end: int | None = None) -> bytes:
    """The bytes of a file, or of its range [start, end): one ranged GET on an object store."""
    if not is_url(location):
        with open(location, "rb") as f:
            f.seek(start or 0)
            return f.read() if end is None else f.read(end - (start or 0))
    fs, path = filesystem(str(location))
    try:
        return fs.cat_file(path, start=start, end=end)
    except FileNotFoundError:
        raise WalaError(f"not found: {location}") from None
    except OSError as exc:
        raise WalaError(f"cannot read {location}: {one_line(exc)}") from None


def download(location: str, path: str | os.PathLike) -> Path:
    """Copies the file at URL `location` to the local `path` (a temporary name beside it, then renamed),
    without holding it in memory."""
    fs, remote = filesystem(location)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    os.close(fd)
    try:
        fs.get_file(remote, temporary)
        os.replace(temporary, path)
    except FileNotFoundError:
        raise WalaError(f"not found: {location}") from None
    except OSError as exc:
        raise WalaError(f"cannot read {location}: {one_line(exc)}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def exists(location: str | os.PathLike) -> bool:
    if not is_url(location):
        return Path(location).exists()
    fs, path = filesystem(str(location))
    fs.invalidate_cache(path)  # written by another process since this one listed its folder
    return fs.exists(path)


def glob(location: str | os.PathLike, pattern: str) -> list[str]:
    """Sorted locations of the files matching `pattern` directly inside `location`."""
    if not is_url(location):
        return sorted(str(p) for p in Path(location).glob(pattern))
    fs, path = filesystem(str(location))
    fs.invalidate_cache(path)  # another process (a prep worker, another rank) may have written since
    scheme = str(location).split("://", 1)[0]
    return sorted(f"{scheme}://{p}" for p in fs.glob(posixpath.join(path, pattern)))


def default_cache_dir() -> Path:
    """$WALA_CACHE, else ~/.cache/wala: local copies of files that live at URLs."""
    return Path(os.environ.get("WALA_CACHE") or Path.home() / ".cache" / "wala")


class Cache:
    """Local copies of remote files in `folder`, at most `limit` bytes in all: the least recently used go
    first, never the file just asked for. Copies are named by a hash of the URL and land by rename, so
    processes (data-loading workers, ranks on one machine) can share a folder."""

    def __init__(self, folder: str | os.PathLike | None = None, limit: int = 4 * 2**30):
        self.folder = Path(folder) if folder else default_cache_dir() / "files"
        self.limit = limit

    def local(self, location: str) -> Path:
        """A local path holding the file at `location` (itself when it is local)."""
        if not is_url(location):
            return Path(location)
        name = hashlib.sha256(location.encode()).hexdigest()[:32] + Path(location).suffix
        path = self.folder / name
        try:
            os.utime(path)  # recently used
            return path
        except FileNotFoundError:  # not here, or just evicted by another process
            pass
        download(location, path)
        self._evict(keep=path)
        return path

    def read(self, location: str, start: int, end: int) -> bytes:
        """The bytes [start, end) of the file at `location`, read from its local copy. Another process sharing
        the folder may evict the copy between its fetch and its read: it is then fetched again (once open, a
        file stays readable whoever removes it)."""
        for _ in range(3):
            try:
                return read_bytes(self.local(location), start, end)
            except FileNotFoundError:
                continue
        raise WalaError(f"{location} keeps being evicted from {self.folder} by other processes: raise its size limit")

    def _evict(self, keep: Path) -> None:
        entries = []
        for p in self.folder.iterdir():
            if p.name.startswith("."):
                continue
            try:
                info = p.stat()
            except FileNotFoundError:  # another process evicted it
                continue
            entries.append((info.st_mtime, info.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.limit:
                break
            if p != keep:
                p.unlink(missing_ok=True)
                total -= size


def local_folder(location: str, files: list[str] | None = None) -> Path:
    """A local copy of the folder at `location` (its top-level files, or the named `files`), for readers
    that need paths (model folders): under the cache folder, by a hash of the URL, refreshed when a file's
    size changed. A local `location` is returned as it is."""
    if not is_url(location):
        return Path(location)
    fs, path = filesystem(location)
    try:
        listing = {posixpath.basename(e["name"]): e for e in fs.ls(path, detail=True) if e["type"] == "file"}
    except FileNotFoundError:
        raise WalaError(f"not found: {location}") from None
    wanted = files if files is not None else sorted(listing)
    missing = [f for f in wanted if f not in listing]
    if missing:
        raise WalaError(f"{location} has no {', '.join(missing)}")
    target = default_cache_dir() / "folders" / hashlib.sha256(location.encode()).hexdigest()[:32]
    target.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        copy = target / name
        if copy.is_file() and copy.stat().st_size == listing[name]["size"]:
            continue
        download(join(location, name), copy)
    return target
