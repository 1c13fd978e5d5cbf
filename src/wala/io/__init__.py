"""Readers and writers at wala's boundary: meshes (trimesh-based) and normalization."""

from wala.io.mesh import MESH_FORMATS, Normalization, check_mesh, load_mesh, normalize_mesh, save_mesh, write_atomic

__all__ = ["MESH_FORMATS", "Normalization", "check_mesh", "load_mesh", "normalize_mesh", "save_mesh", "write_atomic"]
