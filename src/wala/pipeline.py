"""The public Python API: meshes and shape files in, meshes, TSDFs and wavelet trees out.

import wala.pipeline as wp
shape = wp.encode_mesh_file("bunny.ply")            # normalized TSDF + its wavelet tree
mesh = wp.tree_to_mesh(shape.tree)                  # back through IDWT and marching cubes
pipe = wp.WaLaPipeline.from_pretrained("WaLa-SV-1B")                # a released directory, or ours
shapes = pipe(image="chair.png", samples=4, seed=42)               # [.mesh, .tsdf, .latent] × 4
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from tqdm.auto import tqdm

from wala.conditions import CONDITIONS, UNCONDITIONAL, ConditionKind, condition_kind, recommended_sampling
from wala.conditions.text import TEXT
from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.io.mesh import Normalization, load_mesh, normalize_mesh
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.tsdf import mesh_to_tsdf
from wala.wavelet.tree import WaveletTree, tree_to_tsdf, tsdf_to_tree


@dataclass
class EncodedShape:
    mesh: trimesh.Trimesh  # the input, normalized into [-bound, bound]³
    normalization: Normalization  # how to map back to the input's frame
    tsdf: np.ndarray  # (N, N, N) float32
    tree: WaveletTree  # batch of one


def encode_mesh(mesh: trimesh.Trimesh, config: RepresentationConfig = RepresentationConfig()) -> EncodedShape:
    """Normalizes a mesh, computes its TSDF and wavelet tree."""
    normalized, normalization = normalize_mesh(mesh, config.normalize_bound)
    tsdf = mesh_to_tsdf(normalized, config.resolution, config.truncation)
    return EncodedShape(normalized, normalization, tsdf, tsdf_to_tree(torch.from_numpy(tsdf)[None], config))


def encode_mesh_file(path: str | Path, config: RepresentationConfig = RepresentationConfig()) -> EncodedShape:
    return encode_mesh(load_mesh(path), config)


def tree_to_mesh(tree: WaveletTree, config: RepresentationConfig = RepresentationConfig()) -> trimesh.Trimesh:
    """First shape of a wavelet tree → mesh in the normalized frame."""
    with torch.no_grad():
        tsdf = tree_to_tsdf(tree, config)[0].cpu().numpy()
    return tsdf_to_mesh(tsdf)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICE = re.compile(r"cpu|mps|cuda(?::(\d{1,4}))?")  # what resolve_device takes besides auto
SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed's signed range; sample i uses seed + i


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto` → cuda, then mps, then cpu; otherwise cpu, cuda, cuda:N or mps, which must be there
    (anything else, meta included, is a WalaError)."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    known = DEVICE.fullmatch(name)
    if not known:
        raise WalaError(f"device {name[:40]!r}: not auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise WalaError("device cuda: no CUDA device is available")
        count = torch.cuda.device_count()
        if known[1] is not None and int(known[1]) >= count:
            raise WalaError(f"device {name}: this machine has {count} CUDA device{'s' if count > 1 else ''}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise WalaError("device mps: no Apple GPU is available")
    return torch.device(name)


def check_seeds(seed: int, samples: int = 1) -> None:
    """A WalaError unless every sample's seed (seed + i) lies in 0…SEED_MAX."""
    if not 0 <= seed <= SEED_MAX:
        raise WalaError("seed must be in 0…2**63-1")
    if seed + samples - 1 > SEED_MAX:
        raise WalaError(f"seed {seed} with {samples} samples passes 2**63-1 (sample i uses seed + i)")


def reads_condition(reads: str, given: str, official: bool) -> bool:
    """Whether a model reading condition kind `reads` takes a condition of kind `given`. A released
    single-image model takes photos and sketches alike: the SV and SK checkpoints have the same args, so which
    one it is cannot be told from the files (the official run.py feeds both the same way)."""
    return given == reads or official and condition_kind(given).official_twin == reads


