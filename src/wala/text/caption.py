"""`wala caption DATA`: captions for a prepared folder's shapes, made by models from renders of them (the
paper's supplement E: a vision-language model given four renderings per object, two captions from two
prompts, then paraphrases by a language model for diversity).

Per shape: the shape the shard stores (its wavelet tree → TSDF → mesh, so neither the sources nor their
format matter) rendered at four of the official views (wala.render.views) → one caption per prompt from
an image-text-to-text model → K paraphrases of each from a text-generation model → the captions and the
paraphrases, deduplicated on normalized text, cycled or cut to `per_shape` → token ids of the text
condition's sentence encoder, stored as the shard's `captions` array (N, per_shape, 32). Each finished
shard is rewritten (tar, then its index) and then `captions/shard-NNNNN.jsonl` is written beside it, one
readable line per shape: the JSONL is the mark of a finished shard, so a rerun skips those shards and a
shard cut anywhere before it is done again.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wala.errors import WalaError, one_line

PROMPTS = (
    "These are four renderings of one 3D object from different viewpoints. Describe the object in one short "
    "sentence: what it is and its overall shape.",
    "Look at these four views of a single 3D shape. Name the object and its main parts in a short phrase of at "
    "most 15 words.",
)
PARAPHRASE_PROMPT = (
    "Rewrite this description of a 3D object in {count} different ways, keeping its meaning. Write one per line, "
    "with no numbering and nothing else.\nDescription: {caption}"
)
Captioner = Callable[[list[list], str], list[str]]  # (shapes' view images (PIL), prompt) → a caption per shape
Paraphraser = Callable[[list[str], int], list[list[str]]]  # (captions, count) → up to `count` rewrites of each


@dataclass(frozen=True)
class CaptionConfig:
    """What `wala caption` runs (configs/captions.yaml holds the same defaults). The paper's models are
    InternVL 2.0 and LLaMA 3.1; the defaults are the transformers-native InternVL nearest to it (InternVL 2.0's
    repos need trust_remote_code, which wala does not run) and the LLaMA 3.1 instruct model (gated: HF_TOKEN)."""

    vision_model: str = "OpenGVLab/InternVL3-8B-hf"  # any image-text-to-text model: hub id or folder
    language_model: str = "meta-llama/Llama-3.1-8B-Instruct"  # any text-generation model with a chat template
    prompts: tuple[str, ...] = PROMPTS  # one caption per prompt and shape
    paraphrase_prompt: str = PARAPHRASE_PROMPT  # {count} and {caption} are filled in
    paraphrases: int = 3  # K per caption: 2 captions + 2·3 paraphrases = the 8 stored per shape
    per_shape: int = 8  # captions stored per shape (wala.text.captions.PER_SHAPE, as `wala prep --captions`)
    views: str = "3,6,10,26"  # the RGB4 model's views (wala.render.views.parse_views)
    image_size: int = 448  # render size; InternVL's tile
    batch_size: int = 8  # generations per model call
    caption_tokens: int = 60  # new tokens per caption
    paraphrase_tokens: int = 200  # new tokens per answer (all K paraphrases of one caption)
    dtype: str = "auto"  # auto (bf16 on CUDA, else fp32), fp32, bf16, fp16

    def __post_init__(self):
        if not self.prompts or any(not p.strip() for p in self.prompts):
            raise WalaError("CaptionConfig.prompts: give at least one non-empty prompt")
        if "{caption}" not in self.paraphrase_prompt:
            raise WalaError("CaptionConfig.paraphrase_prompt must contain {caption}")
        for name in ("per_shape", "image_size", "batch_size", "caption_tokens", "paraphrase_tokens"):
            if getattr(self, name) < 1:
                raise WalaError(f"CaptionConfig.{name} must be at least 1")
        if self.paraphrases < 0:
            raise WalaError("CaptionConfig.paraphrases must be 0 or more")
        if self.dtype not in ("auto", "fp32", "bf16", "fp16"):
            raise WalaError(f"CaptionConfig.dtype: auto, fp32, bf16 or fp16, not {self.dtype!r}")


def normalized(text: str) -> str:
    """Text as compared for duplicates: lower case, letters and digits, single spaces."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def clean(text: str) -> str:
    """A generated caption on one line, without list marks or surrounding quotes."""
    text = " ".join(text.split())
    text = re.sub(r"^(?:\d+[.):]|[-*•])\s*", "", text)
    return text.strip().strip("\"'“”").strip()


