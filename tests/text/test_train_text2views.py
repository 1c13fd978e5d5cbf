"""`wala train-text2views`: the multi-view text → depth-maps model trained on prepared shapes (a tiny one,
from scratch or from the official-format fixture), resumed exactly, exported as a folder `wala text2depth` loads."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from wala.cli import main
from wala.config import RepresentationConfig, load_config
from wala.data import prepare
from wala.errors import WalaError
from wala.text.checkpoint import build_components
from wala.text.multiview import TextToViews
from wala.text.tokenizer import clip_tokenizer
from wala.text.train import (
    FrozenEncoders,
    MultiViewDenoiser,
    TextViewsTrainConfig,
    ViewsDataset,
    denoising_loss,
    shape_captions,
    shared_crop,
    train_text_views,
)

TINY = "configs/text2views_tiny.yaml"
OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
FIXTURE, DM6 = OFFICIAL / "text_dm6" / "model", OFFICIAL / "dm6"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 training shapes (3 families × 2) and 2 held-out ones at 32³, with DM6 depth maps and captions."""
    root = tmp_path_factory.mktemp("text2views")
    for spec, name in (("procedural:mug,chair,table:2", "train"), ("procedural:mug,chair:1:100", "eval")):
        prepare([spec], root / name, RepresentationConfig(resolution=32), progress=False, views="dm6", captions=True)
    return root


