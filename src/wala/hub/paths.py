"""Model directories found by name on a search path, and what kind of directory each is.

The path is `$WALA_MODELS` (folders separated by `:`), then `~/.cache/wala/models`, then the small
built-in models shipped inside the package (`pc64`, `vx64`: 64³, trained here). A model directory
is a released WaLa download (`args.json` + `checkpoint.ckpt`) or ours (`config.json` +
`model.safetensors`, from `wala convert` or a training run's export); `wala generate NAME` finds
`NAME` there when it is not a path. Nothing is downloaded here (hub ids are wala.hub.download's).
"""

from __future__ import annotations

import os
from pathlib import Path

from wala.io import store

OFFICIAL_FILES = ("args.json", "checkpoint.ckpt")
OURS_FILES = ("config.json", "model.safetensors")
TEXT_MARKER = "wala_text.json"  # a text-to-views model's `wala convert` folder (wala.text.checkpoint)
# what `model_format` calls a directory: released, ours, a text-to-views model
OFFICIAL, OURS, TEXT_TO_VIEWS = "official", "ours", "text-to-views"


BUILTIN = Path(__file__).parents[1] / "builtin"


def search_path() -> list[Path]:
    folders = [Path(p).expanduser() for p in os.environ.get("WALA_MODELS", "").split(os.pathsep) if p]
    return folders + [Path.home() / ".cache" / "wala" / "models", BUILTIN]


def model_format(directory: Path) -> str | None:
    """OFFICIAL, OURS, TEXT_TO_VIEWS (a WaLa-MVDream download, checkpoint.ckpt alone, or its `wala convert`
    directory), or None when `directory` is not a model directory."""
    if all((directory / f).is_file() for f in OFFICIAL_FILES):
        return OFFICIAL
    if all((directory / f).is_file() for f in OURS_FILES):
        return OURS
    if (directory / TEXT_MARKER).is_file() or (directory / OFFICIAL_FILES[1]).is_file():
        return TEXT_TO_VIEWS
    return None


def resolve_model(name: str | Path) -> Path:
    """`name` itself when it exists, else the first model directory of that name on the search path. A URL
    (s3://…) is fetched into the local cache: a file (a checkpoint) as it is, else the folder's files."""
    if store.is_url(name):
        return store.Cache().local(str(name)) if Path(str(name)).suffix else store.local_folder(str(name))
    path = Path(name)
    if path.exists() or len(path.parts) != 1:
        return path
    for folder in search_path():
        if model_format(folder / path.name):
            return folder / path.name
    return path  # the loader names what is missing
