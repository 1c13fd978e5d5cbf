"""`wala caption`: renders → vision-language captions → paraphrases → the shards' `captions` and a JSONL.
Models are tiny random transformers models built here from configs (Llava over CLIP vision and Llama; Llama
alone), or plain callables where only the plumbing around them is asked about."""

import json
import shutil

import numpy as np
import pytest
import torch

from wala.cli import main
from wala.config import RepresentationConfig, load_config
from wala.data import WaveletTreeDataset, prepare
from wala.data.shards import read_shard, write_shard
from wala.errors import WalaError
from wala.text.caption import (
    CaptionConfig,
    caption_folder,
    load_models,
    paraphrase_lines,
    read_captions,
    shape_captions,
)
from wala.text.sentence import tokenize

WORDS = "a the of an object chair mug ring shape 3d model with four legs views describe name rewrite in ways 3 round"
PROMPTS = ("describe the object", "name the shape")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """4 procedural shapes at 32³ in shards of 3 and 1."""
    folder = tmp_path_factory.mktemp("prepared")
    prepare(["procedural:mug,ring:2"], folder, RepresentationConfig(resolution=32), shard_size=3, progress=False)
    return folder


@pytest.fixture
def data(prepared, tmp_path):
    shutil.copytree(prepared, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """(vision-language folder, language folder): random Llava (CLIP vision + Llama) and Llama, a word-level
    tokenizer with a chat template, saved as any hub model is; end and padding tokens suppressed, so every
    answer has words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlamaForCausalLM,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    root = tmp_path_factory.mktemp("models")
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "user", "assistant", ":"]
    vocab = {w: i for i, w in enumerate([*specials, *WORDS.split()])}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.decoder = decoders.WordPiece()  # joins words with spaces
    template = (
        "{% for m in messages %}{{ m['role'] }} : {% if m['content'] is string %}{{ m['content'] }}{% else %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }}{% endif %}"
        "{% endfor %}{% endif %} {% endfor %}{% if add_generation_prompt %}assistant : {% endif %}"
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.chat_template = template
    text = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    torch.manual_seed(0)
    vlm = LlavaForConditionalGeneration(
        LlavaConfig(vision_config=vision, text_config=text, image_token_id=4, vision_feature_select_strategy="full")
    )
    lm = LlamaForCausalLM(text)
    for model in (vlm, lm):
        model.generation_config.suppress_tokens = [0, 1, 2, 4]
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=1,
        chat_template=template,
    )
    vlm.save_pretrained(root / "vlm")
    processor.save_pretrained(root / "vlm")
    lm.save_pretrained(root / "lm")
    tokenizer.save_pretrained(root / "lm")
    return root / "vlm", root / "lm"


def fakes(calls: list):
    """A captioner naming how many views of what size it saw, and a paraphraser answering with repeats of
    its caption in other cases and punctuation (all duplicates) plus one new text per caption."""

    def captioner(shapes, prompt):
        calls.append(("caption", prompt, len(shapes)))
        return [f"{prompt}: {len(v)} views of {v[0].size[0]} px, shape {id(v) % 7}" for v in shapes]

    def paraphraser(captions, count):
        calls.append(("paraphrase", count, len(captions)))
        return [[c.upper() + "!", f"- {c}", f"another way to say {c}"][:count] for c in captions]

    return lambda config, device: (captioner, paraphraser)


def test_tiny_transformers_models_caption_every_shape_into_the_shards_and_the_jsonl(data, tiny_models, monkeypatch):
    from transformers import LlamaForCausalLM, LlavaForConditionalGeneration

    before = [read_shard(data, i) for i in (0, 1)]
    seen = []
    for cls in (LlavaForConditionalGeneration, LlamaForCausalLM):
        generate = cls.generate

        def spy(self, *args, _generate=generate, **kwargs):
            seen.append((type(self).__name__, kwargs["input_ids"].shape[0], kwargs["input_ids"][0].tolist()))
            return _generate(self, *args, **kwargs)

        monkeypatch.setattr(cls, "generate", spy)
    vlm, lm = tiny_models
    config = CaptionConfig(
        vision_model=str(vlm),
        language_model=str(lm),
        prompts=PROMPTS,
        paraphrase_prompt="rewrite {caption} in {count} ways",
        image_size=64,
        batch_size=2,
        caption_tokens=6,
        paraphrase_tokens=8,
    )
    result = caption_folder(data, config, "cpu", progress=False)

    assert result == {"shapes": 4, "shards": 2, "skipped_shards": 0, "uncaptioned": 0}
    # batched: shard 0 (3 shapes) in calls of 2 + 1 per prompt, shard 1 in 1; then the 6 and 2 captions
    vision = [(n, ids) for kind, n, ids in seen if kind.startswith("Llava")]
    language = [(n, ids) for kind, n, ids in seen if kind.startswith("Llama")]
    assert [n for n, _ in vision] == [2, 1, 2, 1, 1, 1]
    assert [n for n, _ in language] == [2, 2, 2, 2]
    from transformers import AutoTokenizer

    words = AutoTokenizer.from_pretrained(lm)
    asked = [words.decode(ids, skip_special_tokens=True) for _, ids in vision]
    assert all(a.endswith(f"user : {p} assistant :") for a, p in zip(asked, [*[PROMPTS[0]] * 2, *[PROMPTS[1]] * 2]))
    assert vision[0][1].count(4) == 4 * 17  # four views of 4×4 patches + CLS each
    paraphrase_asks = [words.decode(ids, skip_special_tokens=True) for _, ids in language]
    assert all(a.startswith("user : rewrite ") and a.endswith(" in 3 ways assistant :") for a in paraphrase_asks)

    records = read_captions(data)
    dataset = WaveletTreeDataset(data)
    assert dataset.captions and json.loads((data / "prep.json").read_text())["captions"] is True
    for i, record in enumerate(dataset.records):
        stored = read_captions(data)[record["key"]]
        assert len(stored["captions"]) == 2 and all(stored["captions"])
        assert len(stored["paraphrases"]) == 2 and all(len(p) <= 3 for p in stored["paraphrases"])
        assert len(stored["stored"]) == 8
        np.testing.assert_array_equal(dataset.arrays(i, ("captions",))["captions"], tokenize(stored["stored"]))
    assert len(records) == 4
    after = [read_shard(data, i) for i in (0, 1)]
    for old, new in zip(before, after):  # everything else is kept as it was; the texts join the metadata
        assert [m for m, _ in old] == [{k: v for k, v in m.items() if k != "captions"} for m, _ in new]
        assert [m["captions"] for m, _ in new] == [records[m["key"]]["stored"] for m, _ in new]
        for (_, a), (_, b) in zip(old, new):
            assert set(b) == set(a) | {"captions"}
            assert all(np.array_equal(a[k], b[k]) for k in a)


def test_each_shape_is_rendered_at_the_four_views_and_asked_each_prompt(data):
    calls = []
    config = CaptionConfig(prompts=PROMPTS, image_size=48, batch_size=8, paraphrases=2)
    caption_folder(data, config, progress=False, load=fakes(calls))
    assert calls == [
        ("caption", PROMPTS[0], 3),
        ("caption", PROMPTS[1], 3),
        ("paraphrase", 2, 6),
        ("caption", PROMPTS[0], 1),
        ("caption", PROMPTS[1], 1),
        ("paraphrase", 2, 2),
    ]
    record = next(iter(read_captions(data).values()))
    assert record["captions"][0].startswith("describe the object: 4 views of 48 px")


def test_paraphrases_are_deduplicated_on_normalized_text_and_the_rest_cycled_to_per_shape(data):
    caption_folder(data, CaptionConfig(prompts=PROMPTS, paraphrases=3), progress=False, load=fakes([]))
    for record in read_captions(data).values():
        first, second = record["captions"]
        distinct = [first, second, f"another way to say {first}", f"another way to say {second}"]
        assert record["stored"] == distinct * 2  # "X!" and "- X" were the captions again

    assert shape_captions(["A chair.", "a chair"], [["A CHAIR!", "a wooden seat", ""], ["a Wooden seat"]], 3) == (
        ["A chair.", "a Wooden seat"],  # the paraphrases in turn: first of each, then second of each
        ["A chair.", "a Wooden seat", "A chair."],
    )
    assert shape_captions(["", " "], [[]], 2) == ([], ["", ""])
    assert paraphrase_lines('1. "A mug."\n\n- a cup\n* a tea cup\n2) a beaker', 3) == ["A mug.", "a cup", "a tea cup"]


def test_a_rerun_skips_captioned_shards_and_does_a_cut_one_again(data):
    config = CaptionConfig(prompts=PROMPTS)
    first = caption_folder(data, config, progress=False, load=fakes([]))
    assert first["shards"] == 2
    (data / "captions" / "shard-00001.jsonl").unlink()  # cut after its shard was rewritten, before its JSONL
    calls = []
    again = caption_folder(data, config, progress=False, load=fakes(calls))
    assert again == {"shapes": 1, "shards": 1, "skipped_shards": 1, "uncaptioned": 0}
    assert [c[2] for c in calls if c[0] == "caption"] == [1, 1]

    def refuse(config, device):
        raise AssertionError("no model is loaded when every shard is done")

    assert caption_folder(data, config, progress=False, load=refuse)["skipped_shards"] == 2
    with pytest.raises(WalaError, match="captioned with other settings"):
        caption_folder(data, CaptionConfig(prompts=PROMPTS[:1]), progress=False, load=refuse)
    resumed = CaptionConfig(prompts=PROMPTS, batch_size=1, dtype="fp32")  # how it runs is not what it says
    assert caption_folder(data, resumed, progress=False, load=refuse)["skipped_shards"] == 2


def test_a_shard_whose_rewrite_was_cut_before_its_index_still_reads_whole(data):
    samples = read_shard(data, 0)
    index = (data / "shard-00000.index.json").read_bytes()
    write_shard(data, 0, [(m, {**a, "extra": np.zeros(100, np.float32)}) for m, a in samples])
    (data / "shard-00000.index.json").write_bytes(index)  # the old index: offsets of the old tar
    again = read_shard(data, 0)
    assert [m for m, _ in again] == [m for m, _ in samples] and all("extra" in a for _, a in again)


def test_a_missing_model_is_one_line_naming_it(tmp_path, monkeypatch, tiny_models):
    with pytest.raises(WalaError, match="vision-language model .*no-such-vlm is not available") as info:
        load_models(CaptionConfig(vision_model=str(tmp_path / "no-such-vlm")), "cpu")
    assert "\n" not in str(info.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = CaptionConfig(vision_model=str(tiny_models[0]), language_model="nobody/no-such-lm")
    with pytest.raises(WalaError, match="language model nobody/no-such-lm is not available") as info:
        load_models(config, "cpu")
    assert "\n" not in str(info.value)


def test_the_caption_command_reads_its_config_and_fails_in_one_line(data, tmp_path, capsys):
    assert load_config(CaptionConfig, "configs/captions.yaml") == CaptionConfig()
    code = main(["caption", str(data), "--vision-model", str(tmp_path / "none"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "none is not available" in err
    assert not (data / "captions").exists()  # a model that failed to load settles nothing
    assert main(["caption", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "not a prepared folder" in capsys.readouterr().err
