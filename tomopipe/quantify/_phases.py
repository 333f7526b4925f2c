"""Cu-rich inclusions of a labelled cell: objects, sizes, orientation, host particles, layers.

Conventions
-----------
Labels
    A label volume ``(z, y, x)`` with a :class:`tomopipe.schema.LabelSchema` that has an
    ``inclusion`` class and the ``active`` class that hosts it (e.g. the CuS cell's
    schemas: 2 active, 3 inclusion); the outside class, if any, is never counted.
Axes, units
    z is the stack (pressure) axis; ``voxel_size_um = (dz, dy, dx)`` in µm (one number: cubic
    voxels). Lengths in µm, volumes in µm³, voxel ``(i, j, k)`` centred at
    ``(i dz, j dy, k dx)``.
Angles
    ``angle_to_z_deg`` is the angle between an object's thinnest principal axis (its normal,
    for a flat object) and z, in [0°, 90°]: 0° is an object lying ⟂ z.

Cracks are in :mod:`tomopipe.quantify._cracks`. Both accept NumPy, dask or zarr label
volumes and work chunk by chunk for the latter (see :mod:`tomopipe.quantify._objects`).
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd

from ._cracks import _layer_table, _objects_per_slice, _orientation, _sample_per_slice
from ._input import (
    _as_volume,
    _check_schema,
    _check_voxel_size,
    _doc_layers,
    _check_count,
    _is_numpy,
    _resolve_slabs,
    _size_distribution,
)
from ._objects import _map_blocks_reduce, label_objects, object_table

__all__ = ["InclusionStats", "inclusion_stats"]


def _phase_volume(labels, schema_values):
    """Voxel count of each label value (out of core): dict value → count."""
    vals = np.asarray(sorted(schema_values), dtype=np.int64)

    def count(offset, block):
        b = np.asarray(block)
        return np.array([np.count_nonzero(b == x) for x in vals], np.int64)

    parts = _map_blocks_reduce(count, [labels])
    tot = np.sum(parts, axis=0)
    return dict(zip(vals.tolist(), tot.tolist()))


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
        Histogram of ``angle_to_z_deg`` (as :attr:`tomopipe.quantify.CrackStats.orientation`).
    dominant_normal : (3,) ndarray
    dominant_angle_to_z_deg : float
        Principal direction of the volume-weighted orientation tensor of the normals of the
        inclusions with at least `min_voxels_shape` voxels, and its angle to z.
    per_layer : pandas.DataFrame
        Inclusion volume per layer (columns as
        :attr:`tomopipe.quantify.CrackStats.per_layer`: ``n_objects`` counts the inclusions
        whose centroid lies in the slab).
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


@_doc_layers
def inclusion_stats(labels, voxel_size_um, *, schema=None, layers=None, n_layers=None,
                    thickness_um=None, z_range_um=None, particle_labels=None, min_voxels=1,
                    min_voxels_shape=8, diameter_bins=10, angle_bin_deg=5.0, connectivity=1):
    """Cu-rich inclusions: count, volume, sizes, orientation, host particles, per layer.

    Inclusions are the components of the ``inclusion`` class; inclusions that touch (with `connectivity`) are one
    component. The *host particle* of an inclusion is, by default, the connected component
    of ``active ∪ inclusion`` that contains it (particles that touch share a host); pass
    `particle_labels` (instance ids of the particles, e.g. from a watershed split or the
    simulator's ``particle_ids``) to use those instead: the host is then the particle id
    holding most of the inclusion's voxels.

    Parameters
    ----------
    labels : (n_z, n_y, n_x) ndarray, dask array or zarr array of int
        Phase labels, axes ``(z, y, x)``.
    voxel_size_um : float or (3,) sequence of float
        ``(dz, dy, dx)`` in µm, or one number.
    schema : LabelSchema or mapping, optional
        Label schema; default: stored with `labels`, else
        :data:`tomopipe.schema.SIMULATOR_TRUTH`. Needs ``inclusion`` and ``active``.
    LAYERS_PARAMS
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
    tomopipe.schema.MissingClassError
        If `schema` lacks ``inclusion`` or ``active`` (also a ``KeyError``).
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
    >>> s = inclusion_stats(lab, 1.0, schema={"electrolyte": 1, "active": 2, "inclusion": 3})
    >>> s.n_inclusions, float(s.total_volume_um3), float(s.active_fraction)
    (1, 25.0, 0.09765625)
    """
    from .._validate import check_shape_equality

    vox = _check_voxel_size(voxel_size_um)
    sch = _check_schema(schema, labels)
    min_voxels = _check_count(min_voxels, "min_voxels")
    min_voxels_shape = _check_count(min_voxels_shape, "min_voxels_shape")
    if not (np.isfinite(angle_bin_deg) and 0 < float(angle_bin_deg) <= 90):
        raise ValueError(f"angle_bin_deg must lie in (0, 90], got {angle_bin_deg!r}")
    sch.require("inclusion", "active", metric="inclusion_stats")
    inc_val, act_val = sch["inclusion"], sch["active"]
    lab = _as_volume(labels, "labels")
    slabs = _resolve_slabs(lab.shape[0], vox.dz, layers, n_layers, thickness_um, z_range_um)
    chunks = None if _is_numpy(lab) else lab.chunks

    comp, _ = label_objects(lab == inc_val, connectivity=connectivity)
    table = object_table(comp, vox)
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
    total = n_inc * vox.volume
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
    hosts["host_volume_um3"] = host_sizes.reindex(hosts.index).fillna(0).to_numpy() * vox.volume
    hosts["inclusion_fraction"] = np.divide(
        hosts["inclusion_volume_um3"].to_numpy(), hosts["host_volume_um3"].to_numpy(),
        out=np.zeros(len(hosts)), where=hosts["host_volume_um3"].to_numpy() > 0)
    hosts = hosts.reset_index()

    listed = table[table["n_voxels"] >= min_voxels].reset_index(drop=True)
    size_dist = _size_distribution(listed["equivalent_diameter_um"].to_numpy(), listed["volume_um3"].to_numpy(),
                                   diameter_bins, vox)
    shaped = listed[listed["n_voxels"] >= min_voxels_shape]
    hist, normal, angle = _orientation(shaped, float(angle_bin_deg))
    per_slice = _objects_per_slice(comp, listed["id"].to_numpy(), lab.shape[0])
    per_layer = _layer_table(per_slice, _sample_per_slice(lab, sch),
                             listed["centroid_z_um"].to_numpy() / vox.dz, slabs, vox)
    return InclusionStats(
        inclusions=listed, n_inclusions=len(listed), total_volume_um3=float(total),
        active_fraction=float(active_fraction), hosts=hosts, size_distribution=size_dist,
        orientation=hist, dominant_normal=normal, dominant_angle_to_z_deg=angle,
        per_layer=per_layer, labels=comp, host_labels=host,
    )
