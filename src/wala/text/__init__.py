"""Text → 3D. Two routes:

- the paper's: text → six depth maps (or four RGB views) with the released WaLa-MVDream model
  (`multiview`, on diffusers and transformers; `tokenizer`: OpenCLIP's), then the DM6 (DM4, RGB4)
  model → mesh: `wala text2depth`, `wala generate DM6 --text … --text-model …`;
- beyond it: a generator conditioned on text directly (the `text` condition kind), read by a frozen
  sentence encoder (`sentence`), trained on template captions of the procedural families (`captions`).
"""

from __future__ import annotations

from wala import errors


def require(*modules: str) -> None:
    """One line naming what to install when a text package (diffusers, transformers, ftfy, regex,
    tokenizers) is missing."""
    errors.require("text models", "text", *modules)
