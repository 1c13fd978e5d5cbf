"""The direct text condition: captions at prep time, a text generator trained on them, `--text`."""

import numpy as np
import pytest
import torch

from wala.cli import main
from wala.config import RepresentationConfig, load_config
from wala.data.prep import prepare
from wala.data.shards import WaveletTreeDataset
from wala.errors import WalaError
from wala.pipeline import WaLaPipeline
from wala.text.captions import NOUNS, family_captions, held_out_captions
from wala.text.sentence import CAPTION_TOKENS, SentenceEncoder, minilm_weights, tokenize
from wala.train.diffusion import DiffusionTrainConfig, train_diffusion


def test_captions_are_seeded_distinct_and_held_out_ones_are_new():
    a, b = family_captions("chair", 3), family_captions("chair", 3)
    assert a == b and len(set(a)) == len(a) == 8 and family_captions("chair", 4) != a
    assert all(any(noun in c for noun in NOUNS["chair"]) for c in a)
    training = {c for seed in range(200) for c in family_captions("mug", seed)}
    assert not training & set(held_out_captions("mug"))
    with pytest.raises(WalaError, match="no captions for shape family 'teapot'"):
        family_captions("teapot", 0)


def test_sentence_encoder_is_the_packaged_minilm():
    ids = tokenize(["a wooden chair", "a chair", "an airplane"])
    assert ids.shape == (3, CAPTION_TOKENS) and ids[0, 0] == 101 and ids[0, 4] == 102 and ids[0, 5:].sum() == 0
    encoder = SentenceEncoder()
    assert not any(p.requires_grad for p in encoder.parameters())
    features = encoder(torch.from_numpy(ids))
    assert torch.all(features[0, 5:] == 0)  # padding zeroed
    # the mean-pooled embedding (the sentence-transformers recipe) ranks the paraphrase above the other object
    mask = torch.from_numpy(ids != 0).float()[..., None]
    pooled = torch.nn.functional.normalize((features * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = pooled @ pooled.T
    assert similarity[0, 1] > 0.8 > 0.5 > similarity[0, 2]
    state = minilm_weights()
    assert all(torch.equal(state[k], v) for k, v in encoder.bert.state_dict().items())


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    out = tmp_path_factory.mktemp("captioned")
    prepare(["procedural:chair,mug:2"], out, RepresentationConfig(resolution=64), progress=False, captions=True)
    return out


def test_text_generator_trains_on_captions_and_reads_text(captioned, prepared, tiny_autoencoder, tmp_path, capsys):
    shapes = WaveletTreeDataset(captioned)
    assert shapes.captions
    stored = shapes.arrays(0, ("captions",))["captions"]
    assert stored.shape == (8, CAPTION_TOKENS) and stored.dtype == np.int64
    assert (stored == tokenize(family_captions("chair", 0))).all()

    def config(data, out):
        return load_config(
            DiffusionTrainConfig,
            "configs/diffusion_tiny.yaml",
            [
                f"train.data={data}",
                f"train.out={out}",
                f"autoencoder={tiny_autoencoder}",
                "train.steps=2",
                "train.batch_size=2",
                "train.eval_samples=2",
                "model.condition.kind=text",
                "model.condition.width=32",
            ],
        )

    train_diffusion(config(captioned, tmp_path / "text"))
    checkpoint = tmp_path / "text" / "step-00000002.safetensors"
    pipe = WaLaPipeline.from_pretrained(checkpoint)
    assert pipe.condition == "text"
    a = pipe(text="a small mug", steps=2, seed=3, progress=False)[0].latent
    b = pipe(text="a small mug", steps=2, seed=3, progress=False)[0].latent
    c = pipe(text="a wooden chair", steps=2, seed=3, progress=False)[0].latent
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded, and the text matters

    out = tmp_path / "gen"
    assert main(
        [
            "generate",
            str(checkpoint),
            "--text",
            "a",
            "small",
            "mug",
            "-o",
            str(out),
            "--steps",
            "2",
            "--format",
            "npz",
            "--no-preview",
        ]
    ) in (0, 2)  # a 2-step model may draw no surface
    capsys.readouterr()
    assert main(["generate", str(checkpoint), "--text", "a mug", "--text-model", "x", "-o", str(out)]) == 2
    assert "this model reads text itself" in capsys.readouterr().err
    with pytest.raises(WalaError, match="prepare the data with `wala prep … --captions`"):
        train_diffusion(config(prepared, tmp_path / "nocaptions"))
