"""Loading released model directories: strict key mapping, raw weights (not EMA), refusal of
pickles that would run code, pickle-free conversion, and the full-size architectures."""

import json
import os

import numpy as np
import pytest
import torch

from wala.cli import main
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.hub.args import config_from_args
from wala.hub.generators import OURS_ONLY, read_official_checkpoint
from wala.pipeline import WaLaPipeline


def test_the_raw_state_dict_is_used_not_the_ema(official):
    folder = official("pc")[0]
    model = LatentDiffusion.from_pretrained(folder)
    raw = read_official_checkpoint(folder / "checkpoint.ckpt")
    ema = torch.load(folder / "checkpoint.ckpt", map_location="cpu", weights_only=True)["state_dict_ema"]
    key = "network.unet.blocks.0.attn.qkv.weight"
    assert torch.equal(model.state_dict()[key], raw[key])
    assert not torch.equal(raw[key], ema["module." + key])
    assert "autoencoder.decoder.in_conv.weight" in raw  # the _orig_mod. prefix is gone


def test_a_mismatched_key_is_named_in_one_line(official, tmp_path, copy_model):
    folder = official("vx16")[0]

    def renamed(state):
        state["network.unet.blocks.0.attn.qkv.wieght"] = state.pop("network.unet.blocks.0.attn.qkv.weight")
        return state

    with pytest.raises(WalaError, match="unexpected key network.unet.blocks.0.attn.qkv.wieght"):
        LatentDiffusion.from_pretrained(copy_model(folder, tmp_path / "renamed", renamed))
    with pytest.raises(WalaError, match="missing key network.cond_mapping_network.0.0.weight"):
        LatentDiffusion.from_pretrained(
            copy_model(folder, tmp_path / "dropped", lambda s: {k: v for k, v in s.items() if "cond_mapping" not in k})
        )
    with pytest.raises(WalaError, match="unexpected key network.cond_mapping_network.0.0.weight"):
        LatentDiffusion.from_pretrained(
            copy_model(folder, tmp_path / "args", args=lambda a: {**a, "cond_num_mapping_layers": 0})
        )

    def wrong_filter(state):
        state["dwt_inverse_3d.g0_dep"] = state["dwt_inverse_3d.g0_dep"] * 2
        return state

    with pytest.raises(WalaError, match="does not hold bior6.8"):
        LatentDiffusion.from_pretrained(copy_model(folder, tmp_path / "filter", wrong_filter))


def test_absent_args_read_as_none(official):
    args = json.loads((official("pc")[0] / "args.json").read_text())
    for key in ("add_condition_res_ch", "learnable_skip_r", "with_fix_pos", "dp_cond_type"):
        args.pop(key)
    config = config_from_args(args)
    assert config.denoiser.res_condition == 0 and config.denoiser.skip_ratio == 0 and not config.denoiser.fixed_position


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_whose_pickle_would_run_a_command_is_refused_and_nothing_runs(
    official, tmp_path, capsys, copy_model
):
    marker = tmp_path / "ran"
    target = copy_model(official("pc")[0], tmp_path / "evil")
    checkpoint = torch.load(target / "checkpoint.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"] = _RunsACommand(marker)
    torch.save(checkpoint, target / "checkpoint.ckpt")
    assert main(["generate", str(target), "--pointcloud", str(target.parent / "x.h5df"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "would run code (posix.system)" in err or "would run code (os.system)" in err, err
    assert err.count("\n") == 1 and not marker.exists()


def test_training_stack_objects_in_the_pickle_become_inert(official, tmp_path, copy_model):
    import argparse

    target = copy_model(official("pc")[0], tmp_path / "lightning")
    checkpoint = torch.load(target / "checkpoint.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"] = {"args": argparse.Namespace(lr=1e-4, batch_size=8)}
    checkpoint["callbacks"] = {"EMA": {"decay": np.float64(0.999)}}
    torch.save(checkpoint, target / "checkpoint.ckpt")
    assert LatentDiffusion.from_pretrained(target).kind.name == "pointcloud"


def test_a_corrupt_or_missing_checkpoint_is_one_line(official, tmp_path, capsys, copy_model):
    target = copy_model(official("un")[0], tmp_path / "broken")
    (target / "checkpoint.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(WalaError, match="corrupt checkpoint"):
        LatentDiffusion.from_pretrained(target)
    (target / "checkpoint.ckpt").unlink()
    with pytest.raises(WalaError, match="is not a model directory"):
        LatentDiffusion.from_pretrained(target)


@pytest.mark.parametrize("kind", ["vx16", "rgb4"])
def test_convert_writes_a_pickle_free_directory_that_samples_the_same(official, tmp_path, kind):
    folder, E, meta = official(kind)
    assert main(["convert", str(folder), "-o", str(tmp_path / kind)]) == 0
    assert sorted(os.listdir(tmp_path / kind)) == ["config.json", "model.safetensors"]
    converted = WaLaPipeline.from_pretrained(tmp_path / kind)
    assert converted.official  # still a released model: its run.py defaults apply
    condition = (
        torch.from_numpy(E["input_voxels"]) if kind == "vx16" else converted.condition_tensor(views=E["input_u8"][0])
    )
    latent = converted.model.sample_latents(
        condition, meta["diffusion_rescale_timestep"], meta["guidance_scale_effective"], seed=meta["seed"]
    )
    assert float((latent - torch.from_numpy(E["latent"])).abs().max()) <= 1e-4


def _full_size_args(official, kind, inferred):
    args = json.loads((official(kind)[0] / "args.json").read_text())
    args.update(inferred, cond_num_mapping_layers=1)  # the manifest's stated assumption
    args.pop("fixture_dinov2", None)  # the real DINOv2 size then follows clip_model_type
    if kind == "un":
        args.update(use_pointcloud_conditions=False)
    return args


@pytest.mark.parametrize("kind", ["pc", "vx16", "un", "sv", "sk", "dm1", "rgb4", "dm4", "dm6"])
def test_full_size_models_have_exactly_the_inferred_keys_and_shapes(official, kind):
    manifest = json.loads((official(kind)[0].parent / "full_size_keys.json").read_text())["types"][kind]
    with torch.device("meta"):
        model = LatentDiffusion(config_from_args(_full_size_args(official, kind, manifest["args"])))
    ours = {k: list(v.shape) for k, v in model.state_dict().items() if k not in OURS_ONLY}
    theirs = {k: v for k, v in manifest["state_dict"].items() if "dwt_" not in k}  # filter constants
    assert ours == theirs


def test_a_vit_g_model_has_the_swiglu_feed_forward_of_dinov2_g14(official):
    args = _full_size_args(official, "sv", {"clip_model_type": "dino-g-14"})
    with torch.device("meta"):
        model = LatentDiffusion(config_from_args(args))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["clip_model.dinov2.blocks.39.mlp.w12.weight"] == (8192, 1536)  # (2H, D), H = 4096
    assert shapes["clip_model.dinov2.blocks.39.mlp.w3.weight"] == (1536, 4096)
    assert "clip_model.dinov2.blocks.40.norm1.weight" not in shapes and shapes["network.cond_pos_emb"] == (1, 256, 1536)


def test_an_image_model_of_unknown_dinov2_or_without_its_views_is_refused(official):
    args = json.loads((official("rgb4")[0] / "args.json").read_text())
    with pytest.raises(WalaError, match="unknown clip_model_type 'dino-x'"):
        config_from_args({**args, "fixture_dinov2": None, "clip_model_type": "dino-x"})
    with pytest.raises(WalaError, match="without training_views"):
        config_from_args({**args, "training_views": None})
