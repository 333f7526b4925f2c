"""A second, independently written phantom of a composite-cathode cell, for testing segmentation.

Written apart from :mod:`tomopipe.simulate._cell` (nothing of it is imported or reused) so
that a model trained on that simulator can be scored on microstructures it never saw:

- **particles**: superellipsoids ``|x/a|^p + |y/b|^p + |z/c|^p ≤ 1`` with exponents
  ``p`` from 1.6 (rounded octahedra) to 3.5 (rounded boxes), random orientation, semi-axes
  from a gamma law (shape 5) with aspect ratios 0.55–1, placed at random with at most 15 %
  overlap until the active fraction is reached;
- **Cu-rich inclusions**: randomly oriented prolate or oblate ellipsoids anywhere inside
  their particle (not only flat ⟂ z), radii uniform;
- **pores**: a Boolean model of spheres with exponential radii in the matrix of the cathode
  and the separator;
- **cracks**: planar discs of 1–2 voxels aperture and random radius, normals within
  ``crack_tilt_deg`` of z, cutting through particles and matrix alike;
- **lithium**: a rough interface (sum of random sinusoids) to the separator;
- **sample**: a square prism that fills the field of view (``fov="square"``), a cylinder
  inside it (``"cylinder"``) or a cylinder larger than it (``"cut"``: interior tomography).

μ and δ come straight from xraydb (``material_mu``, ``xray_delta_beta``) for Li3PS4
(1.87 g/cm³), CuS (4.76), Cu (8.96), Li (0.534) and Fe (7.87) at any energy;
:func:`scan_phantom` projects, noises and reconstructs with tomopipe's functions
(:func:`tomopipe.simulate.simulate_scan`, :func:`tomopipe.normalize_interp`,
:func:`tomopipe.retrieve_phase_paganin`, :func:`tomopipe.minus_log`, :func:`tomopipe.recon`).
Labels are the class names of the segmentation schema (``pore``, ``electrolyte``,
``active``, ``inclusion``, ``lithium``, ``current_collector``, ``crack``, ``outside``),
valued by a schema mapping (default :data:`tomopipe.segment.DEFAULT_SCHEMA`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["PhantomParams", "PHANTOM_MATERIALS", "generate_phantom", "phantom_mu", "scan_phantom"]

#: Material of each class: (formula, density g/cm³); None is vacuum.
PHANTOM_MATERIALS = {
    "pore": None,
    "crack": None,
    "outside": None,
    "electrolyte": ("Li3PS4", 1.87),
    "active": ("CuS", 4.76),
    "inclusion": ("Cu", 8.96),
    "lithium": ("Li", 0.534),
    "current_collector": ("Fe", 7.87),
}


@dataclass(frozen=True)
class PhantomParams:
    """Parameters of :func:`generate_phantom` (lengths in µm).

    Attributes
    ----------
    shape : tuple of 3 int
        Reconstructed volume ``(z, y, x)`` (the field of view).
    voxel_size_um : float
    fov : {"square", "cylinder", "cut"}
        The sample fills the square field of view; is a cylinder of diameter
        ``sample_fraction`` × the field of view inside it; or a cylinder of that diameter
        (> 1) larger than it.
    sample_fraction : float
    layer_fractions : tuple of 4 float
        Thickness shares along z of collector (Fe), cathode, separator, lithium.
    particle_radius_um : float
        Mean equivalent semi-axis of the particles (gamma law, shape 5).
    active_fraction : float
        Target CuS volume fraction of the cathode.
    inclusion_fraction : float
        Target Cu volume as a fraction of the CuS volume.
    inclusion_radius_um : tuple of 2 float
        Uniform range of the inclusions' mean semi-axis.
    porosity : tuple of 2 float
        Target pore fractions of cathode matrix and separator.
    pore_radius_um : float
        Mean of the exponential pore radii.
    n_cracks : int
    crack_radius_um : tuple of 2 float
    crack_tilt_deg : float
    seed : int
    """

    shape: tuple = (128, 128, 128)
    voxel_size_um: float = 0.9
    fov: str = "square"
    sample_fraction: float = 1.0
    layer_fractions: tuple = (0.08, 0.5, 0.27, 0.15)
    particle_radius_um: float = 4.0
    active_fraction: float = 0.42
    inclusion_fraction: float = 0.08
    inclusion_radius_um: tuple = (1.0, 2.5)
    porosity: tuple = (0.08, 0.04)
    pore_radius_um: float = 1.0
    n_cracks: int = 6
    crack_radius_um: tuple = (6.0, 16.0)
    crack_tilt_deg: float = 15.0
    seed: int = 0


def _rotation(rng):
    """A uniformly random rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _stamp(center, axes, rot, p, shape):
    """Index box and boolean mask of a rotated superellipsoid (voxel units)."""
    r = float(np.max(axes)) + 1
    lo = [max(int(np.floor(c - r)), 0) for c in center]
    hi = [min(int(np.ceil(c + r)) + 1, n) for c, n in zip(center, shape)]
    if any(h <= l for l, h in zip(lo, hi)):
        return None, None
    g = np.stack(np.meshgrid(*[np.arange(l, h) - c for l, h, c in zip(lo, hi, center)], indexing="ij"), -1)
    local = g @ rot  # coordinates in the body frame
    f = sum(np.abs(local[..., k] / axes[k]) ** p for k in range(3))
    return tuple(slice(l, h) for l, h in zip(lo, hi)), f <= 1.0


