"""What model directories hold, from their configs alone: `describe` one, `list_models` on the search
path (and in the Hugging Face cache). Above the loaders and the model classes (it builds each model on
the meta device to count it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from wala.conditions import condition_kind, recommended_sampling
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError, one_line
from wala.hub.download import OFFICIAL_LICENCE, WALA_LICENCE, cached_models
from wala.hub.generators import read_model_config
from wala.hub.paths import BUILTIN, TEXT_TO_VIEWS, model_format, search_path
from wala.nn import count_parameters


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

    @property
    def licence(self) -> str:
        """Autodesk's non-commercial licence for the released weights (and our copies of them), wala's own
        for models trained here."""
        return OFFICIAL_LICENCE if self.source == "official" else WALA_LICENCE


def describe(directory: Path) -> ModelInfo:
    """What a model directory holds, from its config alone (the model is built on the meta device)."""

    if not directory.exists():
        raise WalaError(f"model not found: {directory} (see `wala models` for the names on the search path)")
    if model_format(directory) == TEXT_TO_VIEWS:
        from wala.text.checkpoint import describe_text_model  # diffusers and transformers: only when asked

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
        recommended_sampling(config, source == "official"),
    )


def list_models(hub: bool = False) -> tuple[list[ModelInfo], list[str]]:
    """(models found on the search path, then with `hub` the WaLa models in the Hugging Face cache named
    by their repo id; one line per directory that could not be read)."""
    found, problems, seen = [], [], set()
    for folder in search_path():
        if not folder.is_dir():
            continue
        for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not model_format(directory) or directory.name in seen:
                continue
            if info := _described(directory, problems):
                found.append(info)
                seen.add(directory.name)  # an earlier folder on the path wins, as in resolve_model
    for name, snapshot in cached_models() if hub else ():
        if info := _described(snapshot, problems):
            found.append(replace(info, name=name))
    return found, problems


def _described(directory: Path, problems: list[str]) -> ModelInfo | None:
    try:
        return describe(directory)
    except (WalaError, OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"{directory}: {exc if isinstance(exc, WalaError) else one_line(exc)}")
        return None
