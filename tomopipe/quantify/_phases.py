"""Cracks and Cu-rich inclusions of a labelled cell: objects, orientation, hosts, per layer.

Conventions
-----------
Labels
    A label volume ``(z, y, x)`` of integers with a schema (name → value); default
    :data:`tomopipe.simulate.LABELS`: 0 ``pore`` (void: pores *and* cracks), 1 electrolyte,
    2 ``active`` (CuS), 3 ``inclusion`` (Cu-rich), …, 255 ``outside`` (air around the
    sample, never counted). A schema may hold a separate ``crack`` label; then cracks are
    taken from it and not told apart from pores by shape.
Axes, units
    z is the stack (pressure) axis; a *layer* is a slab of constant z. Lengths in µm,
    volumes in µm³, voxel ``i`` centred at ``i * voxel_size_um``.
Angles
    ``angle_to_z_deg`` is the angle between an object's thinnest principal axis (its normal,
    for a flat object) and z, in [0°, 90°]: 0° is an object lying ⟂ z.

Both functions accept NumPy, dask or zarr label volumes and work chunk by chunk for the
latter (see :mod:`tomopipe.quantify._objects`).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import dask.array as da
import numpy as np
import pandas as pd
from scipy import ndimage

from ._input import _as_volume, _check_schema, _check_voxel_size, _is_numpy
from ._objects import _map_blocks_reduce, _schema_value, label_objects, object_table

__all__ = ["CrackStats", "InclusionStats", "crack_stats", "inclusion_stats"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_count(value, name, *, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _layer_slabs(layers, nz, v):
    """``(names, z_start, z_stop)`` of the layers (slab indices, stop exclusive)."""
    if layers is None:
        idx = np.arange(nz)
        return [int(i) for i in idx], idx, idx + 1
    if isinstance(layers, Integral) and not isinstance(layers, bool):
        n = _check_count(layers, "layers")
        edges = np.rint(np.linspace(0, nz, min(n, nz) + 1)).astype(int)
        return list(range(len(edges) - 1)), edges[:-1], edges[1:]
    if isinstance(layers, pd.DataFrame):
        for col in ("z_start", "z_stop"):
            if col not in layers.columns:
                raise KeyError(f"layers has no column {col!r} (need z_start, z_stop slab indices)")
        a = layers["z_start"].to_numpy(np.int64)
        b = layers["z_stop"].to_numpy(np.int64)
        if np.any(a < 0) or np.any(b > nz) or np.any(b <= a):
            raise ValueError(f"layers z_start/z_stop must satisfy 0 <= z_start < z_stop <= {nz}")
        return list(layers.index), a, b
    raise ValueError(
        "layers must be None (one row per slab), an int (equal slabs) or a DataFrame with "
        f"z_start and z_stop columns, got {type(layers).__name__}"
    )


def _slab_block(offset, lab, phase, ids, outside):
    """Per-slab voxel counts of the objects in `ids` and of the sample (phase != outside)."""
    lab = np.asarray(lab)
    sel = np.isin(lab, ids).reshape(lab.shape[0], -1).sum(axis=1)
    sample = (np.asarray(phase) != outside).reshape(lab.shape[0], -1).sum(axis=1)
    return offset[0], sel.astype(np.int64), sample.astype(np.int64)


def _per_layer(obj_labels, ids, phase, outside, v, layers):
    """Volume of the objects `ids` per layer, and its fraction of the layer's sample volume."""
    nz = obj_labels.shape[0]
    parts = _map_blocks_reduce(_slab_block, [obj_labels, phase],
                               extra=(np.asarray(ids, np.int64), outside))
    sel = np.zeros(nz, np.int64)
    sample = np.zeros(nz, np.int64)
    for z0, s, m in parts:
        sel[z0:z0 + s.size] += s
        sample[z0:z0 + m.size] += m
    names, a, b = _layer_slabs(layers, nz, v)
    cs = np.concatenate([[0], np.cumsum(sel)])
    cm = np.concatenate([[0], np.cumsum(sample)])
    n_sel, n_sample = cs[b] - cs[a], cm[b] - cm[a]
    return pd.DataFrame({
        "layer": names, "z_start": a, "z_stop": b,
        "z_start_um": (a - 0.5) * v, "z_stop_um": (b - 0.5) * v,
        "volume_um3": n_sel * v**3,
        "sample_volume_um3": n_sample * v**3,
        "volume_fraction": np.divide(n_sel, n_sample, out=np.zeros(len(a)), where=n_sample > 0),
    })


