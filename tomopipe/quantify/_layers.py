"""Per-layer statistics of label volumes: voxel counts, porosity and phase fractions along z.

A *layer* is a slab of constant z (z is the stack, i.e. pressure, axis of the cell). Every
function here reduces a ``(z, y, x)`` label volume to per-slice voxel counts in a single pass
over the data, block by block, so a label volume far larger than memory (a NumPy array, a
dask array or a zarr array) is processed with RAM bounded by one chunk; all statistics are
then derived from the ``(n_z, n_labels)`` table of counts.

Conventions
-----------
Axes
    Volumes are ``(z, y, x)``.
Voxels
    ``voxel_size_um`` is ``(dz, dy, dx)`` in µm (a number means cubic voxels); a voxel has
    the volume ``dz * dy * dx``.
Coordinates
    Positions are in µm with the centre of slice ``i`` at ``z = i * dz``; slice ``i`` spans
    ``[(i - ½) dz, (i + ½) dz]``. A slab given by its boundaries ``[a, b)`` in µm holds the
    whole slices whose centre lies in it (``a <= i dz < b``), and its reported
    ``z_start_um``/``z_stop_um`` are the outer faces of those slices. Every per-layer table
    of :mod:`tomopipe.quantify` takes its slabs from the same parameters (``layers``,
    ``n_layers``, ``thickness_um``, ``z_range_um``) with this meaning.
Phases
    A :class:`tomopipe.schema.LabelSchema` (or a mapping name → value) says what the labels
    mean; default: the schema stored with a zarr array, else the simulator's
    (:data:`tomopipe.schema.SIMULATOR_TRUTH`). *Sample* voxels are those not labelled with
    one of `exclude` (default: the schema's outside class, if it has one); porosity is the
    fraction of sample voxels labelled with one of `pore_labels` (default: the schema's void
    classes, e.g. ``pore`` and ``crack``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import ShapeMismatchError
from ._input import (
    _as_array,
    _check_schema,
    _check_voxel_size,
    _doc_layers,
    _is_dask,
    _resolve_slabs,
    _slab_frame,
)

__all__ = ["slice_counts", "layer_stats", "porosity_profile", "LayerStats"]

#: Voxels read at once from a NumPy volume (its slabs of whole slices are processed in turn).
_SLAB_VOXELS = 1 << 24


def _z_slabs(nz, ny, nx):
    """``(start, stop)`` ranges of whole slices holding at most ~_SLAB_VOXELS voxels."""
    k = max(1, _SLAB_VOXELS // max(1, ny * nx))
    return [(z, min(nz, z + k)) for z in range(0, nz, k)]


# --------------------------------------------------------------------------------------------
# slice counts
# --------------------------------------------------------------------------------------------


def _count_block(block, values):
    """``(bz, len(values) + 1)`` int64 counts of each label value per slice of `block`.

    The last column counts the voxels whose value is not in `values`.
    """
    block = np.asarray(block)
    bz = block.shape[0]
    out = np.zeros((bz, len(values) + 1), dtype=np.int64)
    per_slice = block[0].size if bz else 0
    if block.dtype.kind == "b":
        block = block.view(np.uint8)
    if block.dtype.itemsize <= 2:
        udt = np.dtype(f"u{block.dtype.itemsize}")
        u = block.view(udt)
        size = 1 << (8 * udt.itemsize)
        # negative values of a signed dtype land at >= size // 2: never a schema value
        limit = size if block.dtype.kind in "ub" else size // 2
        codes = [(j, v) for j, v in enumerate(values) if v < limit]
        for z in range(bz):
            bc = np.bincount(u[z].ravel(), minlength=size)
            for j, v in codes:
                out[z, j] = bc[v]
    else:
        lut = {v: j for j, v in enumerate(values)}
        for z in range(bz):
            vals, cnt = np.unique(block[z], return_counts=True)
            for val, c in zip(vals.tolist(), cnt.tolist()):
                j = lut.get(val)
                if j is not None:
                    out[z, j] = c
    out[:, -1] = per_slice - out[:, :-1].sum(axis=1)
    return out


def _count_block4(block, values):
    return _count_block(block, values)[:, None, None, :]


def _raw_counts(labels, values):
    """``(n_z, len(values) + 1)`` counts of `labels` (NumPy or dask), one pass."""
    if _is_dask(labels):
        nby, nbx = len(labels.chunks[1]), len(labels.chunks[2])
        per_block = labels.map_blocks(
            _count_block4,
            values,
            dtype=np.int64,
            new_axis=3,
            chunks=(labels.chunks[0], (1,) * nby, (1,) * nbx, (len(values) + 1,)),
        )
        return np.asarray(per_block.sum(axis=(1, 2)).compute(), dtype=np.int64)
    nz, ny, nx = labels.shape
    out = np.zeros((nz, len(values) + 1), dtype=np.int64)
    for a, b in _z_slabs(nz, ny, nx):
        out[a:b] = _count_block(labels[a:b], values)
    return out


def _check_integer_labels(arr, *, name):
    if arr.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer labels, got dtype {arr.dtype}")


def slice_counts(labels, *, schema=None):
    """Voxel count of every label in every z slice, computed chunk by chunk.

    Parameters
    ----------
    labels : (z, y, x) array_like of integer (uint8 usually)
        Label volume: a NumPy array, a dask array or a zarr (or h5py) array. Dask and zarr
        inputs are reduced block by block (a per-slice :func:`numpy.bincount` over the
        ``(y, x)`` plane of each block, summed over the blocks of a slice) in one pass, with
        RAM bounded by one chunk; NumPy input is processed in slabs of whole slices.
    schema : mapping of str to int, optional
        Label schema ``name -> value``; default :data:`tomopipe.simulate.LABELS`.

    Returns
    -------
    counts : pandas.DataFrame
        Index ``z`` (slice index, 0 … n_z − 1; slice ``i`` is centred at
        ``i * voxel_size_um``); one int64 column per label name of `schema`, in schema order:
        the number of voxels of that label in the slice.

    Raises
    ------
    ValueError
        If `labels` is not 3-D, or holds values that are not in `schema` (the message gives
        their number and the first slice holding one).
    TypeError
        If `labels` is not of an integer dtype, or `schema` is not a mapping of names to
        integer values.

    See Also
    --------
    layer_stats : porosity and phase fractions per slab, built on these counts.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((2, 3, 3), dtype=np.uint8)
    >>> lab[1, 0, :] = 1
    >>> slice_counts(lab, schema={"pore": 0, "solid": 1})  # doctest: +NORMALIZE_WHITESPACE
       pore  solid
    z
    0     9      0
    1     6      3
    """
    schema = _check_schema(schema, labels)
    arr = _as_array(labels, name="labels")
    _check_integer_labels(arr, name="labels")
    values = list(schema.values())
    raw = _raw_counts(arr, values)
    unknown = raw[:, -1]
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise ValueError(
            f"labels holds {int(unknown.sum())} voxels whose value is not in schema "
            f"{schema} (first in slice z={first}); pass the full label schema"
        )
    return pd.DataFrame(
        raw[:, :-1], index=pd.RangeIndex(raw.shape[0], name="z"), columns=list(schema)
    )


def _counts_table(labels, schema):
    """Counts DataFrame of `labels`, or `labels` itself when it already is one (validated)."""
    if isinstance(labels, pd.DataFrame):
        missing = [n for n in schema if n not in labels.columns]
        if missing:
            raise ValueError(
                f"labels (a slice-counts table) lacks the columns {missing} of schema; "
                "make it with slice_counts(labels, schema=schema)"
            )
        counts = labels[list(schema)].to_numpy()
        if counts.dtype.kind not in "iu" or (counts < 0).any():
            raise ValueError("labels (a slice-counts table) must hold non-negative integer counts")
        return counts.astype(np.int64, copy=False)
    return slice_counts(labels, schema=schema).to_numpy()


def _label_names(names, schema, *, name):
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    schema.require(*names, metric=name)
    return names


def _void_and_excluded(schema, pore_labels, exclude):
    """Names of the void classes (default: the schema's) and of the excluded ones (default:
    its outside class, if any); they must not overlap."""
    if pore_labels is None:
        schema.require(void=True, metric="porosity (pore_labels)")
        pore = schema.void
    else:
        pore = _label_names(pore_labels, schema, name="pore_labels")
    if exclude is None:
        excl = (schema.outside,) if schema.outside else ()
    else:
        excl = _label_names(exclude, schema, name="exclude")
    both = sorted(set(pore) & set(excl))
    if both:
        raise ValueError(f"pore_labels and exclude share the label(s) {both}")
    return pore, excl


# --------------------------------------------------------------------------------------------
# objects per slab
# --------------------------------------------------------------------------------------------


def _object_block(block, z0, ranges):
    """Per-block object summary: voxels per slice, ids per slab, and (id, voxels, Σz) sums."""
    block = np.asarray(block)
    bz = block.shape[0]
    vox = np.zeros(bz, dtype=np.int64)
    ids_z, cnt_z = [], []
    for z in range(bz):
        sl = block[z]
        sel = sl[sl != 0]
        vox[z] = sel.size
        u, c = np.unique(sel, return_counts=True)
        ids_z.append(u)
        cnt_z.append(c.astype(np.int64))
    per_slab = {}
    for k, (start, stop) in enumerate(ranges):
        a, b = max(start, z0), min(stop, z0 + bz)
        if b > a:
            per_slab[k] = np.unique(np.concatenate(ids_z[a - z0:b - z0]))
    all_ids = np.concatenate(ids_z) if ids_z else np.zeros(0, dtype=block.dtype)
    all_cnt = np.concatenate(cnt_z) if cnt_z else np.zeros(0, dtype=np.int64)
    all_z = np.repeat(np.arange(z0, z0 + bz, dtype=np.int64), [u.size for u in ids_z])
    u, inv = np.unique(all_ids, return_inverse=True)
    n = np.zeros(u.size, dtype=np.int64)
    zsum = np.zeros(u.size, dtype=np.int64)
    np.add.at(n, inv, all_cnt)
    np.add.at(zsum, inv, all_cnt * all_z)
    return z0, vox, per_slab, (u.astype(np.int64), n, zsum)


def _object_columns(ids, name, slabs, nz, shape, vvol):
    """Per-slab and total object columns for one id volume."""
    import dask

    arr = _as_array(ids, name=f"object_counts[{name!r}]")
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ShapeMismatchError(
            f"object_counts[{name!r}] has shape {tuple(arr.shape)}, labels has {tuple(shape)}"
        )
    if arr.shape[0] != nz:
        raise ShapeMismatchError(
            f"object_counts[{name!r}] has {arr.shape[0]} slices, labels has {nz}"
        )
    _check_integer_labels(arr, name=f"object_counts[{name!r}]")
    ranges = [(s, e) for _, s, e in slabs]
    if _is_dask(arr):
        z_off = np.concatenate([[0], np.cumsum(arr.chunks[0])[:-1]])
        blocks = arr.to_delayed()
        tasks = [
            dask.delayed(_object_block)(blocks[i, j, k], int(z_off[i]), ranges)
            for i in range(blocks.shape[0])
            for j in range(blocks.shape[1])
            for k in range(blocks.shape[2])
        ]
        results = dask.compute(*tasks)
    else:
        ny, nx = arr.shape[1:]
        results = [_object_block(arr[a:b], a, ranges) for a, b in _z_slabs(nz, ny, nx)]
    vox = np.zeros(nz, dtype=np.int64)
    slab_ids = [[] for _ in ranges]
    agg_u, agg_n, agg_z = [], [], []
    for z0, bvox, per_slab, (u, n, zs) in results:
        vox[z0:z0 + bvox.size] += bvox
        for k, idk in per_slab.items():
            slab_ids[k].append(idk)
        agg_u.append(u)
        agg_n.append(n)
        agg_z.append(zs)
    u_all = np.concatenate(agg_u) if agg_u else np.zeros(0, dtype=np.int64)
    uid, inv = np.unique(u_all, return_inverse=True)
    n_tot = np.zeros(uid.size, dtype=np.int64)
    z_tot = np.zeros(uid.size, dtype=np.int64)
    if uid.size:
        np.add.at(n_tot, inv, np.concatenate(agg_n))
        np.add.at(z_tot, inv, np.concatenate(agg_z))
    centroid = z_tot / np.maximum(n_tot, 1)  # in slice units
    touching = [
        np.unique(np.concatenate(s)) if s else np.zeros(0, dtype=np.int64) for s in slab_ids
    ]
    in_any = np.zeros(uid.size, dtype=bool)
    per = {f"n_{name}": [], f"n_{name}_touching": [], f"{name}_volume_um3": []}
    for (start, stop), t in zip(ranges, touching):
        inside = (centroid >= start - 0.5) & (centroid < stop - 0.5)
        in_any |= inside
        per[f"n_{name}"].append(int(inside.sum()))
        per[f"n_{name}_touching"].append(int(t.size))
        per[f"{name}_volume_um3"].append(float(vox[start:stop].sum()) * vvol)
    covered = _covered(ranges, nz)
    union = np.unique(np.concatenate(touching)) if touching else np.zeros(0)
    tot = {
        f"n_{name}": int(in_any.sum()),
        f"n_{name}_touching": int(union.size),
        f"{name}_volume_um3": float(vox[covered].sum()) * vvol,
    }
    return per, tot


def _covered(ranges, nz):
    mask = np.zeros(nz, dtype=bool)
    for start, stop in ranges:
        mask[start:stop] = True
    return mask


def _callable_columns(func, rows):
    per, order = {}, []
    for k, (a, b) in enumerate(rows):
        res = func(a, b)
        if isinstance(res, Mapping):
            items = list(res.items())
        elif isinstance(res, (int, float, np.integer, np.floating)) and not isinstance(res, bool):
            items = [("n_objects", res)]
        else:
            raise TypeError(
                "object_counts (a callable) must return a number or a mapping column -> "
                f"number, got {type(res).__name__}"
            )
        for col, val in items:
            if col not in per:
                per[col] = [np.nan] * len(rows)
                order.append(col)
            per[col][k] = val
    tot = {col: float(np.nansum(per[col])) for col in order}
    return per, tot


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


class LayerStats(NamedTuple):
    """Result of :func:`layer_stats`: ``per_layer, totals = layer_stats(...)``.

    Attributes
    ----------
    per_layer : pandas.DataFrame
        One row per slab (see :func:`layer_stats` for the columns).
    totals : pandas.Series
        The same quantities over all slabs together (name ``"total"``).
    """

    per_layer: pd.DataFrame
    totals: pd.Series


def _fraction(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


@_doc_layers
def layer_stats(labels, voxel_size_um, *, schema=None, layers=None, n_layers=None,
                thickness_um=None, z_range_um=None, pore_labels=None, exclude=None,
                object_counts=None):
    """Porosity, phase fractions and object counts per layer (slab of constant z).

    The label volume is reduced once to per-slice voxel counts (:func:`slice_counts`, chunk
    by chunk), and every slab statistic is a ratio of summed counts, so the result of a
    chunked (dask, zarr) volume equals that of the in-memory volume exactly.

    Slabs are given by `layers` (explicit, in µm), `n_layers` or `thickness_um` over the
    whole volume or `z_range_um` — typically two interface positions from
    :func:`tomopipe.quantify.find_interfaces` (e.g. 10 layers through the separator) — or
    one slab per slice by default.

    Parameters
    ----------
    labels : (z, y, x) array_like of integer, or pandas.DataFrame
        Label volume (NumPy, dask or zarr array; processed out of core), or its per-slice
        counts from :func:`slice_counts` (to reuse one pass for several slab choices).
    voxel_size_um : float or (3,) sequence of float
        Voxel size ``(dz, dy, dx)`` in µm (a number: cubic voxels); slice ``i`` is centred
        at ``z = i * dz``.
    schema : LabelSchema or mapping of str to int, optional
        Label schema; default: the one stored with `labels` (zarr attributes), else
        :data:`tomopipe.schema.SIMULATOR_TRUTH`.
    LAYERS_PARAMS
    pore_labels : sequence of str, optional
        Classes counted as void (porosity). Default: the schema's void classes.
    exclude : sequence of str, optional
        Classes that are not part of the sample (air around it); excluded from the sample
        volume and from every fraction. Default: the schema's outside class, if any.
    object_counts : (z, y, x) array_like of int, mapping of str to array_like, or callable, optional
        Objects to count per slab. An id volume (0 = background, one id per object, e.g. the
        crack or inclusion ids of a segmentation, same shape as `labels`; also processed out
        of core), or a mapping ``name -> id volume``, adds for each (``name`` is
        ``"objects"`` for a bare volume): ``n_<name>`` (objects whose voxel centroid lies in
        the slab, so the counts of disjoint slabs add up), ``n_<name>_touching`` (objects
        with at least one voxel in the slab) and ``<name>_volume_um3`` (object voxels in the
        slab × voxel volume). A callable ``f(z_start_um, z_stop_um)`` is called for every
        slab (with its reported boundaries) and returns a number (column ``n_objects``) or a
        mapping ``column -> number``; its totals are the sums over the slabs.

    Returns
    -------
    per_layer : pandas.DataFrame
        Index ``layer`` (the names of `layers`, else 0, 1, … in order of increasing z).
        Columns:

        - ``z_start_um``, ``z_stop_um``: outer faces of the first and last slice of the slab
          (``(start - ½) dz`` and ``(stop - ½) dz``), µm;
        - ``z_center_um``: their midpoint, µm;
        - ``n_slices``: number of slices;
        - ``n_voxels``: sample voxels (not in `exclude`);
        - ``volume_um3``: sample volume, ``n_voxels * dz * dy * dx``, µm³;
        - ``porosity``: void voxels / sample voxels (a fraction in [0, 1]; NaN where the slab
          holds no sample voxel);
        - ``fraction_<class>`` for every class not in `exclude`: its voxels / sample voxels;
        - the object columns described under `object_counts`, if given.
    totals : pandas.Series
        Name ``"total"``, float64: the same quantities over all slices covered by any slab
        (each slice once), ``z_start_um``/``z_stop_um`` the outermost faces. Returned
        together with `per_layer` as a :class:`LayerStats` named tuple.

    Raises
    ------
    ValueError
        If `labels` holds values not in `schema`, `voxel_size_um` is not > 0, more than one
        of `layers`, `thickness_um`, `n_layers` is given, or a slab holds no slice (each
        message names the parameter).
    tomopipe.schema.MissingClassError
        If a class of `pore_labels`/`exclude` is not in the schema, or the schema has no
        void class and `pore_labels` is not given.
    ShapeMismatchError
        If an id volume of `object_counts` does not have the shape of `labels`.
    TypeError
        If `labels` or an id volume is not of an integer dtype, or `object_counts` is of an
        unsupported kind.

    See Also
    --------
    slice_counts : the per-slice counts this is built on.
    porosity_profile : porosity of every slice.
    porespy.metrics.porosity_profile : the same porosity for a binary image (True = void).

    Notes
    -----
    A slab ``[a, b)`` (µm) holds the slices whose centre ``i dz`` satisfies ``a <= i dz < b``;
    partial slices are not weighted. For the phase :math:`p` and slab :math:`S`,

    .. math:: f_p(S) = \\frac{\\sum_{i \\in S} N_p(i)}{\\sum_{i \\in S} \\sum_{q \\notin X} N_q(i)},

    with :math:`N_p(i)` the voxels of phase :math:`p` in slice :math:`i` and :math:`X` the
    excluded classes; the porosity sums :math:`f_p` over `pore_labels`.

    References
    ----------
    .. [1] W. Zhang et al., "Correlating Electrochemical Behavior and Microstructure of
       CuS-Based All-Solid-State Batteries by In Situ X-Ray Tomography", Adv. Energy Mater.
       (2022): porosity and phase fractions per layer through the composite cathode.
    .. [2] J. T. Gostick et al., "PoreSpy: A Python Toolkit for Quantitative Analysis of
       Porous Media Images", J. Open Source Softw. 4, 1296 (2019),
       doi:10.21105/joss.01296 (``metrics.porosity_profile``).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.ones((4, 2, 2), dtype=np.uint8)
    >>> lab[:2, 0, 0] = 0
    >>> per_layer, totals = layer_stats(lab, 0.5, schema={"pore": 0, "solid": 1}, n_layers=2)
    >>> per_layer["porosity"].tolist(), float(totals["porosity"])
    ([0.25, 0.0], 0.125)
    >>> float(layer_stats(lab, (1.0, 0.5, 0.5), schema={"pore": 0, "solid": 1}).totals["volume_um3"])
    4.0
    """
    schema = _check_schema(schema, labels)
    vox = _check_voxel_size(voxel_size_um)
    dz, vvol = vox.dz, vox.volume
    pore, excl = _void_and_excluded(schema, pore_labels, exclude)
    shape = None if isinstance(labels, pd.DataFrame) else tuple(np.shape(labels))
    counts = _counts_table(labels, schema)
    nz = counts.shape[0]
    slabs = _resolve_slabs(nz, dz, layers, n_layers, thickness_um, z_range_um)
    names = list(schema)
    col = {n: j for j, n in enumerate(names)}
    keep = [n for n in names if n not in excl]
    ranges = [(s, e) for _, s, e in slabs]
    covered = _covered(ranges, nz)

    def summarize(rows):
        sums = np.stack([r.sum(axis=0) for r in rows])  # (n_rows, n_labels)
        n_sample = sums[:, [col[n] for n in keep]].sum(axis=1)
        n_pore = sums[:, [col[n] for n in pore]].sum(axis=1)
        out = {"n_voxels": n_sample.astype(np.int64), "volume_um3": n_sample * vvol,
               "porosity": _fraction(n_pore, n_sample)}
        for n in keep:
            out[f"fraction_{n}"] = _fraction(sums[:, col[n]], n_sample)
        return out

    frame = _slab_frame(slabs, dz)
    per = {c: frame[c].to_numpy() for c in frame.columns}
    per.update(summarize([counts[s:e] for s, e in ranges]))
    lo, hi = min(s for s, _ in ranges), max(e for _, e in ranges)
    tot = {
        "z_start_um": (lo - 0.5) * dz,
        "z_stop_um": (hi - 0.5) * dz,
        "z_center_um": (lo + hi - 1) * 0.5 * dz,
        "n_slices": int(covered.sum()),
    }
    tot.update({k: val[0] for k, val in summarize([counts[covered]]).items()})

    if object_counts is not None:
        if callable(object_counts) and not hasattr(object_counts, "shape"):
            o_per, o_tot = _callable_columns(
                object_counts, list(zip(per["z_start_um"], per["z_stop_um"]))
            )
            per.update(o_per)
            tot.update(o_tot)
        else:
            sources = (
                dict(object_counts) if isinstance(object_counts, Mapping)
                else {"objects": object_counts}
            )
            for name, ids in sources.items():
                if not isinstance(name, str):
                    raise TypeError(f"object_counts: names must be str, got {name!r}")
                o_per, o_tot = _object_columns(ids, name, slabs, nz, shape, vvol)
                per.update(o_per)
                tot.update(o_tot)

    per_layer = pd.DataFrame(per, index=frame.index)
    totals = pd.Series({k: _scalar(val) for k, val in tot.items()}, name="total")
    return LayerStats(per_layer, totals)




def _scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def porosity_profile(labels, voxel_size_um, *, schema=None, pore_labels=None, exclude=None):
    """Porosity of every z slice (the porosity profile along the stack axis).

    Parameters
    ----------
    labels : (z, y, x) array_like of integer, or pandas.DataFrame
        Label volume (NumPy, dask or zarr array; processed out of core), or its per-slice
        counts from :func:`slice_counts`.
    voxel_size_um : float or (3,) sequence of float
        Voxel size ``(dz, dy, dx)`` in µm (a number: cubic voxels); only ``dz`` is used.
    schema : LabelSchema or mapping of str to int, optional
        Label schema; default: the one stored with `labels`, else
        :data:`tomopipe.schema.SIMULATOR_TRUTH`.
    pore_labels : sequence of str, optional
        Classes counted as void. Default: the schema's void classes.
    exclude : sequence of str, optional
        Classes outside the sample, not counted at all. Default: the schema's outside class.

    Returns
    -------
    profile : pandas.DataFrame
        Index ``z`` (slice index); columns ``z_um`` (slice centre, ``z * dz``, µm) and
        ``porosity`` (void voxels / sample voxels of the slice, a fraction; NaN for a slice
        without sample voxels).

    Raises
    ------
    ValueError, TypeError, tomopipe.schema.MissingClassError
        As :func:`layer_stats`.

    See Also
    --------
    layer_stats : the same per slab, with phase fractions and totals.
    porespy.metrics.porosity_profile : the same for a binary image (True = void).

    References
    ----------
    .. [1] J. T. Gostick et al., J. Open Source Softw. 4, 1296 (2019),
       doi:10.21105/joss.01296 (PoreSpy's ``metrics.porosity_profile``).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.ones((3, 2, 2), dtype=np.uint8)
    >>> lab[1, 0, :] = 0
    >>> porosity_profile(lab, 0.88, schema={"pore": 0, "solid": 1})  # doctest: +NORMALIZE_WHITESPACE
       z_um  porosity
    z
    0  0.00       0.0
    1  0.88       0.5
    2  1.76       0.0
    """
    schema = _check_schema(schema, labels)
    dz = _check_voxel_size(voxel_size_um).dz
    pore, excl = _void_and_excluded(schema, pore_labels, exclude)
    counts = _counts_table(labels, schema)
    col = {n: j for j, n in enumerate(schema)}
    n_sample = counts[:, [col[n] for n in schema if n not in excl]].sum(axis=1)
    n_pore = counts[:, [col[n] for n in pore]].sum(axis=1)
    nz = counts.shape[0]
    return pd.DataFrame(
        {"z_um": np.arange(nz) * dz, "porosity": _fraction(n_pore, n_sample)},
        index=pd.RangeIndex(nz, name="z"),
    )
