"""Line art from the mesh: what Blender's Grease Pencil Line Art modifier draws (the paper's first
technique: thickness 2, crease threshold 140°, vertices merged by distance 1e-6 first), done here in
numpy: silhouette edges (one face toward the camera, the other away), creases (faces meeting at less
than 140°, i.e. normals turning by more than 40°) and open borders, each drawn where the depth buffer
shows it is not hidden."""

from __future__ import annotations

import numpy as np
import trimesh

CREASE_DEGREES = 140.0
THICKNESS = 2
MERGE_DISTANCE = 1e-6


def feature_edges(mesh: trimesh.Trimesh, eye: np.ndarray, crease: float = CREASE_DEGREES) -> np.ndarray:
    """(E, 2, 3) world segments of the silhouettes, creases and borders seen from `eye`."""
    mesh = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=False)
    mesh.merge_vertices(digits_vertex=int(round(-np.log10(MERGE_DISTANCE))))
    normals, centers = mesh.face_normals, mesh.triangles_center
    facing = np.einsum("ij,ij->i", normals, eye - centers) > 0
    pairs, edges = mesh.face_adjacency, mesh.face_adjacency_edges
    silhouette = facing[pairs[:, 0]] != facing[pairs[:, 1]]
    creased = mesh.face_adjacency_angles > np.radians(180.0 - crease)
    chosen = edges[silhouette | creased & (facing[pairs[:, 0]] | facing[pairs[:, 1]])]
    counts = trimesh.grouping.group_rows(np.sort(mesh.edges, axis=1), require_count=1)
    borders = np.sort(mesh.edges, axis=1)[counts]
    return mesh.vertices[np.concatenate([chosen, borders])]


def draw_lineart(
    mesh: trimesh.Trimesh,
    azimuth: float,
    elevation: float,
    depth: np.ndarray,
    distance: float,
    fov: float,
    thickness: int = THICKNESS,
) -> np.ndarray:
    """(S, S) bool ink of the visible feature lines; `depth` is the eye-space depth render of the same
    camera (inf on the background), used to hide lines behind the surface."""
    from PIL import Image, ImageDraw

    from wala.render.shaded import look_at, orbit_eye, perspective

    size = depth.shape[0]
    eye = orbit_eye(azimuth, elevation, distance)
    segments = feature_edges(mesh, eye)
    view, projection = look_at(eye), perspective(fov, 1.0, 0.1, 100.0)
    # sample each segment at about a pixel's spacing and keep the samples the depth buffer sees
    t = np.linspace(0.0, 1.0, 9)[None, :, None]
    points = segments[:, :1] * (1 - t) + segments[:, 1:] * t  # (E, 9, 3)
    eye_space = np.einsum("ij,ekj->eki", view[:3, :3], points) + view[:3, 3]
    clip = np.einsum("ij,ekj->eki", projection[:, :3], eye_space) + projection[:, 3]
    xy = clip[..., :2] / clip[..., 3:]
    cols, rows = (xy[..., 0] + 1) / 2 * size, (1 - xy[..., 1]) / 2 * size
    z = -eye_space[..., 2]
    farthest = _farthest_nearby(depth)
    r, c = np.clip(rows.astype(int), 0, size - 1), np.clip(cols.astype(int), 0, size - 1)
    seen = z <= farthest[r, c] + 0.02  # on the surface around its pixel, not behind it
    canvas = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for e in range(len(segments)):
        for k in range(t.shape[1] - 1):
            if seen[e, k] and seen[e, k + 1]:
                draw.line([(cols[e, k], rows[e, k]), (cols[e, k + 1], rows[e, k + 1])], fill=1, width=thickness)
    return np.array(canvas, dtype=bool)


def _farthest_nearby(depth: np.ndarray) -> np.ndarray:
    """The farthest surface depth in each 3×3 neighbourhood (inf where there is none): a line sample
    lands up to a pixel off the pixel centre whose depth was rendered, and near silhouettes and creases
    the surface's depth changes steeply across that pixel; a hidden line lies behind all of them."""
    from scipy import ndimage

    far = ndimage.maximum_filter(np.where(np.isfinite(depth), depth, -np.inf), size=3)
    return np.where(np.isfinite(far), far, np.inf)
