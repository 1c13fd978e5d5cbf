"""The paper's line art as the paper made it: Blender's Grease Pencil Line Art modifier (thickness 2,
crease threshold 140°, vertices merged by distance 1e-6 first), rendered headless through Blender's
own Python. `lineart.py` draws the same lines in numpy and stays the default; this technique needs a
`blender` on PATH (Debian's 3.4: `apt-get install blender`; `make test` installs it when root).

This file is both sides: `grease_pencil_lines` (wala's side) writes the normalized mesh as raw arrays,
runs `blender -b --factory-startup --python-exit-code 1 --python greasepencil.py -- ARGS` with a
timeout and reads the PNGs back; under Blender, `__main__` builds the scene (`_blender_main`) with
only bpy and the standard library (Debian's Blender has no numpy).

The camera is wala's (`wala.render.views`): wala's frame is y up, Blender's z up, so a wala point
(x, y, z) is Blender's (x, −z, y) — a rotation, so faces keep their orientation — and the camera sits
at the view's orbit position, looks at the origin with the world's up as its up, perspective, 40°
field of view on a square image. Lines overlay wala's renders of the same view. The mesh itself is
drawn flat white by Workbench (it stays in the scene Line Art reads), on a white world, with the
Standard view transform so paper is 255; Line Art's strokes are black and drawn in front. Thickness 2
is in screen space: 2 px lines, as `lineart.py` draws (Blender's default world space would scale it
with the scene: 0.06 px of ink at wala's framing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

THICKNESS = 2
CREASE_DEGREES = 140.0
MERGE_DISTANCE = 1e-6
BLENDER_ENV = "WALA_BLENDER"  # another blender binary than the one on PATH
TIMEOUT_S = 300.0  # per Blender run: ~1.5 s for a small mesh and view, ~4 s for 75k faces


def _to_blender(x: float, y: float, z: float) -> tuple[float, float, float]:
    """wala's y-up frame → Blender's z-up one (a +90° turn about x); points or (N,) coordinate arrays."""
    return x, -z, y


def blender_binary() -> str:
    """The blender to run: $WALA_BLENDER or `blender` on PATH; a one-line WalaError naming the fix if none."""
    from wala.errors import WalaError

    wanted = os.environ.get(BLENDER_ENV) or "blender"
    found = shutil.which(wanted)
    if found is None:
        raise WalaError(
            f"the grease_pencil sketch technique needs Blender, and '{wanted}' was not found "
            f"(apt-get install blender; `make test` installs it when run as root; or set ${BLENDER_ENV})"
        )
    return found


def grease_pencil_lines(mesh, poses, size: int, distance: float, fov: float, timeout: float = TIMEOUT_S) -> list:
    """Blender's Line Art of `mesh` (normalized frame) at each (azimuth°, elevation°) pose, in one
    Blender run: a list of (size, size) uint8 images, 255 paper, darker where ink (antialiased)."""
    import numpy as np
    from PIL import Image

    from wala.errors import WalaError, one_line

    binary = blender_binary()
    with tempfile.TemporaryDirectory(prefix="wala_gp_") as folder:
        folder = Path(folder)
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        np.stack(_to_blender(*vertices.T), axis=1).astype("<f4").tofile(folder / "vertices.f4")
        np.asarray(mesh.faces, dtype="<i4").tofile(folder / "faces.i4")
        views = ",".join(f"{float(az)!r}:{float(el)!r}" for az, el in poses)
        command = [binary, "-b", "--factory-startup", "--python-exit-code", "1", "--python", __file__, "--"]
        command += [str(folder), views, str(size), repr(float(distance)), repr(float(fov))]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WalaError(f"Blender's line art took longer than {timeout:g} s ({len(poses)} views)") from None
        if run.returncode != 0:
            tail = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()][-3:]
            raise WalaError(f"Blender's line art failed (exit {run.returncode}): {one_line(' | '.join(tail))}")
        images = []
        for k in range(len(poses)):
            rgb = np.asarray(Image.open(folder / f"view{k}.png").convert("RGB"), dtype=np.uint8)
            images.append(rgb.min(axis=2))  # black strokes on white: any channel's darkness is ink
        return images


# ---- Blender's side: runs inside `blender -b`, bpy and the standard library only ----


def _blender_main(folder: Path, views: str, size: int, distance: float, fov: float) -> None:
    import math

    import bmesh
    import bpy
    from mathutils import Vector

    scene = bpy.context.scene
    for obj in list(bpy.data.objects):  # the factory scene's cube, light and camera
        bpy.data.objects.remove(obj)

    coords = array("f")  # already in Blender's frame (turned on wala's side, in numpy)
    coords.frombytes((folder / "vertices.f4").read_bytes())
    triangles = array("i")
    triangles.frombytes((folder / "faces.i4").read_bytes())
    if sys.byteorder != "little":
        coords.byteswap()
        triangles.byteswap()
    data = bpy.data.meshes.new("shape")
    data.vertices.add(len(coords) // 3)
    data.vertices.foreach_set("co", coords)
    n = len(triangles) // 3
    data.loops.add(3 * n)
    data.loops.foreach_set("vertex_index", triangles)
    data.polygons.add(n)
    data.polygons.foreach_set("loop_start", array("i", range(0, 3 * n, 3)))
    data.polygons.foreach_set("loop_total", array("i", [3]) * n)
    data.update(calc_edges=True)
    data.validate()
    bm = bmesh.new()  # the paper: merge vertices by distance before rendering
    bm.from_mesh(data)
    bmesh.ops.remove_doubles(bm, verts=bm.verts, dist=MERGE_DISTANCE)
    bm.to_mesh(data)
    bm.free()
    shape = bpy.data.objects.new("shape", data)  # flat-shaded faces: Line Art's creases apply to them
    scene.collection.objects.link(shape)

    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.sensor_fit = "VERTICAL"
    camera.data.angle = math.radians(fov)
    camera.data.clip_start, camera.data.clip_end = 0.1, 100.0
    scene.collection.objects.link(camera)
    scene.camera = camera

    bpy.ops.object.gpencil_add(type="LRT_SCENE")  # a Line Art object over the whole scene
    lines = bpy.context.object
    modifier = next(m for m in lines.grease_pencil_modifiers if m.type == "GP_LINEART")
    modifier.thickness = THICKNESS
    modifier.crease_threshold = math.radians(CREASE_DEGREES)
    # thickness 2 in pixels: in Blender's default world space it scales with the scene (here 0.06 px of
    # ink, invisible at 256²); the paper's scene scale is unknown, a 2 px line is what "2" draws on screen
    lines.data.stroke_thickness_space = "SCREENSPACE"
    for slot in lines.material_slots:
        slot.material.grease_pencil.color = (0.0, 0.0, 0.0, 1.0)

    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
    shading = scene.display.shading
    shading.light, shading.color_type, shading.single_color = "FLAT", "SINGLE", (1.0, 1.0, 1.0)
    shading.show_object_outline = False
    if scene.world is None:
        scene.world = bpy.data.worlds.new("paper")
    scene.world.color = (1.0, 1.0, 1.0)

    for k, pose in enumerate(views.split(",")):
        azimuth, elevation = (math.radians(float(v)) for v in pose.split(":"))
        eye = distance * Vector(
            _to_blender(
                math.sin(azimuth) * math.cos(elevation), math.sin(elevation), math.cos(azimuth) * math.cos(elevation)
            )
        )
        camera.location = eye
        # look at the origin, the world's up (Blender z) as the camera's y, as wala.render.shaded.look_at
        camera.rotation_euler = (-eye).to_track_quat("-Z", "Y").to_euler()
        scene.render.filepath = str(folder / f"view{k}.png")
        bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    arguments = sys.argv[sys.argv.index("--") + 1 :]
    _blender_main(Path(arguments[0]), arguments[1], int(arguments[2]), float(arguments[3]), float(arguments[4]))