def _orientation(table, bin_deg):
    """Volume-weighted histogram of ``angle_to_z_deg`` and the dominant normal.

    The dominant normal is the principal eigenvector of the volume-weighted orientation
    tensor ``Σ V n nᵀ / Σ V`` of the objects' unit normals (thinnest axes): an axial mean,
    insensitive to the sign of each normal.
    """
    edges = np.arange(0.0, 90.0 + bin_deg / 2, bin_deg)
    if edges[-1] < 90.0:
        edges = np.append(edges, 90.0)
    edges[-1] = 90.0
    ang = table["angle_to_z_deg"].to_numpy()
    vol = table["volume_um3"].to_numpy()
    vh, _ = np.histogram(ang, bins=edges, weights=vol)
    nh, _ = np.histogram(ang, bins=edges)
    total = vol.sum()
    hist = pd.DataFrame({
        "angle_lo_deg": edges[:-1], "angle_hi_deg": edges[1:], "count": nh.astype(np.int64),
        "volume_um3": vh, "volume_fraction": vh / total if total > 0 else np.zeros_like(vh),
    })
    if len(table) == 0 or total <= 0:
        return hist, np.full(3, np.nan), np.nan
    t = np.radians(ang)
    az = np.radians(table["azimuth_deg"].to_numpy())
    n = np.stack([np.cos(t), np.sin(t) * np.sin(az), np.sin(t) * np.cos(az)], axis=1)
    tensor = np.einsum("k,ki,kj->ij", vol, n, n) / total
    w, vec = np.linalg.eigh(tensor)
    normal = vec[:, -1] * (1.0 if vec[0, -1] >= 0 else -1.0)
    angle = float(np.degrees(np.arccos(np.clip(abs(normal[0]), 0.0, 1.0))))
    return hist, normal, angle


def _phase_volume(labels, schema_values):
    """Voxel count of each label value (out of core): dict value → count."""
    vals = np.asarray(sorted(schema_values), dtype=np.int64)

    def count(offset, block):
        b = np.asarray(block)
        return np.array([np.count_nonzero(b == x) for x in vals], np.int64)

    parts = _map_blocks_reduce(count, [labels])
    tot = np.sum(parts, axis=0)
    return dict(zip(vals.tolist(), tot.tolist()))


# --------------------------------------------------------------------------------------------
# cracks
# --------------------------------------------------------------------------------------------


@dataclass
class CrackStats:
    """Cracks of a labelled cell (result of :func:`crack_stats`).

    Attributes
    ----------
    cracks : pandas.DataFrame
        One row per crack: the columns of :func:`object_table` (µm, degrees) plus
        ``aperture_um``: the thickness of the uniform sheet with the same second moment
        along the crack normal, ``sqrt(12 λ_min)`` (a flat crack of uniform opening *t*
        has ``λ_min = t² / 12``; for an ellipsoidal lens of centre opening 2c it is
        ``0.77 × 2c``); ``2 * semi_axis_c_um`` is the centre opening of the equivalent
        ellipsoid.
    total_volume_um3 : float
        Sum of the crack volumes, µm³.
    n_cracks : int
    orientation : pandas.DataFrame
        Histogram of ``angle_to_z_deg``: ``angle_lo_deg``, ``angle_hi_deg``, ``count``,
        ``volume_um3`` and ``volume_fraction`` (volume-weighted).
    dominant_normal : (3,) ndarray of float64
        Unit ``(z, y, x)`` principal direction of the volume-weighted orientation tensor of
        the crack normals (NaN without cracks).
    dominant_angle_to_z_deg : float
        Angle between `dominant_normal` and z, degrees (0 = cracks ⟂ z).
    per_layer : pandas.DataFrame
        ``layer``, ``z_start``, ``z_stop`` (slab indices), ``z_start_um``, ``z_stop_um``,
        ``volume_um3`` (crack volume), ``sample_volume_um3`` (label ≠ outside) and
        ``volume_fraction``.
    labels : ndarray or dask array of int32
        Components of the crack candidates (ids of the ``cracks`` table among them).
    method : str
        ``"label"`` (cracks from the schema's ``crack`` label) or ``"shape"`` (void
        components told apart by shape).
    """

    cracks: pd.DataFrame
    total_volume_um3: float
    n_cracks: int
    orientation: pd.DataFrame
    dominant_normal: np.ndarray
    dominant_angle_to_z_deg: float
    per_layer: pd.DataFrame
    labels: object
    method: str


