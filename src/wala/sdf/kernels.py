"""Compiled (numba) loops behind `mesh_to_tsdf`. Everything here works in voxel index units.

Triangles come as a (F, 9) float64 array of vertex coordinates in index space (voxel centers at
integers, see wala.sdf.grid). Grids are C-contiguous (N, N, N) arrays addressed by flat index.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_NEIGHBORS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.int64)


@nb.njit(cache=True)
def _neighbor(i, j, k, m, n):
    """Flat index of the m-th of the 6 face neighbours of voxel (i, j, k) in an n³ grid; -1 off it."""
    a = i + _NEIGHBORS[m, 0]
    b = j + _NEIGHBORS[m, 1]
    e = k + _NEIGHBORS[m, 2]
    if a < 0 or a >= n or b < 0 or b >= n or e < 0 or e >= n:
        return -1
    return (a * n + b) * n + e


@nb.njit(cache=True, fastmath=True)
def closest_point_on_triangle(px, py, pz, t):
    """Closest point on triangle t (9 floats) to p, by Voronoi regions (Ericson, RTCD §5.1.5)."""
    ax, ay, az, bx, by, bz, cx, cy, cz = t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        return ax, ay, az
    bpx, bpy, bpz = px - bx, py - by, pz - bz
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0.0 and d4 <= d3:
        return bx, by, bz
    vc = d1 * d4 - d3 * d2
    # the edge cases below divide by an edge's squared length: 0 when a triangle has two equal
    # vertices (marching cubes emits a few), so such an edge collapses to its first vertex
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        v = d1 / (d1 - d3) if d1 != d3 else 0.0
        return ax + v * abx, ay + v * aby, az + v * abz
    cpx, cpy, cpz = px - cx, py - cy, pz - cz
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0.0 and d5 <= d6:
        return cx, cy, cz
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        w = d2 / (d2 - d6) if d2 != d6 else 0.0
        return ax + w * acx, ay + w * acy, az + w * acz
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        edge = (d4 - d3) + (d5 - d6)
        w = (d4 - d3) / edge if edge != 0.0 else 0.0
        return bx + w * (cx - bx), by + w * (cy - by), bz + w * (cz - bz)
    total = va + vb + vc
    if total <= 0.0:  # degenerate (collinear) triangle that slipped past the region tests
        return ax, ay, az
    v = vb / total
    w = vc / total
    return ax + abx * v + acx * w, ay + aby * v + acy * w, az + abz * v + acz * w


@nb.njit(cache=True, fastmath=True)
def point_triangle_dist2(px, py, pz, t):
    qx, qy, qz = closest_point_on_triangle(px, py, pz, t)
    return (px - qx) ** 2 + (py - qy) ** 2 + (pz - qz) ** 2


@nb.njit(cache=True, fastmath=True)
def _unit_normal(t):
    ux, uy, uz = t[3] - t[0], t[4] - t[1], t[5] - t[2]
    vx, vy, vz = t[6] - t[0], t[7] - t[1], t[8] - t[2]
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    length = np.sqrt(nx * nx + ny * ny + nz * nz)
    if length < 1e-12:
        return 0.0, 0.0, 0.0, False
    return nx / length, ny / length, nz / length, True


@nb.njit(cache=True)
def splat_exact_band(tris, n, band, dist2, closest):
    """Exact squared distances for voxels within `band` of each triangle; keeps the closest id.

    The innermost loop runs along the triangle's dominant normal axis and is clipped to the slab
    |plane distance| ≤ band, so large slanted triangles cost their area, not their bbox volume.
    """
    d = dist2.reshape(-1)
    c = closest.reshape(-1)
    idx = np.zeros(3, dtype=np.int64)
    lo = np.zeros(3, dtype=np.int64)
    hi = np.zeros(3, dtype=np.int64)
    normal = np.zeros(3)
    band2 = band * band
    for f in range(tris.shape[0]):
        t = tris[f]
        for a in range(3):
            mn = min(t[a], t[3 + a], t[6 + a])
            mx = max(t[a], t[3 + a], t[6 + a])
            lo[a] = max(0, int(np.ceil(mn - band)))
            hi[a] = min(n - 1, int(np.floor(mx + band)))
        if lo[0] > hi[0] or lo[1] > hi[1] or lo[2] > hi[2]:
            continue
        normal[0], normal[1], normal[2], ok = _unit_normal(t)
        w = 2  # innermost axis: the dominant normal component
        if abs(normal[0]) >= abs(normal[1]) and abs(normal[0]) >= abs(normal[2]):
            w = 0
        elif abs(normal[1]) >= abs(normal[2]):
            w = 1
        u = (w + 1) % 3
        v = (w + 2) % 3
        offset = normal[0] * t[0] + normal[1] * t[1] + normal[2] * t[2]
        for iu in range(lo[u], hi[u] + 1):
            for iv in range(lo[v], hi[v] + 1):
                w0, w1 = lo[w], hi[w]
                if ok:
                    rest = offset - normal[u] * iu - normal[v] * iv
                    s0 = (rest - band) / normal[w]
                    s1 = (rest + band) / normal[w]
                    if s0 > s1:
                        s0, s1 = s1, s0
                    w0 = max(w0, int(np.ceil(s0)))
                    w1 = min(w1, int(np.floor(s1)))
                idx[u] = iu
                idx[v] = iv
                for iw in range(w0, w1 + 1):
                    idx[w] = iw
                    d2 = point_triangle_dist2(float(idx[0]), float(idx[1]), float(idx[2]), t)
                    flat = (idx[0] * n + idx[1]) * n + idx[2]
                    if d2 <= band2 and d2 < d[flat]:
                        d[flat] = d2
                        c[flat] = f


@nb.njit(cache=True)
def propagate_closest(tris, n, max_dist, dist2, closest):
    """Grows the exact band outwards to `max_dist` voxels by closest-triangle propagation.

    A FIFO wavefront hands each voxel's closest triangle to its 6 neighbours, which keep it when
    it is nearer than what they hold (the SDFGen idea, restricted to the truncation band).
    """
    d = dist2.reshape(-1)
    c = closest.reshape(-1)
    total = n * n * n
    queue = np.empty(total, dtype=np.int32)
    queued = np.zeros(total, dtype=np.uint8)
    head = 0
    count = 0
    for flat in range(total):
        if c[flat] >= 0:
            queue[(head + count) % total] = flat
            queued[flat] = 1
            count += 1
    max2 = max_dist * max_dist
    while count > 0:
        flat = queue[head]
        head = (head + 1) % total
        count -= 1
        queued[flat] = 0
        f = c[flat]
        i, j, k = flat // (n * n), (flat // n) % n, flat % n
        for m in range(6):
            other = _neighbor(i, j, k, m, n)
            if other < 0 or c[other] == f:
                continue
            a, b, e = other // (n * n), (other // n) % n, other % n
            # compare in the stored float32: a float64 compare lets two triangles whose distances
            # round to the same float32 take a voxel from each other forever
            d2 = np.float32(point_triangle_dist2(float(a), float(b), float(e), tris[f]))
            if d2 < d[other] and d2 <= max2:
                d[other] = d2
                c[other] = f
                if queued[other] == 0:
                    queued[other] = 1
                    queue[(head + count) % total] = other
                    count += 1


@nb.njit(cache=True)
def flood_outside(n, dist2, wall2):
    """Marks voxels reachable from the grid boundary without entering the wall (dist² < wall2)."""
    d = dist2.reshape(-1)
    total = n * n * n
    outside = np.zeros(total, dtype=np.uint8)
    stack = np.empty(total, dtype=np.int32)
    top = 0
    for i in range(n):
        for j in range(n):
            for k in range(n):
                if i == 0 or j == 0 or k == 0 or i == n - 1 or j == n - 1 or k == n - 1:
                    flat = (i * n + j) * n + k
                    if d[flat] >= wall2 and outside[flat] == 0:
                        outside[flat] = 1
                        stack[top] = flat
                        top += 1
    while top > 0:
        top -= 1
        flat = stack[top]
        i, j, k = flat // (n * n), (flat // n) % n, flat % n
        for m in range(6):
            other = _neighbor(i, j, k, m, n)
            if other >= 0 and outside[other] == 0 and d[other] >= wall2:
                outside[other] = 1
                stack[top] = other
                top += 1
    return outside.reshape((n, n, n))


# Triangle sides as seen by the flood fill: which of its two sides faces the outside.
SIDE_UNKNOWN, SIDE_FRONT_OUT, SIDE_BACK_OUT, SIDE_BOTH_IN, SIDE_BOTH_OUT = 0, 1, -1, 2, 3


@nb.njit(cache=True)
def _probe_label(x, y, z, n, dist2, outside, wall2):
    """+1 outside, -1 inside, 0 when the nearest voxel is inside the wall."""
    i, j, k = int(np.floor(x + 0.5)), int(np.floor(y + 0.5)), int(np.floor(z + 0.5))
    if i < 0 or j < 0 or k < 0 or i >= n or j >= n or k >= n:
        return 1
    if dist2[i, j, k] < wall2:
        return 0
    return 1 if outside[i, j, k] else -1


@nb.njit(cache=True)
def triangle_sides(tris, n, dist2, outside, wall2, probe):
    """Per triangle, which side the flood fill calls outside, by probing 4 points on each side."""
    sides = np.zeros(tris.shape[0], dtype=np.int8)
    for f in range(tris.shape[0]):
        t = tris[f]
        nx, ny, nz, ok = _unit_normal(t)
        if not ok:
            continue
        gx = (t[0] + t[3] + t[6]) / 3.0
        gy = (t[1] + t[4] + t[7]) / 3.0
        gz = (t[2] + t[5] + t[8]) / 3.0
        front = 0
        back = 0
        for s in range(4):
            if s == 0:
                sx, sy, sz = gx, gy, gz
            else:
                sx = (gx + t[3 * (s - 1)]) / 2.0
                sy = (gy + t[3 * (s - 1) + 1]) / 2.0
                sz = (gz + t[3 * (s - 1) + 2]) / 2.0
            front += _probe_label(sx + probe * nx, sy + probe * ny, sz + probe * nz, n, dist2, outside, wall2)
            back += _probe_label(sx - probe * nx, sy - probe * ny, sz - probe * nz, n, dist2, outside, wall2)
        if front > 0 and back < 0:
            sides[f] = SIDE_FRONT_OUT
        elif front < 0 and back > 0:
            sides[f] = SIDE_BACK_OUT
        elif front < 0 and back < 0:
            sides[f] = SIDE_BOTH_IN
        elif front > 0 and back > 0:
            sides[f] = SIDE_BOTH_OUT
    return sides


@nb.njit(cache=True, parallel=True)
def signed_truncated(tris, sides, n, dist2, closest, outside, wall, probe, truncation_voxels, shell_sheets):
    """Signed distance (voxel units) clipped to ±truncation_voxels, negative inside.

    Off the wall the flood fill decides. A wall voxel looks along the ray from its closest surface
    point through itself to a point `probe` voxels off the surface; when that point lies clear of
    every other surface its flood label is the voxel's side (orientation-free: flipped faces do not
    matter). Otherwise (sub-voxel gaps and plates) the closest triangle's normal decides, oriented
    by what the flood fill saw on its two sides, or by the file's winding when it saw nothing.
    With `shell_sheets`, surfaces with outside on both sides (open sheets) become a shell `wall`
    voxels thick around the sheet instead of vanishing, as mesh2sdf's fix does.
    """
    total = n * n * n
    d = dist2.reshape(-1)
    c = closest.reshape(-1)
    out = outside.reshape(-1)
    result = np.empty(total, dtype=np.float32)
    wall2 = wall * wall
    accept2 = max(probe - 0.9, 0.0) ** 2  # the probe voxel may sit ~√3/2 off the probe point
    for flat in nb.prange(total):
        f = c[flat]
        dist = np.sqrt(d[flat]) if f >= 0 else truncation_voxels
        dist = min(dist, truncation_voxels)
        if f >= 0 and shell_sheets and sides[f] == SIDE_BOTH_OUT:
            result[flat] = min(np.sqrt(d[flat]) - wall, truncation_voxels)
            continue
        if f < 0 or d[flat] >= wall2:
            result[flat] = dist if out[flat] else -dist
            continue
        i = flat // (n * n)
        j = (flat // n) % n
        k = flat % n
        t = tris[f]
        qx, qy, qz = closest_point_on_triangle(float(i), float(j), float(k), t)
        gx, gy, gz = i - qx, j - qy, k - qz
        gl = np.sqrt(gx * gx + gy * gy + gz * gz)
        if gl < 1e-9:
            result[flat] = 0.0
            continue
        sign = 0
        a = int(np.floor(qx + gx / gl * probe + 0.5))
        b = int(np.floor(qy + gy / gl * probe + 0.5))
        e = int(np.floor(qz + gz / gl * probe + 0.5))
        if a < 0 or b < 0 or e < 0 or a >= n or b >= n or e >= n:
            sign = 1
        else:
            other = (a * n + b) * n + e
            if d[other] >= accept2 and d[other] >= wall2:
                sign = 1 if out[other] else -1
        if sign == 0:
            side = sides[f]
            if side == SIDE_BOTH_IN:
                sign = -1
            else:
                nx, ny, nz, ok = _unit_normal(t)
                facing = gx * nx + gy * ny + gz * nz
                if side == SIDE_BACK_OUT:
                    facing = -facing
                sign = 1 if facing >= 0.0 else -1
        result[flat] = dist if sign > 0 else -dist
    return result.reshape((n, n, n))


@nb.njit(cache=True)
def axis_crossing_counts(tris, n, axis, counts):
    """Adds, per voxel, the signed surface crossings of the two rays along ±axis (int16 grid).

    A crossing counts +1 where the ray leaves through a face whose normal points along the ray,
    so for a closed outward-wound surface each ray from an inside voxel counts 1, from an outside
    voxel 0. Summed over the three axes and divided by 6 this is a 6-direction quadrature of the
    generalized winding number, which stays meaningful across holes. Scanlines are nudged off the
    voxel centers by an irrational fraction so that no ray passes exactly through an edge.
    """
    u = (axis + 1) % 3
    v = (axis + 2) % 3
    delta = np.zeros((n, n, n + 1), dtype=np.int16)  # [line u, line v, first voxel past the hit]
    total = np.zeros((n, n), dtype=np.int16)
    nudge_u, nudge_v = 1.3e-4 * np.sqrt(2.0), 1.7e-4 * np.sqrt(3.0)
    for f in range(tris.shape[0]):
        t = tris[f]
        au, av, aw = t[u], t[v], t[axis]
        bu, bv, bw = t[3 + u], t[3 + v], t[3 + axis]
        cu, cv, cw = t[6 + u], t[6 + v], t[6 + axis]
        area2 = (bu - au) * (cv - av) - (bv - av) * (cu - au)  # twice the projected signed area
        if area2 == 0.0:
            continue
        step = 1 if area2 > 0 else -1  # sign of the normal's component along the axis
        u0 = max(0, int(np.ceil(min(au, bu, cu) - nudge_u)))
        u1 = min(n - 1, int(np.floor(max(au, bu, cu) - nudge_u)))
        v0 = max(0, int(np.ceil(min(av, bv, cv) - nudge_v)))
        v1 = min(n - 1, int(np.floor(max(av, bv, cv) - nudge_v)))
        for iu in range(u0, u1 + 1):
            pu = iu + nudge_u
            for iv in range(v0, v1 + 1):
                pv = iv + nudge_v
                # barycentric weights of the scanline in the projected triangle
                wa = ((bu - pu) * (cv - pv) - (bv - pv) * (cu - pu)) / area2
                wb = ((cu - pu) * (av - pv) - (cv - pv) * (au - pu)) / area2
                wc = 1.0 - wa - wb
                if wa < 0.0 or wb < 0.0 or wc < 0.0:
                    continue
                hit = wa * aw + wb * bw + wc * cw
                first = min(n, max(0, int(np.floor(hit)) + 1))
                delta[iu, iv, first] += step
                total[iu, iv] += step
    for iu in range(n):
        for iv in range(n):
            before = 0
            for iw in range(n):
                before += delta[iu, iv, iw]
                count = total[iu, iv] - 2 * before  # crossings ahead minus crossings behind
                if axis == 0:
                    counts[iw, iu, iv] += count
                elif axis == 1:
                    counts[iv, iw, iu] += count
                else:
                    counts[iu, iv, iw] += count
