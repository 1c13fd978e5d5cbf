"""Text → 3D. Two routes:

- the paper's: text → six depth maps (or four RGB views) with the released WaLa-MVDream model
  (`multiview`, on diffusers and transformers; `tokenizer`: OpenCLIP's), then the DM6 (DM4, RGB4)
  model → mesh: `wala text2depth`, `wala generate DM6 --text … --text-model …`;
- beyond it: a generator conditioned on text directly (the `text` condition kind), read by a frozen
  sentence encoder (`sentence`), trained on template captions of the procedural families (`captions`).
"""

from __future__ import annotations

import importlib.util

from wala.errors import WalaError

PACKAGES = {
    "diffusers": "diffusers",
    "transformers": "transformers",
    "ftfy": "ftfy",
    "regex": "regex",
    "tokenizers": "tokenizers",
}


def require(*modules: str) -> None:
    """One line naming what to install when a text package is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise WalaError(f"text models need {', '.join(PACKAGES[m] for m in missing)}: pip install 'wala[text]'")
