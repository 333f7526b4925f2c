"""Independent phantoms for the quantification tests.

Written apart from :mod:`tomopipe.simulate` (no shared code, other shapes, other schemas), so
that they check what the project's simulator cannot: spheres centred between slices, thin
sheets (cracks) at random tilts through a pore-bearing matrix, a calendered electrode
packing, a cylindrical cell with a flat headspace, a cathode | separator stack where the
electrolyte is the majority phase on both sides, and packings of spheres with known sizes.
All are seeded and small (≤ ~100³ voxels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def ball(shape, centre, radius, scale=(1.0, 1.0, 1.0)):
    """Voxels whose centre lies within `radius` of `centre` (voxel units, per-axis `scale`)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - c) / s) ** 2 for g, c, s in zip(grids, centre, scale))
    return r2 <= radius * radius


def _box_ball(shape, centre, radius, scale=(1.0, 1.0, 1.0)):
    """`ball` restricted to its bounding box: ``(slices, mask)`` (None if outside)."""
    lo = [max(0, int(np.floor(c - radius * s))) for c, s in zip(centre, scale)]
    hi = [min(n, int(np.ceil(c + radius * s)) + 1) for c, s, n in zip(centre, scale, shape)]
    if any(h <= l for l, h in zip(lo, hi)):
        return None, None
    sl = tuple(slice(l, h) for l, h in zip(lo, hi))
    return sl, ball([h - l for l, h in zip(lo, hi)], [c - l for c, l in zip(centre, lo)], radius, scale)


def sphere_between_slices(radius=3.3, size=16):
    """A void sphere in a solid, its centre half-way between two slices.

    Schema ``{"pore": 0, "solid": 1}``.
    """
    lab = np.ones((size,) * 3, np.uint8)
    c = size / 2 - 0.5  # between slices size/2 - 1 and size/2, on every axis
    lab[ball(lab.shape, (c, c, c), radius)] = 0
    return lab


def _random_unit_tilted(rng, max_tilt_deg):
    t = np.radians(rng.uniform(0.0, max_tilt_deg))
    phi = rng.uniform(0.0, 2 * np.pi)
    return np.array([np.cos(t), np.sin(t) * np.sin(phi), np.sin(t) * np.cos(phi)]), np.degrees(t)


