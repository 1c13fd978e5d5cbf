"""Mesh → TSDF grid (watertight or not), procedural SDF shape families, and marching cubes back."""

from wala.sdf.extract import tsdf_to_mesh
from wala.sdf.grid import grid_points, index_to_world, voxel_size, world_to_index
from wala.sdf.tsdf import mesh_to_tsdf

__all__ = ["tsdf_to_mesh", "grid_points", "index_to_world", "voxel_size", "world_to_index", "mesh_to_tsdf"]
