"""The released text → depth-maps model on diffusers/transformers against the official code's
fixtures (shared/fixtures/official/text_dm6; tolerances from its README)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wala.cli import main
from wala.errors import WalaError
from wala.text.config import TextModelConfig
from wala.text.multiview import VIEWS, TextToViews, alphas_cumprod, cameras, ddim_timesteps, prompt_text, to_uint8
from wala.text.tokenizer import clip_tokenizer

TEXT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official" / "text_dm6"


def case(name: str):
    expected = np.load(TEXT / name / "expected.npz")
    return expected, json.loads(str(expected["meta_json"]))


@pytest.fixture(scope="module")
def components():
    expected = np.load(TEXT / "components.npz")
    return expected, json.loads(str(expected["meta_json"]))


@pytest.fixture(scope="module")
def model():
    return TextToViews.load(TEXT / "model")


def assert_u8(got: np.ndarray, want: np.ndarray) -> None:
    difference = np.abs(got.astype(int) - want.astype(int))
    assert got.shape == want.shape and difference.max() <= 1 and (difference == 0).mean() >= 0.99


def relative(got, want) -> float:
    return float(np.abs(np.asarray(got) - want).max() / np.abs(want).max())


def test_tokens_prompts_cameras_and_schedule(components):
    expected, meta = components
    tokenizer = clip_tokenizer()
    assert (tokenizer(meta["tok_strings"]) == expected["tok_ids"]).all()  # HTML entities, unicode, >77 tokens
    for name in ("dm6_s5", "mv_s5", "dm6_cli"):
        stored, case_meta = case(name)
        prompt = prompt_text(case_meta["prompt_cli"], official=True)
        assert [prompt] == case_meta["prompt_final"]
        assert (tokenizer(prompt) == stored["tokens_prompt"]).all() and (tokenizer("") == stored["tokens_uc"]).all()
    assert prompt_text("a cup") == "a cup, 3d asset" and prompt_text("a 3d-printed cup") == "a 3d-printed cup"
    assert np.abs(cameras(range(55)) - expected["camera_all55"]).max() <= 1e-12
    assert np.abs(cameras(VIEWS["depth"]) - expected["camera_dm6"]).max() <= 1e-12
    assert np.abs(cameras(VIEWS["rgb"]) - expected["camera_mv"]).max() <= 1e-12
    assert torch.equal(alphas_cumprod(), torch.from_numpy(expected["sampler_alphas_cumprod"]))
    for steps in (1, 3, 4, 5, 7, 8, 10, 25, 30, 50, 100):  # 3 → 4 steps and 7 → 8, as the official code
        assert (ddim_timesteps(steps) == expected[f"ddim_trailing_S{steps}"]).all(), steps


def test_text_encoder_unet_and_vae_match_the_official_modules(model, components):
    expected, meta = components
    assert np.abs(model.encode_text(meta["text_out_strings"]).numpy() - expected["text_out"]).max() <= 1e-5
    x, t = torch.from_numpy(expected["unet_x"]), torch.from_numpy(expected["unet_t"])
    context = torch.from_numpy(expected["unet_context"]).expand(len(x), -1, -1)
    camera = torch.from_numpy(expected["unet_camera"])
    out = model.eps(x, t, context, camera, frames=6).numpy()
    assert np.abs(out - expected["unet_out"]).max() <= 1e-4
    alone = model.eps(x, t, context, camera, frames=1).numpy()  # each view alone: the official num_frames 1
    assert np.abs(alone - expected["unet_out_num_frames1"]).max() <= 1e-4
    assert np.abs(alone - expected["unet_out"]).max() > 1e-2  # so the views do attend to each other
    assert np.abs(out - expected["unet_out_no_camera"]).max() > 1e-2  # and the camera matters
    decoded = model.decode(torch.from_numpy(expected["vae_z"])).numpy()
    assert np.abs(decoded - expected["vae_out"]).max() <= 1e-4


def test_six_depth_maps_step_by_step(model):
    expected, meta = case("dm6_s5")
    views = tuple(meta["views"])
    assert views == VIEWS["depth"]
    context = torch.cat(
        [
            torch.from_numpy(expected["text_uc"]).expand(6, -1, -1),
            torch.from_numpy(expected["text_c"]).expand(6, -1, -1),
        ]
    )
    camera = torch.from_numpy(cameras(views)).float()
    steps = []
    latents = model.sample(
        torch.from_numpy(expected["x_T"]),
        context,
        torch.cat([camera, camera]),
        6,
        meta["step"],
        10.0,
        trace=steps.append,
    )
    assert [s["t"] for s in steps] == expected["step_t"].tolist()
    for i, step in enumerate(steps):
        for key in ("eps", "pred_x0", "x_prev"):
            assert relative(step[key], expected[f"step_{key}"][i]) <= 1e-5, (i, key)
    assert relative(latents, expected["latents"]) <= 1e-5
    decoded = model.decode(torch.from_numpy(expected["latents"]))
    assert np.abs(decoded[:, :, ::4, ::4].numpy() - expected["decoded_sub4"]).max() <= 1e-4
    assert_u8(to_uint8(decoded), expected["images_u8"])


def test_four_rgb_views(model):
    expected, meta = case("mv_s5")
    out = model(meta["prompt_cli"], views=VIEWS["rgb"], steps=meta["step"], seed=meta["seed"], official_prompt=True)
    assert out.views == tuple(meta["views"]) and relative(out.latents, expected["latents"]) <= 1e-5
    assert_u8(out.images, expected["images_u8"])


def test_text2depth_from_the_seed_writes_the_official_pixels_named_by_view(tmp_path, capsys):
    expected, meta = case("dm6_s5")  # end to end: x_T is what torch.manual_seed(42) then the sampler draws
    assert (
        main(
            [
                "text2depth",
                str(TEXT / "model"),
                "--text",
                meta["prompt_cli"],
                "--official-prompt",
                "--seed",
                str(meta["seed"]),
                "--steps",
                str(meta["step"]),
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )  # guidance 10: run.py's
    for i, view in enumerate(VIEWS["depth"]):
        ours = Image.open(tmp_path / f"{view}.png")
        assert ours.mode == "RGB" and ours.size == (256, 256)
        assert_u8(np.asarray(ours), expected["images_u8"][i])
    assert main(["text2depth", str(TEXT / "model"), "--text", "a cup", "--views", "3,99", "-o", str(tmp_path)]) == 2
    assert "distinct view ids 0–54" in capsys.readouterr().err


def test_the_official_cli_run_first_and_last_steps_and_its_pngs(model):
    """run.py itself at 50 steps ("An owl, 3D model": no suffix, seed 1234): its first two steps from
    x_T, its last step (ᾱ_prev = ᾱ₀) from the stored step 48, and its PNG files from its latents."""
    expected, meta = case("dm6_cli")
    assert [prompt_text(meta["prompt_cli"], official=True)] == meta["prompt_final"]
    assert (ddim_timesteps(50)[::-1] == expected["step_t"]).all()
    context = torch.cat(
        [
            torch.from_numpy(expected["text_uc"]).expand(6, -1, -1),
            torch.from_numpy(expected["text_c"]).expand(6, -1, -1),
        ]
    )
    camera = torch.from_numpy(cameras(VIEWS["depth"])).float()
    camera = torch.cat([camera, camera])
    assert torch.equal(
        torch.randn(6, 4, 32, 32, generator=torch.Generator().manual_seed(meta["seed"])),
        torch.from_numpy(expected["x_T"]),
    )
    selected = expected["step_sel"].tolist()  # [0, 1, 48, 49]
    first = []
    model.sample(torch.from_numpy(expected["x_T"]), context, camera, 6, 50, 10.0, trace=first.append, stop_after=2)
    for i in (0, 1):
        assert relative(first[i]["x_prev"], expected["step_x_prev"][selected.index(i)]) <= 1e-5
    last = []
    model.sample(
        torch.from_numpy(expected["step_x_prev"][selected.index(48)]),
        context,
        camera,
        6,
        50,
        10.0,
        trace=last.append,
        start_at=49,
    )
    assert relative(last[0]["x_prev"], expected["latents"]) <= 1e-5
    images = to_uint8(model.decode(torch.from_numpy(expected["latents"])))
    for i in range(6):
        assert_u8(images[i], np.asarray(Image.open(TEXT / "dm6_cli" / f"image_{i}.png")))


def test_config_from_shapes_is_the_released_layout():
    manifest = json.loads((TEXT / "full_size_keys.json").read_text())["keys"]
    assert TextModelConfig.from_shapes({k: tuple(v) for k, v in manifest.items()}) == TextModelConfig()
    with pytest.raises(WalaError, match="not a text-to-views model"):
        TextModelConfig.from_shapes({"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)})


def test_loading_is_strict_and_pickle_safe(tmp_path, model):
    payload = torch.load(TEXT / "model" / "checkpoint.ckpt", weights_only=True)
    state = payload["state_dict"]
    (tmp_path / "tiny_config.yaml").write_text((TEXT / "model" / "tiny_config.yaml").read_text())
    (tmp_path / "WaLaTinyText-A.json").write_text((TEXT / "model" / "WaLaTinyText-A.json").read_text())

    def refused(broken: dict, match: str):
        torch.save({"state_dict": broken}, tmp_path / "checkpoint.ckpt")
        with pytest.raises(WalaError, match=match):
            TextToViews.load(tmp_path)

    missing = dict(state)
    del missing["model.model.diffusion_model.out.2.weight"]
    refused(missing, "UNet|unet")
    refused({**state, "model.model.diffusion_model.extra.weight": torch.zeros(3)}, "not every UNet tensor")
    refused({**state, "model.something_else": torch.zeros(3)}, "unexpected tensor something_else")
    wrong = dict(state)
    wrong["model.cond_stage_model.model.ln_final.weight"] = torch.zeros(7)
    refused(wrong, "final_layer_norm.weight has shape \\(7,\\)")
    (tmp_path / "checkpoint.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(WalaError, match="corrupt checkpoint"):
        TextToViews.load(tmp_path)
    with pytest.raises(WalaError, match="text model not found"):
        TextToViews.load(tmp_path / "nowhere")


def test_convert_writes_diffusers_folders_that_load_back_alike(tmp_path, model, monkeypatch, capsys):
    from diffusers import UNet2DConditionModel

    assert main(["convert", str(TEXT / "model"), "-o", str(tmp_path / "conv")]) == 0
    for part, file in (
        ("unet", "diffusion_pytorch_model"),
        ("vae", "diffusion_pytorch_model"),
        ("text_encoder", "model"),
    ):
        assert (tmp_path / "conv" / part / f"{file}.safetensors").is_file() and (
            tmp_path / "conv" / part / "config.json"
        ).is_file()
    converted = TextToViews.load(tmp_path / "conv")
    a = model("a chair", steps=2, seed=1)
    b = converted("a chair", steps=2, seed=1)
    assert torch.equal(a.latents, b.latents) and np.array_equal(a.images, b.images)
    stock = UNet2DConditionModel.from_pretrained(tmp_path / "conv" / "unet")  # diffusers reads it as it is
    assert stock.config.class_embed_type == "projection"
    monkeypatch.setenv("WALA_MODELS", str(tmp_path))  # found by name, listed, and kept apart from 3D generators
    capsys.readouterr()
    assert main(["models"]) == 0
    listed = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("conv "))
    assert listed[:2] == ["conv", "official"] and "text" in listed and "3.4M" in listed
    assert torch.equal(TextToViews.load("conv")("a chair", steps=2, seed=1).latents, a.latents)
    assert main(["generate", "conv", "--text", "a chair", "-o", str(tmp_path / "x")]) == 2
    assert "is a text-to-views model: use it with `wala text2depth`" in capsys.readouterr().err


def test_text_to_depth_maps_to_mesh_in_one_call(model, tmp_path):
    from wala.pipeline import WaLaPipeline

    dm6 = TEXT.parent / "dm6"
    pipe = WaLaPipeline.from_pretrained(dm6)
    shape = pipe(text="a wooden chair", text_model=model, text_steps=3, steps=2, seed=5, progress=False)[0]
    drawn = shape.text_views
    assert drawn.views == (3, 6, 10, 26, 49, 50) and drawn.images.shape == (6, 256, 256, 3)
    assert torch.equal(drawn.latents, model("a wooden chair", views=drawn.views, steps=3, seed=5).latents)
    by_hand = pipe(depth=list(drawn.images), steps=2, seed=5, progress=False)[0]
    assert torch.equal(shape.latent, by_hand.latent)  # the chain is text → maps, then the maps as given

    out = tmp_path / "chain"
    code = main(
        [
            "generate",
            str(dm6),
            "--text",
            "a",
            "wooden",
            "chair",
            "--text-model",
            str(TEXT / "model"),
            "--text-steps",
            "3",
            "--steps",
            "2",
            "--seed",
            "5",
            "-o",
            str(out),
            "--no-preview",
        ]
    )
    assert code == 0
    for view in drawn.views:
        assert np.array_equal(
            np.asarray(Image.open(out / "depth" / f"{view}.png")), drawn.images[drawn.views.index(view)]
        )
    import trimesh

    mesh = trimesh.load(out / "sample_0005.obj")  # the random tiny DM6 model's shape, but a surface
    assert len(mesh.faces) > 100 and np.all(np.abs(mesh.vertices) <= 1.0)
    with pytest.raises(WalaError, match="needs a multi-view depth or RGB model"):
        WaLaPipeline.from_pretrained(TEXT.parent / "pc")(text="a chair", text_model=model)
