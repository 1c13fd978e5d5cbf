"""`wala export onnx` and its onnxruntime runner: each graph against the torch model and against the official
code's recorded numbers (shared/fixtures/official), an end-to-end ORT sample against the torch pipeline, and
bad input as one line. Real onnxruntime on the CPU; the largest differences seen are in the comments."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wala.cli import export, options
from wala.diffusion.model import LatentDiffusion
from wala.errors import WalaError
from wala.export.graphs import OPSET, ConditionGraph, StepGraph, export_graph, step_coefficients
from wala.export.runner import OnnxPipeline
from wala.io.images import image_tensor
from wala.pipeline import WaLaPipeline

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "wala" / "examples" / "pointcloud" / "chair_5000.ply"


def official(kind: str):
    folder = FIXTURES / kind
    if not (folder / "expected.npz").is_file():
        raise RuntimeError(f"official fixtures missing under {folder} (shared/fixtures/official)")
    expected = np.load(folder / "expected.npz")
    return folder, expected, json.loads(str(expected["meta_json"]))


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def wala(argv: list[str]) -> tuple[int, str, str]:
    """`wala …` through the export group's parser and the CLI's runner → (exit status, stdout, stderr)."""
    parser = options.OneLineParser(prog="wala")
    export.add_commands(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(argv)
            status = options.run_command(args.run, args)
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def pc64(tmp_path_factory):
    """pc64 exported by the command at batch 2 (with --check) → (folder, torch pipeline, the command's stderr)."""
    folder = tmp_path_factory.mktemp("onnx") / "pc64"
    status, _, err = wala(["export", "onnx", "pc64", "-o", str(folder), "--batch", "2", "--check"])
    assert status == 0, err
    return folder, WaLaPipeline.from_pretrained("pc64", device="cpu"), err


@pytest.fixture(scope="module")
def released_pc(tmp_path_factory):
    """The official-format point-cloud fixture exported at batch 1 → (runner, torch model, expected, meta)."""
    from wala.export.graphs import export_onnx

    folder, expected, meta = official("pc")
    model = LatentDiffusion.from_pretrained(folder)
    out = tmp_path_factory.mktemp("onnx") / "pc"
    export_onnx(folder, out, model=model, condition=torch.from_numpy(expected["input_points"]))
    return OnnxPipeline(out), model, expected, meta


def test_the_command_writes_three_graphs_and_a_manifest_and_checks_them(pc64):
    folder, _, err = pc64
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {p.name for p in folder.glob("*.onnx")} == {"encoder.onnx", "denoiser.onnx", "decoder.onnx"}
    assert manifest["batch"] == 2 and manifest["latent_shape"] == [4, 11, 11, 11] and manifest["resolution"] == 64
    assert manifest["graphs"]["denoiser"]["inputs"]["x"]["shape"] == [2, 4, 11, 11, 11]
    assert isinstance(manifest["graphs"]["encoder"]["inputs"]["condition"]["shape"][1], str)  # any point count
    diffs = [float(line.split()[-1]) for line in err.splitlines() if "max abs diff" in line]
    assert len(diffs) == 3 and max(diffs) <= 1e-4  # seen: encoder 1.7e-6, denoiser 6.2e-6, decoder 1.8e-7


def test_pc64_graphs_match_torch_on_a_real_point_cloud(pc64):
    folder, pipe, _ = pc64
    runner, model = OnnxPipeline(folder), pipe.model
    condition = runner.condition_input(pointcloud=str(EXAMPLE))  # 5000 points: not the 1024 traced with
    conditional, unconditional = runner.encode(condition)
    with torch.no_grad():
        want = model.condition_pair(torch.from_numpy(condition))
        assert max_diff(conditional, want[0]) <= 1e-4 and max_diff(unconditional, want[1]) <= 1e-4  # seen 2.4e-6
        d = model.config.denoiser
        shape = (d.latent_channels, *(d.latent_size,) * 3)
        x, noise = torch.randn(2, *shape), torch.randn(2, *shape)
        timesteps, table = step_coefficients(model.config, 8)
        step = dict(x=x, t=torch.full((2,), timesteps[0]), coefficients=torch.from_numpy(table[0]), noise=noise)
        tokens = dict(conditional=want[0].expand(2, -1, -1), unconditional=want[1].expand(2, -1, -1))
        expected = StepGraph(model)(**step, **tokens, guidance=torch.tensor(1.3))
        assert max_diff(runner.run("denoiser", **step, **tokens, guidance=1.3)[0], expected) <= 1e-4  # seen ≤ 6.2e-6
        latent = 0.2 * torch.randn(*shape)
        assert max_diff(runner.decode(latent), model.decode(latent[None])[0]) <= 1e-4  # seen 1.8e-7


def test_an_ort_sample_is_the_torch_pipelines_sample_for_the_same_seed(pc64):
    """Same seeds, same draws: the latents differ by float32 rounding only (seen 5e-7 after 8 steps), and so
    do the TSDFs (seen 2e-7 of values up to 0.14) as long as the quantizer picks the same codes, which a
    difference that small cannot change unless two codes lie within it; 1e-4 is the parity bound."""
    folder, pipe, _ = pc64
    torch_shapes = pipe(pointcloud=str(EXAMPLE), seed=7, samples=3, progress=False)
    ort_shapes = OnnxPipeline(folder)(pointcloud=str(EXAMPLE), seed=7, samples=3)  # batch 2: a padded last chunk
    assert [s.seed for s in ort_shapes] == [7, 8, 9]
    for ours, theirs in zip(ort_shapes, torch_shapes):
        assert max_diff(ours.latent, theirs.latent) <= 1e-4
        assert max_diff(ours.tsdf, theirs.tsdf) <= 1e-4
    assert len(ort_shapes[0].mesh.faces) > 0


def test_released_pc_encoder_matches_the_official_processed_condition(released_pc):
    runner, model, E, _ = released_pc
    conditional, unconditional = runner.encode(E["input_points"])
    assert max_diff(conditional, E["cond_processed"]) <= 1e-4  # seen 4.8e-6
    assert max_diff(unconditional, E["cond_zero_processed"]) <= 1e-4  # seen 6e-8


def test_released_pc_denoiser_step_reproduces_the_official_first_step(released_pc):
    runner, model, E, meta = released_pc
    steps, guidance = meta["diffusion_rescale_timestep"], meta["guidance_scale_effective"]
    timesteps, table = step_coefficients(model.config, steps)
    step = dict(
        x=E["rng_draws"][0],
        t=np.array([timesteps[0]]),
        coefficients=table[0],
        noise=E["rng_draws"][1],
        conditional=E["cond_processed"],
        unconditional=E["cond_zero_processed"],
        guidance=guidance,
    )
    (out,) = runner.run("denoiser", **step)
    assert max_diff(out, E["step_sample"][0]) <= 1e-4  # the official x_{t-1}: seen 2.4e-6
    with torch.no_grad():
        torch_step = StepGraph(model)(**{k: torch.as_tensor(v) for k, v in step.items()})
    assert max_diff(out, torch_step) <= 1e-4  # seen 1.9e-6


def test_released_pc_ort_sampling_gives_the_official_latent_and_the_decoder_its_tsdf(released_pc):
    runner, model, E, meta = released_pc
    latent = runner.sample_latents(
        E["input_points"], meta["diffusion_rescale_timestep"], meta["guidance_scale_effective"], seed=meta["seed"]
    )
    assert max_diff(latent, E["latent"]) <= 1e-4  # the official draws in their layout: seen 9.9e-6
    tsdf = runner.decode(E["latent"][0])
    assert tsdf.shape == (256, 256, 256)
    assert max_diff(tsdf.ravel()[E["sdf_sample_idx"]], E["sdf_sample_val"]) <= 1e-4  # seen 3.5e-7
    with torch.no_grad():
        assert max_diff(tsdf[128], model.decode(torch.from_numpy(E["latent"]))[0, 128]) <= 1e-4  # seen 4.2e-7


def test_a_released_image_encoder_dinov2_exports_and_matches_the_official_tokens(tmp_path):
    folder, E, _ = official("sv")
    model = LatentDiffusion.from_pretrained(folder)
    images = image_tensor(E["input_u8"])[None]  # (1, 3, 224, 224)
    export_graph(
        ConditionGraph(model), {"condition": images}, ["conditional", "unconditional"], tmp_path / "e.onnx", OPSET
    )
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    conditional, unconditional = session.run(None, {"condition": images.numpy()})
    assert max_diff(conditional, E["cond_processed"]) <= 1e-4  # seen 5.8e-6 (of values up to 3.6)
    assert max_diff(unconditional, E["cond_zero_processed"]) <= 1e-4


def test_a_wrong_input_shape_or_a_missing_folder_is_one_line(pc64, tmp_path):
    runner = OnnxPipeline(pc64[0])
    with pytest.raises(WalaError, match=r"^encoder input condition: expected shape \(1, N, 3\), got \(1, 10, 2\)$"):
        runner.encode(np.zeros((1, 10, 2), np.float32))
    with pytest.raises(WalaError, match="reads --pointcloud"):
        runner(image="chair.png")
    with pytest.raises(WalaError, match="no manifest.json"):
        OnnxPipeline(tmp_path / "missing")
    status, out, err = wala(["export", "onnx", str(tmp_path / "no-such-model"), "-o", str(tmp_path / "out")])
    assert status == 2 and out == "" and err.count("\n") == 1 and err.startswith("wala: error: model not found")
    status, _, err = wala(["export", "onnx", "pc64", "-o", str(tmp_path / "out"), "--batch", "0"])
    assert status == 2 and err.count("\n") == 1


def test_a_point_grid_encoder_exports_with_the_point_count_free(tmp_path):
    import onnxruntime as ort

    from wala.conditions.pointcloud import PointGridEncoder
    from wala.config import ConditionConfig
    from wala.export.graphs import io_spec

    encoder = PointGridEncoder(ConditionConfig(width=24, encoder="grid", voxel_hidden=16)).eval()
    points = torch.rand(1, 2048, 3) * 2.2 - 1.1
    graph = torch.nn.Sequential(encoder)  # export_graph names a condition input `condition`
    graph.forward = lambda condition: encoder(condition)
    export_graph(graph, {"condition": points}, ["tokens"], tmp_path / "grid.onnx", OPSET)
    shape = io_spec(tmp_path / "grid.onnx")["inputs"]["condition"]["shape"]
    assert isinstance(shape[1], str) and shape[0::2] == [1, 3]  # only the point count is free
    session = ort.InferenceSession(str(tmp_path / "grid.onnx"))
    for count in (2048, 5000):
        points = torch.rand(1, count, 3) * 2.2 - 1.1
        with torch.no_grad():
            assert max_diff(session.run(None, {"condition": points.numpy()})[0], encoder(points)) < 1e-5  # 6e-7 seen


def test_a_denoiser_with_the_aligned_context_exports_and_matches_torch(tmp_path):
    import dataclasses

    import onnxruntime as ort

    from wala.config import AutoencoderConfig, ConditionConfig, DenoiserConfig, DiffusionConfig

    # a latent grid of 6³ under 8³ voxel tokens (averaged down) and of 12³ (trilinear up)
    for size in (6, 12):
        denoiser = DenoiserConfig(
            latent_size=size,
            width=32,
            depth=1,
            heads=2,
            registers=2,
            res_width=8,
            res_blocks=1,
            groups=4,
            aligned_context=True,
        )
        config = DiffusionConfig(
            denoiser=denoiser,
            condition=ConditionConfig(kind="voxel", width=16, voxel_hidden=8),
            autoencoder=AutoencoderConfig(width=16, groups=4, blocks=(1, 1, 1), codebook_size=32),
            resolution=64,
        )
        model = LatentDiffusion(dataclasses.replace(config)).eval()
        torch.nn.init.normal_(model.network.unet.context_grid.weight)  # it starts at zero: make it count
        torch.nn.init.normal_(model.network.unet.out[2].weight)
        timesteps, table = step_coefficients(model.config, 4)
        step = dict(
            x=torch.randn(1, 4, size, size, size),
            t=torch.full((1,), timesteps[0]),
            coefficients=torch.from_numpy(table[0]),
            noise=torch.randn(1, 4, size, size, size),
            conditional=torch.randn(1, 512, 16),
            unconditional=torch.randn(1, 512, 16),
            guidance=torch.tensor(1.5),
        )
        path = tmp_path / f"denoiser{size}.onnx"
        export_graph(StepGraph(model), step, ["next"], path, OPSET)
        got = ort.InferenceSession(str(path)).run(None, {k: v.numpy() for k, v in step.items()})[0]
        with torch.no_grad():
            assert max_diff(got, StepGraph(model)(**step)) <= 1e-4
