"""Shaded RGB and depth renders of a triangle mesh, headless, through OpenGL (moderngl).

moderngl is a small, maintained binding that opens a context without a window: EGL on Linux (Mesa's
llvmpipe renders on the CPU when there is no GPU, as on our CI machines), CGL on macOS, WGL on
Windows. pyrender's pinned PyOpenGL and trimesh's pyglet viewer both want a display or old packages.

Frame: the y axis is up (as the released models' examples). A camera at azimuth a and elevation e
(degrees) sits at distance·(sin a·cos e, sin e, cos a·cos e) and looks at the origin; azimuth 0 looks
along −z. Perspective with a vertical field of view `fov`. Depth is the distance along the view axis
(eye-space z), +inf where no surface is. Faces are shaded flat (Lambert, a key light above-left of the
camera plus ambient), both sides lit: a mesh with flipped faces still looks solid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wala.errors import WalaError, one_line

VERTEX_SHADER = """
#version 330
uniform mat4 view;
uniform mat4 projection;
in vec3 position;
in vec3 normal;
out vec3 eye_normal;
void main() {
    eye_normal = mat3(view) * normal;
    gl_Position = projection * view * vec4(position, 1.0);
}
"""
FRAGMENT_SHADER = """
#version 330
uniform vec3 color;
in vec3 eye_normal;
out vec4 fragment;
void main() {
    vec3 n = normalize(eye_normal);
    if (!gl_FrontFacing) n = -n;
    vec3 key = normalize(vec3(-0.4, 0.6, 0.7));
    float light = 0.25 + 0.65 * max(dot(n, key), 0.0) + 0.15 * max(n.z, 0.0);
    fragment = vec4(min(color * light, vec3(1.0)), 1.0);
}
"""
BACKGROUND = (1.0, 1.0, 1.0)
MESH_COLOR = (0.62, 0.70, 0.86)


@dataclass
class Render:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 eye-space distance along the view axis, inf on the background


def look_at(eye: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """World → eye 4×4 matrix (OpenGL: the camera looks down its −z)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    if abs(np.dot(forward, up)) > 0.999:  # looking straight up or down: any other up will do
        up = np.array([0.0, 0.0, -1.0 if forward[1] < 0 else 1.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, true_up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def perspective(fov_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / np.tan(np.radians(fov_deg) / 2)
    return np.array(
        [
            [f / aspect, 0, 0, 0],
            [0, f, 0, 0],
            [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
            [0, 0, -1, 0],
        ]
    )


def orbit_eye(azimuth: float, elevation: float, distance: float) -> np.ndarray:
    a, e = np.radians(azimuth), np.radians(elevation)
    return distance * np.array([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)])


def framing_distance(mesh, fov: float, margin: float = 1.05) -> float:
    """How far a camera must be for the mesh's bounding sphere about the origin to fill the view."""
    radius = float(np.linalg.norm(np.asarray(mesh.vertices), axis=1).max()) * margin
    return radius / np.sin(np.radians(fov) / 2)


class MeshRenderer:
    """One offscreen OpenGL context; `render` draws a mesh from any orbit pose."""

    def __init__(self, size: int = 256):
        import moderngl

        self.size = size
        try:
            self.ctx = _standalone_context(moderngl)
        except Exception as exc:  # no GL library or driver: name what is missing
            raise WalaError(
                f"no OpenGL context for rendering ({one_line(exc)}); on Linux install Mesa EGL "
                f"(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)"
            ) from exc
        self.program = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.fbo = self.ctx.framebuffer(self.ctx.renderbuffer((size, size)), self.ctx.depth_renderbuffer((size, size)))

    def render(
        self,
        mesh,
        azimuth: float = 0.0,
        elevation: float = 20.0,
        distance: float | None = None,
        fov: float = 30.0,
        color=MESH_COLOR,
    ) -> Render:
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if len(faces) == 0:
            raise WalaError("cannot render a mesh without faces")
        distance = distance or framing_distance(mesh, fov)
        near, far = (
            max(distance - 2.0 * np.abs(vertices).max() - 1e-3, 1e-3),
            distance + 2.0 * np.abs(vertices).max() + 1.0,
        )
        view, projection = look_at(orbit_eye(azimuth, elevation, distance)), perspective(fov, 1.0, near, far)
        corners = vertices[faces]  # (F, 3, 3): flat shading needs a vertex per face corner
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        data = np.concatenate([corners, np.repeat(normals[:, None], 3, axis=1)], axis=2).astype("f4")
        buffer = self.ctx.buffer(data.tobytes())
        vao = self.ctx.vertex_array(self.program, [(buffer, "3f 3f", "position", "normal")])
        self.program["view"].write(view.T.astype("f4").tobytes())  # GLSL reads column-major
        self.program["projection"].write(projection.T.astype("f4").tobytes())
        self.program["color"].value = tuple(color)
        self.fbo.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.fbo.clear(*BACKGROUND, 1.0, depth=1.0)
        vao.render()
        rgb = np.frombuffer(self.fbo.read(components=3), dtype=np.uint8).reshape(self.size, self.size, 3)[::-1]
        window = np.frombuffer(self.fbo.read(components=1, attachment=-1, dtype="f4"), dtype=np.float32).reshape(
            self.size, self.size
        )[::-1]
        vao.release()
        buffer.release()
        ndc = window.astype(np.float64) * 2 - 1
        depth = 2 * far * near / (far + near - ndc * (far - near))
        depth[window >= 1.0] = np.inf
        return Render(rgb.copy(), depth.astype(np.float32))

    def release(self) -> None:
        self.ctx.release()

    def __enter__(self) -> MeshRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _standalone_context(moderngl):
    import sys

    if sys.platform.startswith("linux"):
        try:
            return moderngl.create_standalone_context(backend="egl")  # headless: no X server needed
        except Exception:
            pass
    return moderngl.create_standalone_context()