def paraphrase_lines(answer: str, count: int) -> list[str]:
    """A language model's answer → its first `count` non-empty lines, cleaned."""
    lines = [clean(line) for line in answer.splitlines()]
    return [line for line in lines if line][:count]


def shape_captions(captions: list[str], paraphrases: list[list[str]], per_shape: int) -> tuple[list[str], list[str]]:
    """(distinct, stored): the captions, then their paraphrases taken in turn (first of each, second of
    each, …), without empties or repeats of normalized text; stored = those cycled or cut to `per_shape`
    (a shape with none stores empty texts)."""
    rounds = max((len(p) for p in paraphrases), default=0)
    ordered = list(captions) + [p[r] for r in range(rounds) for p in paraphrases if r < len(p)]
    distinct, seen = [], set()
    for text in ordered:
        key = normalized(text)
        if key and key not in seen:
            seen.add(key)
            distinct.append(text)
    stored = (distinct * math.ceil(per_shape / len(distinct)))[:per_shape] if distinct else [""] * per_shape
    return distinct, stored


def caption_folder(
    folder: str | Path,
    config: CaptionConfig = CaptionConfig(),
    device: str = "auto",
    progress: bool = True,
    load: Callable[[CaptionConfig, str], tuple[Captioner, Paraphraser]] | None = None,
) -> dict:
    """Captions every finished shard of a prepared folder (a path or URL) that has no `captions/*.jsonl`
    yet; returns {"shapes", "shards", "skipped_shards", "uncaptioned"} (shapes given no caption at all).
    `load(config, device)` → (captioner, paraphraser); default: the config's transformers models, loaded
    only when a shard is left to do."""
    from tqdm import tqdm

    from wala.config import RepresentationConfig, from_dict
    from wala.data.shards import finished_shards, read_shard, write_shard
    from wala.io import store
    from wala.render.shaded import MeshRenderer
    from wala.render.views import parse_views
    from wala.text.sentence import tokenize, tokenizer

    folder = str(folder)
    manifest = store.join(folder, "prep.json")
    if not store.exists(manifest):
        raise WalaError(f"{folder} is not a prepared folder (no prep.json): run `wala prep` first")
    settings = json.loads(store.read_bytes(manifest))
    shards = sorted(finished_shards(folder))
    expected = math.ceil(settings.get("items", 0) / max(settings.get("shard_size", 1), 1))
    if len(shards) < expected:
        raise WalaError(f"{folder}: {len(shards)} of {expected} shards are prepared; finish `wala prep` first")
    poses = parse_views(config.views)
    tokenizer()  # the sentence encoder's tokenizer missing: refused before any model loads
    made_with = _settings(folder, config)
    done = {i for i in shards if store.exists(_jsonl(folder, i))}
    todo = [i for i in shards if i not in done]
    result = {"shapes": 0, "shards": len(todo), "skipped_shards": len(done), "uncaptioned": 0}
    if not todo:
        return result
    representation = from_dict(RepresentationConfig, settings["representation"])
    renderer = MeshRenderer(config.image_size)  # no OpenGL: refused before the models load
    try:
        captioner, paraphraser = (load or load_models)(config, device)
    except BaseException:
        renderer.release()
        raise
    store.write_bytes(made_with, (json.dumps(_made_with(config), indent=2) + "\n").encode())  # once loaded
    total = sum(len(json.loads(store.read_bytes(_index(folder, i)))["samples"]) for i in todo)
    bar = tqdm(total=total, unit="shape", desc="caption", disable=not progress)
    try:
        for index in todo:
            samples = read_shard(folder, index)
            views = [_views(arrays, meta, representation, poses, renderer) for meta, arrays in samples]
            captions = [_batched(lambda b, p=p: captioner(b, p), views, config.batch_size) for p in config.prompts]
            flat = [clean(c) for per_shape in zip(*captions) for c in per_shape] if samples else []
            if config.paraphrases:
                rewrites = _batched(lambda b: paraphraser(b, config.paraphrases), flat, config.batch_size)
            else:
                rewrites = [[] for _ in flat]
            lines = []
            for n, (meta, arrays) in enumerate(samples):
                own = flat[n * len(config.prompts) : (n + 1) * len(config.prompts)]
                theirs = [[clean(r) for r in rs] for rs in rewrites[n * len(own) : (n + 1) * len(own)]]
                distinct, stored = shape_captions(own, theirs, config.per_shape)
                result["uncaptioned"] += not distinct
                arrays["captions"] = tokenize(stored)  # (per_shape, 32)
                meta["captions"] = stored  # the texts too, as `wala prep --captions` stores them
                record = {"key": meta["key"], "source": meta["source"], "captions": own, "paraphrases": theirs}
                lines.append(json.dumps({**record, "stored": stored}, ensure_ascii=False))
            write_shard(folder, index, samples)
            store.write_bytes(_jsonl(folder, index), "".join(line + "\n" for line in lines).encode())
            result["shapes"] += len(samples)
            bar.update(len(samples))
    finally:
        renderer.release()
        bar.close()
    if not settings.get("captions"):
        store.write_bytes(manifest, (json.dumps({**settings, "captions": True}, indent=2) + "\n").encode())
    return result