def checked_sampling(
    steps: int | None, guidance: float | None, seed: int, samples: int, defaults: tuple[int, float], timesteps: int
) -> tuple[int, float]:
    """(steps, guidance), `defaults` where None (or steps 0), checked with the seed and sample count before
    anything runs: steps within a schedule of `timesteps`, a finite guidance, every sample's seed (seed + i)
    in 0…SEED_MAX. Shared by WaLaPipeline and the ONNX runner."""
    steps = steps or defaults[0]
    guidance = defaults[1] if guidance is None else guidance
    if not 1 <= steps <= timesteps:
        raise WalaError(f"steps {steps}: this model's schedule has {timesteps} timesteps (steps 1…{timesteps})")
    if not math.isfinite(guidance):
        raise WalaError(f"guidance must be a finite number, got {guidance}")
    if samples < 1:
        raise WalaError("samples must be at least 1")
    check_seeds(seed, samples)
    return steps, guidance


@contextlib.contextmanager
def step_bar(total: int, desc: str, show: bool, on_step: Callable[[int, int], None] | None = None, steps: int = 0):
    """A callback for a sampler's `on_step(j, …)` (j counting down to 0): it advances a tqdm bar of `total`
    steps when `show`, and calls `on_step(steps - j, steps)` when given. The bar closes on leaving."""
    bar = tqdm(total=total, desc=desc, unit="step", leave=False) if show else None

    def step(j: int = 0, *_) -> None:
        if bar:
            bar.update()
        if on_step:
            on_step(steps - j, steps)

    try:
        yield step
    finally:
        if bar:
            bar.close()


