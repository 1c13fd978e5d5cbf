"""Headless CPU rendering: orthographic silhouettes (the light-field descriptor's input)."""
from wala.render.silhouette import render_silhouettes, view_basis

__all__ = ["render_silhouettes", "view_basis"]