def _sheet_opening(mask, radius_vox):
    """Morphological opening of `mask` by a one-voxel-thick disc ⟂ z of radius `radius_vox`."""
    r = int(np.floor(radius_vox))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = (yy * yy + xx * xx <= radius_vox * radius_vox)[None]
    if _is_numpy(mask):
        return ndimage.binary_opening(mask, structure=disc)
    # erosion needs r voxels of context, the dilation of the eroded set r more
    return da.map_overlap(ndimage.binary_opening, mask, depth=(0, 2 * r, 2 * r),
                          boundary="none", dtype=bool, structure=disc)


def crack_stats(labels, voxel_size_um, *, schema=None, layers=None, flatness_max=0.35,
                min_voxels=50, sheet_radius_um=3.0, connectivity=1, angle_bin_deg=5.0):
    """Cracks in a label volume: per-crack table, total volume, orientation, volume per layer.

    Void phase convention: the ``pore`` label (0 in :data:`tomopipe.simulate.LABELS`) holds
    pores *and* cracks; ``outside`` (255) is not void. If `schema` has a ``crack`` label, the
    segmentation already separates them and every component of that label with at least
    `min_voxels` voxels is a crack (``method="label"``). Otherwise cracks are told apart
    from the rounder pores by shape (``method="shape"``):

    1. the void is opened by a one-voxel-thick disc ⟂ z of radius `sheet_radius_um`: what
       is kept is void at least one disc wide in the y-x plane (thin cracks ⟂ z, the wide
       planes of large pores); small pores, and pore voxels merely touching a crack, drop
       out, which splits cracks from the pore network they cut through;
    2. components of what is kept with ``flatness = c / a <= flatness_max`` and at least
       `min_voxels` voxels are cracks (big round pores stay, but are not flat).

    Step 1 looks for sheets near ⟂ z (the cracks of a cell under stack pressure): a sheet
    tilted by θ keeps flat terraces ``1 / tan θ`` voxels wide, so cracks steeper than about
    10° from ⟂ z are lost, and so are crack tips and corners narrower than the disc (about
    3 % of the crack volume on the simulator's cells). Pass ``sheet_radius_um=None`` to skip it and classify whole void
    components by flatness (right when cracks do not touch pores).

    Parameters
    ----------
    labels : (n_z, n_y, n_x) ndarray, dask array or zarr array of int
        Phase labels, axes ``(z, y, x)``.
    voxel_size_um : float
        Voxel edge, µm.
    schema : mapping of str to int, optional
        Label name → value; default :data:`tomopipe.simulate.LABELS`. Uses ``pore`` (or
        ``crack``) and ``outside`` (optional).
    layers : None, int or pandas.DataFrame
        Layers for ``per_layer``: None one row per z slab; an int, that many slabs of equal
        thickness; a DataFrame with ``z_start``, ``z_stop`` columns (slab indices, stop
        exclusive), e.g. :attr:`tomopipe.simulate.State.layers`, one row per layer.
    flatness_max : float
        Largest ``c / a`` of a crack (shape method only).
    min_voxels : int
        Smallest crack, voxels.
    sheet_radius_um : float or None
        Radius of the opening disc, µm (default 3 µm: 3.4 voxels at 0.88 µm); None skips the
        opening.
    connectivity : {1, 2, 3}
        Connectivity of the components (:func:`label_objects`).
    angle_bin_deg : float
        Bin width of the orientation histogram, degrees.

    Returns
    -------
    CrackStats
        ``cracks`` table (:func:`object_table` columns + ``aperture_um``),
        ``total_volume_um3``, ``n_cracks``, ``orientation`` histogram,
        ``dominant_normal``, ``dominant_angle_to_z_deg``, ``per_layer``, ``labels``,
        ``method``.

    Raises
    ------
    KeyError
        If `schema` has neither ``crack`` nor ``pore``.
    ValueError
        If a parameter is out of range (the message names it) or `labels` is not 3-D.

    Notes
    -----
    On the simulator's cells (:func:`tomopipe.simulate.insitu_sequence`, 96³, 0.88 µm,
    10 % cathode porosity, cracks 1–3 voxels thick and ≤ 7.5° from ⟂ z) the shape method
    with the defaults finds the total crack volume of the fully grown (D0.7V) and partly
    healed (C3.0V) states within 5 %; small, partly grown cracks (D1.2V, radii of a few
    voxels) are not resolved from pores by shape.

    References
    ----------
    .. [1] W. Zhang et al., "Correlating Electrochemical Behavior and Microstructure of
       CuS-Based All-Solid-State Batteries by In Situ X-Ray Tomography", Adv. Energy Mater.
       (2022): cracks ⟂ the stack axis.
    .. [2] J. Serra, *Image Analysis and Mathematical Morphology* (Academic Press, 1982):
       openings by oriented structuring elements.

    Examples
    --------
    >>> lab = np.ones((9, 20, 20), np.uint8); lab[4, 2:18, 2:18] = 0
    >>> s = crack_stats(lab, 1.0, sheet_radius_um=None)
    >>> s.n_cracks, float(s.total_volume_um3), round(s.dominant_angle_to_z_deg, 3)
    (1, 256.0, 0.0)
    >>> float(crack_stats(lab, 1.0).total_volume_um3)  # the opening rounds the square's corners
    236.0
    """
    v = _check_voxel_size(voxel_size_um)
    sch = _check_schema(schema)
    min_voxels = _check_count(min_voxels, "min_voxels")
    fmax = float(flatness_max)
    if not (0.0 < fmax <= 1.0):
        raise ValueError(f"flatness_max must lie in (0, 1], got {flatness_max!r}")
    if not (np.isfinite(angle_bin_deg) and 0 < float(angle_bin_deg) <= 90):
        raise ValueError(f"angle_bin_deg must lie in (0, 90], got {angle_bin_deg!r}")
    lab = _as_volume(labels, "labels")
    if "crack" in sch:
        method = "label"
        mask = lab == sch["crack"]
    else:
        method = "shape"
        mask = lab == _schema_value(sch, "pore", param="schema")
        if sheet_radius_um is not None:
            r = float(sheet_radius_um)
            if not (np.isfinite(r) and r > 0):
                raise ValueError(f"sheet_radius_um must be > 0 (µm) or None, got {sheet_radius_um!r}")
            mask = _sheet_opening(mask, r / v)
    comp, _ = label_objects(mask, connectivity=connectivity)
    table = object_table(comp, v)
    keep = table["n_voxels"] >= min_voxels
    if method == "shape":
        keep &= table["flatness"] <= fmax
    cracks = table[keep].reset_index(drop=True)
    semi_c = cracks["semi_axis_c_um"].to_numpy()
    cracks["aperture_um"] = np.sqrt(12.0 / 5.0) * semi_c  # sqrt(12 λ_min), λ_min = c² / 5
    hist, normal, angle = _orientation(cracks, float(angle_bin_deg))
    outside = sch.get("outside", -1)
    per_layer = _per_layer(comp, cracks["id"].to_numpy(), lab, outside, v, layers)
    return CrackStats(
        cracks=cracks, total_volume_um3=float(cracks["volume_um3"].sum()),
        n_cracks=len(cracks), orientation=hist, dominant_normal=normal,
        dominant_angle_to_z_deg=angle, per_layer=per_layer, labels=comp, method=method,
    )


