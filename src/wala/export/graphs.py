"""A generator → three ONNX graphs and a manifest: `encoder.onnx` (model input → the processed condition pair),
`denoiser.onnx` (one guided ancestral step at a fixed batch) and `decoder.onnx` (latent → TSDF, the inverse
DWT included), written by torch.onnx's dynamo exporter.

The denoiser graph is one whole sampling step, not only the network: the classifier-free pair is stacked
inside it ([uncond; cond], one network call at batch 2B, e_u + s·(e_c − e_u)), then x0, the posterior mean
and the noise term as `wala.diffusion.gaussian.sample` computes them. The step's constants come in as a
(5,) input (`COEFFICIENTS`), so one graph runs any step count; the manifest lists them for the default one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from wala.conditions import recommended_sampling
from wala.config import DiffusionConfig, to_dict
from wala.diffusion.gaussian import Chain
from wala.errors import WalaError, one_line, require

MANIFEST = "manifest.json"
FORMAT = 1  # the manifest's layout; a runner refuses others
OPSET = 18
# the (5,) step input, in order: x0 = c[0]·x − c[1]·out (eps prediction), mean = c[2]·x0 + c[3]·x,
# next = mean + exp(0.5·c[4])·noise; unused entries are read as given (an x0 model ignores c[0] and c[1])
COEFFICIENTS = ("x0_from_x", "x0_from_out", "mean_from_x0", "mean_from_x", "log_variance")
SINGLE_FILE_BYTES = 1_800_000_000  # above this, weights go to a .data file beside the graph (protobuf's 2 GB)


def step_coefficients(config: DiffusionConfig, steps: int) -> tuple[list[int], np.ndarray]:
    """(original timestep per step, (steps, 5) float32 `COEFFICIENTS`), both in sampling order (from the
    noisiest step down to 0), cast from the float64 schedule as `gaussian._at` casts them."""
    chain = Chain.build(config.schedule, steps)
    table = np.stack(
        [np.sqrt(1 / chain.abar), np.sqrt(1 / chain.abar - 1), chain.coef_x0, chain.coef_xt, chain.log_variance], 1
    ).astype(np.float32)
    return chain.timesteps[::-1], table[::-1].copy()


class ConditionGraph(nn.Module):
    """Model input (1, …) → (conditional, unconditional) processed tokens, each (1, L, D): the encoder and
    `LatentDiffusion.condition_pair`; the unconditional half is the processed zero tokens ((conditional,)
    for a model trained without condition dropout, which samples unguided)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, condition: torch.Tensor):
        tokens = self.model.encoder(condition)
        if not self.model.guided:
            return (self.model.process(tokens),)
        unconditional, conditional = self.model.process(torch.cat([torch.zeros_like(tokens), tokens])).chunk(2)
        return conditional, unconditional


class StepGraph(nn.Module):
    """One ancestral step of `gaussian.sample` with `gaussian.guided`'s classifier-free guidance, operation
    for operation (float32 coefficients times tensors, in the same order), so ORT matches torch to rounding:
    x (B, e, G³), t (B,) original indices, conditional/unconditional (B, L, D), guidance (), coefficients (5,),
    noise (B, e, G³) (zeros at the last step) → the next x (B, e, G³)."""

    def __init__(self, model):
        super().__init__()
        self.unet, self.prediction = model.network.unet, model.config.schedule.prediction

    def forward(self, x, t, coefficients, noise, conditional=None, unconditional=None, guidance=None):
        if unconditional is None:
            out = self.unet(x, t, conditional)
        else:
            both = self.unet(torch.cat([x, x]), torch.cat([t, t]), torch.cat([unconditional, conditional]))
            e_u, e_c = both.chunk(2)
            out = e_u + guidance * (e_c - e_u)
        if self.prediction == "previous":
            mean = out
        else:
            x0 = out if self.prediction == "x0" else coefficients[0] * x - coefficients[1] * out
            mean = coefficients[2] * x0 + coefficients[3] * x
        return mean + torch.exp(0.5 * coefficients[4]) * noise