def generate_phantom(params=None, *, schema=None):
    """Build the label volume of the independent cell phantom.

    Parameters
    ----------
    params : PhantomParams, optional
    schema : mapping, optional
        Class name → label value (default :data:`tomopipe.segment.DEFAULT_SCHEMA`).

    Returns
    -------
    labels : (z, y, x) ndarray of uint8
        In `schema` values, of ``params.shape`` — plus a margin in y and x for
        ``fov="cut"`` (crop with ``info["crop"]``).
    info : dict
        ``params``, ``fractions`` (achieved, per class, of the sample), ``crop`` (slices of the
        field of view), ``n_particles``, ``particle_ids`` ((z, y, x) int32, 0 outside particles).

    Raises
    ------
    ValueError
        If `fov` is unknown or a fraction is out of range.
    """
    if schema is None:
        from ..schema import CUS_SEGMENTATION as schema
    p = params or PhantomParams()
    if p.fov not in ("square", "cylinder", "cut"):
        raise ValueError(f"fov must be 'square', 'cylinder' or 'cut', got {p.fov!r}")
    if not 0 < p.active_fraction < 0.7:
        raise ValueError(f"active_fraction must be in (0, 0.7), got {p.active_fraction}")
    rng = np.random.default_rng(p.seed)
    v = float(p.voxel_size_um)
    nz, ny0, nx0 = (int(s) for s in p.shape)
    margin = int(np.ceil((p.sample_fraction - 1) * max(ny0, nx0) / 2)) + 2 if p.fov == "cut" else 0
    ny, nx = ny0 + 2 * margin, nx0 + 2 * margin
    shape = (nz, ny, nx)
    out_v, void = schema["outside"], schema["pore"]
    lab = np.full(shape, out_v, dtype=np.uint8)
    yy, xx = np.meshgrid(np.arange(ny) - (ny - 1) / 2, np.arange(nx) - (nx - 1) / 2, indexing="ij")
    if p.fov == "square":
        inside2d = np.ones((ny, nx), bool)
    else:
        inside2d = np.hypot(yy, xx) <= p.sample_fraction * min(ny0, nx0) / 2
    fr = np.asarray(p.layer_fractions, float)
    edges = np.rint(np.concatenate([[0], np.cumsum(fr / fr.sum())]) * nz).astype(int)
    names = ("current_collector", "electrolyte", "electrolyte", "lithium")
    for (a, b), name in zip(zip(edges[:-1], edges[1:]), names):
        lab[a:b][:, inside2d] = schema[name]
    c0, c1, s1 = edges[1], edges[2], edges[3]
    # rough Li interface: z position of the separator/Li boundary varies with (y, x)
    rough = np.zeros((ny, nx))
    for _ in range(4):
        k = rng.uniform(0.02, 0.12, 2)
        rough += rng.uniform(0.5, 1.5) * np.sin(k[0] * yy + k[1] * xx + rng.uniform(0, 2 * np.pi))
    zb = np.clip(np.rint(s1 + rough), c1 + 2, nz - 1).astype(int)
    z = np.arange(nz)[:, None, None]
    li = (z >= zb[None]) & inside2d[None] & (z >= c1)
    lab[li] = schema["lithium"]
    lab[(z >= c1) & (z < zb[None]) & inside2d[None]] = schema["electrolyte"]

    # particles (superellipsoids) in the cathode
    active = np.zeros(shape, bool)
    cathode_vox = int(inside2d.sum()) * (c1 - c0)
    target = p.active_fraction * cathode_vox
    r_mean = p.particle_radius_um / v
    n_part, tries, n_active = 0, 0, 0
    pid = np.zeros(shape, np.int32)
    while n_active < target and tries < 20000:
        tries += 1
        r = rng.gamma(5.0, r_mean / 5.0)
        axes = r * np.array([1.0, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0)])
        axes = np.maximum(axes, 1.2)
        center = np.array([rng.uniform(c0, c1), rng.uniform(0, ny), rng.uniform(0, nx)])
        sl, m = _stamp(center, axes, _rotation(rng), rng.uniform(1.6, 3.5), shape)
        if sl is None:
            continue
        zz = np.arange(sl[0].start, sl[0].stop)[:, None, None]
        m &= (zz >= c0) & (zz < c1) & inside2d[sl[1:]][None]
        n = int(m.sum())
        if n < 4 or active[sl][m].mean() > 0.15:
            continue
        n_part += 1
        new = m & ~active[sl]
        active[sl] |= m
        pid[sl][new] = n_part
        n_active += int(new.sum())
    lab[active] = schema["active"]

    # Cu-rich inclusions inside particles, randomly oriented ellipsoids
    cand = np.argwhere(active)
    target_cu = p.inclusion_fraction * active.sum()
    cu = np.zeros(shape, bool)
    tries, n_cu = 0, 0
    while n_cu < target_cu and tries < 5000 and len(cand):
        tries += 1
        center = cand[int(rng.integers(0, len(cand)))].astype(float)
        host = pid[tuple(center.astype(int))]
        r = rng.uniform(*p.inclusion_radius_um) / v
        axes = np.maximum(r * np.array([1.0, rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.6)]), 0.8)
        sl, m = _stamp(center, axes, _rotation(rng), 2.0, shape)
        if sl is None:
            continue
        m &= (pid[sl] == host) & ~cu[sl]
        cu[sl] |= m
        n_cu += int(m.sum())
    lab[cu] = schema["inclusion"]

    # pores: Boolean model of spheres in the electrolyte of cathode and separator
    for (a, b), target_phi in (((c0, c1), p.porosity[0]), ((c1, s1), p.porosity[1])):
        region = lab[a:b]
        matrix = region == schema["electrolyte"]
        n_matrix = int(matrix.sum())
        pores = np.zeros(region.shape, bool)
        sample_vox = int(inside2d.sum()) * (b - a)
        tries, n_pores = 0, 0
        while n_pores < target_phi * sample_vox and tries < 100000 and n_matrix:
            tries += 1
            r = max(rng.exponential(p.pore_radius_um / v), 0.6)
            center = np.array([rng.uniform(0, b - a), rng.uniform(0, ny), rng.uniform(0, nx)])
            sl, m = _stamp(center, np.array([r, r, r]), np.eye(3), 2.0, region.shape)
            if sl is None:
                continue
            m &= matrix[sl] & ~pores[sl]
            pores[sl] |= m
            n_pores += int(m.sum())
        region[pores] = void

    # cracks: thin discs ⟂ z (± tilt) through the cathode
    crack = np.zeros(shape, bool)
    for _ in range(int(p.n_cracks)):
        radius = rng.uniform(*p.crack_radius_um) / v
        aperture = rng.choice([1.0, 1.5, 2.0])
        tilt = np.deg2rad(abs(rng.normal(0, p.crack_tilt_deg)))
        phi = rng.uniform(0, 2 * np.pi)
        normal = np.array([np.cos(tilt), np.sin(tilt) * np.sin(phi), np.sin(tilt) * np.cos(phi)])
        center = np.array([rng.uniform(c0 + 3, c1 - 3), rng.uniform(0, ny), rng.uniform(0, nx)])
        rr = int(np.ceil(radius)) + 2
        lo = [max(int(center[k]) - rr, 0) for k in range(3)]
        hi = [min(int(center[k]) + rr + 1, shape[k]) for k in range(3)]
        g = np.stack(np.meshgrid(*[np.arange(l, h) - c for l, h, c in zip(lo, hi, center)], indexing="ij"), -1)
        d = g @ normal
        inplane = np.sqrt(np.maximum((g ** 2).sum(-1) - d ** 2, 0))
        m = (np.abs(d) <= aperture / 2) & (inplane <= radius)
        sl = tuple(slice(l, h) for l, h in zip(lo, hi))
        zz = np.arange(lo[0], hi[0])[:, None, None]
        m &= (zz >= c0) & (zz < c1) & inside2d[sl[1:]][None]
        crack[sl] |= m
    lab[crack] = schema["crack"]

    crop = (slice(0, nz), slice(margin, margin + ny0), slice(margin, margin + nx0))
    view = lab[crop]
    sample = view != out_v
    fractions = {name: float(np.mean(view[sample] == val)) for name, val in schema.items() if name != "outside"} \
        if sample.any() else {}
    return lab, {"params": asdict(p), "fractions": fractions, "crop": crop, "n_particles": n_part,
                 "particle_ids": pid}