def sheet(shape, centre, normal, a, b, aperture, psi=0.0):
    """Elliptical sheet: ``|n·d| <= aperture/2`` and ``(u·d/a)² + (w·d/b)² <= 1``."""
    n = np.asarray(normal, float)
    n /= np.linalg.norm(n)
    helper = np.array([0.0, 1.0, 0.0]) if abs(n[1]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    w = np.cross(n, u)
    u, w = np.cos(psi) * u + np.sin(psi) * w, -np.sin(psi) * u + np.cos(psi) * w
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    d = [g - c for g, c in zip(grids, centre)]
    dn = sum(di * ni for di, ni in zip(d, n))
    du = sum(di * ui for di, ui in zip(d, u))
    dw = sum(di * wi for di, wi in zip(d, w))
    return (np.abs(dn) <= aperture / 2.0) & ((du / a) ** 2 + (dw / b) ** 2 <= 1.0)


def cracked_block(seed, shape=(64, 96, 96), n_cracks=6, porosity=0.08, max_tilt_deg=10.0):
    """A particle-filled matrix with round pores and thin elliptical cracks at random tilts.

    Schema ``{"pore": 0, "matrix": 1, "particle": 2}``. Pores: random ellipsoids (aspect
    ≤ 1.6, equivalent radius 1–4 voxels) until `porosity`; cracks: elliptical sheets of
    semi-axes 8–16 voxels, aperture 1–3 voxels, normal within `max_tilt_deg` of z, drawn
    last (they cut particles, matrix and pores alike).

    Returns
    -------
    labels : (z, y, x) uint8
    crack : (z, y, x) bool
        Truth: the voxels of all cracks, also where a crack crosses a pore (the
        convention of :mod:`tomopipe.simulate`'s ``crack_ids``).
    tilts_deg : (n_cracks,) float
        Angle between each crack's normal and z.
    volumes : (n_cracks,) int
        Voxels of each crack (overlaps counted once, in the first).
    """
    rng = np.random.default_rng(seed)
    lab = np.ones(shape, np.uint8)
    nz, ny, nx = shape
    for _ in range(400):
        r = rng.uniform(3.0, 7.0)
        c = rng.uniform((0, 0, 0), shape)
        sl, m = _box_ball(shape, c, r)
        if sl is not None:
            lab[sl][m] = 2
        if (lab == 2).mean() > 0.3:
            break
    n_pore = 0
    while n_pore < porosity * lab.size:
        r = rng.uniform(1.0, 4.0)
        scale = rng.uniform(1.0, 1.6, 3)
        scale /= np.prod(scale) ** (1 / 3)
        c = rng.uniform((0, 0, 0), shape)
        sl, m = _box_ball(shape, c, r, scale)
        if sl is not None:
            n_pore += int((m & (lab[sl] != 0)).sum())
            lab[sl][m] = 0
    crack = np.zeros(shape, bool)
    tilts, vols = [], []
    for _ in range(n_cracks):
        n, tilt = _random_unit_tilted(rng, max_tilt_deg)
        a = rng.uniform(8.0, 16.0)
        b = a * rng.uniform(0.6, 1.0)
        ap = int(rng.integers(1, 4))
        c = (rng.uniform(6, nz - 6), rng.uniform(a, ny - a), rng.uniform(a, nx - a))
        m = sheet(shape, c, n, a, b, ap, psi=rng.uniform(0, np.pi)) & ~crack
        crack |= m
        tilts.append(tilt)
        vols.append(int(m.sum()))
    lab[crack] = 0
    return lab, crack, np.array(tilts), np.array(vols)


def calendered_electrode(seed, shape=(64, 96, 96), solid_fraction=0.62, squeeze=0.75):
    """A calendered NMC electrode: packed spheres squeezed along z, binder in the pores.

    Spheres (radius 5–9 voxels) are packed (soft overlap) into a box ``1 / squeeze`` times
    taller until `solid_fraction`, then the box is squeezed along z to `shape` by
    nearest-slice sampling (oblate particles, flattened pores ⟂ z, as after calendering).
    A third of the pore space next to the particles becomes carbon-binder domain.
    Schema ``{"pore": 0, "NMC": 1, "binder": 2}``; no cracks.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    tall = (int(round(nz / squeeze)), ny, nx)
    solid = np.zeros(tall, bool)
    target = solid_fraction * solid.size
    filled = 0
    while filled < target:
        r = rng.uniform(5.0, 9.0)
        c = rng.uniform((0, 0, 0), tall)
        sl, m = _box_ball(tall, c, r)
        if sl is None or (solid[sl] & m).sum() > 0.15 * m.sum():
            continue
        filled += int((m & ~solid[sl]).sum())
        solid[sl] |= m
    z_src = np.clip(np.round((np.arange(nz) + 0.5) / squeeze - 0.5).astype(int), 0, tall[0] - 1)
    solid = solid[z_src]
    lab = np.where(solid, 1, 0).astype(np.uint8)
    d = ndimage.distance_transform_edt(~solid)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    near = (~solid) & (d <= 2.0)
    lab[near & (field > np.quantile(field[near], 0.5))] = 2
    return lab


def cylindrical_cell(shape=(80, 100, 100), headspace=(62, 76), seed=0):
    """A cylindrical cell in lab CT: can, wound electrode, mandrel hole, flat headspace.

    Schema ``{"void": 0, "can": 1, "electrode": 2}`` (no outside class: the air around the
    can is void too). The electrode fills the can below ``headspace[0]`` but for a mandrel
    hole along z (radius 2.5 voxels) and a few round pores; the headspace is the flat void
    between the electrode and the lid at ``headspace[1]``.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    yy, xx = np.ogrid[:ny, :nx]
    rr = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
    lab = np.zeros(shape, np.uint8)
    r_in = 0.44 * min(ny, nx)
    z0, z1 = headspace
    lab[:, (rr > r_in) & (rr <= r_in + 3)] = 1
    lab[:4, rr <= r_in + 3] = 1
    lab[z1:z1 + 3, rr <= r_in + 3] = 1
    lab[4:z0, rr <= r_in] = 2
    lab[4:z0, rr <= 2.5] = 0
    for _ in range(40):
        c = (rng.uniform(6, z0 - 2), *(rng.uniform(-0.8, 0.8, 2) * r_in / np.sqrt(2) + (ny - 1) / 2))
        lab[ball(shape, c, rng.uniform(1.0, 2.5)) & (lab == 2)] = 0
    return lab


def electrolyte_majority_stack(seed, shape=(160, 64, 64), interface=99):
    """Cathode | separator along z with the electrolyte the majority phase on both sides.

    Schema ``{"pore": 0, "electrolyte": 1, "active": 2}``. Slices ``< interface``:
    cathode, ~30 % active spheres (radius 3–6 voxels) and ~8 % pores in the electrolyte;
    slices ``>= interface``: separator, electrolyte with ~4 % small pores. The interface is
    the face between slices ``interface - 1`` and ``interface``.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    lab = np.ones(shape, np.uint8)
    cath = np.zeros(shape, bool)
    cath[:interface] = True
    while (lab[:interface] == 2).mean() < 0.30:
        r = rng.uniform(3.0, 6.0)
        c = (rng.uniform(0, interface), rng.uniform(0, ny), rng.uniform(0, nx))
        lab[ball(shape, c, r) & cath] = 2
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.2)
    cp = (lab == 1) & cath
    lab[cp & (field < np.quantile(field[cp], 0.08 / 0.70))] = 0
    sp = ~cath
    lab[sp & (field < np.quantile(field[sp], 0.04))] = 0
    return lab


def grey_from_labels(lab, mu, seed, *, noise=1.0, blur=1.0):
    """A grey volume: μ per class, Gaussian blur (σ voxels) and Gaussian noise."""
    rng = np.random.default_rng(seed)
    lut = np.zeros(256, np.float32)
    for value, m in mu.items():
        lut[value] = m
    vol = lut[lab]
    if blur:
        vol = ndimage.gaussian_filter(vol, blur)
    return (vol + rng.normal(0.0, noise, vol.shape)).astype(np.float32)


def reconstructed(vol, n_angles=90):
    """Parallel-beam scan and FBP of every z slice (scikit-image's radon / iradon)."""
    from skimage.transform import iradon, radon

    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    out = np.empty_like(vol)
    for z in range(vol.shape[0]):
        sino = radon(vol[z], theta=theta, circle=False)
        rec = iradon(sino, theta=theta, circle=False, filter_name="ramp")
        out[z] = rec[: vol.shape[1], : vol.shape[2]]
    return out


def packed_spheres(seed, shape=(64, 64, 64), mean_radius=6.0, sigma=0.25, fraction=0.4,
                   max_overlap=0.1):
    """Spheres with log-normal radii packed with soft overlap: ids and true radii.

    Returns
    -------
    ids : (z, y, x) int32
        Sphere id per voxel (0 = none); a voxel claimed by several spheres keeps the first.
    radii : (n,) float
        Radius (voxels) of sphere ``k + 1``.
    """
    rng = np.random.default_rng(seed)
    ids = np.zeros(shape, np.int32)
    radii = []
    mu = np.log(mean_radius) - sigma**2 / 2
    tries = 0
    filled = 0
    while filled < fraction * ids.size and tries < 5000:
        tries += 1
        r = float(np.clip(rng.lognormal(mu, sigma), 0.5 * mean_radius, 2.0 * mean_radius))
        c = rng.uniform((r, r, r), np.array(shape) - r)
        sl, m = _box_ball(shape, c, r)
        box = ids[sl]
        if (box[m] > 0).mean() > max_overlap:
            continue
        radii.append(r)
        new = m & (box == 0)
        box[new] = len(radii)
        filled += int(new.sum())
    return ids, np.array(radii)


def touching_groups(ids):
    """Number of groups of truth objects linked by face adjacency (touching objects merge)."""
    n = int(ids.max())
    edges = []
    for ax in range(3):
        a = np.moveaxis(ids, ax, 0)
        p, q = a[:-1].ravel(), a[1:].ravel()
        m = (p > 0) & (q > 0) & (p != q)
        edges.append(np.stack([p[m], q[m]], axis=1))
    e = np.concatenate(edges).astype(np.int64)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n + 1, n + 1))
    _, comp = connected_components(g, directed=False)
    present = np.unique(ids[ids > 0])
    return len(np.unique(comp[present]))
