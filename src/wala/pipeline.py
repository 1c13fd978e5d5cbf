"""The public Python API: meshes and shape files in, meshes, TSDFs and wavelet trees out.

    import wala.pipeline as wp
    shape = wp.encode_mesh_file("bunny.ply")            # normalized TSDF + its wavelet tree
    mesh = wp.tree_to_mesh(shape.tree)                  # back through IDWT and marching cubes
    gen = wp.ShapeGenerator.load("runs/pc/step-00010000.safetensors")   # condition → meshes
    meshes = gen.generate(points=points, samples=4, steps=8, guidance=1.3, seed=0)
    sv = wp.ShapeGenerator.load("WaLa-SV-1B")                          # a released directory
    meshes = sv.generate(image=sv.read_condition("image", ["chair.png"]), seed=42)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from wala.config import RepresentationConfig
from wala.errors import WalaError
from wala.io.mesh import Normalization, load_mesh, normalize_mesh
from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.tsdf import mesh_to_tsdf
from wala.wavelet.tree import WaveletTree, tree_to_tsdf, tsdf_to_tree


@dataclass
class EncodedShape:
    mesh: trimesh.Trimesh          # the input, normalized into [-bound, bound]³
    normalization: Normalization   # how to map back to the input's frame
    tsdf: np.ndarray               # (N, N, N) float32
    tree: WaveletTree              # batch of one


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


class ShapeGenerator:
    """Condition → TSDFs and meshes with a generator (released, converted, or trained here).

        gen = wp.ShapeGenerator.load("ADSKAILab/WaLa-PC-1B")     # a downloaded model directory
        meshes = gen.generate(points=wala.io.conditions.load_point_cloud("scan.h5df"), seed=42)
    """

    def __init__(self, model, device: torch.device | str = "cpu"):
        self.model, self.device = model, torch.device(device)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> "ShapeGenerator":
        """`dtype` bfloat16 halves memory and, on a CPU with bf16 support, time (1.7× on 2 Zen 4 cores
        for the 1B model); float32 (default) is what reproduces the official numbers."""
        from wala.diffusion.model import LatentDiffusion

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
        """(steps, guidance) when none are given: the condition's recommended ones (per view count for
        depth maps); for a released model the guidance its run.py really applies (3.0 for point cloud
        and voxel, OFFICIAL.md §6)."""
        kind = self.model.kind
        steps, guidance = kind.recommended(self.condition_config)
        return steps, kind.official_guidance if self.official and kind.official_guidance else guidance

    def accepts(self, given: str) -> bool:
        """Whether a condition of kind `given` is what this model reads. A released single-image model
        takes photos and sketches alike: the SV and SK checkpoints have the same args, so which one
        it is cannot be told from the files (the official run.py feeds both the same way)."""
        name = self.condition
        return given == name or self.official and {given, name} == {"image", "sketch"}

    def check_condition(self, given: str) -> None:
        if not self.accepts(given):
            kind = self.model.kind
            need = "no condition (--unconditional)" if not kind.conditional else f"{kind.flag} ({kind.name})"
            raise WalaError(f"this model reads {need}, not " + ("no condition" if given == "none" else f"a{'n' if given[0] in 'aeiou' else ''} {given} condition"))

    def read_condition(self, given: str, paths: list[str], composite_alpha: bool = False) -> np.ndarray:
        """The files of a condition → its checked array, as many files as the model reads."""
        self.check_condition(given)
        kind, c = self.model.kind, self.condition_config
        expected = kind.files(c)
        if len(paths) != expected:
            raise WalaError(f"this model reads {expected} {kind.name} file{'s' if expected > 1 else ''} "
                            f"({kind.flag}), got {len(paths)}")
        return kind.read([str(p) for p in paths], c, composite_alpha=composite_alpha)

    def condition_tensor(self, points: np.ndarray | None = None, voxels: np.ndarray | None = None,
                         normalize: bool = False, **arrays: np.ndarray) -> torch.Tensor | None:
        """The model input for a condition array: `points`, `voxels`, or by kind name `image=`,
        `sketch=` (uint8 (224, 224, 3) crops), `depth=`, `views=` ((V, 224, 224, 3) for several).
        `normalize` maps world-frame points into the ±0.9 cube first (released models take points as given)."""
        from wala.io.conditions import check_point_cloud, normalize_points

        given = {k: v for k, v in {"pointcloud": points, "voxel": voxels, **arrays}.items() if v is not None}
        if len(given) > 1:
            raise WalaError(f"give one condition, not {' and '.join(given)}")
        for kind in given:
            self.check_condition(kind)
        if self.condition == "none":
            return None
        if not given:
            raise WalaError(f"this generator needs a {self.condition} condition")
        (kind, value), = given.items()
        if kind == "pointcloud" and normalize:
            value, _ = normalize_points(check_point_cloud(value), RepresentationConfig().normalize_bound)
        return self.model.kind.to_input(value, self.condition_config).to(self.device, next(self.model.parameters()).dtype)

    @torch.no_grad()
    def generate_latents(self, condition: torch.Tensor | None = None, samples: int = 1, steps: int | None = None,
                         guidance: float | None = None, seed: int = 0) -> torch.Tensor:
        default_steps, default_guidance = self.defaults()
        return self.model.sample_latents(condition, steps or default_steps,
                                         default_guidance if guidance is None else guidance, seed, samples)

    @torch.no_grad()
    def generate_tsdf(self, condition: torch.Tensor | None = None, samples: int = 1, steps: int | None = None,
                      guidance: float | None = None, seed: int = 0) -> np.ndarray:
        """(samples, N, N, N) TSDFs for one condition (a model input, batch of one); sample i uses seed + i."""
        latents = self.generate_latents(condition, samples, steps, guidance, seed)
        return np.stack([self.model.decode(z[None])[0].cpu().numpy() for z in latents])

    def generate(self, points: np.ndarray | None = None, voxels: np.ndarray | None = None, *,
                 image: np.ndarray | None = None, sketch: np.ndarray | None = None, depth: np.ndarray | None = None,
                 views: np.ndarray | None = None, **options) -> list[trimesh.Trimesh]:
        """Meshes for one condition (arrays as `condition_tensor`; image files → arrays with
        `read_condition`); options as `generate_tsdf`. A sample whose TSDF never crosses zero has no
        surface and raises."""
        images = {k: v for k, v in dict(image=image, sketch=sketch, depth=depth, views=views).items() if v is not None}
        tsdfs = self.generate_tsdf(self.condition_tensor(points, voxels, **images), **options)
        return [tsdf_to_mesh(t) for t in tsdfs]
