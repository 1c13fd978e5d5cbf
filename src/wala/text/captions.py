"""Template captions for the procedural shape families (`wala prep … --captions`), for training the
direct text condition. A caption is a template filled with one of the family's nouns; a shape's
captions are drawn by its seed. Held-out captions use templates and nouns no training caption has,
so an evaluation asks whether the model generalises to new phrasings, not whether it memorised strings.
"""

from __future__ import annotations

import numpy as np

from wala.errors import WalaError

NOUNS = {
    "chair": ("chair", "dining chair", "seat", "wooden chair"),
    "table": ("table", "desk", "dining table", "coffee table"),
    "mug": ("mug", "cup", "coffee mug", "tea cup"),
    "lamp": ("lamp", "desk lamp", "floor lamp", "reading light"),
    "vase": ("vase", "flower vase", "urn", "pot for flowers"),
    "airplane": ("airplane", "plane", "jet", "aircraft"),
    "ring": ("ring", "torus", "donut", "hoop"),
    "bottle": ("bottle", "wine bottle", "flask", "water bottle"),
    "bookshelf": ("bookshelf", "bookcase", "shelf unit", "shelving"),
    "rocket": ("rocket", "spaceship", "missile", "space rocket"),
}
HELD_OUT_NOUNS = {
    "chair": "armless chair",
    "table": "work table",
    "mug": "beer mug",
    "lamp": "table lamp",
    "vase": "ceramic vase",
    "airplane": "airliner",
    "ring": "doughnut shape",
    "bottle": "glass bottle",
    "bookshelf": "book rack",
    "rocket": "launch vehicle",
}
TEMPLATES = (
    "{a} {n}",
    "{n}",
    "a 3d model of {a} {n}",
    "a simple {n}",
    "{a} {n}, 3d asset",
    "a small {n}",
    "a low-poly {n}",
    "an object shaped like {a} {n}",
)
HELD_OUT_TEMPLATES = (
    "a picture of {a} {n}",
    "a gray {n} on a white background",
    "the shape of {a} {n}",
    "render of {a} {n}",
)
PER_SHAPE = 8


def fill(template: str, noun: str) -> str:
    return template.format(a="an" if noun[0] in "aeiou" else "a", n=noun)


def family_captions(family: str, seed: int, count: int = PER_SHAPE) -> list[str]:
    """`count` training captions for shape `seed` of `family` (distinct, drawn by the seed)."""
    if family not in NOUNS:
        raise WalaError(f"no captions for shape family '{family}' (known: {', '.join(NOUNS)})")
    every = [fill(t, n) for t in TEMPLATES for n in NOUNS[family]]
    rng = np.random.default_rng([seed, sorted(NOUNS).index(family)])
    return [every[i] for i in rng.choice(len(every), size=min(count, len(every)), replace=False)]


def held_out_captions(family: str) -> list[str]:
    """Captions of phrasings no training caption uses: new templates with a family noun, and the
    training templates with a new noun."""
    return [fill(t, NOUNS[family][0]) for t in HELD_OUT_TEMPLATES] + [
        fill(t, HELD_OUT_NOUNS[family]) for t in TEMPLATES[:4]
    ]
