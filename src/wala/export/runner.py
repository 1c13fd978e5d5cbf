"""Sampling with the graphs `wala export onnx` wrote, run by onnxruntime: the torch pipeline's noise draws
(`wala.diffusion.model.noise_draws`, the same generators and memory layouts), the step constants of
`export.graphs.step_coefficients`, and the torch reader of each condition; only the networks run in ORT.

    pipe = OnnxPipeline("pc64-onnx")
    shape = pipe(pointcloud="chair.ply", seed=42)[0]     # .latent, .tsdf, .mesh as WaLaPipeline's
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from wala.conditions import condition_kind
from wala.config import DiffusionConfig, from_dict
from wala.diffusion.model import noise_draws
from wala.errors import WalaError, require
from wala.export.graphs import FORMAT, MANIFEST, session_options, step_coefficients
from wala.pipeline import GeneratedShape, checked_sampling, reads_condition


def check_array(graph: str, name: str, value: np.ndarray, spec: dict) -> np.ndarray:
    """`value` as the graph input `name` of `spec` ({shape, dtype}; a string dim is free), else a WalaError."""
    value = np.asarray(value, dtype=spec["dtype"], order="C")
    shape = spec["shape"]
    if value.ndim != len(shape) or any(isinstance(s, int) and s != v for s, v in zip(shape, value.shape)):
        want = ", ".join(str(s) if isinstance(s, int) else "N" for s in shape)
        raise WalaError(f"{graph} input {name}: expected shape ({want}), got {tuple(value.shape)}")
    return value


class OnnxPipeline:
    """Condition → shapes with an exported folder (manifest.json + encoder/denoiser/decoder.onnx) on
    onnxruntime. `providers`: onnxruntime's execution providers, CPU by default (CUDA or TensorRT where the
    installed onnxruntime has them). Sample i uses seed + i, drawn as the torch pipeline draws it."""

    def __init__(self, folder: str | Path, providers: Sequence[str] = ("CPUExecutionProvider",)):
        require("the ONNX runner", "export", "onnxruntime")
        import onnxruntime as ort

        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise WalaError(f"{self.folder}: no {MANIFEST} (not a folder `wala export onnx` wrote)")
        try:
            manifest = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise WalaError(f"{path}: not JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("wala") != "onnx" or manifest.get("format") != FORMAT:
            raise WalaError(f"{path}: not a wala ONNX manifest of format {FORMAT}")
        self.manifest = manifest
        self.config = from_dict(DiffusionConfig, manifest["config"])
        self.kind = condition_kind(self.config.condition.kind)
        self.sessions = {}
        for name, graph in manifest["graphs"].items():
            file = self.folder / graph["file"]
            if not file.is_file():
                raise WalaError(f"{self.folder}: {graph['file']} is missing")
            self.sessions[name] = ort.InferenceSession(str(file), session_options(), providers=list(providers))

    @property
    def batch(self) -> int:
        """Rows the denoiser graph samples at once (its fixed batch)."""
        return self.manifest["batch"]

    @property
    def official(self) -> bool:
        return self.manifest["source"] == "official"

    @property
    def guided(self) -> bool:
        return self.manifest["guided"]

    def run(self, graph: str, **inputs) -> list[np.ndarray]:
        """One graph on named arrays, each checked against the manifest's shape first (one line if wrong)."""
        spec = self.manifest["graphs"][graph]["inputs"]
        feed = {name: check_array(graph, name, value, spec[name]) for name, value in inputs.items()}
        return self.sessions[graph].run(None, feed)

    def sampling(self, steps: int | None, guidance: float | None, seed: int, samples: int) -> tuple[int, float]:
        """(steps, guidance): the export's defaults where None, checked as `WaLaPipeline.sampling` checks them."""
        defaults = self.manifest["defaults"]
        timesteps = self.config.schedule.timesteps
        return checked_sampling(steps, guidance, seed, samples, (defaults["steps"], defaults["guidance"]), timesteps)

    def condition_input(self, normalize: bool = False, **given) -> np.ndarray | None:
        """One condition by kind name (files, or arrays and images as `WaLaPipeline` takes them) → the model
        input; None for an unconditional model. `normalize` maps world-frame points into the ±0.9 cube first."""
        present = {name: value for name, value in given.items() if value is not None}
        if not self.kind.conditional:
            if present:
                raise WalaError(f"this model reads no condition, not {', '.join(present)}")
            return None
        name = next(iter(present)) if len(present) == 1 else None
        if name is None or not reads_condition(self.kind.name, name, self.official):
            raise WalaError(f"this model reads {self.kind.flag} ({self.kind.name}): give {self.kind.name}=…")
        value, c = next(iter(present.values())), self.config.condition
        sources = list(value) if isinstance(value, (list, tuple)) else [value]
        if self.kind.read_values or all(isinstance(v, (str, Path)) for v in sources):
            if len(sources) != self.kind.files(c):
                raise WalaError(f"this model reads {self.kind.files(c)} file(s) ({self.kind.flag}), got {len(sources)}")
            value = self.kind.read(sources, c)
        if normalize and self.kind.normalize:
            value, _ = self.kind.normalize(value)
        return self.kind.to_input(value, c).numpy()

    def encode(self, condition) -> tuple[np.ndarray, np.ndarray | None]:
        """A model input (1, …) → (conditional, unconditional or None) processed tokens, each (1, L, D)."""
        out = self.run("encoder", condition=np.asarray(condition))
        return out[0], out[1] if len(out) > 1 else None

    def sample_latents(
        self, condition=None, steps: int | None = None, guidance: float | None = None, seed: int = 0, samples: int = 1
    ) -> np.ndarray:
        """(samples, e, G, G, G) final latents (denormalized: the decoder's input) for one model input (None:
        unconditional), `batch` rows per denoiser call; sample i uses seed + i."""
        steps, guidance = self.sampling(steps, guidance, seed, samples)
        if self.kind.conditional and condition is None:
            raise WalaError(f"this model reads {self.kind.flag} ({self.kind.name}): give a condition")
        tokens = {}
        if self.kind.conditional:
            conditional, unconditional = self.encode(condition)
            tokens["conditional"] = np.repeat(conditional, self.batch, 0)
            if unconditional is not None:
                tokens |= {"unconditional": np.repeat(unconditional, self.batch, 0), "guidance": np.float32(guidance)}
        timesteps, table = step_coefficients(self.config, steps)
        seeds = [seed + i for i in range(samples)]
        out = []
        for start in range(0, samples, self.batch):
            rows = seeds[start : start + self.batch]
            rows += rows[-1:] * (self.batch - len(rows))  # a short last chunk: repeated rows, dropped after
            draws = noise_draws(self.config, rows, steps, self.guided, self.official)
            x = next(draws).numpy()
            for j, (t, coefficients) in enumerate(zip(timesteps, table)):
                noise = next(draws).numpy()  # the last step's draw is made and unused, as in torch
                noise = noise if j < len(timesteps) - 1 else np.zeros_like(noise)
                t = np.full(self.batch, t, dtype=np.int64)
                (x,) = self.run("denoiser", x=x, t=t, coefficients=coefficients, noise=noise, **tokens)
            out.append(x[: min(self.batch, samples - start)])
        return self.denormalize(np.concatenate(out))

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        """x · std + mean per channel (float32, as `LatentDiffusion.denormalize`); released models: as is."""
        mean, std = self.manifest["latent_mean"], self.manifest["latent_std"]
        if mean is None and std is None:
            return x
        e = x.shape[1]
        mean = np.asarray(mean or [0.0] * e, np.float32).reshape(1, -1, 1, 1, 1)
        std = np.asarray(std or [1.0] * e, np.float32).reshape(1, -1, 1, 1, 1)
        return x * std + mean

    def decode(self, latent) -> np.ndarray:
        """One (e, G, G, G) latent → its (N, N, N) float32 TSDF."""
        latent = latent.numpy() if isinstance(latent, torch.Tensor) else np.asarray(latent)
        return self.run("decoder", latent=latent[None])[0][0]

    def __call__(
        self,
        *,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        samples: int = 1,
        normalize: bool = False,
        **given,
    ) -> list[GeneratedShape]:
        """Shapes for one condition given by kind name, as `WaLaPipeline.__call__` takes it (`pointcloud=`,
        `image=`, …; nothing for an unconditional model): .latent, .tsdf and .mesh, decoded on first use."""
        self.sampling(steps, guidance, seed, samples)  # before any file is read
        latents = self.sample_latents(self.condition_input(normalize, **given), steps, guidance, seed, samples)
        return [GeneratedShape(torch.from_numpy(z), seed + i, self.decode) for i, z in enumerate(latents)]