def _overrides(data, out, **train):
    values = {"data": data / "train", "eval_data": data / "eval", "out": out, "log_every": 1, **train}
    return [f"train.{k}={v}" for k, v in values.items()]


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A 30-step run from scratch through the CLI, held-out loss every 5 steps."""
    out = tmp_path_factory.mktemp("trained") / "run"
    args = ["train-text2views", TINY, *(f"--set={o}" for o in _overrides(data, out, steps=30, eval_every=5))]
    assert main(args) == 0
    return out


def test_training_lowers_the_held_out_loss(trained):
    held_out = [r["eval"]["mse"] for r in _records(trained) if "eval" in r]
    assert len(held_out) == 6 and held_out[-1] < 0.85 * held_out[0]  # EMA weights, fixed noise and timesteps


def test_text2depth_loads_the_exported_model(trained, tmp_path):
    model = TextToViews.load(trained / "model")  # the folder the run exported: EMA weights, frozen parts from base/
    ema = load_file(str(trained / "step-00000030.safetensors"))
    assert all(torch.equal(v, ema[f"ema.unet.{k}"]) for k, v in model.unet.state_dict().items())
    base = TextToViews.load(trained / "base")
    assert all(torch.equal(v, base.vae.state_dict()[k]) for k, v in model.vae.state_dict().items())
    maps = tmp_path / "maps"
    assert main(["text2depth", str(trained / "model"), "--text", "a", "mug", "-o", str(maps), "--steps", "1"]) == 0
    assert sorted(p.name for p in maps.iterdir()) == ["10.png", "26.png", "3.png", "49.png", "50.png", "6.png"]
    assert Image.open(maps / "3.png").size == (64, 64)  # the size it was trained at (the released model: 256)


def test_generate_dm6_chains_the_exported_model(trained, tmp_path):
    out = tmp_path / "out"
    args = ["generate", str(DM6), "--text", "a", "mug", "--text-model", str(trained / "model"), "--text-steps", "1"]
    assert main([*args, "--steps", "2", "-o", str(out), "--no-preview"]) == 0
    assert len(list((out / "depth").glob("*.png"))) == 6 and (out / "sample_0000.obj").is_file()


def test_any_checkpoint_exports_on_demand(trained, tmp_path, capsys):
    checkpoint = trained / "step-00000030.safetensors"
    capsys.readouterr()
    assert main(["train-text2views", "--export", str(checkpoint), "-o", str(tmp_path / "raw"), "--raw-weights"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "raw")
    trained_weights = load_file(str(checkpoint))
    exported = TextToViews.load(tmp_path / "raw").unet.state_dict()
    assert all(torch.equal(v, trained_weights[f"model.unet.{k}"]) for k, v in exported.items())
    assert main(["train-text2views", "--export", str(tmp_path / "nope.safetensors")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def _assert_same_checkpoints(path_a, path_b):
    a, b = load_file(str(path_a)), load_file(str(path_b))
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_after_a_kill_gives_the_uninterrupted_weights(data, tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train_text_views(load_config(TextViewsTrainConfig, TINY, _overrides(data, straight, steps=8, checkpoint_every=4)))
    # the broken run dies after step 6 but before that checkpoint lands: it only has step 4
    train_text_views(load_config(TextViewsTrainConfig, TINY, _overrides(data, broken, steps=6, checkpoint_every=4)))
    (broken / "step-00000006.safetensors").unlink()
    train_text_views(load_config(TextViewsTrainConfig, TINY, _overrides(data, broken, steps=8, checkpoint_every=4)))
    _assert_same_checkpoints(straight / "step-00000008.safetensors", broken / "step-00000008.safetensors")


def test_fine_tuning_a_released_format_model_keeps_its_vae_and_text_tower(data, tmp_path):
    out = tmp_path / "run"
    config = load_config(TextViewsTrainConfig, TINY, [f"init={FIXTURE}", *_overrides(data, out, steps=2)])
    train_text_views(config)
    released, tuned = TextToViews.load(FIXTURE), TextToViews.load(out / "model")
    assert tuned.config == dataclasses.replace(released.config, image_size=64)  # it draws what it learnt
    for part in ("vae", "text_encoder"):
        mine = getattr(tuned, part).state_dict()
        assert all(torch.equal(v, mine[k]) for k, v in getattr(released, part).state_dict().items())
    moved = [k for k, v in released.unet.state_dict().items() if not torch.equal(v, tuned.unet.state_dict()[k])]
    assert moved and any(k.startswith("class_embedding.") for k in moved)  # the camera embedding trains too


def test_a_run_from_scratch_fits_its_new_vae_first(data, tmp_path):
    out = tmp_path / "run"
    sets = ["vae_steps=40", "vae_lr=0.003", "image_size=32", *_overrides(data, out, steps=1, batch_size=3)]
    config = load_config(TextViewsTrainConfig, TINY, sets)
    train_text_views(config)
    rows = [json.loads(line) for line in (out / "vae.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and np.mean([r["mse"] for r in rows[-5:]]) < 0.5 * np.mean([r["mse"] for r in rows[:5]])
    fitted, base = TextToViews.load(out / "model"), TextToViews.load(out / "base")
    assert all(torch.equal(v, base.vae.state_dict()[k]) for k, v in fitted.vae.state_dict().items())  # kept in base/
    assert fitted.config.image_size == 32 and fitted.config.latent_size == 4
    dataset = ViewsDataset(config.train.open_dataset(config.train.data), config, 77)
    maps = torch.stack([dataset[i][0]["maps"] for i in range(len(dataset))]).flatten(0, 1)
    with torch.no_grad():
        latents = fitted.vae.encode((maps.float() / 127.5 - 1)[:, None].expand(-1, 3, -1, -1)).latent_dist.mean
    assert abs(float(latents.std()) * fitted.config.scale_factor - 1) < 1e-4  # unit variance, as SD chose 0.18215
    assert fitted("a mug", steps=1).images.shape == (6, 32, 32, 3)  # drawn at the size it trained at
    with pytest.raises(WalaError, match="vae_steps fits a new VAE"):
        load_config(TextViewsTrainConfig, TINY, [f"init={FIXTURE}", "vae_steps=10"])


def test_one_crop_box_frames_the_object_in_all_views():
    maps = np.zeros((2, 100, 100), np.uint8)
    maps[0, 10:30, 40:50] = 200  # tall in the first view
    maps[1, 20:25, 20:60] = 100  # wide in the second: the union box is rows 10–29, columns 20–59
    cropped = shared_crop(maps, 40).numpy()
    assert cropped.shape == (2, 40, 40)
    rows, cols = np.nonzero(cropped.max(0))
    assert cols.min() == 0 and cols.max() == 39  # the longer side fills the image
    assert 8 <= rows.min() and rows.max() <= 31  # the shorter centred: a square box, no stretching
    assert shared_crop(maps, 50, crop=False).numpy()[0, 6:14, 21:24].min() == 200  # the render's framing, resized
    assert shared_crop(np.zeros((6, 64, 64), np.uint8), 32).shape == (6, 32, 32)  # nothing drawn: the whole image


def test_a_dropped_caption_is_the_empty_prompt(data):
    config = load_config(TextViewsTrainConfig, TINY, [f"train.data={data / 'train'}"])
    torch.manual_seed(0)
    unet, vae, text = build_components(config.model, empty=False)
    model, frozen = MultiViewDenoiser(unet), FrozenEncoders(vae, text, config.model.scale_factor)
    dataset = ViewsDataset(config.train.open_dataset(config.train.data), config, 77)
    batch = {k: torch.stack([dataset[i][0][k] for i in (0, 1)]) for k in ("maps", "tokens")}
    empty = torch.from_numpy(clip_tokenizer()([""])[0]).long()

    def loss(drop, tokens):
        c = TextViewsTrainConfig(model=config.model, image_size=config.image_size, caption_drop=drop)
        return denoising_loss(model, {**batch, "tokens": tokens}, frozen, c, empty, torch.Generator().manual_seed(3))

    blank = empty.expand_as(batch["tokens"])
    assert torch.equal(loss(1.0, batch["tokens"]), loss(0.0, blank))
    assert not torch.equal(loss(0.0, batch["tokens"]), loss(0.0, blank))


def test_data_without_views_or_captions_is_refused_in_one_line(data):
    config = load_config(TextViewsTrainConfig, TINY, ["views=[3, 6, 10, 26, 49, 0]"])
    with pytest.raises(WalaError, match=r"no depth maps at view\(s\) 0: prepare it with `wala prep … --views dm6"):
        ViewsDataset(config.train.open_dataset(str(data / "train")), config, 77)
    bare = SimpleNamespace(folder=str(data / "train"), records=[{"key": "procedural-mug__000000"}])
    with pytest.raises(WalaError, match="has no caption text: prepare the data with `wala prep … --captions`"):
        shape_captions(bare)
    with pytest.raises(WalaError, match="caption_drop must be in"):
        load_config(TextViewsTrainConfig, TINY, ["caption_drop=1.5"])
    with pytest.raises(WalaError, match="starts from `init`"):
        load_config(TextViewsTrainConfig, TINY, ["train.init_from=runs/x/step-00000010.safetensors"])
    with pytest.raises(WalaError, match="view 55 is not in the 55-view camera table"):
        load_config(TextViewsTrainConfig, TINY, ["views=[3, 55]"])


def test_captions_come_from_wala_caption_where_it_ran(tmp_path):
    records = [  # wala caption writes its texts over prep's templates, blank where it had none
        {"key": "a", "captions": ["a red mug", "", "a cup"]},
        {"key": "b", "captions": ["", ""]},
        {"key": "c", "captions": ["x"]},
    ]
    shapes = SimpleNamespace(folder=str(tmp_path), records=records)
    # the model's captions replace prep's templates; a shape it could not caption trains on the empty prompt
    assert shape_captions(shapes) == [["a red mug", "a cup"], [""], ["x"]]