# --------------------------------------------------------------------------------------------
# inclusions
# --------------------------------------------------------------------------------------------


@dataclass
class InclusionStats:
    """Cu-rich inclusions of a labelled cell (result of :func:`inclusion_stats`).

    Attributes
    ----------
    inclusions : pandas.DataFrame
        One row per inclusion component: the :func:`object_table` columns plus
        ``host_id`` (the host particle, see :func:`inclusion_stats`; 0 if none).
    n_inclusions : int
    total_volume_um3 : float
        Volume of all inclusion voxels, µm³ (including components below `min_voxels`).
    active_fraction : float
        ``inclusion / (active + inclusion)`` volume: the share of the (converted) active
        material that is Cu-rich.
    hosts : pandas.DataFrame
        One row per host particle holding inclusions: ``host_id``, ``n_inclusions``,
        ``inclusion_volume_um3``, ``host_volume_um3`` (active + inclusion voxels of the
        host), ``inclusion_fraction``.
    size_distribution : pandas.DataFrame
        Histogram of ``equivalent_diameter_um``: ``diameter_lo_um``, ``diameter_hi_um``,
        ``count``, ``volume_um3``.
    orientation : pandas.DataFrame
        Histogram of ``angle_to_z_deg`` (as :attr:`CrackStats.orientation`).
    dominant_normal : (3,) ndarray
    dominant_angle_to_z_deg : float
        Principal direction of the volume-weighted orientation tensor of the normals of the
        inclusions with at least `min_voxels_shape` voxels, and its angle to z.
    per_layer : pandas.DataFrame
        Inclusion volume per layer (columns as :attr:`CrackStats.per_layer`).
    labels : ndarray or dask array of int32
        Inclusion components.
    host_labels : ndarray or dask array of int
        Host particle ids used.
    """

    inclusions: pd.DataFrame
    n_inclusions: int
    total_volume_um3: float
    active_fraction: float
    hosts: pd.DataFrame
    size_distribution: pd.DataFrame
    orientation: pd.DataFrame
    dominant_normal: np.ndarray
    dominant_angle_to_z_deg: float
    per_layer: pd.DataFrame
    labels: object
    host_labels: object