class DecoderGraph(nn.Module):
    """(B, e, G³) latent (the sampler's output, denormalized) → (B, N, N, N) TSDF: `LatentDiffusion.decode`
    (quantize, decode, unpack, inverse DWT)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.model.decode(latent)


def example_condition(model) -> torch.Tensor | None:
    """A model input of the right shape and dtype for tracing and `--check`: what the condition's kind makes
    of a sphere (`from_mesh`: points, voxels), else its reader on mid-gray 224² crops (images of any family)
    or on a few words (text). None for an unconditional model."""
    import trimesh

    kind, c = model.kind, model.config.condition
    if not kind.conditional:
        return None
    if kind.from_mesh is not None:
        sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.6)
        return kind.to_input(kind.from_mesh(sphere, c, 64, 0), c)
    for value in (np.full((224, 224, 3), 128, np.uint8), "a round shape"):
        try:
            return kind.to_input(kind.read([value] * kind.files(c), c), c)
        except (WalaError, TypeError, ValueError, AttributeError):
            continue
    raise WalaError(f"cannot make an example {kind.name} condition to trace the encoder with")


def graph_inputs(model, batch: int, condition: torch.Tensor | None) -> dict[str, dict]:
    """Example inputs of each graph, by graph then input name (the names the ONNX inputs get)."""
    with torch.no_grad():
        return _graph_inputs(model, batch, condition)


def _graph_inputs(model, batch: int, condition: torch.Tensor | None) -> dict[str, dict]:
    d = model.config.denoiser
    latent = torch.randn(batch, d.latent_channels, *[d.latent_size] * 3, generator=torch.Generator().manual_seed(0))
    timesteps, table = step_coefficients(model.config, 2)
    step = {
        "x": latent,
        "t": torch.full((batch,), timesteps[0], dtype=torch.long),
        "coefficients": torch.from_numpy(table[0]),
        "noise": torch.randn(latent.shape, generator=torch.Generator().manual_seed(1)),
    }
    inputs = {"encoder": {"condition": condition}} if condition is not None else {}
    inputs |= {"denoiser": step, "decoder": {"latent": 0.1 * latent[:1]}}  # decoder: one shape at a time, N³ each
    if condition is not None:
        pair = [p.expand(batch, -1, -1).contiguous() for p in ConditionGraph(model)(condition)]
        step["conditional"] = pair[0]
        if model.guided:
            step |= {"unconditional": pair[1], "guidance": torch.tensor(1.5)}
    return inputs


GRAPHS = {"encoder": ConditionGraph, "denoiser": StepGraph, "decoder": DecoderGraph}
OUTPUTS = {"encoder": ["conditional", "unconditional"], "denoiser": ["next"], "decoder": ["tsdf"]}


@contextlib.contextmanager
def quiet_exporter():
    """The dynamo exporter prints its progress and logs a warning per missing torchvision op: keep them out
    of a command's output (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecations, not the caller's
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def free_dims(module: nn.Module, condition: torch.Tensor) -> list[int]:
    """The non-batch dims of a model input the condition graph also runs at twice the size: a point cloud's
    point count, not its 3 coordinates, a 224² crop or a 16³ grid (the position tables fix those)."""
    free = []
    for dim in range(1, condition.dim()):
        try:
            with torch.no_grad():
                module(torch.cat([condition, condition], dim))
        except (RuntimeError, ValueError, IndexError):
            continue
        free.append(dim)
    return free


