"""Model management: model directories found by name on a search path.

The path is `$WALA_MODELS` (folders separated by `:`), then `~/.cache/wala/models`, then the small
built-in models shipped inside the package (`pc64`, `vx64`: 64³, trained here). A model directory
is a released WaLa download (`args.json` + `checkpoint.ckpt`) or ours (`config.json` +
`model.safetensors`, from `wala convert` or a training run's export); `wala generate NAME` finds
`NAME` there when it is not a path. Nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wala.errors import WalaError, one_line

OFFICIAL_FILES = ("args.json", "checkpoint.ckpt")
OURS_FILES = ("config.json", "model.safetensors")
TEXT_MARKER = "wala_text.json"  # a text-to-views model's `wala convert` folder (wala.text.checkpoint)


BUILTIN = Path(__file__).parent / "builtin"


def search_path() -> list[Path]:
    folders = [Path(p).expanduser() for p in os.environ.get("WALA_MODELS", "").split(os.pathsep) if p]
    return folders + [Path.home() / ".cache" / "wala" / "models", BUILTIN]


def model_format(directory: Path) -> str | None:
    """ "official", "ours", "text" (a text-to-views model: a WaLa-MVDream download, checkpoint.ckpt alone,
    or its `wala convert` directory), or None when `directory` is not a model directory."""
    if all((directory / f).is_file() for f in OFFICIAL_FILES):
        return "official"
    if all((directory / f).is_file() for f in OURS_FILES):
        return "ours"
    if (directory / TEXT_MARKER).is_file() or (directory / OFFICIAL_FILES[1]).is_file():
        return "text"
    return None


def resolve_model(name: str | Path) -> Path:
    """`name` itself when it exists, else the first model directory of that name on the search path."""
    path = Path(name)
    if path.exists() or len(path.parts) != 1:
        return path
    for folder in search_path():
        if model_format(folder / path.name):
            return folder / path.name
    return path  # the loader names what is missing


@dataclass
class ModelInfo:
    name: str
    path: Path
    source: str  # "official", "wala", or "builtin" (shipped in the package)
    condition: str  # kind, with the views for several images
    parameters: int
    kind: str = "none"  # the condition kind's name
    files: int = 0  # files one condition is (0: unconditional)
    formats: tuple[str, ...] = ()  # their suffixes
    defaults: tuple[int, float] = (0, 0.0)  # recommended (steps, guidance)


def describe(directory: Path) -> ModelInfo:
    """What a model directory holds, from its config alone (the model is built on the meta device)."""
    import torch

    from wala.checkpoints import read_model_config
    from wala.conditions import condition_kind
    from wala.diffusion.model import LatentDiffusion
    from wala.nn import count_parameters

    if not directory.exists():
        raise WalaError(f"model not found: {directory} (see `wala models` for the names on the search path)")
    if model_format(directory) == "text":
        from wala.text.checkpoint import describe_text_model

        source, parameters = describe_text_model(directory)
        return ModelInfo(
            directory.name, directory, source, "text → depth maps / RGB views", parameters, "text-to-views"
        )
    config, source = read_model_config(directory)
    source = "builtin" if directory.parent == BUILTIN else source
    with torch.device("meta"):
        parameters = count_parameters(LatentDiffusion(config))
    c = config.condition
    kind = condition_kind(c.kind)
    views = len(c.training_views)
    condition = c.kind + (f" ×{views} ({', '.join(map(str, c.training_views))})" if views else "")
    return ModelInfo(
        directory.name,
        directory,
        source,
        condition,
        parameters,
        kind.name,
        kind.files(c) if kind.conditional else 0,
        kind.formats,
        kind.recommended(c, source == "official"),
    )


def list_models() -> tuple[list[ModelInfo], list[str]]:
    """(models found on the search path, one line per directory that could not be read)."""
    found, problems, seen = [], [], set()
    for folder in search_path():
        if not folder.is_dir():
            continue
        for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not model_format(directory) or directory.name in seen:
                continue
            try:
                found.append(describe(directory))
                seen.add(directory.name)  # an earlier folder on the path wins, as in resolve_model
            except (WalaError, OSError, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{directory}: {exc if isinstance(exc, WalaError) else one_line(exc)}")
    return found, problems
