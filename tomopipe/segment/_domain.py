"""Domain-randomized training scans: the CuS cell under the conditions real scans vary in.

:func:`draw_conditions` draws one scan's conditions (:class:`ScanConditions`) with a seeded
generator; :func:`simulate_conditions` builds the cell with :mod:`tomopipe.simulate`
(microstructure, in-situ state, μ and δ from xraydb at the energy), projects it with
:func:`tomopipe.simulate.simulate_scan` (Fresnel propagation, detector blur, rings,
zingers, Poisson noise) and reconstructs it with tomopipe's own chain
(:func:`tomopipe.normalize_interp`, optional :func:`tomopipe.retrieve_phase_paganin`,
:func:`tomopipe.minus_log`, optional :func:`tomopipe.remove_stripe_based_sorting`,
:func:`tomopipe.recon`). A sample larger than the field of view is a wider cell seen by a
detector narrower than its shadow (interior tomography), its truth cropped to the
reconstructed square.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._data import SimVolume
from ._schema import truth_to_labels

__all__ = ["ScanConditions", "draw_conditions", "simulate_conditions", "randomized_series", "DOMAIN", "SHAPE_DOMAIN"]

#: Ranges the conditions are drawn from (the training domain written into the model card).
DOMAIN = {
    "energy_keV": (20.0, 80.0),
    "voxel_size_um": (0.6, 1.6),
    "photons": (4e3, 5e4),
    "distance_mm": (10.0, 100.0),
    "psf_sigma_px": (0.0, 1.5),
    "stripes": (0.0, 0.02),
    "zingers": (0.0, 2e-4),
    "sample_fill": (0.55, 0.97),
    "fov_cut_diameter": (1.05, 1.3),
    "particle_radius_um": (3.0, 8.0),
    "active_fraction": (0.2, 0.5),
    "cathode_porosity": (0.03, 0.2),
    "separator_porosity": (0.0, 0.12),
    "crack_fraction": (0.0, 0.03),
    "inclusion_fraction": (0.02, 0.12),
    "angles_per_column": (1.0, 1.6),
}
#: Ranges of the inclusion shapes drawn when ``shapes="varied"`` (:func:`randomized_series`):
#: mean long semi-axis (µm), short/long aspect, and the spread of the short axis's angle to z
#: (degrees; half-normal, so 90° is close to random orientation). The CuS simulator's own
#: inclusions are oblate lenses flat in the xy plane (1.8 µm, 0.45, 8°).
SHAPE_DOMAIN = {
    "inclusion_radius_um": (1.0, 3.0),
    "inclusion_aspect": (0.35, 1.0),
    "inclusion_tilt_deg": (8.0, 90.0),
}
#: Share of scans drawn at the nominal conditions of the CuS study (35 keV, absorption, the
#: default cell, 0.7–1.1 µm, 1.5·10⁴–6·10⁴ photons), so the in-domain accuracy is kept.
NOMINAL_SHARE = 0.3
_STATES = ("OCV", "D1.7V", "D1.2V", "D0.7V", "C2.5V", "C3.0V")


@dataclass(frozen=True)
class ScanConditions:
    """Everything that makes one randomized training scan (all drawn by :func:`draw_conditions`).

    Lengths in µm, energy in keV, distance in mm; ``fov``: ``"inside"`` (the cylinder fills
    ``sample_fill`` of the field of view) or ``"cut"`` (its diameter is ``sample_fill`` ×
    the field of view, > 1: interior tomography); ``paganin``: phase retrieval with δ/β of
    the electrolyte when ``distance_mm > 0``; ``ring_removal``: Vo's sorting filter.
    """

    seed: int
    size: int
    state: str
    energy_keV: float
    voxel_size_um: float
    photons: float
    distance_mm: float
    paganin: bool
    psf_sigma_px: float
    stripes: float
    ring_removal: bool
    zingers: float
    fov: str
    sample_fill: float
    particle_radius_um: float
    active_fraction: float
    cathode_porosity: float
    separator_porosity: float
    crack_fraction: float
    inclusion_fraction: float
    layers_um: tuple
    angles_per_column: float
    nominal: bool
    inclusion_radius_um: float = 1.8
    inclusion_aspect: float = 0.45
    inclusion_tilt_deg: float = 8.0


def draw_conditions(rng, seed, size=128, shapes="cus"):
    """Draw one scan's conditions from :data:`DOMAIN` (or the nominal ones, :data:`NOMINAL_SHARE`).

    Parameters
    ----------
    rng : numpy.random.Generator
    seed : int
        Seed of the cell, its sequence and the noise.
    size : int
        Reconstructed voxels per side.
    shapes : {"cus", "varied"}
        ``"cus"``: the simulator's inclusion shapes (oblate lenses nearly flat in xy);
        ``"varied"``: for the non-nominal scans, inclusion size, aspect and orientation drawn
        from :data:`SHAPE_DOMAIN` with a generator of their own (seeded by `seed`), so the
        other conditions are the same as with ``"cus"``.

    Returns
    -------
    ScanConditions

    Raises
    ------
    ValueError
        If `shapes` is neither ``"cus"`` nor ``"varied"``.
    """
    if shapes not in ("cus", "varied"):
        raise ValueError(f"shapes: {shapes!r} is not 'cus' or 'varied'")
    d = DOMAIN
    u = lambda key: float(rng.uniform(*d[key]))  # noqa: E731
    logu = lambda lo, hi: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))  # noqa: E731
    state = str(rng.choice(_STATES))
    if rng.random() < NOMINAL_SHARE:
        return ScanConditions(
            seed=int(seed), size=int(size), state=state, energy_keV=35.0,
            voxel_size_um=float(rng.uniform(0.7, 1.1)), photons=logu(1.5e4, 6e4), distance_mm=0.0,
            paganin=False, psf_sigma_px=0.0, stripes=0.0, ring_removal=False, zingers=0.0, fov="inside",
            sample_fill=0.9, particle_radius_um=5.0, active_fraction=0.35, cathode_porosity=0.10,
            separator_porosity=0.05, crack_fraction=0.01, inclusion_fraction=0.06,
            layers_um=(20.0, 100.0, 80.0, 25.0), angles_per_column=1.5, nominal=True)
    phase = rng.random() < 0.4
    cut = rng.random() < 0.3
    extra = {}
    if shapes == "varied":
        srng = np.random.default_rng([int(seed), 7])
        extra = {k: float(srng.uniform(*r)) for k, r in SHAPE_DOMAIN.items()}
    return ScanConditions(
        seed=int(seed), size=int(size), state=state,
        energy_keV=logu(*d["energy_keV"]),
        voxel_size_um=u("voxel_size_um"),
        photons=logu(*d["photons"]),
        distance_mm=float(rng.uniform(*d["distance_mm"])) if phase else 0.0,
        paganin=bool(phase and rng.random() < 0.5),
        psf_sigma_px=u("psf_sigma_px") if rng.random() < 0.6 else 0.0,
        stripes=u("stripes") if rng.random() < 0.4 else 0.0,
        ring_removal=bool(rng.random() < 0.3),
        zingers=u("zingers") if rng.random() < 0.3 else 0.0,
        fov="cut" if cut else "inside",
        sample_fill=u("fov_cut_diameter") if cut else u("sample_fill"),
        particle_radius_um=u("particle_radius_um"),
        active_fraction=u("active_fraction"),
        cathode_porosity=u("cathode_porosity"),
        separator_porosity=u("separator_porosity"),
        crack_fraction=u("crack_fraction"),
        inclusion_fraction=u("inclusion_fraction"),
        layers_um=(float(rng.uniform(5, 35)), float(rng.uniform(50, 160)), float(rng.uniform(20, 100)),
                   float(rng.uniform(8, 40))),
        angles_per_column=u("angles_per_column"),
        nominal=False, **extra)


def simulate_conditions(c):
    """Simulate, scan and reconstruct one cell under conditions `c`.

    Parameters
    ----------
    c : ScanConditions

    Returns
    -------
    SimVolume
        ``mu`` (z, y, x) float32 in 1/cm (``c.size`` per side), labels in
        :data:`tomopipe.segment.DEFAULT_SCHEMA` values, ``info`` the conditions.
    """
    from .. import minus_log, normalize_interp, recon, remove_stripe_based_sorting, retrieve_phase_paganin
    from ..simulate import (
        CellParams,
        SequenceParams,
        delta_beta_ratio,
        generate_cell,
        insitu_sequence,
        label_volumes_to_mu,
        simulate_scan,
    )

    n = int(c.size)
    v = float(c.voxel_size_um)
    if c.fov == "cut":
        n_xy = n + 2 * int(np.ceil((c.sample_fill - 1.0) * n / 2 + 2))
        diameter = min(c.sample_fill * n * v, (n_xy - 1) * v)
    else:
        n_xy = n
        diameter = c.sample_fill * n * v
    radius = max(c.particle_radius_um, 2.0 * v)
    cell = generate_cell(CellParams(
        shape=(n, n_xy, n_xy), voxel_size_um=v, sample_diameter_um=diameter,
        collector_um=c.layers_um[0], cathode_um=c.layers_um[1], separator_um=c.layers_um[2],
        lithium_um=c.layers_um[3], particle_radius_um=radius, active_fraction=c.active_fraction,
        cathode_porosity=c.cathode_porosity, separator_porosity=c.separator_porosity, seed=c.seed))
    seq = SequenceParams(crack_fraction=c.crack_fraction, inclusion_fraction=c.inclusion_fraction,
                         inclusion_radius_um=c.inclusion_radius_um, inclusion_aspect=c.inclusion_aspect,
                         inclusion_tilt_deg=c.inclusion_tilt_deg)
    state = next(s for s in insitu_sequence(cell, params=seq, seed=c.seed) if s.name == c.state)
    mu_true, delta = label_volumes_to_mu(state.labels, c.energy_keV)
    theta = np.linspace(0.0, np.pi, int(np.ceil(c.angles_per_column * n)), endpoint=False)
    scan = simulate_scan(mu_true, delta if c.distance_mm > 0 else None, theta=theta, pixel_size_um=v,
                         energy_keV=c.energy_keV, distance_mm=c.distance_mm, photons=c.photons,
                         stripes=c.stripes, zingers=c.zingers, psf_sigma_px=c.psf_sigma_px, n_cols=n,
                         seed=c.seed % (2**31))
    proj = normalize_interp(scan["projections"].compute(), scan["flats"].compute(), scan["darks"].compute(),
                            scan["flat_index"])
    if c.distance_mm > 0 and c.paganin:
        proj = retrieve_phase_paganin(proj, delta_beta=float(delta_beta_ratio("Li3PS4", c.energy_keV)),
                                      energy_keV=c.energy_keV, distance_mm=c.distance_mm, pixel_size_um=v)
    proj = minus_log(proj)
    if c.ring_removal:
        proj = remove_stripe_based_sorting(proj)
    rec = np.asarray(recon(proj, theta, center=scan["center"], pixel_size=v * 1e-4, circle=False), dtype=np.float32)
    off = (n_xy - n) // 2
    labels = truth_to_labels(state.labels, state.crack_ids)[:, off:off + n, off:off + n]
    return SimVolume(mu=rec, labels=np.ascontiguousarray(labels), voxel_size_um=v, info=asdict(c))


def randomized_series(n_scans, *, seed=0, size=128, shapes="cus", progress=None):
    """`n_scans` domain-randomized training scans (seeded: scan ``i`` has seed ``seed·10⁴ + i``).

    `size` (voxels per side) is one int, or a sequence taken in turn (scan ``i`` has
    ``size[i % len(size)]``: smaller cells, whose sample diameter and field of view are
    smaller too, without changing what else is drawn). `shapes` is passed to
    :func:`draw_conditions`.

    Returns
    -------
    list of SimVolume
    """
    sizes = [int(size)] if np.ndim(size) == 0 else [int(s) for s in size]
    rng = np.random.default_rng(seed)
    vols = []
    for i in range(int(n_scans)):
        c = draw_conditions(rng, seed * 10_000 + i, sizes[i % len(sizes)], shapes=shapes)
        vols.append(simulate_conditions(c))
        if progress:
            progress(f"scan {i + 1}/{n_scans}: {c.size}³, {c.state}, {c.energy_keV:.0f} keV, "
                     f"{c.voxel_size_um:.2f} µm, {c.photons:.0f} photons, distance {c.distance_mm:.0f} mm"
                     f"{' + Paganin' if c.paganin else ''}, PSF {c.psf_sigma_px:.1f} px, fov {c.fov}, inclusions "
                     f"{c.inclusion_radius_um:.1f} µm × {c.inclusion_aspect:.2f}, tilt {c.inclusion_tilt_deg:.0f}°")
    return vols
