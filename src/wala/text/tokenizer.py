"""The OpenCLIP text tokenizer (open_clip 2.24.0's `SimpleTokenizer`, OFFICIAL-TEXT.md §6), our code.

Cleaning: ftfy, HTML-unescape twice, collapse whitespace, lower-case. Splitting: contractions, runs of
letters, single digits, runs of other non-space characters. Each piece is byte-level BPE-merged
(48,894 merges of `bpe_simple_vocab_16e6.txt.gz`); ids are framed by <start_of_text> 49406 and
<end_of_text> 49407 and padded with 0 to 77; a longer text is cut to 77 with EOT forced last.

The vocabulary file is not ours to ship: it is read from the installed open-clip-torch package
(installed without its dependencies; never imported), or from $WALA_CLIP_VOCAB.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from wala.errors import WalaError

CONTEXT = 77
VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2
SPECIAL = ("<start_of_text>", "<end_of_text>")


def vocab_file() -> Path:
    """$WALA_CLIP_VOCAB, else the copy inside the installed open-clip-torch package."""
    if os.environ.get("WALA_CLIP_VOCAB"):
        path = Path(os.environ["WALA_CLIP_VOCAB"])
    else:
        spec = importlib.util.find_spec("open_clip")
        if spec is None or not spec.submodule_search_locations:
            raise WalaError(
                f"the CLIP vocabulary {VOCAB_NAME} is missing: `pip install --no-deps "
                f"open-clip-torch==2.24.0`, or set $WALA_CLIP_VOCAB to the file"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / VOCAB_NAME
    if not path.is_file():
        raise WalaError(f"the CLIP vocabulary is missing: {path}")
    return path


def byte_alphabet() -> dict[int, str]:
    """Every byte → a printable character: printable Latin-1 bytes stand for themselves, the others
    (controls, space, …) take the characters from U+0100 on, in byte order. The order of the table
    (printable bytes first) is the order of the vocabulary's first 256 entries."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(rest)}}


class ClipTokenizer:
    def __init__(self, path: str | Path | None = None):
        from wala.text import require

        require("ftfy", "regex")
        import regex

        lines = gzip.open(path or vocab_file()).read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : MERGES + 1]]
        self.bytes = byte_alphabet()
        symbols = list(self.bytes.values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + list(SPECIAL)
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self.sot, self.eot = self.ids[SPECIAL[0]], self.ids[SPECIAL[1]]
        self.pattern = regex.compile(
            r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]"
            r"|[^\s\p{L}\p{N}]+",
            regex.IGNORECASE,
        )
        self._cache = {s: s for s in SPECIAL}

    @staticmethod
    def clean(text: str) -> str:
        import ftfy
        import regex

        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        return regex.sub(r"\s+", " ", text).strip().lower()

    def merge(self, piece: str) -> str:
        """One piece → its BPE symbols, space-separated, the last one marked `</w>`."""
        if piece in self._cache:
            return self._cache[piece]
        word = [*piece[:-1], piece[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self._cache[piece] = " ".join(word)
        return self._cache[piece]

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in self.pattern.findall(self.clean(text)):
            piece = "".join(self.bytes[b] for b in piece.encode("utf-8"))
            ids.extend(self.ids[s] for s in self.merge(piece).split(" "))
        return ids

    def __call__(self, texts: str | list[str], length: int = CONTEXT) -> np.ndarray:
        """(len(texts), length) int64 ids, as open_clip.tokenize."""
        texts = [texts] if isinstance(texts, str) else texts
        out = np.zeros((len(texts), length), np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > length:
                ids = ids[:length]
                ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out


@lru_cache(maxsize=2)
def clip_tokenizer(path: str | None = None) -> ClipTokenizer:
    return ClipTokenizer(path)
