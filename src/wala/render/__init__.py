"""Headless rendering: orthographic silhouettes on the CPU (the light-field descriptor's input, here);
shaded RGB and depth through OpenGL (`wala.render.shaded`) and turntable previews
(`wala.render.preview`), imported from their modules so that OpenGL loads only when used."""

from wala.render.silhouette import render_silhouettes, view_basis

__all__ = ["render_silhouettes", "view_basis"]
