import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from wala.cli import main
from wala.config import SamplingConfig, load_config
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.export.graphs import build_manifest
from wala.hub.describe import describe
from wala.pipeline import WaLaPipeline
from wala.train.diffusion import DiffusionTrainConfig, initial_model, load_diffusion, train_diffusion

TINY = "configs/diffusion_tiny.yaml"
OFFICIAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"


def _config(data, autoencoder, out, *extra, **train):
    overrides = [
        f"train.data={data}",
        f"train.out={out}",
        f"autoencoder={autoencoder}",
        "train.log_every=1",
        "train.eval_samples=4",
        *extra,
    ]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    return load_config(DiffusionTrainConfig, TINY, overrides)


@pytest.fixture(scope="module")
def trained(prepared, tiny_autoencoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion")
    train_diffusion(_config(prepared, tiny_autoencoder, out, steps=6, checkpoint_every=3))
    return out


def test_training_resumes_exactly(prepared, tiny_autoencoder, trained, tmp_path):
    # the broken run dies after step 5, before that checkpoint lands: it only has step 3
    train_diffusion(_config(prepared, tiny_autoencoder, tmp_path, steps=5, checkpoint_every=3))
    (tmp_path / "step-00000005.safetensors").unlink()
    train_diffusion(_config(prepared, tiny_autoencoder, tmp_path, steps=6, checkpoint_every=3))
    a = load_file(str(trained / "step-00000006.safetensors"))
    b = load_file(str(tmp_path / "step-00000006.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_runs_own_config_json_starts_the_next_run_and_no_other_trainer(trained, tmp_path, capsys):
    """How a run is continued with a fresh schedule (the shipped built-ins' last runs): its config.json,
    which names its trainer, is the next run's config with a few overrides."""
    run = trained / "config.json"
    nxt = tmp_path / "next"
    parent = trained / "step-00000006.safetensors"
    overrides = ["--set", f"train.out={nxt}", "--set", "train.steps=1", "--set", f"train.init_from={parent}"]
    assert main(["train-diffusion", str(run), *overrides]) == 0
    before, after = json.loads(run.read_text()), json.loads((nxt / "config.json").read_text())
    assert {k: v for k, v in after.items() if k != "train"} == {k: v for k, v in before.items() if k != "train"}
    changed = {k for k in after["train"] if after["train"][k] != before["train"][k]}
    assert changed == {"out", "steps", "init_from"}
    assert main(["train-ae", str(run)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"config file {run} is a diffusion run's config, not autoencoder")


def test_a_generator_trains_shard_by_shard_and_resumes_exactly(prepared, tiny_autoencoder, tmp_path):
    # its latent dataset reports each sample's shard, as the streaming order needs (it once did not)
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train_diffusion(_config(prepared, tiny_autoencoder, straight, steps=4, checkpoint_every=2, shuffle_buffer=3))
    train_diffusion(_config(prepared, tiny_autoencoder, broken, steps=3, checkpoint_every=2, shuffle_buffer=3))
    (broken / "step-00000003.safetensors").unlink()
    train_diffusion(_config(prepared, tiny_autoencoder, broken, steps=4, checkpoint_every=2, shuffle_buffer=3))
    a = load_file(str(straight / "step-00000004.safetensors"))
    b = load_file(str(broken / "step-00000004.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_latents_are_cached_and_their_statistics_travel_with_the_checkpoint(trained):
    latents = load_file(str(trained / "latents-train.safetensors"))["latents"]
    assert latents.shape == (12, 4, 6, 6, 6)  # 64³ TSDFs → 64×22³ trees → 4×6³ latents
    model, config = load_diffusion(trained / "step-00000006.safetensors")
    assert model.config.resolution == 64 and model.config.denoiser.latent_size == 6
    normalized = model.normalize(latents)
    assert torch.allclose(normalized.mean(dim=(0, 2, 3, 4)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(normalized.std(dim=(0, 2, 3, 4)), torch.ones(4), atol=1e-4)
    assert torch.allclose(model.denormalize(normalized), latents, atol=1e-5)
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert "mse" in records[-1]["eval"]


def test_generation_is_seeded(trained):
    generator = WaLaPipeline.from_pretrained(trained / "step-00000006.safetensors")
    points = np.random.default_rng(0).random((3000, 3)) * 2 - 1
    condition = generator.condition_tensor(pointcloud=points)
    assert generator.generate_tsdf(condition, samples=2, steps=4, guidance=1.5, seed=7).shape == (2, 64, 64, 64)
    # latents, not TSDFs: an undertrained model's nearby latents snap to the same codes
    a, b, c = (
        generator.generate_latents(condition, samples=2, steps=4, guidance=1.5, seed=s).numpy() for s in (7, 7, 8)
    )
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # a batch holds different samples
    assert np.array_equal(a[1], c[0])  # sample i is the seed + i draw, whatever the batch


@pytest.mark.parametrize("kind", ["voxel", "none", "pointcloud-grid"])
def test_voxel_and_unconditional_generators_train(prepared, tiny_autoencoder, tmp_path, kind):
    kind, _, encoder = kind.partition("-")
    blocks = f"model.denoiser.cross={'false' if kind == 'none' else 'true'}"  # no condition: plain blocks
    settings = [f"model.condition.kind={kind}", blocks, "model.condition.voxel_hidden=8"]
    settings += [f"model.condition.encoder={encoder}"] if encoder else []
    train_diffusion(_config(prepared, tiny_autoencoder, tmp_path, *settings, steps=2))
    generator = WaLaPipeline.from_pretrained(tmp_path / "step-00000002.safetensors")
    assert generator.condition == kind
    assert generator.model.config.condition.encoder == (encoder or "large")
    if kind != "none":  # 8³ tokens, from the points' grid too
        assert generator.model.network.cond_pos_emb.shape[1] == 512
    grid = np.zeros((16, 16, 16), dtype=bool)
    grid[4:12, 4:12, 4:12] = True
    condition = {
        "voxel": lambda: generator.condition_tensor(voxel=grid),
        "pointcloud": lambda: generator.condition_tensor(pointcloud=np.random.default_rng(0).random((500, 3)) - 0.5),
        "none": lambda: None,
    }[kind]()
    assert generator.generate_tsdf(condition, samples=1, steps=2).shape == (1, 64, 64, 64)


def test_a_voxel_generator_fine_tunes_from_a_grid_point_cloud_generator_with_all_its_weights(
    prepared, tiny_autoencoder, tmp_path
):
    grid = ("model.condition.kind=pointcloud", "model.condition.encoder=grid", "model.condition.voxel_hidden=8")
    train_diffusion(_config(prepared, tiny_autoencoder, tmp_path / "pc", *grid, steps=2))
    parent = tmp_path / "pc" / "step-00000002.safetensors"
    voxel = ("model.condition.kind=voxel", "model.condition.voxel_hidden=8")
    config = _config(prepared, tiny_autoencoder, tmp_path / "vx", *voxel, steps=2, init_from=parent)
    child, (pc, _) = initial_model(config, 64), load_diffusion(parent)
    assert child.config.condition.kind == "voxel" and child.config.condition.encoder == "large"
    mine, theirs = child.state_dict(), pc.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith("encoder."))
    # its encoder reads an occupancy grid as the grid encoder reads cells that hold points at their centres
    occupancy = torch.zeros(1, 1, 16, 16, 16)
    occupancy[..., 4:12, 5:9, 3:13] = 1
    cells = torch.cat([occupancy, torch.zeros(1, 3, 16, 16, 16)], dim=1)
    with torch.no_grad():
        assert torch.allclose(child.encoder(occupancy), pc.encoder.grid(cells), atol=1e-6)
    train_diffusion(config)
    assert WaLaPipeline.from_pretrained(tmp_path / "vx" / "step-00000002.safetensors").condition == "voxel"


def test_a_voxel_generator_starts_from_a_point_cloud_generators_denoiser(prepared, tiny_autoencoder, trained, tmp_path):
    parent = trained / "step-00000006.safetensors"
    voxel = ("model.condition.kind=voxel", "model.condition.voxel_hidden=8")
    with pytest.raises(WalaError, match="cannot fine-tune a 'pointcloud' generator on 'voxel'"):
        train_diffusion(_config(prepared, tiny_autoencoder, tmp_path / "a", *voxel, steps=1, init_from=parent))
    with pytest.raises(WalaError, match="set model.condition.width to 32 \\(it is 16\\)"):
        train_diffusion(
            _config(
                prepared,
                tiny_autoencoder,
                tmp_path / "b",
                *voxel,
                "model.condition.width=16",
                "init_denoiser_only=true",
                steps=1,
                init_from=parent,
            )
        )
    with pytest.raises(WalaError, match="init_denoiser_only takes the denoiser of train.init_from, which names none"):
        train_diffusion(_config(prepared, tiny_autoencoder, tmp_path / "d", *voxel, "init_denoiser_only=true", steps=1))
    config = _config(
        prepared, tiny_autoencoder, tmp_path / "c", *voxel, "init_denoiser_only=true", steps=2, init_from=parent
    )
    child, (pc, _) = initial_model(config, 64), load_diffusion(parent)
    assert child.config.condition.kind == "voxel" and child.config.latent_mean == pc.config.latent_mean
    mine, theirs = child.state_dict(), pc.state_dict()
    kept = [k for k in mine if k.startswith(("autoencoder.", "network.unet."))]
    assert kept and all(torch.equal(mine[k], theirs[k]) for k in kept)
    assert child.encoder.__class__ is not pc.encoder.__class__
    assert mine["network.cond_pos_emb"].shape[1] == 512 != theirs["network.cond_pos_emb"].shape[1]  # 8³ voxel tokens
    train_diffusion(config)
    assert WaLaPipeline.from_pretrained(tmp_path / "c" / "step-00000002.safetensors").condition == "voxel"
    # the aligned context grows on a trained model: it starts at zero, the rest as it was
    grown = initial_model(
        _config(
            prepared,
            tiny_autoencoder,
            tmp_path / "e",
            *voxel,
            "model.denoiser.aligned_context=true",
            steps=1,
            init_from=tmp_path / "c" / "step-00000002.safetensors",
        ),
        64,
    )
    before, after = load_diffusion(tmp_path / "c" / "step-00000002.safetensors")[0].state_dict(), grown.state_dict()
    assert grown.config.denoiser.aligned_context and set(after) - set(before) == {
        "network.unet.context_grid.weight",
        "network.unet.context_grid.bias",
    }
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not after["network.unet.context_grid.weight"].any()


def test_bad_conditions_and_checkpoints_end_in_one_line_and_status_2(trained, tmp_path, capsys):
    checkpoint = str(trained / "step-00000006.safetensors")
    np.save(tmp_path / "nan.npy", np.full((100, 3), np.nan))
    np.save(tmp_path / "grid.npy", np.ones((16, 16, 16)))
    (tmp_path / "bad.pcd").write_text("x")
    cases = [
        (["--pointcloud", str(tmp_path / "nan.npy")], "NaN"),
        (["--pointcloud", str(tmp_path / "missing.ply")], "not found"),
        (["--pointcloud", str(tmp_path / "bad.pcd")], "unknown point cloud format"),
        (["--voxel", str(tmp_path / "grid.npy")], "reads --pointcloud (pointcloud), not a voxel condition"),
        (["--unconditional"], "reads --pointcloud (pointcloud), not no condition"),
        (["--image", str(tmp_path / "grid.npy")], "not an image condition"),
    ]
    for args, message in cases:
        assert main(["generate", checkpoint, *args, "-o", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("wala: error:") and message in err and err.count("\n") == 1, err
    assert main(["generate", str(tmp_path / "none.safetensors"), "--unconditional", "-o", str(tmp_path)]) == 2
    assert "model not found" in capsys.readouterr().err


def test_a_missing_autoencoder_is_a_clear_error(prepared, tmp_path):
    with pytest.raises(WalaError, match="checkpoint not found"):
        train_diffusion(_config(prepared, tmp_path / "nope.safetensors", tmp_path))


def _torchrun(args, timeout=300):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "wala.cli", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


def test_fsdp_trains_like_ddp_and_resumes_from_its_full_checkpoints(prepared, tiny_autoencoder, tmp_path):
    common = [
        "train-diffusion",
        TINY,
        "--set",
        f"train.data={prepared}",
        "--set",
        f"autoencoder={tiny_autoencoder}",
        "--set",
        "train.batch_size=2",
        "--set",
        "train.eval_samples=2",
        "--set",
        "train.checkpoint_every=2",
    ]
    _torchrun([*common, "--set", f"train.out={tmp_path / 'ddp'}", "--set", "train.steps=4"])
    _torchrun(
        [*common, "--set", f"train.out={tmp_path / 'fsdp'}", "--set", "train.steps=2", "--set", "train.fsdp=true"]
    )
    _torchrun(
        [*common, "--set", f"train.out={tmp_path / 'fsdp'}", "--set", "train.steps=4", "--set", "train.fsdp=true"]
    )
    ddp = load_file(str(tmp_path / "ddp" / "step-00000004.safetensors"))
    sharded = load_file(str(tmp_path / "fsdp" / "step-00000004.safetensors"))
    assert ddp.keys() == sharded.keys()
    for key in ddp:  # full tensors in both; only the order of the gradient sums differs
        assert ddp[key].shape == sharded[key].shape, key
        assert torch.allclose(ddp[key].float(), sharded[key].float(), atol=1e-5), key
    records = [json.loads(line) for line in (tmp_path / "fsdp" / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 4, "ranks_in_sync": True, "world": 2} in records
    assert any("eval" in r for r in records)


def test_generate_writes_each_sample_with_a_surface_and_reports_the_rest(trained, tmp_path, monkeypatch, capsys):
    import trimesh

    from wala.sdf.grid import grid_points

    sphere = (grid_points(64).norm(dim=-1) - 0.5).clamp(-0.1, 0.1).numpy()
    empty = np.full_like(sphere, 0.1)
    made = iter([sphere, empty])
    monkeypatch.setattr(LatentDiffusion, "decode", lambda self, z: torch.from_numpy(next(made))[None])
    cloud = np.random.default_rng(0).random((500, 3)) * 10 + 100  # far from the normalized frame
    np.save(tmp_path / "cloud.npy", cloud)
    args = [
        "generate",
        str(trained / "step-00000006.safetensors"),
        "--pointcloud",
        str(tmp_path / "cloud.npy"),
        "-o",
        str(tmp_path / "out"),
        "--samples",
        "2",
        "--seed",
        "3",
    ]
    assert main([*args, "--normalize", "--original-frame"]) == 0
    err = capsys.readouterr().err
    assert "sample 4: TSDF has no surface" in err and "1 of 2 shapes" in err
    mesh = trimesh.load(tmp_path / "out" / "sample_0003.obj")
    assert np.allclose(
        mesh.bounds.mean(axis=0), cloud.min(0) / 2 + cloud.max(0) / 2, atol=0.2
    )  # back in the cloud's frame
    assert not (tmp_path / "out" / "sample_0004.obj").exists()
    monkeypatch.setattr(LatentDiffusion, "decode", lambda self, z: torch.from_numpy(empty)[None])
    assert main(args) == 2
    assert "no sample has a surface" in capsys.readouterr().err


def test_a_trained_generator_carries_its_autoencoder_anywhere(trained, tiny_autoencoder, tmp_path, capsys):
    import shutil

    moved = tmp_path / "elsewhere" / "generator.safetensors"
    moved.parent.mkdir()
    shutil.copyfile(trained / "step-00000006.safetensors", moved)
    # no path to the autoencoder's own checkpoint is needed: its weights are inside
    model = WaLaPipeline.from_pretrained(moved).model
    from wala.train.autoencoder import load_autoencoder

    assert all(
        torch.equal(a, b)
        for a, b in zip(
            model.autoencoder.state_dict().values(), load_autoencoder(tiny_autoencoder).state_dict().values()
        )
    )
    np.save(tmp_path / "cloud.npy", np.random.default_rng(0).random((300, 3)) * 1.8 - 0.9)
    assert (
        main(
            [
                "generate",
                str(moved),
                "--pointcloud",
                str(tmp_path / "cloud.npy"),
                "-o",
                str(tmp_path / "out"),
                "--format",
                "npz",
                "--steps",
                "2",
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "out" / "sample_0000.npz")["tsdf"].shape == (64, 64, 64)


def test_convert_writes_our_directory_for_a_trained_generator_too(trained, tmp_path):
    assert main(["convert", str(trained / "step-00000006.safetensors"), "-o", str(tmp_path / "model")]) == 0
    a = WaLaPipeline.from_pretrained(trained / "step-00000006.safetensors")
    b = WaLaPipeline.from_pretrained(tmp_path / "model")
    condition = a.condition_tensor(pointcloud=np.random.default_rng(1).random((500, 3)) - 0.5)
    reference = a.generate_latents(condition, steps=3, seed=5)
    assert torch.equal(reference, b.generate_latents(condition, steps=3, seed=5))
    # half-size storage: half the file, computed in float32 on load, nearly the same samples
    assert main(["convert", str(tmp_path / "model"), "-o", str(tmp_path / "half"), "--storage", "fp16"]) == 0
    full, half = (tmp_path / name / "model.safetensors" for name in ("model", "half"))
    assert half.stat().st_size < 0.6 * full.stat().st_size
    c = WaLaPipeline.from_pretrained(tmp_path / "half")
    assert {p.dtype for p in c.model.parameters()} == {torch.float32}
    assert (c.generate_latents(condition, steps=3, seed=5) - reference).abs().max() < 0.05 * reference.abs().max()


def test_a_converted_model_records_the_sampling_it_recommends(prepared, tiny_autoencoder, trained, tmp_path, capsys):
    """`wala convert --steps --scale` writes `sampling` into config.json; generate, `wala models` (and the
    page) and the ONNX manifest use it when given none, explicit values still win, a fine-tuning run
    starts without it, and a bad record is one line on load."""
    checkpoint = str(trained / "step-00000006.safetensors")
    assert main(["convert", checkpoint, "-o", str(tmp_path / "model"), "--steps", "4", "--scale", "3"]) == 0
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["model"]["sampling"] == {"steps": 4, "guidance": 3.0}
    assert main(["convert", str(tmp_path / "model"), "-o", str(tmp_path / "again"), "--scale", "2"]) == 0
    pipe = WaLaPipeline.from_pretrained(tmp_path / "again")  # a later convert keeps what it does not change
    assert pipe.defaults() == (4, 2.0) and pipe.sampling(steps=2, guidance=1.0) == (2, 1.0)
    assert WaLaPipeline.from_pretrained(checkpoint).defaults() == (8, 1.3)  # the point-cloud condition's
    condition = pipe.condition_tensor(pointcloud=np.random.default_rng(1).random((500, 3)) - 0.5)
    assert torch.equal(
        pipe.generate_latents(condition, seed=5), pipe.generate_latents(condition, steps=4, guidance=2.0, seed=5)
    )
    assert not torch.equal(
        pipe.generate_latents(condition, seed=5), pipe.generate_latents(condition, steps=8, guidance=1.3, seed=5)
    )
    assert describe(tmp_path / "again").defaults == (4, 2.0)
    assert build_manifest(pipe.model, "again", 1, 18, {}, {})["defaults"] == {"steps": 4, "guidance": 2.0}
    tuned = _config(prepared, tiny_autoencoder, tmp_path / "tuned", steps=1, init_from=tmp_path / "again")
    train_diffusion(tuned)
    assert load_diffusion(tmp_path / "tuned" / "step-00000001.safetensors")[0].config.sampling == SamplingConfig()
    for bad, message in [
        ({"steps": -1}, "sampling steps must be a whole number ≥ 0"),
        ({"steps": 5000}, "sampling steps 5000: the schedule has 1000 timesteps"),
        ({"guidance": "three"}, "sampling guidance must be a finite number, got 'three'"),
        ({"guidance": float("nan")}, "sampling guidance must be a finite number, got nan"),
        (4, "DiffusionConfig.sampling must be a mapping of SamplingConfig fields, got 4"),
    ]:
        config["model"]["sampling"] = bad
        (tmp_path / "model" / "config.json").write_text(json.dumps(config))
        with pytest.raises(WalaError, match=message):
            WaLaPipeline.from_pretrained(tmp_path / "model")
    capsys.readouterr()
    assert main(["convert", checkpoint, "-o", str(tmp_path / "long"), "--steps", "5000"]) == 2
    assert "the schedule has 1000 timesteps" in capsys.readouterr().err and not (tmp_path / "long").exists()


@pytest.mark.parametrize("released_kind, condition", [("pc", "pointcloud"), ("sv", "image")])
def test_a_released_model_fine_tunes_on_our_data_and_keeps_its_conventions(
    prepared256, tmp_path, released_kind, condition
):
    released = OFFICIAL / released_kind  # sv: on our renders of view 3
    out = tmp_path / "finetune"
    config = load_config(
        DiffusionTrainConfig,
        None,
        [
            f"train.data={prepared256}",
            f"train.out={out}",
            f"train.init_from={released}",
            "train.steps=2",
            "train.batch_size=2",
            "train.eval_samples=2",
            "model.condition.points=512",
            f"model.condition.kind={condition}",
        ],
    )
    train_diffusion(config)
    tuned = WaLaPipeline.from_pretrained(out / "step-00000002.safetensors").model
    original = WaLaPipeline.from_pretrained(released).model
    assert tuned.config.denoiser == original.config.denoiser and tuned.config.latent_mean == ()  # raw latents
    key = "network.unet.blocks.0.attn.qkv.weight"
    assert not torch.equal(tuned.state_dict()[key], original.state_dict()[key])  # trained
    assert torch.equal(
        tuned.state_dict()["autoencoder.decoder.in_conv.weight"],
        original.state_dict()["autoencoder.decoder.in_conv.weight"],
    )  # the autoencoder is frozen


@pytest.fixture(scope="module")
def prepared_views(tmp_path_factory):
    """4 procedural shapes at 64³ with renders, depth maps and line-art/Canny sketches at the DM4 views."""
    from wala.config import RepresentationConfig
    from wala.data import prepare

    out = tmp_path_factory.mktemp("prepared_views")
    prepare(
        ["procedural:chair,mug:2"],
        out,
        RepresentationConfig(resolution=64),
        progress=False,
        views="3,6,10,26",
        sketches="lineart,canny",
    )
    return out


IMAGE_MODEL = ("model.condition.width=32", "model.condition.vit_depth=1", "model.condition.vit_heads=2")


def test_image_conditions_train_on_prepared_renders_and_sketches_fine_tune_from_one_view(
    prepared_views, tiny_autoencoder, tmp_path
):
    from wala.data.shards import WaveletTreeDataset
    from wala.eval.generation import evaluate_generation

    shapes = WaveletTreeDataset(prepared_views)
    assert shapes.views == ["3", "6", "10", "26"] and shapes.sketches == ["lineart", "canny"]
    arrays = shapes.arrays(0, ("rgb", "depth", "sketch"))
    assert arrays["rgb"].shape == (4, 224, 224, 3) and arrays["depth"].shape == (4, 224, 224)
    assert arrays["sketch"].shape == (4, 2, 224, 224) and arrays["depth"][0, 0, 0] == 0  # background 0

    depth = tmp_path / "dm4"
    train_diffusion(
        _config(
            prepared_views,
            tiny_autoencoder,
            depth,
            "model.condition.kind=depth",
            *IMAGE_MODEL,
            "model.condition.camera_index=true",
            "model.condition.training_views=[6,26,3,10]",
            steps=2,
            batch_size=2,
        )
    )
    generator = WaLaPipeline.from_pretrained(depth / "step-00000002.safetensors")
    result = evaluate_generation(generator, shapes, shapes, count=1, steps=2, points=2000)
    assert set(result) == {"wala", "retrieval", "autoencoder"}  # no voxel grid: no upsampling baselines
    assert result["retrieval"]["overall"]["iou"] == 1.0  # retrieved from the same set: the shape itself

    image = tmp_path / "sv"
    train_diffusion(
        _config(
            prepared_views, tiny_autoencoder, image, "model.condition.kind=image", *IMAGE_MODEL, steps=2, batch_size=2
        )
    )
    sketch = tmp_path / "sk"
    train_diffusion(
        _config(
            prepared_views,
            tiny_autoencoder,
            sketch,
            "model.condition.kind=sketch",
            *IMAGE_MODEL,
            steps=2,
            batch_size=2,
            init_from=image / "step-00000002.safetensors",
        )
    )
    assert WaLaPipeline.from_pretrained(sketch / "step-00000002.safetensors").condition == "sketch"
    with pytest.raises(WalaError, match="reads views \\[3, 49\\] but the data has"):
        train_diffusion(
            _config(
                prepared_views,
                tiny_autoencoder,
                tmp_path / "x",
                "model.condition.kind=views",
                *IMAGE_MODEL,
                "model.condition.training_views=[3,49]",
                steps=1,
                batch_size=2,
            )
        )
    with pytest.raises(WalaError, match="cannot fine-tune a 'image' generator on 'views'"):
        train_diffusion(
            _config(
                prepared_views,
                tiny_autoencoder,
                tmp_path / "y",
                "model.condition.kind=views",
                *IMAGE_MODEL,
                "model.condition.training_views=[3]",
                steps=1,
                batch_size=2,
                init_from=image / "step-00000002.safetensors",
            )
        )
