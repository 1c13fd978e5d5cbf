"""The public Python API: meshes and shape files in, meshes, TSDFs and wavelet trees out.

    import wala.pipeline as wp
    shape = wp.encode_mesh_file("bunny.ply")            # normalized TSDF + its wavelet tree
    mesh = wp.tree_to_mesh(shape.tree)                  # back through IDWT and marching cubes
    gen = wp.ShapeGenerator.load("runs/pc/step-00010000.safetensors")   # condition → meshes
    meshes = gen.generate(points=points, samples=4, steps=8, guidance=1.3, seed=0)
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
    """Condition → meshes: a trained generator and the VQ-VAE whose latent space it samples.

        gen = wp.ShapeGenerator.load("runs/pc/step-00010000.safetensors")
        meshes = gen.generate(points=wala.io.conditions.load_point_cloud("scan.ply"), samples=4, seed=0)
    """

    def __init__(self, diffusion, autoencoder, resolution: int, device: torch.device | str = "cpu"):
        self.diffusion, self.autoencoder, self.resolution = diffusion, autoencoder, resolution
        self.device = torch.device(device)

    @classmethod
    def load(cls, checkpoint: str | Path, autoencoder: str | Path | None = None,
             device: torch.device | str = "cpu") -> "ShapeGenerator":
        """`autoencoder` defaults to the checkpoint the generator was trained with."""
        from wala.train.autoencoder import load_autoencoder
        from wala.train.diffusion import load_diffusion

        diffusion, config = load_diffusion(checkpoint, device)
        return cls(diffusion, load_autoencoder(autoencoder or config["autoencoder"], device), config["resolution"], device)

    @property
    def condition(self) -> str:
        return self.diffusion.config.condition.kind

    @property
    def condition_config(self):
        """The generator's ConditionConfig (kind, training point count, voxel size)."""
        return self.diffusion.config.condition

    def condition_tensor(self, points: np.ndarray | None = None, voxels: np.ndarray | None = None) -> torch.Tensor | None:
        """The model's condition input from world-frame points (normalized here) or an occupancy grid."""
        from wala.io.conditions import check_point_cloud, check_voxels, normalize_points

        given = {"pointcloud": points, "voxel": voxels}
        for kind, value in given.items():
            if value is not None and kind != self.condition:
                raise WalaError(f"this generator is conditioned on '{self.condition}', not on a {kind}")
        if self.condition == "none":
            return None
        value = given[self.condition]
        if value is None:
            raise WalaError(f"this generator needs a {self.condition} condition")
        if self.condition == "pointcloud":
            normalized, _ = normalize_points(check_point_cloud(value), RepresentationConfig().normalize_bound)
            return torch.from_numpy(normalized)[None].to(self.device)
        size = self.diffusion.config.condition.voxel_size
        return torch.from_numpy(check_voxels(voxels, size)).float()[None].to(self.device)

    @torch.no_grad()
    def generate_tsdf(self, condition: torch.Tensor | None = None, samples: int = 1, steps: int = 8,
                      guidance: float = 1.3, seed: int = 0, sampler: str = "ddpm") -> np.ndarray:
        """(samples, N, N, N) TSDFs sampled for one condition (already a model input, batch of one)."""
        from wala.diffusion.sampling import guided, sample
        from wala.wavelet.packing import packed_size, unpack_wavelet_tree

        model, c = self.diffusion, self.diffusion.config
        tokens = model.encode_condition(condition)
        if tokens is not None:
            tokens = tokens.expand(samples, -1, -1)
        generator = torch.Generator(self.device).manual_seed(seed)
        noise = torch.randn((samples, c.latent_channels, *[c.latent_size] * 3), generator=generator, device=self.device)
        x = sample(guided(model.denoiser, tokens, guidance), noise, model.alphas_cumprod, steps, sampler, generator)
        packed = self.autoencoder.decode(model.denormalize(x), packed_size(self.resolution))
        tree = unpack_wavelet_tree(packed.float(), self.resolution)
        return tree_to_tsdf(tree, RepresentationConfig(resolution=self.resolution)).cpu().numpy()

    def generate(self, points: np.ndarray | None = None, voxels: np.ndarray | None = None, **options) -> list[trimesh.Trimesh]:
        """Meshes (normalized frame) for a condition; options as `generate_tsdf`. A sample whose TSDF
        never crosses zero has no surface and raises."""
        tsdfs = self.generate_tsdf(self.condition_tensor(points, voxels), **options)
        return [tsdf_to_mesh(t) for t in tsdfs]