def phantom_mu(labels, energy_keV, *, schema=None):
    """μ (1/cm) and δ volumes of phantom labels at an energy, from xraydb.

    Parameters
    ----------
    labels : (z, y, x) ndarray of uint8
    energy_keV : float
    schema : mapping, optional

    Returns
    -------
    mu, delta : (z, y, x) ndarray of float32
    """
    import xraydb

    if schema is None:
        from ..schema import CUS_SEGMENTATION as schema
    mu_lut = np.zeros(256, np.float32)
    delta_lut = np.zeros(256, np.float32)
    for name, val in schema.items():
        mat = PHANTOM_MATERIALS.get(name)
        if mat is None:
            continue
        formula, rho = mat
        mu_lut[val] = float(xraydb.material_mu(formula, energy_keV * 1e3, density=rho))
        delta_lut[val] = float(xraydb.xray_delta_beta(formula, rho, energy_keV * 1e3)[0])
    return mu_lut[labels], delta_lut[labels]


def scan_phantom(labels, info, *, energy_keV=35.0, photons=2e4, distance_mm=0.0, paganin=False,
                 psf_sigma_px=0.0, stripes=0.0, ring_removal=False, scale=1.0, offset=0.0, seed=0, schema=None):
    """Project, noise and reconstruct a phantom with tomopipe's functions.

    Parameters
    ----------
    labels : (z, y, x) ndarray of uint8
        From :func:`generate_phantom`.
    info : dict
        Its info (voxel size, crop of the field of view).
    energy_keV, photons, distance_mm, psf_sigma_px, stripes
        Of :func:`tomopipe.simulate.simulate_scan` (1.5 × width angles over 180°, the
        detector as wide as the field of view).
    paganin : bool
        Paganin retrieval with δ/β of Li3PS4 (xraydb) when ``distance_mm > 0``.
    ring_removal : bool
        Vo's sorting stripe filter before reconstruction.
    scale, offset : float
        The reconstructed μ (1/cm) is returned as ``μ × scale + offset`` (another software's
        arbitrary units).
    seed : int

    Returns
    -------
    volume : (z, y, x) ndarray of float32
        The reconstruction of the field of view.
    truth : (z, y, x) ndarray of uint8
        The labels of the field of view.
    """
    import xraydb

    from .. import minus_log, normalize_interp, recon, remove_stripe_based_sorting, retrieve_phase_paganin
    from ._forward import simulate_scan

    v = float(info["params"]["voxel_size_um"])
    crop = info["crop"]
    n_cols = crop[2].stop - crop[2].start
    mu, delta = phantom_mu(labels, energy_keV, schema=schema)
    theta = np.linspace(0.0, np.pi, int(np.ceil(1.5 * n_cols)), endpoint=False)
    scan = simulate_scan(mu, delta if distance_mm > 0 else None, theta=theta, pixel_size_um=v, energy_keV=energy_keV,
                         distance_mm=distance_mm, photons=photons, psf_sigma_px=psf_sigma_px, stripes=stripes,
                         n_cols=n_cols, seed=int(seed))
    proj = normalize_interp(scan["projections"].compute(), scan["flats"].compute(), scan["darks"].compute(),
                            scan["flat_index"])
    if distance_mm > 0 and paganin:
        d, b, _ = xraydb.xray_delta_beta("Li3PS4", 1.87, energy_keV * 1e3)
        proj = retrieve_phase_paganin(proj, delta_beta=float(d / b), energy_keV=energy_keV, distance_mm=distance_mm,
                                      pixel_size_um=v)
    proj = minus_log(proj)
    if ring_removal:
        proj = remove_stripe_based_sorting(proj)
    rec = np.asarray(recon(proj, theta, center=scan["center"], pixel_size=v * 1e-4, circle=False), np.float32)
    if scale != 1.0 or offset != 0.0:
        rec = rec * np.float32(scale) + np.float32(offset)
    return rec, np.ascontiguousarray(labels[crop])