def _jsonl(folder: str, index: int) -> str:
    from wala.data.shards import shard_name
    from wala.io import store

    return store.join(folder, "captions", f"{shard_name(index)}.jsonl")


def _index(folder: str, index: int) -> str:
    from wala.data.shards import shard_name
    from wala.io import store

    return store.join(folder, f"{shard_name(index)}.index.json")


def _made_with(config: CaptionConfig) -> dict:
    """The settings that decide what the captions say (not batching or precision), as JSON reads them back."""
    from wala.config import to_dict

    values = {k: v for k, v in to_dict(config).items() if k not in ("batch_size", "dtype")}
    return json.loads(json.dumps(values))


def _settings(folder: str, config: CaptionConfig) -> str:
    """Where captions/config.json is: what the folder's captions were made with. Another config is refused."""
    from wala.io import store

    location = store.join(folder, "captions", "config.json")
    if store.exists(location) and json.loads(store.read_bytes(location)) != _made_with(config):
        raise WalaError(f"{folder} was captioned with other settings ({location}); remove its captions/ to redo")
    return location


def _views(arrays, meta, representation, poses, renderer) -> list:
    """The stored shape's renders at `poses`, as PIL images."""
    from PIL import Image

    from wala.pipeline import tree_to_mesh
    from wala.render.views import render_views
    from wala.wavelet.tree import WaveletTree

    mesh = tree_to_mesh(WaveletTree.from_arrays(arrays, meta["resolution"]), representation)
    size = renderer.size
    return [Image.fromarray(v.rgb) for v in render_views(mesh, poses, size=size, renderer=renderer)]


def _batched(call: Callable[[list], list], items: list, size: int) -> list:
    out = []
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        answers = call(chunk)
        if len(answers) != len(chunk):
            raise WalaError(f"a caption model answered {len(answers)} of {len(chunk)} inputs")
        out += answers
    return out


# ---- the transformers models


def load_models(config: CaptionConfig, device: str = "auto") -> tuple[Captioner, Paraphraser]:
    """The config's vision-language and language models, on `device` (auto: CUDA, then MPS, then CPU)."""
    import torch

    from wala.pipeline import DTYPES, resolve_device
    from wala.text import require

    require("transformers")
    from transformers import AutoConfig

    place = resolve_device(device)
    # both found before either loads its weights: a wrong second id fails in seconds, not after minutes
    load_pretrained(AutoConfig, config.vision_model, "vision-language model")
    load_pretrained(AutoConfig, config.language_model, "language model")
    dtype = (torch.bfloat16 if place.type == "cuda" else torch.float32) if config.dtype == "auto" else None
    dtype = dtype or DTYPES[config.dtype]
    captioner = VisionCaptioner(config.vision_model, place, dtype, config.caption_tokens)
    paraphraser = TextParaphraser(
        config.language_model, place, dtype, config.paraphrase_tokens, config.paraphrase_prompt
    )
    return captioner, paraphraser


