"""Text → shape directly (beyond the paper, whose text route goes through six depth maps:
wala.text.multiview): a caption → the frozen all-MiniLM-L6-v2 token features (wala.text.sentence)
→ a trained Linear to the condition width, 32 tokens, padding zeroed. Trains on `wala prep
--captions` (template captions of the procedural families, wala.text.captions): one random caption
per sample and step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from wala.conditions.base import ConditionKind
from wala.config import ConditionConfig
from wala.errors import WalaError
from wala.text.sentence import CAPTION_TOKENS, WIDTH, SentenceEncoder, tokenize


class TextEncoder(nn.Module):
    def __init__(self, c: ConditionConfig):
        super().__init__()
        self.sentence = SentenceEncoder()
        self.proj = nn.Linear(WIDTH, c.width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, 32) int64 ids → (B, 32, width), zero at padding."""
        return self.proj(self.sentence(ids)) * (ids != 0)[..., None]


def read_text(sources: list, c: ConditionConfig, composite_alpha: bool = False) -> np.ndarray:
    """The words of `--text` (joined by spaces), or one `.txt` file (a batch input) → (32,) ids."""
    if len(sources) == 1 and str(sources[0]).endswith(".txt") and Path(sources[0]).is_file():
        text = Path(sources[0]).read_text()
    else:
        text = " ".join(str(s) for s in sources)
    if not text.strip():
        raise WalaError("the text is empty")
    return tokenize([text.strip()])[0]


def text_input(ids: np.ndarray, c: ConditionConfig) -> torch.Tensor:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise WalaError(f"a text condition is a (tokens,) array of ids, got {ids.dtype} {ids.shape}")
    return torch.from_numpy(ids.astype(np.int64))[None]


def _training_input(stored: torch.Tensor, c: ConditionConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Stored captions (B, K, 32) → (B, 32): one random caption per sample (the first without a generator)."""
    from wala.conditions.images import one_per_sample

    return one_per_sample(stored.long(), generator)


TEXT = ConditionKind(
    name="text",
    flag="--text",
    steps=10,
    guidance=1.5,
    array="captions",
    read_values=True,
    joined=True,
    encoder=TextEncoder,
    tokens=lambda c: CAPTION_TOKENS,
    read=read_text,
    to_input=text_input,
    training_input=_training_input,
    formats=(".txt",),
    metavar="WORD",
    help="a caption (words may be unquoted); with --text-model, the text a "
    "text-to-views model turns into this depth/RGB model's views",
)
