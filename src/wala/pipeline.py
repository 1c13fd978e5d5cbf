"""The public Python API: meshes and shape files in, meshes, TSDFs and wavelet trees out.

    import wala.pipeline as wp
    shape = wp.encode_mesh_file("bunny.ply")            # normalized TSDF + its wavelet tree
    mesh = wp.tree_to_mesh(shape.tree)                  # back through IDWT and marching cubes
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh

from wala.config import RepresentationConfig
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