def load_pretrained(loader, model_id: str, what: str, local_files_only: bool | None = None, **kwargs):
    """`loader.from_pretrained(model_id)`: a folder, or a hub id from the Hugging Face cache (fetched there
    when allowed: not `local_files_only`, HF_HUB_OFFLINE unset). Failing: one line naming the model."""
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        return loader.from_pretrained(model_id, local_files_only=local_files_only, **kwargs)
    except Exception as exc:  # not found, gated, offline, no such class: transformers' types vary
        where = "not a folder here" if not Path(model_id).exists() else "a folder transformers cannot load"
        raise WalaError(f"{what} {model_id} is not available ({where}; {one_line(exc)})") from None


class VisionCaptioner:
    """An image-text-to-text model of transformers (AutoProcessor + AutoModelForImageTextToText): each
    shape's views and one prompt in a user turn of its chat template → its greedy answer."""

    def __init__(self, model_id: str, device, dtype, max_new_tokens: int, local_files_only: bool | None = None):
        from wala.text import require

        require("transformers")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = load_pretrained(AutoProcessor, model_id, "vision-language model", local_files_only)
        self.model = load_pretrained(
            AutoModelForImageTextToText, model_id, "vision-language model", local_files_only, dtype=dtype
        )
        self.model.to(device).eval()
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        if not getattr(self.processor, "chat_template", None):
            raise WalaError(f"vision-language model {model_id} has no chat template")
        self.device, self.max_new_tokens = device, max_new_tokens

    def __call__(self, shapes: list[list], prompt: str) -> list[str]:
        import torch

        turn = [
            {"role": "user", "content": [*({"type": "image"} for _ in shapes[0]), {"type": "text", "text": prompt}]}
        ]
        text = self.processor.apply_chat_template(turn, add_generation_prompt=True)
        inputs = self.processor(text=[text] * len(shapes), images=shapes, return_tensors="pt", padding=True)
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


class TextParaphraser:
    """A text-generation model of transformers (AutoTokenizer + AutoModelForCausalLM): the paraphrase prompt
    in a user turn of its chat template (as plain text without one) → its greedy answer's lines."""

    def __init__(
        self, model_id: str, device, dtype, max_new_tokens: int, prompt: str, local_files_only: bool | None = None
    ):
        from wala.text import require

        require("transformers")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = load_pretrained(AutoTokenizer, model_id, "language model", local_files_only)
        self.model = load_pretrained(AutoModelForCausalLM, model_id, "language model", local_files_only, dtype=dtype)
        self.model.to(device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device, self.max_new_tokens, self.prompt = device, max_new_tokens, prompt

    def __call__(self, captions: list[str], count: int) -> list[list[str]]:
        import torch

        if count == 0:
            return [[] for _ in captions]
        asks = [self.prompt.format(count=count, caption=c) for c in captions]
        if self.tokenizer.chat_template:
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": a}], add_generation_prompt=True, tokenize=False
                )
                for a in asks
            ]
        else:
            texts = asks
        # a chat template writes its own start token; plain text gets the tokenizer's
        special = not self.tokenizer.chat_template
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=special).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        answers = self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [paraphrase_lines(a, count) for a in answers]


def read_captions(folder: str | Path) -> dict[str, dict]:
    """Every captioned shape's JSONL record, by key (for reading or checking what was stored)."""
    from wala.io import store

    records = {}
    for location in store.glob(store.join(str(folder), "captions"), "shard-*.jsonl"):
        for line in store.read_bytes(location).decode().splitlines():
            if line.strip():
                record = json.loads(line)
                records[record["key"]] = record
    return records