def export_graph(module: nn.Module, inputs: dict, outputs: list[str], path: Path, opset: int) -> None:
    """One module → one ONNX file through torch.export (dynamo); the `free_dims` of a condition input stay
    dynamic, everything else is fixed (the batch too: TensorRT builds its fastest engine for static shapes)."""
    from torch.export import Dim

    module.eval()
    dynamic = {name: None for name in inputs}
    if "condition" in inputs:
        dynamic["condition"] = {dim: Dim.DYNAMIC for dim in free_dims(module, inputs["condition"])} or None
    with torch.no_grad(), quiet_exporter():
        try:
            program = torch.onnx.export(
                module,
                (),
                kwargs=inputs,
                input_names=list(inputs),
                output_names=outputs,
                dynamic_shapes=dynamic,
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        except Exception as exc:  # torch.export's, the translator's and onnxscript's errors have many types
            raise WalaError(f"cannot export {path.name}: {one_line(exc)}") from exc
        weights = sum(v.const_value.nbytes for v in program.model.graph.initializers.values() if v.const_value)
        program.save(str(path), external_data=weights > SINGLE_FILE_BYTES)


def io_spec(path: Path) -> dict:
    """{inputs, outputs}: name → {shape (a string for a dynamic dim), dtype} of an ONNX file."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def spec(values):
        out = {}
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
            out[v.name] = {"shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}
        return out

    return {"inputs": spec(graph.input), "outputs": spec(graph.output)}


def export_onnx(
    model_name: str | Path,
    out_dir: str | Path,
    batch: int = 1,
    opset: int = OPSET,
    model=None,
    condition: torch.Tensor | None = None,
) -> dict:
    """Writes encoder.onnx (conditional models), denoiser.onnx, decoder.onnx and manifest.json into
    `out_dir` for the generator `model_name` (anything `WaLaPipeline.from_pretrained` takes; `model`, an
    already loaded LatentDiffusion in float32 on the CPU, skips loading). `batch`: the denoiser's fixed batch
    (rows sampled together; the CFG pair makes it 2·batch inside). `condition`: the model input to trace the
    encoder with (default `example_condition`). Returns the manifest."""
    require("wala export onnx", "export", "onnx", "onnxruntime", "onnxscript")
    if batch < 1:
        raise WalaError(f"batch must be at least 1, got {batch}")
    if model is None:
        from wala.pipeline import WaLaPipeline

        model = WaLaPipeline.from_pretrained(model_name, device="cpu").model
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    condition = example_condition(model) if condition is None and model.conditional else condition
    inputs = graph_inputs(model, batch, condition)
    graphs, seconds = {}, {}
    for name, inputs_of in inputs.items():
        path = out / f"{name}.onnx"
        outputs = OUTPUTS[name][: 2 if model.guided else 1]
        start = time.perf_counter()
        export_graph(GRAPHS[name](model), inputs_of, outputs, path, opset)
        seconds[name] = round(time.perf_counter() - start, 2)
        graphs[name] = {"file": path.name, "bytes": sum(f.stat().st_size for f in out.glob(f"{name}.onnx*"))}
        graphs[name] |= io_spec(path)
    manifest = build_manifest(model, str(model_name), batch, opset, graphs, seconds)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def build_manifest(model, name: str, batch: int, opset: int, graphs: dict, seconds: dict) -> dict:
    c = model.config
    official = getattr(model, "source", "") == "official"
    steps, guidance = recommended_sampling(c, official)
    timesteps, table = step_coefficients(c, steps)
    d = c.denoiser
    return {
        "wala": "onnx",
        "format": FORMAT,
        "model": name,
        "source": getattr(model, "source", "wala"),
        "condition": model.kind.name,
        "guided": model.guided,
        "batch": batch,
        "opset": opset,
        "latent_shape": [d.latent_channels, *[d.latent_size] * 3],
        "resolution": c.resolution,
        # the sampler's output is denormalized (x · std + mean) before the decoder: ours only; released: none
        "latent_mean": list(c.latent_mean) if c.latent_mean else None,
        "latent_std": list(c.latent_std) if c.latent_std else None,
        "prediction": c.schedule.prediction,
        "defaults": {"steps": steps, "guidance": guidance},
        "coefficients": list(COEFFICIENTS),
        "schedule": {"steps": steps, "timesteps": timesteps, "table": table.tolist()},
        "graphs": graphs,
        "export_seconds": seconds,
        "torch": torch.__version__,
        "exporter": "dynamo",
        "config": to_dict(c),
    }


def max_abs(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max()) if a.size else 0.0


def session_options():
    """onnxruntime's defaults, except that idle worker threads sleep instead of spinning: between graph calls
    the runner draws noise in torch, and spinning threads of three sessions would take the cores it needs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def graph_parity(folder: str | Path, model, inputs: dict[str, dict] | None = None) -> dict[str, float]:
    """Max abs difference, per graph, between onnxruntime (CPU) and the torch modules on `inputs` (graph →
    input name → tensor; default: the example inputs at the folder's batch)."""
    import onnxruntime as ort

    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    if inputs is None:
        inputs = graph_inputs(model, manifest["batch"], example_condition(model) if model.conditional else None)
    diffs = {}
    for name, given in inputs.items():
        session = ort.InferenceSession(
            str(folder / f"{name}.onnx"), session_options(), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {k: v.numpy() for k, v in given.items()})
        with torch.no_grad():
            want = GRAPHS[name](model).eval()(**given)
        want = want if isinstance(want, tuple) else (want,)  # the encoder's pair, or one tensor
        diffs[name] = max(max_abs(g, w) for g, w in zip(got, want))
    return diffs