def _pair_block(offset, a, b):
    """Voxel counts of each (a, b) id pair with a > 0 in one block."""
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    m = a > 0
    pairs = np.stack([a[m].astype(np.int64), b[m].astype(np.int64)], axis=1)
    if pairs.size == 0:
        return pd.DataFrame({"a": [], "b": [], "n": []}, dtype=np.int64)
    u, c = np.unique(pairs, axis=0, return_counts=True)
    return pd.DataFrame({"a": u[:, 0], "b": u[:, 1], "n": c.astype(np.int64)})


def _id_counts(offset, lab):
    ids, c = np.unique(np.asarray(lab), return_counts=True)
    return pd.DataFrame({"id": ids.astype(np.int64), "n": c.astype(np.int64)})


def inclusion_stats(labels, voxel_size_um, *, schema=None, layers=None, particle_labels=None,
                    min_voxels=1, min_voxels_shape=8, diameter_bins=10, angle_bin_deg=5.0,
                    connectivity=1):
    """Cu-rich inclusions: count, volume, sizes, orientation, host particles, per layer.

    Inclusions are the components of the ``inclusion`` label (3 in
    :data:`tomopipe.simulate.LABELS`); inclusions that touch (with `connectivity`) are one
    component. The *host particle* of an inclusion is, by default, the connected component
    of ``active ∪ inclusion`` that contains it (particles that touch share a host); pass
    `particle_labels` (instance ids of the particles, e.g. from a watershed split or the
    simulator's ``particle_ids``) to use those instead: the host is then the particle id
    holding most of the inclusion's voxels.

    Parameters
    ----------
    labels : (n_z, n_y, n_x) ndarray, dask array or zarr array of int
        Phase labels, axes ``(z, y, x)``.
    voxel_size_um : float
        Voxel edge, µm.
    schema : mapping of str to int, optional
        Label name → value; default :data:`tomopipe.simulate.LABELS`. Uses ``inclusion``,
        ``active`` and ``outside`` (optional).
    layers : None, int or pandas.DataFrame
        Layers of ``per_layer`` (see :func:`crack_stats`).
    particle_labels : (n_z, n_y, n_x) array of int, optional
        Particle instance ids (0 = none), same shape as `labels`.
    min_voxels : int
        Smallest inclusion listed in the table, voxels (the totals count all voxels).
    min_voxels_shape : int
        Smallest inclusion whose orientation enters ``orientation`` and the dominant
        orientation (the axes of a few-voxel object are noise).
    diameter_bins : int or sequence of float
        Bins of the size distribution: a number of equal bins between the smallest and the
        largest equivalent diameter, or bin edges in µm.
    angle_bin_deg : float
        Bin width of the orientation histogram, degrees.
    connectivity : {1, 2, 3}
        Connectivity of inclusion and host components.

    Returns
    -------
    InclusionStats
        ``inclusions`` table (:func:`object_table` columns + ``host_id``),
        ``n_inclusions``, ``total_volume_um3``, ``active_fraction``, ``hosts``,
        ``size_distribution``, ``orientation``, ``dominant_normal``,
        ``dominant_angle_to_z_deg``, ``per_layer``, ``labels``, ``host_labels``.

    Raises
    ------
    KeyError
        If `schema` lacks ``inclusion`` or ``active``.
    ShapeMismatchError
        If `particle_labels` and `labels` differ in shape.
    ValueError
        If a parameter is out of range or a volume is not 3-D.

    References
    ----------
    .. [1] W. Zhang et al., Adv. Energy Mater. (2022): Cu-rich inclusions formed in CuS
       particles on discharge, flat and ⟂ the stack axis, dissolving on charge.

    Examples
    --------
    >>> lab = np.full((6, 10, 10), 1, np.uint8); lab[1:5, 1:9, 1:9] = 2
    >>> lab[2, 2:7, 2:7] = 3
    >>> s = inclusion_stats(lab, 1.0)
    >>> s.n_inclusions, float(s.total_volume_um3), float(s.active_fraction)
    (1, 25.0, 0.09765625)
    """
    from .._validate import check_shape_equality

    v = _check_voxel_size(voxel_size_um)
    sch = _check_schema(schema)
    min_voxels = _check_count(min_voxels, "min_voxels")
    min_voxels_shape = _check_count(min_voxels_shape, "min_voxels_shape")
    if not (np.isfinite(angle_bin_deg) and 0 < float(angle_bin_deg) <= 90):
        raise ValueError(f"angle_bin_deg must lie in (0, 90], got {angle_bin_deg!r}")
    inc_val = _schema_value(sch, "inclusion", param="schema")
    act_val = _schema_value(sch, "active", param="schema")
    lab = _as_volume(labels, "labels")
    chunks = None if _is_numpy(lab) else lab.chunks

    comp, _ = label_objects(lab == inc_val, connectivity=connectivity)
    table = object_table(comp, v)
    if particle_labels is None:
        host, _ = label_objects((lab == inc_val) | (lab == act_val), connectivity=connectivity)
    else:
        check_shape_equality(np.shape(particle_labels), lab.shape, a_name="particle_labels",
                             b_name="labels")
        host = _as_volume(particle_labels, "particle_labels", chunks_like=chunks)
        if _is_numpy(host) and not _is_numpy(comp):
            host = da.from_array(host, chunks=comp.chunks)
    if _is_numpy(comp) and not _is_numpy(host):
        comp = da.from_array(comp, chunks=host.chunks)

    # host of each inclusion: the host id holding most of its voxels (0 = none)
    pairs = pd.concat(_map_blocks_reduce(_pair_block, [comp, host]), ignore_index=True)
    pairs = pairs.groupby(["a", "b"], as_index=False)["n"].sum()
    nonzero = pairs[pairs["b"] > 0].sort_values(["a", "n", "b"], ascending=[True, False, True])
    best = nonzero.drop_duplicates("a").set_index("a")["b"]
    table["host_id"] = table["id"].map(best).fillna(0).astype(np.int64)

    counts = _phase_volume(lab, [inc_val, act_val])
    n_inc, n_act = counts[inc_val], counts[act_val]
    total = n_inc * v**3
    active_fraction = n_inc / (n_inc + n_act) if n_inc + n_act else 0.0

    # hosts: inclusion volume per host and the host's active + inclusion volume
    hosted = table[table["host_id"] > 0]
    hosts = hosted.groupby("host_id").agg(n_inclusions=("id", "size"),
                                          inclusion_volume_um3=("volume_um3", "sum"))
    if particle_labels is None:
        host_sizes = pd.concat(_map_blocks_reduce(_id_counts, [host]), ignore_index=True)
        host_sizes = host_sizes.groupby("id")["n"].sum()
    else:
        solid = (lab == inc_val) | (lab == act_val)
        if _is_numpy(solid) and not _is_numpy(host):
            solid = da.from_array(solid, chunks=host.chunks)
        masked = host * solid if not _is_numpy(host) else np.where(solid, host, 0)
        host_sizes = pd.concat(_map_blocks_reduce(_id_counts, [masked]), ignore_index=True)
        host_sizes = host_sizes.groupby("id")["n"].sum()
    hosts["host_volume_um3"] = host_sizes.reindex(hosts.index).fillna(0).to_numpy() * v**3
    hosts["inclusion_fraction"] = np.divide(
        hosts["inclusion_volume_um3"].to_numpy(), hosts["host_volume_um3"].to_numpy(),
        out=np.zeros(len(hosts)), where=hosts["host_volume_um3"].to_numpy() > 0)
    hosts = hosts.reset_index()

    listed = table[table["n_voxels"] >= min_voxels].reset_index(drop=True)
    d = listed["equivalent_diameter_um"].to_numpy()
    if isinstance(diameter_bins, Integral) and not isinstance(diameter_bins, bool):
        nb = _check_count(diameter_bins, "diameter_bins")
        lo, hi = (float(d.min()), float(d.max())) if d.size else (0.0, 1.0)
        edges = np.linspace(lo, hi if hi > lo else lo + v, nb + 1)
    else:
        edges = np.asarray(diameter_bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("diameter_bins must be an int or increasing bin edges (µm)")
    nh, _ = np.histogram(d, bins=edges)
    vh, _ = np.histogram(d, bins=edges, weights=listed["volume_um3"].to_numpy())
    size_dist = pd.DataFrame({"diameter_lo_um": edges[:-1], "diameter_hi_um": edges[1:],
                              "count": nh.astype(np.int64), "volume_um3": vh})
    shaped = listed[listed["n_voxels"] >= min_voxels_shape]
    hist, normal, angle = _orientation(shaped, float(angle_bin_deg))
    outside = sch.get("outside", -1)
    per_layer = _per_layer(comp, listed["id"].to_numpy(), lab, outside, v, layers)
    return InclusionStats(
        inclusions=listed, n_inclusions=len(listed), total_volume_um3=float(total),
        active_fraction=float(active_fraction), hosts=hosts, size_distribution=size_dist,
        orientation=hist, dominant_normal=normal, dominant_angle_to_z_deg=angle,
        per_layer=per_layer, labels=comp, host_labels=host,
    )
