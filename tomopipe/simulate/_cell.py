"""Synthetic microstructure of a Li | β-Li3PS4 | CuS solid-state cell, with ground truth.

The model case is in-situ synchrotron CT of a cylindrical solid-state cell scanned once per
state of charge (OCV → D1.7V → D1.2V → D0.7V → C2.5V → C3.0V) at 0.88 µm voxels [1]_.
:func:`generate_cell` builds the pristine (OCV) label volume with exactly the requested
phase fractions; :func:`insitu_sequence` derives one labelled state per step, with the
Cu-rich inclusions, cracks, particle expansion and electrode displacement of [1]_ and
object tables that agree voxel for voxel with the labels; :func:`write_truth` stores a
state as zarr arrays and CSV tables.

Conventions
-----------
Axes
    Volumes are ``(z, y, x)`` numpy arrays; z is the stack (pressure) axis of the cell and a
    *layer* is a slab of constant z. The stack along +z is: current collector (piston),
    composite cathode, separator (β-Li3PS4 pellet), Li metal.
Coordinates
    Positions are in µm with the centre of voxel ``(i, j, k)`` at
    ``(i, j, k) * voxel_size_um``. A layer made of the slabs ``start <= i < stop`` spans
    ``[(start - ½) v, (stop - ½) v]``. The sample is a cylinder about the z axis, centred at
    ``y = (n_y - 1) v / 2``, ``x = (n_x - 1) v / 2``; voxels outside it are air (label 255).
Labels
    :data:`LABELS` (stored with every label volume): 0 pore/crack, 1 solid electrolyte
    (β-Li3PS4), 2 active material (CuS), 3 Cu-rich inclusion, 4 carbon, 5 Li metal,
    6 current collector, 255 outside the sample. Porosity is the fraction of label 0
    (:data:`PORE`: pores and cracks) among the sample voxels (label ≠ 255) of a layer.
Volumes
    Every object volume in a table is its voxel count in the corresponding id volume
    times ``voxel_size_um ** 3``: tables and labels agree exactly.

References
----------
.. [1] W. Zhang, F. Sun, A. Hilger, ... I. Manke, "Correlating Electrochemical Behavior and
   Microstructure of CuS-Based All-Solid-State Batteries by In Situ X-Ray Tomography",
   Adv. Energy Mater. (2022).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import ndimage

from ..schema import SIMULATOR_TRUTH

__all__ = [
    "LABELS",
    "PORE",
    "OUTSIDE",
    "LABEL_MATERIALS",
    "LAYER_NAMES",
    "CellParams",
    "Cell",
    "generate_cell",
    "StateSpec",
    "DEFAULT_STATES",
    "SequenceParams",
    "State",
    "insitu_sequence",
    "summarize_sequence",
    "write_truth",
    "read_truth",
]

#: Label schema ``name -> uint8 value`` of every label volume made here (ordered, read-only):
#: :data:`tomopipe.schema.SIMULATOR_TRUTH`, a :class:`~tomopipe.schema.LabelSchema`.
LABELS = SIMULATOR_TRUTH
#: The label counted as porosity: pores and cracks inside the sample.
PORE = LABELS["pore"]
#: The label of the air around the cylindrical sample (not part of any fraction).
OUTSIDE = LABELS["outside"]
#: Material (a name of :data:`tomopipe.simulate._materials.MATERIALS`) of each label in the
#: CuS cell; "active" is the pristine CuS (its conversion products are not separated here).
LABEL_MATERIALS = MappingProxyType(
    {
        "pore": "vacuum",
        "electrolyte": "Li3PS4",
        "active": "CuS",
        "inclusion": "Cu",
        "carbon": "carbon_black",
        "lithium": "Li",
        "current_collector": "stainless_steel",
        "outside": "vacuum",
    }
)
#: Layers of the stack, in order of increasing z.
LAYER_NAMES = ("current_collector", "cathode", "separator", "lithium")

_ELECTROLYTE = LABELS["electrolyte"]
_ACTIVE = LABELS["active"]
_INCLUSION = LABELS["inclusion"]
_CARBON = LABELS["carbon"]
_LAYER_FILL = {
    "current_collector": LABELS["current_collector"],
    "cathode": _ELECTROLYTE,
    "separator": _ELECTROLYTE,
    "lithium": LABELS["lithium"],
}
_LABEL_NAMES = {v: k for k, v in LABELS.items()}


# --------------------------------------------------------------------------------------------
# pristine cell
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellParams:
    """Parameters of a synthetic cell; the defaults describe the Li | β-Li3PS4 | CuS case.

    Parameters
    ----------
    voxel_size_um : float
        Edge of a cubic voxel, µm.
    shape : (3,) tuple of int
        Volume shape ``(n_z, n_y, n_x)`` in voxels.
    collector_um, cathode_um, separator_um, lithium_um : float
        Thicknesses along z (µm) of the current collector (piston), the composite cathode,
        the separator and the Li metal. Only their ratios matter: they are scaled so the
        four layers fill the ``n_z * voxel_size_um`` of the volume, and rounded to whole
        slabs.
    sample_diameter_um : float, optional
        Diameter of the cylindrical sample (axis ∥ z); default 90 % of the smaller of the
        y and x extents.
    particle_radius_um : float
        Mean radius (µm) of the spherical active particles.
    particle_radius_sigma : float
        Standard deviation of ``ln(radius)`` (log-normal radii, clipped to 0.3–3 × mean).
    max_particle_overlap : float
        Largest fraction of a new particle's voxels that may already belong to earlier
        particles (random sequential addition with soft overlap).
    active_fraction : float
        Volume fraction of active material (CuS) in the cathode sample volume.
    carbon_fraction : float
        Volume fraction of carbon (conductive additive) in the cathode sample volume.
    cathode_porosity, separator_porosity : float
        Pore volume fraction of the cathode and of the separator sample volume.
    pore_correlation_um : float
        Correlation length (Gaussian σ, µm) of the random field whose lowest values become
        pores: the typical pore size.
    carbon_correlation_um : float
        Same for the carbon domains.
    seed : int or None
        Seed of the random generator; the same seed gives the same cell.
    """

    voxel_size_um: float = 0.88
    shape: tuple = (256, 256, 256)
    collector_um: float = 20.0
    cathode_um: float = 100.0
    separator_um: float = 80.0
    lithium_um: float = 25.0
    sample_diameter_um: float | None = None
    particle_radius_um: float = 5.0
    particle_radius_sigma: float = 0.25
    max_particle_overlap: float = 0.1
    active_fraction: float = 0.35
    carbon_fraction: float = 0.02
    cathode_porosity: float = 0.10
    separator_porosity: float = 0.05
    pore_correlation_um: float = 1.5
    carbon_correlation_um: float = 0.8
    seed: int | None = 0


@dataclass
class Cell:
    """A pristine (OCV) synthetic cell made by :func:`generate_cell`.

    Attributes
    ----------
    params : CellParams
        The parameters it was made from.
    labels : (n_z, n_y, n_x) ndarray of uint8
        Label volume with the schema :data:`LABELS`.
    particle_ids : (n_z, n_y, n_x) ndarray of uint16 or uint32
        Active-particle id of each active voxel (0 elsewhere); ids index :attr:`particles`.
    layers : pandas.DataFrame
        One row per layer (index: :data:`LAYER_NAMES`), columns ``z_start``, ``z_stop``
        (slab indices, stop exclusive), ``z_start_um``, ``z_stop_um`` (boundary positions),
        ``thickness_um``.
    particles : pandas.DataFrame
        One row per active particle: ``id``, ``center_z_um``, ``center_y_um``,
        ``center_x_um``, ``radius_um`` (of the sphere before clipping at the cathode
        boundaries and by earlier particles), ``volume_um3`` (voxel count × voxel volume).
    fractions : pandas.DataFrame
        Achieved volume fractions: index the layers plus ``"sample"`` (all four layers),
        columns the label names except ``"outside"``, and ``n_voxels`` (sample voxels).
    profile : pandas.DataFrame
        Per slab: ``z_index``, ``z_um``, ``layer``, ``n_voxels`` and the fraction of each
        label (``pore`` is the porosity profile).
    sample_radius_um : float
        Radius of the cylindrical sample, µm.
    schema : mapping
        :data:`LABELS`.
    """

    params: CellParams
    labels: np.ndarray
    particle_ids: np.ndarray
    layers: pd.DataFrame
    particles: pd.DataFrame
    fractions: pd.DataFrame
    profile: pd.DataFrame
    sample_radius_um: float
    schema: MappingProxyType = field(default_factory=lambda: LABELS)
    #: Smooth random fields and per-slab thresholds that chose the pores and carbon (internal:
    #: states resample them at sub-voxel positions so the matrix moves by the exact u_z).
    matrix_fields: dict | None = field(default=None, repr=False)

    @property
    def voxel_size_um(self):
        """Voxel edge, µm."""
        return self.params.voxel_size_um

    @property
    def shape(self):
        """Volume shape ``(n_z, n_y, n_x)``."""
        return self.labels.shape

    @property
    def porosity(self):
        """Porosity (label 0 fraction of the sample voxels) per layer, a pandas Series."""
        return self.fractions["pore"].copy()


def _check_positive(name, value, *, allow_zero=False):
    v = float(value)
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {rel}, got {value!r}")
    return v


def _check_fraction(name, value):
    v = float(value)
    if not (np.isfinite(v) and 0.0 <= v < 1.0):
        raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
    return v


def _validate_params(p):
    if not isinstance(p, CellParams):
        raise TypeError(f"params must be a CellParams, got {type(p).__name__}")
    shape = tuple(p.shape)
    if len(shape) != 3 or any(int(s) != s or s < 8 for s in shape):
        raise ValueError(f"CellParams.shape must be three integers >= 8 (z, y, x), got {p.shape!r}")
    v = _check_positive("CellParams.voxel_size_um", p.voxel_size_um)
    for name in ("collector_um", "cathode_um", "separator_um", "lithium_um"):
        _check_positive(f"CellParams.{name}", getattr(p, name))
    if p.sample_diameter_um is not None:
        d = _check_positive("CellParams.sample_diameter_um", p.sample_diameter_um)
        if d > min(shape[1:]) * v:
            raise ValueError(
                f"CellParams.sample_diameter_um={d} exceeds the y/x field of view "
                f"{min(shape[1:]) * v:.4g} µm"
            )
    r = _check_positive("CellParams.particle_radius_um", p.particle_radius_um)
    if r < v:
        raise ValueError(
            f"CellParams.particle_radius_um={r} is below one voxel ({v} µm): particles would "
            "not be resolved"
        )
    _check_positive("CellParams.particle_radius_sigma", p.particle_radius_sigma, allow_zero=True)
    _check_fraction("CellParams.max_particle_overlap", p.max_particle_overlap)
    fa = _check_fraction("CellParams.active_fraction", p.active_fraction)
    fc = _check_fraction("CellParams.carbon_fraction", p.carbon_fraction)
    pc = _check_fraction("CellParams.cathode_porosity", p.cathode_porosity)
    _check_fraction("CellParams.separator_porosity", p.separator_porosity)
    if fa + fc + pc >= 0.95:
        raise ValueError(
            "CellParams.active_fraction + carbon_fraction + cathode_porosity must stay below "
            f"0.95 (room for the electrolyte), got {fa + fc + pc:.3g}"
        )
    _check_positive("CellParams.pore_correlation_um", p.pore_correlation_um)
    _check_positive("CellParams.carbon_correlation_um", p.carbon_correlation_um)
    return tuple(int(s) for s in shape), v


def _layer_edges(p, nz):
    t = np.array([p.collector_um, p.cathode_um, p.separator_um, p.lithium_um], dtype=np.float64)
    edges = np.rint(np.concatenate([[0.0], np.cumsum(t)]) / t.sum() * nz).astype(int)
    for name, a, b in zip(LAYER_NAMES, edges[:-1], edges[1:]):
        if b <= a:
            raise ValueError(
                f"layer {name!r} is thinner than one slab at shape[0]={nz}: increase "
                f"CellParams.shape[0] or the thickness of {name}"
            )
    return edges


def _layers_table(edges, v):
    edges = np.asarray(edges)
    return pd.DataFrame(
        {
            "z_start": edges[:-1].astype(int),
            "z_stop": edges[1:].astype(int),
            "z_start_um": (edges[:-1] - 0.5) * v,
            "z_stop_um": (edges[1:] - 0.5) * v,
            "thickness_um": np.diff(edges) * v,
        },
        index=pd.Index(LAYER_NAMES, name="layer"),
    )


def _disk(ny, nx, radius_vox):
    yc, xc = (ny - 1) / 2.0, (nx - 1) / 2.0
    yy = (np.arange(ny) - yc)[:, None]
    xx = (np.arange(nx) - xc)[None, :]
    return yy * yy + xx * xx <= radius_vox * radius_vox


def _smooth_field(rng, shape, sigma_vox):
    noise = rng.standard_normal(shape, dtype=np.float32)
    return ndimage.gaussian_filter(noise, sigma_vox, mode="reflect", truncate=3.0)


def _allocate(total, weights, capacity):
    """Split ``total`` voxels over slabs ∝ ``weights`` (largest remainder), capped by ``capacity``."""
    weights = np.asarray(weights, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.int64)
    if total > capacity.sum():
        raise ValueError(
            f"cannot place {total} voxels in {capacity.sum()} candidates: the requested "
            "fractions leave too little room (lower the porosity or carbon fraction)"
        )
    ideal = total * weights / max(weights.sum(), 1.0)
    counts = np.minimum(np.floor(ideal).astype(np.int64), capacity)
    while counts.sum() < total:
        spare = capacity - counts
        order = np.argsort(-(ideal - counts), kind="stable")
        order = order[spare[order] > 0]
        need = total - counts.sum()
        counts[order[:need]] += 1
    return counts


def _select_lowest(field_, candidates, counts, out, value):
    """In each slab z, set the ``counts[z]`` candidates with the lowest field to ``value``."""
    for z in range(candidates.shape[0]):
        k = int(counts[z])
        if k == 0:
            continue
        pos = np.flatnonzero(candidates[z])
        vals = field_[z].ravel()[pos]
        chosen = pos[np.argpartition(vals, k - 1)[:k]] if k < pos.size else pos
        out[z].ravel()[chosen] = value


def _spheroid(center, r, lo_lim, hi_lim, stretch=1.0):
    """Box slices and mask of the voxel centres ``d`` (relative to ``center``, voxels) with
    ``(d_z / stretch)² + d_y² + d_x² <= r²``: a sphere of radius ``r`` stretched along z."""
    h = np.array([r * stretch, r, r])
    lo = np.maximum(np.ceil(center - h).astype(int), lo_lim)
    hi = np.minimum(np.floor(center + h).astype(int) + 1, hi_lim)
    if np.any(hi <= lo):
        return None, None
    dz = ((np.arange(lo[0], hi[0]) - center[0]) / stretch) ** 2
    dy = (np.arange(lo[1], hi[1]) - center[1]) ** 2
    dx = (np.arange(lo[2], hi[2]) - center[2]) ** 2
    mask = dz[:, None, None] + dy[None, :, None] + dx[None, None, :] <= r * r
    return tuple(slice(a, b) for a, b in zip(lo, hi)), mask


def _place_particles(rng, pid, disk, z0, z1, target, p, v):
    """Random sequential addition of spheres into ``pid`` until ``target`` voxels are filled."""
    nz, ny, nx = pid.shape
    lo_lim = np.array([z0, 0, 0])
    hi_lim = np.array([z1, ny, nx])
    yc, xc = (ny - 1) / 2.0, (nx - 1) / 2.0
    r_disk = np.sqrt(disk.sum() / np.pi)
    r_mean = p.particle_radius_um / v
    sig = float(p.particle_radius_sigma)
    mu = math.log(r_mean) - sig * sig / 2.0
    rows = []
    remaining = int(target)
    max_attempts = 200
    while remaining > 0:
        r = float(np.clip(rng.lognormal(mu, sig), 0.3 * r_mean, 3.0 * r_mean))
        if 4.0 / 3.0 * np.pi * r**3 > remaining:
            r = (3.0 * remaining / (4.0 * np.pi)) ** (1.0 / 3.0)
            if r < 1.0:  # fewer than ~4 voxels left: below the resolution of a particle
                break
        best = None
        for _attempt in range(max_attempts):
            rho = r_disk * math.sqrt(rng.random())
            phi = 2.0 * np.pi * rng.random()
            c = np.array([z0 - 0.5 + (z1 - z0) * rng.random(), yc + rho * math.sin(phi),
                          xc + rho * math.cos(phi)])
            sl, mask = _spheroid(c, r, lo_lim, hi_lim)
            if sl is None:
                continue
            mask &= disk[sl[1], sl[2]][None]
            n_in = int(mask.sum())
            if n_in == 0:
                continue
            n_occ = int(np.count_nonzero(pid[sl][mask]))
            frac = n_occ / n_in
            if best is None or frac < best[0]:
                best = (frac, c, sl, mask)
            if frac <= p.max_particle_overlap:
                break
        if best is None:
            continue
        _, c, sl, mask = best
        box = pid[sl]
        new = mask & (box == 0)
        n_new = int(new.sum())
        if n_new == 0:
            continue
        pid_value = len(rows) + 1
        box[new] = pid_value
        remaining -= n_new
        rows.append((pid_value, c[0] * v, c[1] * v, c[2] * v, r * v))
    return pd.DataFrame(rows, columns=["id", "center_z_um", "center_y_um", "center_x_um", "radius_um"])


def _id_dtype(n):
    return np.uint16 if n < np.iinfo(np.uint16).max else np.uint32


def _slab_counts(labels):
    """``(n_z, 256)`` voxel counts of each label value per slab."""
    nz = labels.shape[0]
    flat = labels.reshape(nz, -1)
    return np.stack([np.bincount(flat[z], minlength=256) for z in range(nz)])


def _fraction_tables(counts, layers, v):
    names = [n for n in LABELS if n != "outside"]
    values = [LABELS[n] for n in names]
    n_sample = counts.sum(axis=1) - counts[:, OUTSIDE]
    layer_of = np.empty(counts.shape[0], dtype=object)
    rows = {}
    for name, row in layers.iterrows():
        a, b = int(row["z_start"]), int(row["z_stop"])
        layer_of[a:b] = name
        n = n_sample[a:b].sum()
        rows[name] = [counts[a:b, val].sum() / max(n, 1) for val in values] + [int(n)]
    a, b = int(layers["z_start"].min()), int(layers["z_stop"].max())
    n = n_sample[a:b].sum()
    rows["sample"] = [counts[a:b, val].sum() / max(n, 1) for val in values] + [int(n)]
    fractions = pd.DataFrame.from_dict(rows, orient="index", columns=names + ["n_voxels"])
    fractions.index.name = "layer"
    fractions["n_voxels"] = fractions["n_voxels"].astype(np.int64)
    nz = counts.shape[0]
    prof = {"z_index": np.arange(nz), "z_um": np.arange(nz) * v, "layer": layer_of,
            "n_voxels": n_sample}
    for name, val in zip(names, values):
        prof[name] = counts[:, val] / np.maximum(n_sample, 1)
    return fractions, pd.DataFrame(prof)


def generate_cell(params=None):
    """Build the pristine (OCV) microstructure of a cylindrical solid-state cell.

    The stack along +z is current collector | composite cathode | separator | Li metal, all
    inside a cylinder about the z axis (air, label 255, around it). The composite cathode is
    built in three steps, each of which meets its target by construction:

    1. spherical active particles (log-normal radii) are added at random positions with soft
       overlap, clipped to the cathode layer and the cylinder, until the active voxel count
       reaches ``active_fraction`` of the cathode sample voxels (the last particle is sized
       to the remainder);
    2. in every slab, the matrix voxels (non-active) with the lowest values of a smooth
       Gaussian random field become pores, exactly ``cathode_porosity`` of the slab's sample
       voxels (largest-remainder rounding), so the porosity profile is flat;
    3. likewise carbon, from a second, finer field, among the remaining matrix voxels.

    The rest of the cathode matrix is solid electrolyte. The separator is electrolyte with
    pores chosen the same way (``separator_porosity``). Achieved fractions differ from the
    requested ones by less than one voxel per slab (porosity, carbon) and by a few voxels in
    the layer (active material).

    Parameters
    ----------
    params : CellParams, optional
        Geometry, fractions and seed; default ``CellParams()`` (the CuS case, 256³).

    Returns
    -------
    Cell
        ``labels`` (uint8, schema :data:`LABELS`), ``particle_ids``, the ``layers`` and
        ``particles`` tables, and the achieved ``fractions`` and ``profile``.

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it), a layer would be thinner
        than one slab, or the fractions leave no room for the electrolyte.
    TypeError
        If `params` is not a :class:`CellParams`.

    References
    ----------
    .. [1] W. Zhang et al., Adv. Energy Mater. (2022): the Li | β-Li3PS4 | CuS cell.
    .. [2] B. Widom, "Random sequential addition of hard spheres to a volume",
       J. Chem. Phys. 44, 3888 (1966), doi:10.1063/1.1726548.

    Examples
    --------
    >>> cell = generate_cell(CellParams(shape=(48, 64, 64), seed=1))
    >>> cell.labels.dtype, cell.labels.shape
    (dtype('uint8'), (48, 64, 64))
    >>> bool(abs(cell.fractions.loc["cathode", "pore"] - 0.10) < 0.005)
    True
    """
    p = CellParams() if params is None else params
    shape, v = _validate_params(p)
    nz, ny, nx = shape
    rng = np.random.default_rng(p.seed)
    diameter = 0.9 * min(ny, nx) * v if p.sample_diameter_um is None else float(p.sample_diameter_um)
    disk = _disk(ny, nx, diameter / 2.0 / v)
    edges = _layer_edges(p, nz)
    layers = _layers_table(edges, v)

    labels = np.full(shape, OUTSIDE, dtype=np.uint8)
    for name, a, b in zip(LAYER_NAMES, edges[:-1], edges[1:]):
        labels[a:b][:, disk] = _LAYER_FILL[name]

    c0, c1 = int(edges[1]), int(edges[2])
    s0, s1 = int(edges[2]), int(edges[3])
    n_disk = int(disk.sum())

    # 1. active particles
    pid = np.zeros(shape, dtype=np.uint32)
    target_active = int(round(p.active_fraction * n_disk * (c1 - c0)))
    particles = _place_particles(rng, pid, disk, c0, c1, target_active, p, v)
    active = pid > 0
    labels[active] = _ACTIVE

    # 2.-3. pores and carbon in the cathode matrix, pores in the separator
    sig_p = p.pore_correlation_um / v
    sig_c = p.carbon_correlation_um / v
    field_p = _smooth_field(rng, (s1 - c0, ny, nx), sig_p)
    field_c = _smooth_field(rng, (c1 - c0, ny, nx), sig_c)
    matrix = (labels[c0:c1] == _ELECTROLYTE)
    n_cath = np.full(c1 - c0, n_disk)
    pores = _allocate(int(round(p.cathode_porosity * n_disk * (c1 - c0))), n_cath,
                      matrix.reshape(c1 - c0, -1).sum(axis=1))
    _select_lowest(field_p[: c1 - c0], matrix, pores, labels[c0:c1], PORE)
    matrix = (labels[c0:c1] == _ELECTROLYTE)
    carbon = _allocate(int(round(p.carbon_fraction * n_disk * (c1 - c0))), n_cath,
                       matrix.reshape(c1 - c0, -1).sum(axis=1))
    _select_lowest(field_c, matrix, carbon, labels[c0:c1], _CARBON)
    sep = labels[s0:s1] == _ELECTROLYTE
    spores = _allocate(int(round(p.separator_porosity * n_disk * (s1 - s0))),
                       np.full(s1 - s0, n_disk), sep.reshape(s1 - s0, -1).sum(axis=1))
    _select_lowest(field_p[s0 - c0:], sep, spores, labels[s0:s1], PORE)

    def _thresholds(fld, lab, value):
        t = np.full(fld.shape[0], -np.inf, dtype=np.float64)
        for z in range(fld.shape[0]):
            sel = lab[z] == value
            if sel.any():
                t[z] = float(fld[z][sel].max())
        return t

    matrix_fields = {
        "c0": c0, "c1": c1, "s0": s0, "s1": s1,
        "pore_field": field_p, "carbon_field": field_c,
        "pore_threshold": _thresholds(field_p, labels[c0:s1], PORE),
        "carbon_threshold": _thresholds(field_c, labels[c0:c1], _CARBON),
    }
    pid = pid.astype(_id_dtype(len(particles)))
    counts = np.bincount(pid.ravel(), minlength=len(particles) + 1)[1:]
    particles["volume_um3"] = counts * v**3
    fractions, profile = _fraction_tables(_slab_counts(labels), layers, v)
    return Cell(
        params=p, labels=labels, particle_ids=pid, layers=layers, particles=particles,
        fractions=fractions, profile=profile, sample_radius_um=diameter / 2.0,
        matrix_fields=matrix_fields,
    )


# --------------------------------------------------------------------------------------------
# in-situ sequence
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateSpec:
    """One state of charge of an in-situ sequence and the model quantities that drive it.

    Parameters
    ----------
    name : str
        State name, e.g. ``"D1.2V"``.
    voltage_V : float or None
        Cell voltage (V) at the scan; None at open circuit.
    kind : {"ocv", "discharge", "charge"}
        Whether the state is reached by discharge (lithiation: inclusions nucleate and grow)
        or charge (delithiation: inclusions dissolve).
    displacement : float
        Cumulative z displacement of the cathode/separator interface relative to OCV, as a
        fraction of :attr:`SequenceParams.max_displacement_um`.
    expansion : float
        Radial strain of the active particles relative to OCV (0.03 = radii + 3 %).
    inclusion : float in [0, 1]
        On discharge, the degree of conversion: inclusion *j* (nucleation threshold
        ``t_j``) holds the fraction ``clip((inclusion - t_j) / (1 - t_j), 0, 1)`` of its
        full volume. On charge, the fraction of conversion left: inclusion *j* (dissolution
        threshold ``d_j``) keeps ``clip((inclusion - d_j) / (1 - d_j), 0, 1)`` of its
        largest earlier volume.
    crack_growth : float in [0, 1]
        Crack extension: crack *j* (onset threshold ``o_j``) has its in-plane semi-axes
        scaled by ``clip((crack_growth - o_j) / (1 - o_j), 0, 1)`` (at least 3 × the half
        aperture, so a crack stays flat); 0 means no crack.
    crack_healing : float in [0, 1]
        Approximate fraction of the crack volume (at full growth) that has closed again.
    """

    name: str
    voltage_V: float | None
    kind: str
    displacement: float
    expansion: float
    inclusion: float
    crack_growth: float
    crack_healing: float

    def __post_init__(self):
        if self.kind not in ("ocv", "discharge", "charge"):
            raise ValueError(
                f"StateSpec {self.name!r}: kind must be 'ocv', 'discharge' or 'charge', "
                f"got {self.kind!r}"
            )
        for name in ("inclusion", "crack_growth", "crack_healing"):
            val = getattr(self, name)
            if not (np.isfinite(val) and 0.0 <= val <= 1.0):
                raise ValueError(f"StateSpec {self.name!r}: {name} must lie in [0, 1], got {val!r}")
        if not (np.isfinite(self.expansion) and -0.5 < self.expansion < 0.5):
            raise ValueError(
                f"StateSpec {self.name!r}: expansion must lie in (-0.5, 0.5), got {self.expansion!r}"
            )
        if not np.isfinite(self.displacement):
            raise ValueError(f"StateSpec {self.name!r}: displacement must be finite")


#: The six scans of the CuS study: OCV, three discharge and two charge states.
DEFAULT_STATES = (
    StateSpec("OCV", None, "ocv", 0.0, 0.0, 0.0, 0.0, 0.0),
    StateSpec("D1.7V", 1.7, "discharge", 0.3, 0.01, 0.3, 0.0, 0.0),
    StateSpec("D1.2V", 1.2, "discharge", 0.65, 0.02, 0.7, 0.6, 0.0),
    StateSpec("D0.7V", 0.7, "discharge", 1.0, 0.03, 1.0, 1.0, 0.0),
    StateSpec("C2.5V", 2.5, "charge", 0.6, 0.015, 0.4, 1.0, 0.2),
    StateSpec("C3.0V", 3.0, "charge", 0.15, 0.005, 0.05, 1.0, 0.45),
)


@dataclass(frozen=True)
class SequenceParams:
    """Parameters of the in-situ evolution (:func:`insitu_sequence`), CuS defaults.

    Parameters
    ----------
    max_displacement_um : float
        Cumulative z displacement (µm) of the cathode/separator interface at
        ``StateSpec.displacement == 1`` (the deepest discharge).
    inclusion_fraction : float
        Designed volume of all Cu-rich inclusions at full size, as a fraction of the active
        volume (ellipsoid volumes; the voxelized volume differs by clipping and overlap).
    inclusion_radius_um : float
        Mean long semi-axis (µm) of an inclusion at full size (log-normal, σ of log 0.3,
        at most half its particle's radius).
    inclusion_aspect : float
        Short / long semi-axis ratio of the oblate inclusions (short axis near ∥ z).
    inclusion_tilt_deg : float
        Standard deviation (degrees) of the angle between an inclusion's short axis and z
        (half-normal, clipped at 3 σ).
    crack_fraction : float
        Designed crack volume at full growth as a fraction of the cathode sample volume.
    crack_radius_um : float
        Mean long in-plane semi-axis of a crack at full growth, µm.
    crack_aperture_voxels : (2,) tuple of int
        Range (inclusive) of crack apertures, in voxels; each crack gets a whole number.
    crack_tilt_deg : float
        Standard deviation (degrees) of the angle between a crack's normal and z
        (half-normal, clipped at 2.5 σ).
    """

    max_displacement_um: float = 7.0
    inclusion_fraction: float = 0.06
    inclusion_radius_um: float = 1.8
    inclusion_aspect: float = 0.45
    inclusion_tilt_deg: float = 8.0
    crack_fraction: float = 0.01
    crack_radius_um: float = 8.0
    crack_aperture_voxels: tuple = (1, 3)
    crack_tilt_deg: float = 3.0


@dataclass
class State:
    """One labelled state of charge with its ground truth (made by :func:`insitu_sequence`).

    All positions are in this state's frame (µm, voxel ``i`` at ``i * voxel_size_um``).

    Attributes
    ----------
    name : str
    voltage_V : float or None
    spec : StateSpec
        The model quantities of this state.
    labels : (n_z, n_y, n_x) ndarray of uint8
        Label volume, schema :data:`LABELS`.
    particle_ids, inclusion_ids, crack_ids : (n_z, n_y, n_x) ndarray of uint16 or uint32
        Instance ids (0 = none) matching the ``id`` columns of :attr:`particles`,
        :attr:`inclusions`, :attr:`cracks`. ``particle_ids > 0`` exactly where the label is
        active or inclusion; ``inclusion_ids > 0`` exactly where it is inclusion;
        ``crack_ids > 0`` only where it is pore.
    displacement_um : (n_z,) ndarray of float64
        z displacement relative to the PREVIOUS state (for the first state: relative to the
        OCV frame of the cell, zeros for the default sequence): the material at
        ``z = i * voxel_size_um`` in the previous state is at ``z + displacement_um[i]``
        here. The field is uniaxial: ``u_y = u_x = 0`` and ``u_z`` depends on z only; it is
        piecewise linear with kinks at the cathode boundaries, so use
        :meth:`displacement_at` for exact values between slabs.
    cumulative_displacement_um : (n_z,) ndarray of float64
        z displacement relative to OCV: the material at ``Z = i * voxel_size_um`` at OCV is
        at ``Z + cumulative_displacement_um[i]`` here. 0 up to the current collector,
        rising linearly through the cathode to the interface value, constant beyond
        (separator and Li move rigidly).
    z_index : (n_z,) ndarray of intp
        The nearest-neighbour warp of the matrix: slab ``i`` of this state shows slab
        ``z_index[i]`` of the OCV labels (particles, inclusions and cracks are rasterized
        at their mapped positions on top, see :func:`insitu_sequence`).
    layers : pandas.DataFrame
        The layers table (as :attr:`Cell.layers`) in this state's frame.
    particles : pandas.DataFrame
        ``id``, ``center_z_um``, ``center_y_um``, ``center_x_um``, ``radius_um`` (after
        expansion), ``semi_axis_z_um`` (radius times the local z stretch of the warp),
        ``volume_um3``.
    inclusions : pandas.DataFrame
        Inclusions present (≥ 1 voxel): ``id`` (stable through the sequence),
        ``particle_id``, ``center_z_um``, ``center_y_um``, ``center_x_um``,
        ``semi_axis_a_um`` ≥ ``semi_axis_b_um`` ≥ ``semi_axis_c_um`` (c is the short axis),
        ``orientation_deg`` (angle between the short axis and z), ``azimuth_deg`` (of the
        short axis in the y-x plane, from x towards y, in [0, 180)), ``n_voxels``,
        ``volume_um3``. The ellipsoid is the one rasterized, in this frame (the z stretch
        of the warp applied), before clipping to its particle's voxels.
    cracks : pandas.DataFrame
        Cracks present: ``id``, centre, semi-axes, ``aperture_um`` (= 2 × short semi-axis,
        the opening at the centre), ``orientation_deg``, ``azimuth_deg``, ``n_voxels``,
        ``volume_um3``.
    fractions, profile : pandas.DataFrame
        Achieved fractions per layer and per slab (as :attr:`Cell.fractions`,
        :attr:`Cell.profile`; ``pore`` is the porosity).
    totals : dict
        ``interface_displacement_um``, ``inclusion_volume_um3``, ``n_inclusions``,
        ``crack_volume_um3``, ``n_cracks``, ``active_fraction_cathode`` and
        ``porosity_<layer>`` for each layer.
    voxel_size_um : float
    schema : mapping
        :data:`LABELS`.
    nodes, previous_nodes : tuple of two (4,) ndarrays
        ``(Z_um, u_um)``: OCV positions and cumulative u_z of the nodes of the
        piecewise-linear displacement profile of this state and of the previous one (used by
        :meth:`displacement_at` and :meth:`cumulative_displacement_at`).
    """

    name: str
    voltage_V: float | None
    spec: StateSpec
    labels: np.ndarray
    particle_ids: np.ndarray
    inclusion_ids: np.ndarray
    crack_ids: np.ndarray
    displacement_um: np.ndarray
    cumulative_displacement_um: np.ndarray
    z_index: np.ndarray
    layers: pd.DataFrame
    particles: pd.DataFrame
    inclusions: pd.DataFrame
    cracks: pd.DataFrame
    fractions: pd.DataFrame
    profile: pd.DataFrame
    totals: dict
    voxel_size_um: float
    schema: MappingProxyType = field(default_factory=lambda: LABELS)
    nodes: tuple = field(default=None, repr=False)
    previous_nodes: tuple = field(default=None, repr=False)

    def displacement_at(self, z_um):
        """Exact u_z (µm) relative to the previous state at previous-state positions.

        Parameters
        ----------
        z_um : array_like of float
            Positions along z in the previous state's frame, µm.

        Returns
        -------
        ndarray of float64
            The displacement; ``z_um + displacement_at(z_um)`` is where that material is now.
        """
        z = np.asarray(z_um, dtype=np.float64)
        return _forward(_inverse(z, self.previous_nodes), self.nodes) - z

    def cumulative_displacement_at(self, z_um):
        """Exact u_z (µm) relative to OCV at OCV positions `z_um` (µm)."""
        return np.interp(np.asarray(z_um, dtype=np.float64), self.nodes[0], self.nodes[1])


def _frames(normals, psi):
    """Orthonormal frames ``(N, 3, 3)`` whose columns are (long a, long b, short n), (z,y,x)."""
    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    helper = np.where((np.abs(n[:, 2]) < 0.9)[:, None], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    e1 = helper - np.sum(helper * n, axis=1, keepdims=True) * n
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(n, e1)
    c, s = np.cos(psi)[:, None], np.sin(psi)[:, None]
    ua = c * e1 + s * e2
    ub = -s * e1 + c * e2
    return np.stack([ua, ub, n], axis=2)


def _quadrics(frames, semi):
    """``M = R diag(1/a², 1/b², 1/c²) Rᵀ`` for each object (units of ``semi`` ** -2)."""
    return np.einsum("nij,nj,nkj->nik", frames, 1.0 / semi**2, frames)


def _tilted_normals(rng, n, tilt_sd_deg, clip_sd):
    tilt = np.minimum(np.abs(rng.normal(0.0, tilt_sd_deg, n)), clip_sd * tilt_sd_deg)
    tilt = np.deg2rad(tilt)
    az = rng.uniform(0.0, 2.0 * np.pi, n)
    normals = np.stack([np.cos(tilt), np.sin(tilt) * np.sin(az), np.sin(tilt) * np.cos(az)], axis=1)
    return normals


def _design_inclusions(rng, cell, sp):
    v = cell.voxel_size_um
    parts = cell.particles
    vol_target = sp.inclusion_fraction * float(parts["volume_um3"].sum())
    if vol_target <= 0 or len(parts) == 0:
        return _empty_design()
    weights = parts["radius_um"].to_numpy() ** 3
    weights = weights / weights.sum()
    centers = parts[["center_z_um", "center_y_um", "center_x_um"]].to_numpy()
    radii = parts["radius_um"].to_numpy()
    pid = cell.particle_ids
    sig = 0.3
    mu = math.log(sp.inclusion_radius_um) - sig * sig / 2.0
    rows = []
    total = 0.0
    guard = 0
    while total < vol_target and guard < 100000:
        guard += 1
        k = int(rng.choice(len(parts), p=weights))
        rp = radii[k]
        a = min(float(rng.lognormal(mu, sig)), 0.5 * rp)
        b = a * rng.uniform(0.75, 1.0)
        c = a * sp.inclusion_aspect * rng.uniform(0.85, 1.15)
        c = min(c, b)
        # centre: uniform in the ball of radius rp - a, and inside the particle's voxels
        d = rng.normal(size=3)
        d *= (rp - a) * rng.random() ** (1.0 / 3.0) / np.linalg.norm(d)
        cen = centers[k] + d
        idx = tuple(np.clip(np.rint(cen / v).astype(int), 0, np.array(pid.shape) - 1))
        if pid[idx] != k + 1:
            continue
        rows.append((k + 1, *cen, a, b, c))
        total += 4.0 / 3.0 * np.pi * a * b * c
    n = len(rows)
    if n == 0:
        return _empty_design()
    arr = np.array(rows, dtype=np.float64)
    normals = _tilted_normals(rng, n, sp.inclusion_tilt_deg, 3.0)
    frames = _frames(normals, rng.uniform(0.0, 2.0 * np.pi, n))
    return {
        "parent": arr[:, 0].astype(np.int64),
        "center": arr[:, 1:4],
        "semi": arr[:, 4:7],
        "frames": frames,
        "nucleation": rng.uniform(0.0, 0.8, n),
        "dissolution": rng.uniform(-0.1, 0.6, n),
    }


def _empty_design():
    return {"parent": np.zeros(0, np.int64), "center": np.zeros((0, 3)), "semi": np.zeros((0, 3)),
            "frames": np.zeros((0, 3, 3)), "nucleation": np.zeros(0), "dissolution": np.zeros(0),
            "onset": np.zeros(0), "healing": np.zeros(0)}


def _design_cracks(rng, cell, sp):
    v = cell.voxel_size_um
    lay = cell.layers.loc["cathode"]
    c0, c1 = int(lay["z_start"]), int(lay["z_stop"])
    nz, ny, nx = cell.shape
    r_sample = cell.sample_radius_um / v
    vol_target = sp.crack_fraction * float(cell.fractions.loc["cathode", "n_voxels"]) * v**3
    amin, amax = (int(x) for x in sp.crack_aperture_voxels)
    sig = 0.35
    mu = math.log(sp.crack_radius_um) - sig * sig / 2.0
    rows = []
    total = 0.0
    while total < vol_target and len(rows) < 100000:
        a = float(rng.lognormal(mu, sig))
        b = a * rng.uniform(0.5, 1.0)
        ap = int(rng.integers(amin, amax + 1))
        c = ap * v / 2.0
        lo, hi = c0 + ap / 2.0, c1 - 1 - ap / 2.0
        if hi < lo:
            lo = hi = (c0 + c1 - 1) / 2.0
        zc = lo + (hi - lo) * rng.random()
        zc = np.floor(zc) + (0.5 if ap % 2 == 0 else 0.0)  # voxel-aligned centre plane
        rho = max(r_sample - 0.5 * a / v, 0.0) * math.sqrt(rng.random())
        phi = 2.0 * np.pi * rng.random()
        cen = np.array([zc, (ny - 1) / 2.0 + rho * math.sin(phi), (nx - 1) / 2.0 + rho * math.cos(phi)]) * v
        rows.append((*cen, a, b, c))
        total += 4.0 / 3.0 * np.pi * a * b * c
    n = len(rows)
    if n == 0:
        return _empty_design()
    arr = np.array(rows, dtype=np.float64)
    normals = _tilted_normals(rng, n, sp.crack_tilt_deg, 2.5)
    frames = _frames(normals, rng.uniform(0.0, 2.0 * np.pi, n))
    # healing thresholds: cumulative design volume (mid-point) in a random order, so that
    # the cracks with threshold below h hold about the fraction h of the crack volume
    vol = 4.0 / 3.0 * np.pi * np.prod(arr[:, 3:6], axis=1)
    order = rng.permutation(n)
    cum = np.cumsum(vol[order]) - vol[order] / 2.0
    healing = np.empty(n)
    healing[order] = cum / vol.sum()
    return {
        "center": arr[:, 0:3],
        "semi": arr[:, 3:6],
        "frames": frames,
        "onset": rng.uniform(0.0, 0.5, n),
        "healing": healing,
    }


def _raster_quadric(center, M, lo_lim, hi_lim):
    """Box slices and mask of voxel centres ``d`` with ``dᵀ M d <= 1`` (voxel units)."""
    h = np.sqrt(np.diag(np.linalg.inv(M)))
    lo = np.maximum(np.ceil(center - h).astype(int), lo_lim)
    hi = np.minimum(np.floor(center + h).astype(int) + 1, hi_lim)
    if np.any(hi <= lo):
        return None, None
    dz = (np.arange(lo[0], hi[0]) - center[0])[:, None, None]
    dy = (np.arange(lo[1], hi[1]) - center[1])[None, :, None]
    dx = (np.arange(lo[2], hi[2]) - center[2])[None, None, :]
    q = (M[0, 0] * dz * dz + M[1, 1] * dy * dy + M[2, 2] * dx * dx
         + 2.0 * M[0, 1] * dz * dy + 2.0 * M[0, 2] * dz * dx + 2.0 * M[1, 2] * dy * dx)
    return tuple(slice(a, b) for a, b in zip(lo, hi)), q <= 1.0 + 1e-9


def _displacement_nodes(cell, amplitude_um):
    """Nodes (OCV position Z, cumulative u_z) of the piecewise-linear displacement profile."""
    v = cell.voxel_size_um
    nz = cell.shape[0]
    lay = cell.layers.loc["cathode"]
    z_cc, z_cs = float(lay["z_start_um"]), float(lay["z_stop_um"])
    big = 10.0 * (nz + 1) * v + 10.0 * abs(amplitude_um)
    Z = np.array([-big, z_cc, z_cs, big])
    U = np.array([0.0, 0.0, amplitude_um, amplitude_um])
    return Z, U


def _forward(Z, nodes):
    return Z + np.interp(Z, nodes[0], nodes[1])


def _inverse(z, nodes):
    return np.interp(z, nodes[0] + nodes[1], nodes[0])


def _resample_matrix(cell, labels, z_index, z_src):
    """Re-choose pores and carbon of the warped matrix at the sub-voxel source positions.

    Slab ``i`` of a state shows OCV position ``z_src[i]`` (voxels, fractional); its pores are
    where the pore field, linearly interpolated along z at ``z_src[i]``, is at most the
    interpolated OCV threshold (likewise carbon), so the matrix texture moves by the exact
    displacement, not by its rounding to whole voxels.
    """
    mf = cell.matrix_fields
    if mf is None:
        return
    c0, c1, s0, s1 = mf["c0"], mf["c1"], mf["s0"], mf["s1"]
    fp, tp, fc, tc = mf["pore_field"], mf["pore_threshold"], mf["carbon_field"], mf["carbon_threshold"]
    matrix_values = np.array([PORE, _ELECTROLYTE, _CARBON], dtype=np.uint8)
    for i, (k, zs) in enumerate(zip(z_index, z_src)):
        if c0 <= k < c1:
            lo, hi = c0, c1
        elif s0 <= k < s1:
            lo, hi = s0, s1
        else:
            continue
        z = float(np.clip(zs, lo, hi - 1))
        if abs(z - round(z)) < 1e-6:  # on a slab: exactly the OCV choice
            z = float(round(z))
        a = int(np.floor(z))
        b = min(a + 1, hi - 1)
        w = z - a
        sl = labels[i]
        m = np.isin(sl, matrix_values)

        def lerp(arr, off):
            return (1.0 - w) * arr[a - off] + w * arr[b - off]

        pore = (lerp(fp, c0) <= lerp(tp, c0)) & m
        new = np.where(m, _ELECTROLYTE, sl)
        new[pore] = PORE
        if lo == c0:
            carbon = (lerp(fc, c0) <= lerp(tc, c0)) & m & ~pore
            new[carbon] = _CARBON
        labels[i] = new


def _compose_state(cell, spec, nodes, stretch, z_index, cath, incl, f_incl, cracks, crack_scale,
                   crack_on, z_src=None):
    """Labels and instance ids of one state, in its own frame.

    The layers are the OCV labels warped along z with nearest neighbours (``z_index``); the
    pores and carbon of the matrix are re-chosen from their random fields at the sub-voxel
    source positions ``z_src`` (see :func:`_resample_matrix`); the particles, inclusions and cracks are
    rasterized analytically at their mapped positions, with the z stretch of the warp, so
    that they move by the recorded displacement to within rasterization error.
    """
    v = cell.voxel_size_um
    nz, ny, nx = cell.shape
    labels = cell.labels[z_index]
    labels[labels == _ACTIVE] = _ELECTROLYTE
    if z_src is not None:
        _resample_matrix(cell, labels, z_index, z_src)
    pid = np.zeros(cell.shape, dtype=np.uint32)
    lo_lim = np.array([cath[0], 0, 0])
    hi_lim = np.array([cath[1], ny, nx])
    disk = _disk(ny, nx, cell.sample_radius_um / v)

    parts = cell.particles
    centers = parts[["center_z_um", "center_y_um", "center_x_um"]].to_numpy() / v
    centers[:, 0] = _forward(centers[:, 0] * v, nodes) / v
    radii = parts["radius_um"].to_numpy() / v * (1.0 + spec.expansion)
    for k in range(len(parts)):  # in id order, each claims the voxels not yet claimed
        sl, mask = _spheroid(centers[k], radii[k], lo_lim, hi_lim, stretch)
        if sl is None:
            continue
        box = pid[sl]
        claim = mask & (box == 0) & disk[sl[1], sl[2]][None]
        box[claim] = k + 1
    labels[pid > 0] = _ACTIVE

    iid = np.zeros(cell.shape, dtype=np.uint32)
    for j in np.flatnonzero(f_incl > 0):
        sl, mask = _raster_quadric(incl["center_vox"][j], incl["M_vox"][j] / f_incl[j] ** (2.0 / 3.0),
                                   lo_lim, hi_lim)
        if sl is None:
            continue
        mask &= pid[sl] == incl["parent"][j]
        iid[sl][mask] = j + 1
        labels[sl][mask] = _INCLUSION

    cid = np.zeros(cell.shape, dtype=np.uint32)
    for j in np.flatnonzero(crack_on):
        sl, mask = _raster_quadric(cracks["center_vox"][j], cracks["M_vox"][j], lo_lim, hi_lim)
        if sl is None:
            continue
        mask &= disk[sl[1], sl[2]][None]
        cid[sl][mask] = j + 1
        labels[sl][mask] = PORE
        iid[sl][mask] = 0
        pid[sl][mask] = 0
    return labels, pid, iid, cid


def _to_state_frame(centers_um, M_um, nodes, stretch):
    """Map OCV-frame ellipsoids (centres, quadrics in µm⁻²) into a state frame."""
    cen = np.array(centers_um, dtype=np.float64, copy=True).reshape(-1, 3)
    cen[:, 0] = _forward(cen[:, 0], nodes)
    s_inv = np.diag([1.0 / stretch, 1.0, 1.0])
    return cen, s_inv @ M_um @ s_inv


def _object_table(ids, n, centers, M_um, v, extra):
    """Table of the objects with ≥ 1 voxel (centres µm, quadrics µm⁻², in the state frame)."""
    counts = np.bincount(ids.ravel(), minlength=n + 1)[1:n + 1]
    present = np.flatnonzero(counts > 0)
    cen = centers[present]
    if len(present):
        w, vec = np.linalg.eigh(M_um[present])
    else:
        w, vec = np.zeros((0, 3)), np.zeros((0, 3, 3))
    semi = 1.0 / np.sqrt(w)  # ascending eigenvalues -> descending semi-axes a >= b >= c
    normal = vec[:, :, 2] * np.where(vec[:, 0:1, 2] < 0, -1.0, 1.0)
    tilt = np.degrees(np.arccos(np.clip(np.abs(normal[:, 0]), 0.0, 1.0)))
    az = np.degrees(np.arctan2(normal[:, 1], normal[:, 2])) % 180.0
    table = {"id": present + 1}
    for name, col in extra.items():
        table[name] = np.asarray(col)[present]
    table.update({
        "center_z_um": cen[:, 0], "center_y_um": cen[:, 1], "center_x_um": cen[:, 2],
        "semi_axis_a_um": semi[:, 0], "semi_axis_b_um": semi[:, 1], "semi_axis_c_um": semi[:, 2],
        "orientation_deg": tilt, "azimuth_deg": az,
        "n_voxels": counts[present].astype(np.int64),
        "volume_um3": counts[present] * v**3,
    })
    return pd.DataFrame(table)


def insitu_sequence(cell, states=DEFAULT_STATES, *, params=None, seed=0):
    """Labelled in-situ states of charge of a cell, with object-level ground truth.

    Model (after Zhang et al. [1]_):

    - Cu-rich inclusions nucleate inside active particles during discharge (a random
      threshold per inclusion, so new ones appear at every discharge step) and grow; they
      are oblate ellipsoids with the short axis near ∥ z, clipped to their particle's
      voxels. On charge they dissolve: by C3.0V > 90 % of their volume is gone.
    - Cracks are thin oblate voids (aperture 1–3 voxels) with the short axis near ∥ z,
      inside the cathode. They appear from D1.2V, grow, and about half of their volume
      closes on charge.
    - Active particles expand radially on discharge and shrink back on charge (claiming
      matrix voxels, so pores shrink).
    - The cathode moves along z: ``u_z`` is 0 at the current collector, grows linearly
      through the cathode to the interface value ``displacement * max_displacement_um`` at
      the separator, and is constant beyond (separator and Li move rigidly); the field
      reverses on charge. Writing ``φ(Z) = Z + u_z(Z)`` for the map from OCV to the state:

      * the matrix (electrolyte, pores, carbon) and the other layers are the OCV labels
        sampled at ``Z = φ⁻¹(z)`` with nearest neighbours (``map_coordinates(order=0)``
        along z, done as an exact slab gather ``labels[z_index]`` since ``u_z`` depends on
        z only), so they move by the recorded displacement to within ½ voxel;
      * particles, inclusions and cracks are analytic ellipsoids mapped by φ (centre moved,
        z axis stretched by ``1 + u_interface / cathode thickness``) and rasterized in the
        state's frame, so their voxel centroids follow the recorded displacement to within
        rasterization error: < 0.25 voxel for particles and inclusions of ≥ 20 voxels,
        about 0.15 voxel on average for cracks one to three voxels thick.

    Parameters
    ----------
    cell : Cell
        The pristine cell from :func:`generate_cell`.
    states : sequence of StateSpec
        The states, in scan order; default :data:`DEFAULT_STATES` (OCV, D1.7V, D1.2V,
        D0.7V, C2.5V, C3.0V). A first state with all quantities 0 reproduces ``cell``.
    params : SequenceParams, optional
        Inclusion, crack and displacement parameters; default ``SequenceParams()``.
    seed : int or None
        Seed of the inclusion and crack populations; the same seed gives the same states.

    Returns
    -------
    list of State
        One per spec, with labels, instance ids, displacement (relative to the previous
        state and to OCV), the object tables, fractions and totals.

    Raises
    ------
    ValueError
        If `states` is empty, a displacement folds the cathode (interface displacement
        ≤ −cathode thickness), or a parameter is out of range (named in the message).
    TypeError
        If `cell` is not a :class:`Cell` or a state is not a :class:`StateSpec`.

    References
    ----------
    .. [1] W. Zhang, F. Sun, A. Hilger, et al., Adv. Energy Mater. (2022): in-situ X-ray
       tomography of Li | β-Li3PS4 | CuS cells.

    Examples
    --------
    >>> cell = generate_cell(CellParams(shape=(48, 64, 64), seed=1))
    >>> states = insitu_sequence(cell, seed=2)
    >>> [s.name for s in states]
    ['OCV', 'D1.7V', 'D1.2V', 'D0.7V', 'C2.5V', 'C3.0V']
    >>> float(states[3].totals["interface_displacement_um"])
    7.0
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be a Cell from generate_cell, got {type(cell).__name__}")
    states = list(states)
    if not states:
        raise ValueError("states must hold at least one StateSpec")
    for s in states:
        if not isinstance(s, StateSpec):
            raise TypeError(f"states must hold StateSpec objects, got {type(s).__name__}")
    sp = SequenceParams() if params is None else params
    if not isinstance(sp, SequenceParams):
        raise TypeError(f"params must be a SequenceParams, got {type(sp).__name__}")
    _check_positive("SequenceParams.max_displacement_um", sp.max_displacement_um, allow_zero=True)
    _check_fraction("SequenceParams.inclusion_fraction", sp.inclusion_fraction)
    _check_fraction("SequenceParams.crack_fraction", sp.crack_fraction)
    _check_positive("SequenceParams.inclusion_radius_um", sp.inclusion_radius_um)
    _check_positive("SequenceParams.crack_radius_um", sp.crack_radius_um)
    _check_positive("SequenceParams.inclusion_tilt_deg", sp.inclusion_tilt_deg, allow_zero=True)
    _check_positive("SequenceParams.crack_tilt_deg", sp.crack_tilt_deg, allow_zero=True)
    if not (0.0 < sp.inclusion_aspect <= 1.0):
        raise ValueError(f"SequenceParams.inclusion_aspect must lie in (0, 1], got {sp.inclusion_aspect!r}")
    ap = tuple(sp.crack_aperture_voxels)
    if len(ap) != 2 or any(int(a) != a or a < 1 for a in ap) or ap[0] > ap[1]:
        raise ValueError(
            f"SequenceParams.crack_aperture_voxels must be (min, max) whole voxels >= 1, got {ap!r}"
        )

    v = cell.voxel_size_um
    nz = cell.shape[0]
    rng = np.random.default_rng(seed)
    incl = _design_inclusions(rng, cell, sp)
    cracks = _design_cracks(rng, cell, sp)
    n_incl, n_crack = len(incl["parent"]), len(cracks["center"])
    incl["M_um"] = _quadrics(incl["frames"], incl["semi"]) if n_incl else np.zeros((0, 3, 3))
    cath = cell.layers.loc["cathode"]
    thickness = float(cath["z_stop_um"] - cath["z_start_um"])
    z_grid = np.arange(nz) * v
    id_dtype_i = _id_dtype(n_incl)
    id_dtype_c = _id_dtype(n_crack)
    id_dtype_p = cell.particle_ids.dtype

    out = []
    f_prev = np.zeros(n_incl)
    f_peak = np.zeros(n_incl)
    prev_nodes = _displacement_nodes(cell, 0.0)
    for spec in states:
        amp = spec.displacement * sp.max_displacement_um
        if amp <= -thickness:
            raise ValueError(
                f"StateSpec {spec.name!r}: interface displacement {amp:.4g} µm folds the "
                f"{thickness:.4g} µm cathode"
            )
        nodes = _displacement_nodes(cell, amp)
        stretch = 1.0 + amp / thickness

        # inclusion fractions of full volume
        if spec.kind == "charge":
            t = incl["dissolution"]
            rho = np.clip((spec.inclusion - t) / (1.0 - t), 0.0, 1.0)
            f = np.minimum(f_peak * rho, f_prev)
        elif spec.kind == "discharge":
            t = incl["nucleation"]
            f = np.clip((spec.inclusion - t) / (1.0 - t), 0.0, 1.0)
        else:
            f = np.zeros(n_incl)
        f_peak = np.maximum(f_peak, f)
        f_prev = f
        if n_crack:
            o = cracks["onset"]
            scale = np.clip((spec.crack_growth - o) / (1.0 - o), 0.0, 1.0)
            on = (scale > 0) & (cracks["healing"] >= spec.crack_healing)
        else:
            scale = on = np.zeros(0)

        # warp of the matrix along z (nearest neighbour): slab i samples OCV position φ⁻¹(i v)
        z_src = _inverse(z_grid, nodes) / v
        z_index = np.clip(np.rint(z_src), 0, nz - 1).astype(np.intp)
        ref_layers = cell.layers
        starts = np.searchsorted(z_index, ref_layers["z_start"].to_numpy(), side="left")
        stops = np.searchsorted(z_index, ref_layers["z_stop"].to_numpy(), side="left")
        layers = _layers_table(np.concatenate([starts, stops[-1:]]), v)
        cath_range = (int(layers.loc["cathode", "z_start"]), int(layers.loc["cathode", "z_stop"]))

        # objects in this state's frame (analytic ellipsoids, z stretched by the warp)
        incl_c, incl_M = _to_state_frame(incl["center"], incl["M_um"], nodes, stretch)
        incl["center_vox"], incl["M_vox"] = incl_c / v, incl_M * v**2
        if n_crack:
            semi = cracks["semi"].copy()
            semi[:, :2] = np.maximum(semi[:, :2] * np.maximum(scale, 1e-30)[:, None],
                                     3.0 * semi[:, 2:3])
            crack_c, crack_M = _to_state_frame(cracks["center"], _quadrics(cracks["frames"], semi),
                                               nodes, stretch)
        else:
            crack_c, crack_M = np.zeros((0, 3)), np.zeros((0, 3, 3))
        cracks["center_vox"], cracks["M_vox"] = crack_c / v, crack_M * v**2

        labels, pid, iid, cid = _compose_state(cell, spec, nodes, stretch, z_index, cath_range,
                                               incl, f, cracks, scale, on, z_src=z_src)
        pid = pid.astype(id_dtype_p)
        iid = iid.astype(id_dtype_i)
        cid = cid.astype(id_dtype_c)

        cumulative = np.interp(z_grid, nodes[0], nodes[1])
        incremental = _forward(_inverse(z_grid, prev_nodes), nodes) - z_grid
        prev_state_nodes, prev_nodes = prev_nodes, nodes
        fractions, profile = _fraction_tables(_slab_counts(labels), layers, v)

        parts = cell.particles
        pc = np.bincount(pid.ravel(), minlength=len(parts) + 1)[1:len(parts) + 1]
        r_now = parts["radius_um"].to_numpy() * (1.0 + spec.expansion)
        particles = pd.DataFrame({
            "id": parts["id"].to_numpy(),
            "center_z_um": _forward(parts["center_z_um"].to_numpy(), nodes),
            "center_y_um": parts["center_y_um"].to_numpy(),
            "center_x_um": parts["center_x_um"].to_numpy(),
            "radius_um": r_now,
            "semi_axis_z_um": r_now * stretch,
            "volume_um3": pc * v**3,
        })
        size = np.maximum(f, 1e-30)[:, None, None] ** (2.0 / 3.0)
        inclusions = _object_table(iid, n_incl, incl_c, incl_M / size, v,
                                   {"particle_id": incl["parent"]})
        crack_tab = _object_table(cid, n_crack, crack_c, crack_M, v, {})
        crack_tab.insert(crack_tab.columns.get_loc("orientation_deg"), "aperture_um",
                         2.0 * crack_tab["semi_axis_c_um"])

        totals = {
            "interface_displacement_um": float(amp),
            "inclusion_volume_um3": float(inclusions["volume_um3"].sum()),
            "n_inclusions": int(len(inclusions)),
            "crack_volume_um3": float(crack_tab["volume_um3"].sum()),
            "n_cracks": int(len(crack_tab)),
            "active_fraction_cathode": float(fractions.loc["cathode", "active"]),
        }
        for name in LAYER_NAMES:
            totals[f"porosity_{name}"] = float(fractions.loc[name, "pore"])
        out.append(State(
            name=spec.name, voltage_V=spec.voltage_V, spec=spec, labels=labels,
            particle_ids=pid, inclusion_ids=iid, crack_ids=cid,
            displacement_um=incremental, cumulative_displacement_um=cumulative,
            z_index=z_index, layers=layers, particles=particles, inclusions=inclusions,
            cracks=crack_tab, fractions=fractions, profile=profile, totals=totals,
            voxel_size_um=v, nodes=nodes, previous_nodes=prev_state_nodes,
        ))
    return out


def summarize_sequence(states):
    """One row of totals per state.

    Parameters
    ----------
    states : sequence of State
        From :func:`insitu_sequence`.

    Returns
    -------
    pandas.DataFrame
        Index the state names; columns ``voltage_V`` and the keys of :attr:`State.totals`
        (volumes in µm³, displacement in µm, porosities as fractions).
    """
    rows = {s.name: {"voltage_V": s.voltage_V, **s.totals} for s in states}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "state"
    return df


# --------------------------------------------------------------------------------------------
# writing the truth
# --------------------------------------------------------------------------------------------

_TABLES = ("layers", "particles", "inclusions", "cracks", "fractions", "profile")
_ID_ARRAYS = ("particle_ids", "inclusion_ids", "crack_ids")


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _chunks(shape):
    return tuple(min(s, c) for s, c in zip(shape, (64, 256, 256)))


def write_truth(state, group_or_path):
    """Write a state's ground truth as a zarr (v3) group, plus CSV files for a folder.

    Layout of the group::

        labels                      uint8 (z, y, x); attrs: labels (schema), pore_label,
                                    outside_label, voxel_size_um, units, state
        particle_ids, inclusion_ids, crack_ids
                                    uint16/uint32 (z, y, x) instance ids (0 = none)
        displacement_um             float64 (z,): u_z relative to the previous state, at the
                                    slab positions of the previous state
        cumulative_displacement_um  float64 (z,): u_z relative to OCV, at OCV positions
        tables/<name>.csv           uint8 (byte,): the UTF-8 text of the CSV table <name>
                                    (layers, particles, inclusions, cracks, fractions,
                                    profile); read back with :func:`read_truth`

    Group attributes hold ``tomopipe = {"kind": "simulated_truth", "state", "voltage_V",
    "spec", "totals", "labels", "voxel_size_um", "axis_order"}``.

    Parameters
    ----------
    state : State
        From :func:`insitu_sequence`.
    group_or_path : zarr.Group or path-like
        An open, writable zarr group (the arrays are created in it; existing ones of the
        same names are an error), or a folder, which is created (or replaced) holding
        ``truth.zarr`` (the group above) and the tables as ``<name>.csv`` files.

    Returns
    -------
    zarr.Group
        The group written.

    Raises
    ------
    TypeError
        If `state` is not a :class:`State`.
    zarr.errors.ContainsArrayError
        If the group already holds an array of the same name.
    """
    import zarr

    if not isinstance(state, State):
        raise TypeError(f"state must be a State from insitu_sequence, got {type(state).__name__}")
    folder = None
    if isinstance(group_or_path, zarr.Group):
        group = group_or_path
    else:
        folder = Path(group_or_path)
        folder.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(folder / "truth.zarr", mode="w")

    v = float(state.voxel_size_um)
    schema = dict(state.schema)
    common = {"voxel_size_um": v, "units": "um", "state": state.name}
    arr = group.create_array(
        "labels", shape=state.labels.shape, chunks=_chunks(state.labels.shape), dtype="uint8",
        dimension_names=("z", "y", "x"),
        attributes={**common, "labels": schema, "pore_label": PORE, "outside_label": OUTSIDE,
                    "description": "label volume; porosity = fraction of pore_label in the sample"},
    )
    arr[...] = state.labels
    for name in _ID_ARRAYS:
        data = getattr(state, name)
        a = group.create_array(
            name, shape=data.shape, chunks=_chunks(data.shape), dtype=data.dtype,
            dimension_names=("z", "y", "x"),
            attributes={**common, "description": f"instance ids (0 = none); table "
                        f"{name.replace('_ids', 's')}.csv"},
        )
        a[...] = data
    for name, ref in (("displacement_um", "previous state"), ("cumulative_displacement_um", "OCV")):
        data = getattr(state, name)
        a = group.create_array(
            name, shape=data.shape, chunks=data.shape, dtype="float64", dimension_names=("z",),
            attributes={**common, "component": "u_z", "reference": ref,
                        "description": f"z displacement (µm) relative to {ref}; u_y = u_x = 0"},
        )
        a[...] = data
    tables = group.create_group("tables")
    for name in _TABLES:
        df = getattr(state, name)
        text = df.to_csv(index=name in ("layers", "fractions")).encode("utf-8")
        buf = np.frombuffer(text, dtype=np.uint8)
        a = tables.create_array(
            f"{name}.csv", shape=buf.shape, chunks=(max(buf.size, 1),), dtype="uint8",
            dimension_names=("byte",),
            attributes={"format": "text/csv", "encoding": "utf-8", "columns": list(map(str, df.columns))},
        )
        a[...] = buf
        if folder is not None:
            (folder / f"{name}.csv").write_bytes(text)
    group.attrs["tomopipe"] = _json_safe({
        "kind": "simulated_truth",
        "state": state.name,
        "voltage_V": state.voltage_V,
        "spec": asdict(state.spec),
        "totals": state.totals,
        "labels": schema,
        "voxel_size_um": v,
        "axis_order": ["z", "y", "x"],
    })
    return group


def read_truth(group_or_path):
    """Read back what :func:`write_truth` wrote.

    Parameters
    ----------
    group_or_path : zarr.Group or path-like
        The group, or the folder holding ``truth.zarr``.

    Returns
    -------
    dict
        ``labels``, ``particle_ids``, ``inclusion_ids``, ``crack_ids`` (ndarrays),
        ``displacement_um``, ``cumulative_displacement_um`` (ndarrays), one pandas
        DataFrame per table name, and ``attrs`` (the group's ``tomopipe`` attributes).

    Raises
    ------
    KeyError
        If the group lacks an entry of the layout.
    """
    import zarr

    if isinstance(group_or_path, zarr.Group):
        group = group_or_path
    else:
        group = zarr.open_group(Path(group_or_path) / "truth.zarr", mode="r")
    out = {"attrs": dict(group.attrs["tomopipe"])}
    for name in ("labels", *_ID_ARRAYS, "displacement_um", "cumulative_displacement_um"):
        out[name] = group[name][...]
    for name in _TABLES:
        text = group[f"tables/{name}.csv"][...].tobytes()
        index_col = 0 if name in ("layers", "fractions") else None
        out[name] = pd.read_csv(io.BytesIO(text), index_col=index_col)
    return out

