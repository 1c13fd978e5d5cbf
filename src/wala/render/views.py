"""Renders at the released models' cameras: shaded RGB and 8-bit depth maps of a normalized mesh.

The camera table is the official 55-view one (the WaLa README's "view index → rotation, elevation";
the same table the text-to-depth model embeds): a view id is an orbit pose around the origin, y up,
azimuth 0 looking along −z (`shaded.orbit_eye`). The multi-view models read views 3, 6, 10, 26 (RGB4,
DM4) and those plus 49 (top) and 50 (bottom) (DM6). Named poses add the sides the paper's sketches
also use (front, right, left, back).

Framing and depth encoding are ours (the authors' renderer is not published; OFFICIAL.md §5.2 gives
only 8-bit, nearer brighter, background 0), chosen to match the official-format depth maps of our
parity fixtures (shared/fixtures/official/dm6: a 1.8-tall shape fills ~64 % of the 256² image
height, values ~77…181 for a shape ±0.7 deep): the mesh in wala's normalized frame (bbox centred,
longest side 1.8), a perspective camera at distance 4 with a 40° field of view, depth d mapped
linearly from [4 − r, 4 + r] onto 255…1, r = 0.9·√3 the normalization cube's bounding radius (a
shape ±0.7 deep lands at 71…185). The mapping is fixed, not per image, so the same gray means the
same distance in every view and shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wala.errors import WalaError

# view id → (azimuth°, elevation°), the official table
VIEW_TABLE: tuple[tuple[float, float], ...] = (
    (57.37415476, 13.47771793),
    (36.8559398, 6.18184898),
    (11.24832547, 21.62196207),
    (57.26659092, 25.34236163),
    (100.0732859, 9.09647398),
    (116.90746507, 21.32039046),
    (140.94213862, 12.91862734),
    (99.87889843, 3.56851787),
    (5.06073906, 11.37835065),
    (217.88410654, 6.72490945),
    (230.76201332, 13.27249801),
    (180.98906307, 23.98590858),
    (100.59093586, -6.36902378),
    (65.29211248, -2.70040233),
    (145.703713, 6.61282997),
    (271.98349629, 0.14989793),
    (284.3610443, 5.84109442),
    (220.28304999, 0.07058763),
    (145.86260129, -1.18040307),
    (59.07657138, -13.59182346),
    (7.34859253, 0.51365624),
    (7.06342844, -7.81538984),
    (146.04505989, -15.43425644),
    (182.55141257, -5.17191064),
    (341.95447458, 3.29461445),
    (353.63563045, 9.75036104),
    (319.80819418, 16.43987141),
    (233.76237883, -8.55739736),
    (334.96492624, -2.65190461),
    (207.67461692, -16.78772622),
    (79.724479, -21.19530916),
    (169.69410596, -26.77455887),
    (237.15795027, -27.05551623),
    (231.72240834, 25.9149729),
    (284.83744118, 23.44117423),
    (311.21955787, -14.08501365),
    (285.14501987, -7.42036231),
    (257.11299407, -14.37572769),
    (319.13919919, -23.74991514),
    (355.62108163, -9.0569255),
    (0.0, 60.0),
    (40.0, 60.0),
    (80.0, 60.0),
    (120.0, 60.0),
    (160.0, 60.0),
    (200.0, 60.0),
    (240.0, 60.0),
    (280.0, 60.0),
    (320.0, 60.0),
    (360.0, 60.0),
    (0.0, -60.0),
    (90.0, -60.0),
    (180.0, -60.0),
    (270.0, -60.0),
    (360.0, -60.0),
)
# the four sides the paper's sketches add to the multi-view views; a slight elevation shows the top
NAMED_POSES = {"front": (0.0, 15.0), "right": (90.0, 15.0), "back": (180.0, 15.0), "left": (270.0, 15.0)}
VIEW_SETS = {
    "rgb4": "3,6,10,26",
    "dm4": "3,6,10,26",
    "dm6": "3,6,10,26,49,50",
    "sketch": "3,6,10,26,front,right,left,back",
}

CAMERA_DISTANCE = 4.0
FIELD_OF_VIEW = 40.0
DEPTH_RADIUS = 0.9 * np.sqrt(3.0)
RENDER_SIZE = 256  # the text-to-depth model's output size (and the fixtures'); the models crop 224


@dataclass(frozen=True)
class Pose:
    name: str  # a view id ("3") or a pose name ("front", "a45_e30"); also the file stem
    azimuth: float
    elevation: float


def parse_views(spec: str) -> list[Pose]:
    """ "3,6,10,26", "dm6", "sketch", "front,right" or "45:30" (azimuth:elevation) → poses, in order."""
    spec = VIEW_SETS.get(spec.strip().lower(), spec)
    poses = []
    for part in (p.strip().lower() for p in spec.split(",") if p.strip()):
        if part.isdigit():
            if int(part) >= len(VIEW_TABLE):
                raise WalaError(f"view {part} is not in the 55-view camera table (0–54)")
            poses.append(Pose(str(int(part)), *VIEW_TABLE[int(part)]))
        elif part in NAMED_POSES:
            poses.append(Pose(part, *NAMED_POSES[part]))
        elif ":" in part:
            try:
                azimuth, elevation = (float(v) for v in part.split(":"))
            except ValueError:
                raise WalaError(f"cannot read the pose '{part}': give azimuth:elevation in degrees") from None
            poses.append(Pose(f"a{azimuth:g}_e{elevation:g}", azimuth, elevation))
        else:
            raise WalaError(
                f"unknown view '{part}' (a table id 0–54, {', '.join(NAMED_POSES)}, "
                f"azimuth:elevation, or a set: {', '.join(VIEW_SETS)})"
            )
    if not poses:
        raise WalaError("no views given")
    if len({p.name for p in poses}) != len(poses):
        raise WalaError(f"a view is given twice in '{spec}'")
    return poses


def depth_to_u8(depth: np.ndarray) -> np.ndarray:
    """Eye-space depth (H, W), inf on the background → uint8: nearer brighter, 1…255 on the shape, 0 off it."""
    near = CAMERA_DISTANCE - DEPTH_RADIUS
    value = 1.0 + 254.0 * (1.0 - (np.asarray(depth, dtype=np.float64) - near) / (2 * DEPTH_RADIUS))
    out = np.clip(np.rint(np.nan_to_num(value, neginf=0.0)), 1, 255).astype(np.uint8)
    out[~np.isfinite(depth)] = 0
    return out


def u8_to_depth(value: np.ndarray) -> np.ndarray:
    """The inverse of depth_to_u8 (to its 0.012 quantization step): uint8 → depth, inf where 0."""
    value = np.asarray(value, dtype=np.float64)
    depth = CAMERA_DISTANCE - DEPTH_RADIUS + (1.0 - (value - 1.0) / 254.0) * 2 * DEPTH_RADIUS
    return np.where(value > 0, depth, np.inf)


@dataclass
class ViewRender:
    pose: Pose
    rgb: np.ndarray  # (S, S, 3) uint8 shaded, on the background colour
    depth: np.ndarray  # (S, S) uint8, depth_to_u8
    metric: np.ndarray  # (S, S) float32 eye-space depth, inf on the background


def render_views(
    mesh, poses: list[Pose], size: int = RENDER_SIZE, background=(255, 255, 255), renderer=None
) -> list[ViewRender]:
    """Renders a mesh in the normalized frame (see `wala.io.mesh.normalize_mesh`) at each pose."""
    from wala.render.shaded import MeshRenderer

    own = renderer is None
    renderer = renderer or MeshRenderer(size)
    try:
        out = []
        for pose in poses:
            r = renderer.render(mesh, pose.azimuth, pose.elevation, distance=CAMERA_DISTANCE, fov=FIELD_OF_VIEW)
            rgb = r.rgb.copy()
            rgb[~np.isfinite(r.depth)] = background
            out.append(ViewRender(pose, rgb, depth_to_u8(r.depth), r.depth))
        return out
    finally:
        if own:
            renderer.release()
