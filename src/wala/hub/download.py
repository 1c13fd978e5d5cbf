"""Models named by a Hugging Face hub id (`ADSKAILab/WaLa-SV-1B`) or a released model's short name
(`WaLa-SV-1B`), fetched with huggingface_hub into its cache; the result is the cached snapshot folder,
loaded like any model directory.

The library does the transfer and reads its own settings: `HF_ENDPOINT`, `HF_HOME`/`HF_HUB_CACHE`,
`HF_TOKEN`, `HF_HUB_OFFLINE`, `HF_HUB_DISABLE_PROGRESS_BARS`. A path or a name on the search path
(wala.hub.paths) wins: nothing is fetched for it. A download takes only the files a WaLa model needs,
all at one commit; each file is written under a temporary name and renamed when complete, so a cut
download leaves nothing that is read as a model, and a rerun fetches only the files still missing
(within one run, a dropped connection is resumed where it stopped). Every failure is one WalaError line.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from wala.errors import WalaError, one_line
from wala.hub.paths import OFFICIAL_FILES, OURS, OURS_FILES, model_format, resolve_model

OFFICIAL_OWNER = "ADSKAILab"  # the hub organisation the WaLa weights were released under
OFFICIAL_LICENCE = "Autodesk non-commercial"  # the released weights' licence, from their model cards
WALA_LICENCE = "MIT"  # wala's own code and the models trained with it (pyproject.toml)
TEXT_FILES = OFFICIAL_FILES[1:]  # a text-to-views repo: checkpoint.ckpt alone, all the official loader reads
HUB_FILES = (*OFFICIAL_FILES, *OURS_FILES)  # what is fetched from a repo not in RELEASED: either kind of model
REPO_ID = re.compile(r"\w[\w.-]{0,95}/\w[\w.-]{0,95}")  # owner/name as the hub spells them


@dataclass(frozen=True)
class Release:
    """A model repo on the hub and the files a WaLa model there is made of."""

    repo_id: str
    files: tuple[str, ...] = OFFICIAL_FILES


def _official(name: str, files: tuple[str, ...] = OFFICIAL_FILES) -> tuple[str, Release]:
    return name, Release(f"{OFFICIAL_OWNER}/{name}", files)


# Short name → release: the nine 3-D models of the official README and run.py (args.json +
# checkpoint.ckpt each, fetched as the official `Model.from_pretrained` does) and the two text-to-views
# models (checkpoint.ckpt alone, as `load_mvdream_model` fetches). Tests add their own tiny repos here.
RELEASED: dict[str, Release] = dict(
    [
        *(_official(f"WaLa-{kind}-1B") for kind in ("SV", "SK", "RGB4", "PC", "VX16", "DM1", "DM4", "DM6", "UN")),
        _official("WaLa-MVDream-DM6", TEXT_FILES),
        _official("WaLa-MVDream-RGB4", TEXT_FILES),
    ]
)


def hub_id(name: str | Path) -> str | None:
    """The hub repo `name` stands for: a released short name's id, `name` itself when it is spelled
    owner/name, else None."""
    text = str(name)
    if text in RELEASED:
        return RELEASED[text].repo_id
    return text if REPO_ID.fullmatch(text) and ".." not in text else None


def find_model(name: str | Path, revision: str | None = None, local_files_only: bool | None = None) -> Path:
    """The model `name` stands for: a path, or a name on the search path, as it is (nothing fetched);
    else the cached snapshot of its hub id or short name (`download`); else `name`, for the loader to
    say what is missing. `revision` is for hub ids only."""
    local = resolve_model(name)
    if local.exists():
        if revision is not None:
            raise WalaError(f"{name} is a folder here: a revision is for hub ids (owner/name)")
        return local
    repo_id = hub_id(name)
    return local if repo_id is None else download(repo_id, revision, local_files_only)


def download(repo_id: str, revision: str | None = None, local_files_only: bool | None = None) -> Path:
    """The snapshot folder of hub repo `repo_id` at `revision` (a branch, tag or commit; default its
    main branch) in the Hugging Face cache, holding the files a WaLa model there needs: fetched when
    missing, unless `local_files_only` (None: unless HF_HUB_OFFLINE is set). Prints the weights' licence
    to stderr when it fetched released weights."""
    constants, errors = _huggingface_hub()
    offline = constants.HF_HUB_OFFLINE if local_files_only is None else local_files_only
    release = next((r for r in RELEASED.values() if r.repo_id == repo_id), None)
    files = release.files if release else HUB_FILES
    at = f" (revision {revision})" if revision else ""
    try:
        cached = _snapshot(repo_id, revision, files, local_only=True)
    except errors.LocalEntryNotFoundError:  # IncompleteSnapshotError too: what a cut download left
        cached = None
    except errors.HFValidationError as exc:
        raise WalaError(f"{repo_id}{at} is not a hub repo id or revision ({one_line(exc)})") from None
    if offline and cached is None:
        why = "HF_HUB_OFFLINE is set" if local_files_only is None else "local_files_only"
        flag = f" --revision {revision}" if revision else ""
        raise WalaError(
            f"{repo_id}{at} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and downloads are off "
            f"({why}): fetch it first with `wala pull {repo_id}{flag}`"
        )
    folder = cached if offline else _fetch(repo_id, revision, files)
    missing = [f for f in files if not (folder / f).is_file()] if release else []
    if missing:
        raise WalaError(f"{repo_id}{at} has no {', '.join(missing)} (a WaLa model repo holds {' + '.join(files)})")
    if model_format(folder) is None:
        raise WalaError(
            f"{repo_id}{at} holds no WaLa model ({' + '.join(OFFICIAL_FILES)}, or {' + '.join(OURS_FILES)})"
        )
    if folder != cached and released_weights(folder):
        print(
            f"{repo_id}: the released WaLa weights are under Autodesk's non-commercial licence (see the model "
            f"card, {constants.ENDPOINT}/{repo_id}), unlike wala's own code ({WALA_LICENCE})",
            file=sys.stderr,
        )
    return folder


def released_weights(folder: Path) -> bool:
    """Whether a model folder holds Autodesk's released weights: the official files, or our copy of them
    (`wala convert` records the source)."""
    if model_format(folder) != OURS:
        return True
    try:
        return json.loads((folder / OURS_FILES[0]).read_text()).get("source") == "official"
    except (OSError, ValueError, AttributeError):
        return False


def cached_models() -> list[tuple[str, Path]]:
    """(name, snapshot folder) of every WaLa model in the Hugging Face cache, by name: the repo id, with
    `@ref` (or `@commit`) for a snapshot the main branch does not point to. Reads the cache only."""
    try:
        from huggingface_hub import errors, scan_cache_dir
    except ImportError:
        return []
    try:
        repos = scan_cache_dir().repos
    except errors.CacheNotFound:
        return []
    found = []
    for repo in repos:
        for rev in repo.revisions if repo.repo_type == "model" else ():
            if model_format(rev.snapshot_path):
                ref = "" if "main" in rev.refs else "@" + (min(rev.refs) if rev.refs else rev.commit_hash[:12])
                found.append((repo.repo_id + ref, rev.snapshot_path))
    return sorted(found)


def _fetch(repo_id: str, revision: str | None, files: tuple[str, ...]) -> Path:
    """`_snapshot` online, each way it can fail as one line."""
    constants, errors = _huggingface_hub()
    endpoint, at = constants.ENDPOINT, f" (revision {revision})" if revision else ""
    try:
        return _snapshot(repo_id, revision, files, local_only=False)
    except errors.LocalEntryNotFoundError as exc:  # the hub did not answer, and the cache has no complete copy
        raise WalaError(
            f"cannot reach {endpoint} for {repo_id}{at} ({one_line(exc.__cause__ or exc)}), and it is not in the "
            "Hugging Face cache: check the network (or HF_ENDPOINT) and run again"
        ) from None
    except errors.GatedRepoError:
        raise WalaError(f"{repo_id} is gated on {endpoint}: accept its terms there and set HF_TOKEN") from None
    except errors.RepositoryNotFoundError:
        raise WalaError(
            f"model not found: {repo_id} is neither a folder here nor a model repo on {endpoint} "
            "(a private repo needs HF_TOKEN)"
        ) from None
    except errors.RevisionNotFoundError:
        raise WalaError(f"{repo_id} has no revision '{revision}' on {endpoint}") from None
    except Exception as exc:  # the transfer cut, an HTTP error, a full disk: the library's types vary by version
        raise WalaError(
            f"downloading {repo_id}{at} from {endpoint} failed ({one_line(exc)}); run it again: finished "
            "files are kept, a partial one is never used"
        ) from None


def _snapshot(repo_id: str, revision: str | None, files: tuple[str, ...], local_only: bool) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(files), local_files_only=local_only))


def _huggingface_hub():
    """(constants, errors) of huggingface_hub, imported when a hub id is first met."""
    try:
        from huggingface_hub import constants, errors
    except ImportError:
        raise WalaError("hub ids need the huggingface_hub package: pip install huggingface_hub") from None
    return constants, errors