class GeneratedShape:
    """One generated sample: the final latent (the decoder's input); its TSDF and mesh are computed
    on first use (decoding a 256³ TSDF takes seconds on a CPU; not every caller needs it)."""

    def __init__(
        self,
        latent: torch.Tensor,
        seed: int,
        decode: Callable[[torch.Tensor], np.ndarray],
        on_device: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.latent = latent  # (e, G, G, G) float32, on the CPU
        self.seed = seed  # the seed that reproduces this sample alone (samples=1)
        self.text_views = None  # text → views → shape: the drawn views (wala.text.multiview.TextViews)
        self._decode, self._tsdf, self._mesh = decode, None, None
        self._on_device = on_device  # latent → TSDF left on the GPU, meshed there (only the mesh comes back)

    @property
    def tsdf(self) -> np.ndarray:
        """(N, N, N) float32, negative inside, on the corner-aligned grid over [-1, 1]³."""
        if self._tsdf is None:
            self._tsdf = self._decode(self.latent)
        return self._tsdf

    @property
    def mesh(self) -> trimesh.Trimesh:
        """Marching cubes at level 0 (on the GPU when the model is on one); raises WalaError if the TSDF
        has no surface."""
        if self._mesh is None:
            use_device = self._tsdf is None and self._on_device is not None
            self._mesh = tsdf_to_mesh(self._on_device(self.latent) if use_device else self.tsdf)
        return self._mesh


class WaLaPipeline:
    """Condition → shapes with any generator wala reads: a released WaLa directory, a converted one,
    one trained here, or a model name found by `wala models`.

        pipe = WaLaPipeline.from_pretrained("WaLa-SV-1B", dtype="bf16")
        shape = pipe(image="chair.png", seed=42)[0]          # .mesh, .tsdf, .latent
        shapes = pipe(depth=["3.png", "6.png", "10.png", "26.png"], samples=4)   # a DM4 model
    """

    def __init__(self, model, device: torch.device | str = "cpu"):
        self.model, self.device = model, torch.device(device)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: torch.device | str = "auto",
        dtype: torch.dtype | str = torch.float32,
        revision: str | None = None,
        local_files_only: bool | None = None,
    ) -> WaLaPipeline:
        """`path`: a model directory or checkpoint, a name on the model search path, or else a Hugging
        Face hub id (`ADSKAILab/WaLa-SV-1B`) or a released model's short name (`WaLa-SV-1B`), fetched
        into the Hugging Face cache at `revision` unless `local_files_only` (None: unless HF_HUB_OFFLINE
        is set; wala.hub.download). `device` auto: cuda, then mps, then cpu. `dtype` "bf16" halves
        memory and, on a CPU with bf16 support, time (1.7× on 2 Zen 4 cores for the 1B model); "fp16"
        for GPUs; "fp32" (default) is what reproduces the official numbers."""
        from wala.diffusion.model import LatentDiffusion
        from wala.hub.download import find_model

        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise WalaError(f"unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
            dtype = DTYPES[dtype]
        device = resolve_device(device)
        path = find_model(path, revision, local_files_only)  # checked first: a download waits for nothing else
        return cls(LatentDiffusion.from_pretrained(path, device, dtype), device)

    @property
    def condition(self) -> str:
        return self.model.kind.name

    @property
    def condition_config(self):
        return self.model.config.condition

    @property
    def autoencoder(self):
        return self.model.autoencoder

    @property
    def resolution(self) -> int:
        return self.model.config.resolution

    @property
    def official(self) -> bool:
        return getattr(self.model, "source", "") == "official"

    def defaults(self) -> tuple[int, float]:
        """(steps, guidance) when none are given: the model's own (config.sampling), else its condition's."""
        return recommended_sampling(self.model.config, self.official)

    def sampling(
        self, steps: int | None = None, guidance: float | None = None, seed: int = 0, samples: int = 1
    ) -> tuple[int, float]:
        """(steps, guidance), `defaults()` where None (or steps 0), checked with the seed and
        sample count before anything runs (`checked_sampling`)."""
        return checked_sampling(steps, guidance, seed, samples, self.defaults(), self.model.config.schedule.timesteps)

    def accepts(self, given: str) -> bool:
        """Whether a condition of kind `given` is what this model reads (`reads_condition`)."""
        return reads_condition(self.condition, given, self.official)

    def check_condition(self, given: str) -> None:
        if not self.accepts(given):
            kind = self.model.kind
            need = f"{kind.flag} ({kind.name})" if kind.conditional else "no condition (--unconditional)"
            raise WalaError(f"this model reads {need}, not {condition_kind(given).article}")

    def given_condition(self, given: dict) -> tuple[ConditionKind, object]:
        """The one condition among keyword arguments (kind name → value; None values are not given):
        (its kind, its value), checked against the registry and this model; (UNCONDITIONAL, None) for none."""
        for name in given:
            if name not in CONDITIONS or not CONDITIONS[name].conditional:
                known = ", ".join(n for n, k in CONDITIONS.items() if k.conditional)
                raise WalaError(f"unknown condition '{name}' (known: {known})")
        present = {name: value for name, value in given.items() if value is not None}
        if len(present) > 1:
            raise WalaError(f"give one condition, not {' and '.join(present)}")
        kind, value = (CONDITIONS[next(iter(present))], *present.values()) if present else (UNCONDITIONAL, None)
        self.check_condition(kind.name)
        return kind, value

    def read_condition(self, given: str, paths: list, composite_alpha: bool = False) -> np.ndarray:
        """The files of a condition → its checked array, as many files as the model reads (images
        may also be Pillow images or uint8 arrays, in the model's view order)."""
        self.check_condition(given)
        return self._read(list(paths), composite_alpha)

    def _read(self, sources: list, composite_alpha: bool) -> np.ndarray:
        kind, c = self.model.kind, self.condition_config
        expected = kind.files(c)
        if len(sources) != expected:
            raise WalaError(
                f"this model reads {expected} file{'s' if expected > 1 else ''} ({kind.flag}), got {len(sources)}"
            )
        return kind.read(sources, c, composite_alpha=composite_alpha)

    def text_views(self) -> tuple[int, ...]:
        """The view ids a text-to-views model must draw for this model: its training views (DM6:
        3, 6, 10, 26, 49, 50). Only multi-view depth and RGB models read such views."""
        kind, c = self.model.kind, self.condition_config
        if kind is TEXT:
            raise WalaError("this model reads text itself; a text model is for multi-view depth/RGB models")
        if not kind.drawn_as or not c.training_views:
            raise WalaError(
                f"text → views → shape needs a multi-view depth or RGB model (DM6, DM4, RGB4); "
                f"this one reads {kind.flag} ({kind.name})"
            )
        return tuple(c.training_views)

    def views_from_text(
        self,
        text: str,
        text_model,
        steps: int = 50,
        guidance: float = 10.0,
        seed: int = 0,
        official_prompt: bool = False,
        progress: bool = False,
    ):
        """This model's views drawn from `text` by a text-to-views model (a `wala.text.multiview.TextToViews`
        or its path): depth maps for a depth model, RGB for a multi-view RGB one. → `TextViews`."""
        from wala.text.multiview import TextToViews, ddim_timesteps

        views = self.text_views()
        if not isinstance(text_model, TextToViews):
            text_model = TextToViews.load(text_model, self.device)
        with step_bar(len(ddim_timesteps(steps)), "views", progress) as step:
            return text_model(
                text,
                views=views,
                steps=steps,
                guidance=guidance,
                seed=seed,
                official_prompt=official_prompt,
                on_step=step,
            )

    def condition_tensor(self, normalize: bool = False, **given) -> torch.Tensor | None:
        """The model input for a condition array given by kind name: `pointcloud=` (N, 3), `voxel=` 16³,
        `image=`, `sketch=` (uint8 (224, 224, 3) crops), `depth=`, `views=` ((V, 224, 224, 3) for several),
        `text=`; None for an unconditional model. `normalize` maps world-frame points into the ±0.9 cube
        first (released models take points as given)."""
        return self._tensor(*self.given_condition(given), normalize)

    def _tensor(self, kind: ConditionKind, value, normalize: bool) -> torch.Tensor | None:
        if not kind.conditional:
            return None
        if normalize and kind.normalize:
            value, _ = kind.normalize(value)
        tensor = self.model.kind.to_input(value, self.condition_config).to(self.device)
        return tensor.to(next(self.model.parameters()).dtype) if tensor.is_floating_point() else tensor  # ids stay ints

    @torch.no_grad()
    def generate_latents(
        self,
        condition: torch.Tensor | None = None,
        samples: int = 1,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        progress: bool = False,
        on_step: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """(samples, e, G, G, G) final latents for one condition (a model input, batch of one); steps and
        guidance as `sampling`; sample i uses seed + i. `on_step(i, steps)` after sampling step i (1…steps)."""
        steps, guidance = self.sampling(steps, guidance, seed, samples)
        with step_bar(steps, "sampling", progress, on_step, steps) as step:
            return self.model.sample_latents(condition, steps, guidance, seed, samples, on_step=step)

    @torch.no_grad()
    def generate_tsdf(
        self,
        condition: torch.Tensor | None = None,
        samples: int = 1,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """(samples, N, N, N) TSDFs for one condition (a model input, batch of one); sample i uses seed + i."""
        latents = self.generate_latents(condition, samples, steps, guidance, seed)
        return np.stack([self.decode(z) for z in latents])

    def generate(
        self,
        *,
        samples: int = 1,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        normalize: bool = False,
        **given,
    ) -> list[trimesh.Trimesh]:
        """Meshes for one condition array given by kind name (as `condition_tensor`; files → arrays with
        `read_condition`); options as `generate_tsdf`. A sample whose TSDF never crosses zero has no
        surface and raises."""
        tsdfs = self.generate_tsdf(self.condition_tensor(normalize, **given), samples, steps, guidance, seed)
        return [tsdf_to_mesh(t) for t in tsdfs]

    def __call__(
        self,
        batch: list[dict] | None = None,
        /,
        *,
        text_model=None,
        text_steps: int = 50,
        text_guidance: float = 10.0,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int = 0,
        samples: int = 1,
        normalize: bool = False,
        composite_alpha: bool = False,
        progress: bool = True,
        on_step: Callable[[int, int], None] | None = None,
        batch_size: int = 8,
        **given,
    ) -> list[GeneratedShape] | list[list[GeneratedShape]]:
        """Shapes for one condition given by its kind's name — a file path or an array: `pointcloud` (N, 3),
        `voxel` 16³ 0/1; `image`/`sketch`: a file, Pillow image or uint8 array of any size (resized and
        cropped as the released models read); `depth`/`views`: a list of those (files in any order, named by
        view id; images and arrays in the model's view order); `text`: a caption for a text model, or with
        `text_model` (a TextToViews or its path) the text drawn as this depth/RGB model's views first
        (`views_from_text` with `text_steps`, `text_guidance` and the same seed; the views are each
        shape's `.text_views`). No condition for an unconditional model. Steps and guidance default to the
        condition's (`defaults`); sample i uses seed + i. `on_step(i, steps)` after each sampling step (an
        exception it raises stops the sampling).

        `batch`, a list of conditions each given as a dict of these keyword arguments (`[{"image": "a.png"},
        {"image": "b.png"}]`), gives one list of shapes per condition: sample i of each equals that
        condition run alone with seed + i, and up to `batch_size` samples share each denoiser call."""
        steps, guidance = self.sampling(steps, guidance, seed, samples)  # before any file is read or a model runs
        if batch is not None:
            if given or text_model is not None:
                raise WalaError("give a batch of conditions or one condition, not both")
            inputs = [
                self._condition_input(*self.given_condition(dict(one)), normalize, composite_alpha) for one in batch
            ]
            calls = math.ceil(len(inputs) * samples / max(1, batch_size))
            with step_bar(steps * calls, "sampling", progress, on_step, steps) as step:
                latents = self.model.sample_many(inputs, steps, guidance, seed, samples, batch_size, on_step=step)
            shapes = [self._shape(z, seed + r % samples) for r, z in enumerate(latents)]
            return [shapes[k * samples : (k + 1) * samples] for k in range(len(inputs))]
        drawn = None
        if text_model is not None:
            text = given.pop(TEXT.name, None)
            if text is None:
                raise WalaError("a text model draws this model's views from text: give text")
            if any(value is not None for value in given.values()):
                raise WalaError("give text and a text model, or the views themselves, not both")
            text = " ".join(text) if isinstance(text, (list, tuple)) else text  # a caption or its words
            drawn = self.views_from_text(text, text_model, text_steps, text_guidance, seed, progress=progress)
            given = {self.condition: list(drawn.images)}
        tensor = self._condition_input(*self.given_condition(given), normalize, composite_alpha)
        latents = self.generate_latents(tensor, samples, steps, guidance, seed, progress, on_step)
        shapes = [self._shape(z, seed + i) for i, z in enumerate(latents)]
        for shape in shapes:
            shape.text_views = drawn
        return shapes

    def _condition_input(self, kind: ConditionKind, value, normalize: bool, composite_alpha: bool):
        """A given condition (files, images, arrays or text) → the model input (None: unconditional)."""
        if kind.conditional:
            sources = list(value) if isinstance(value, (list, tuple)) else [value]
            if kind.read_values or all(isinstance(v, (str, Path)) for v in sources):
                value = self._read(sources, composite_alpha)
        return self._tensor(kind, value, normalize)

    def _shape(self, latent: torch.Tensor, seed: int) -> GeneratedShape:
        on_device = self.decode_on_device if self.device.type != "cpu" else None
        return GeneratedShape(latent.float().cpu(), seed, self.decode, on_device)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """One (e, G, G, G) latent → its (N, N, N) float32 TSDF."""
        return self.decode_on_device(latent).cpu().numpy()

    @torch.no_grad()
    def decode_on_device(self, latent: torch.Tensor) -> torch.Tensor:
        """One (e, G, G, G) latent → its (N, N, N) float32 TSDF, on the model's device."""
        return self.model.decode(latent[None].to(self.device))[0]
