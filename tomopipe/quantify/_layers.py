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
Coordinates
    Positions are in µm with the centre of slice ``i`` at ``z = i * voxel_size_um``; slice
    ``i`` spans ``[(i - ½) v, (i + ½) v]``. A slab given by its boundaries ``[a, b)`` in µm
    holds the whole slices whose centre lies in it (``a <= i v < b``), and its reported
    ``z_start_um``/``z_stop_um`` are the outer faces of those slices.
Phases
    The label schema maps names to label values (default :data:`tomopipe.simulate.LABELS`:
    0 pore/crack, 1 solid electrolyte, 2 active material, 3 Cu-rich inclusion, 4 carbon,
    5 Li metal, 6 current collector, 255 outside the sample). *Sample* voxels are those not
    labelled with one of `exclude` (default ``"outside"``); porosity is the fraction of
    sample voxels labelled with one of `pore_labels` (default ``"pore"``: pores and cracks
    are void).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import ShapeMismatchError
from ._input import _as_array, _check_schema, _check_voxel_size, _is_dask

__all__ = ["slice_counts", "layer_stats", "porosity_profile", "LayerStats"]

#: Voxels read at once from a NumPy volume (its slabs of whole slices are processed in turn).
_SLAB_VOXELS = 1 << 24
#: Tolerance (in slices) when a slab boundary in µm falls on a slice centre.
_EDGE_TOL = 1e-6


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
    schema = _check_schema(schema)
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
    bad = [n for n in names if n not in schema]
    if bad:
        raise ValueError(f"{name}: {bad} not in the label schema {list(schema)}")
    return names


# --------------------------------------------------------------------------------------------
# slabs
# --------------------------------------------------------------------------------------------


def _slice_index(edge_um, v):
    """First slice whose centre lies at or above `edge_um`."""
    return int(math.ceil(edge_um / v - _EDGE_TOL))


def _pair(value, *, name):
    try:
        a, b = (float(x) for x in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (start_um, stop_um), got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        raise ValueError(f"{name} must be finite with start < stop (µm), got {value!r}")
    return a, b


def _explicit_slabs(layers, v, nz):
    if isinstance(layers, pd.DataFrame):
        cols = [c for c in ("z_start_um", "z_stop_um") if c not in layers.columns]
        if cols:
            raise ValueError(f"layers (a DataFrame) lacks the column(s) {cols}")
        items = [
            (idx, (row["z_start_um"], row["z_stop_um"]))
            for idx, row in layers[["z_start_um", "z_stop_um"]].iterrows()
        ]
        index_name = layers.index.name or "layer"
    elif isinstance(layers, Mapping):
        items = list(layers.items())
        index_name = "layer"
    else:
        try:
            edges = np.asarray(layers, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                "layers must be a DataFrame with z_start_um/z_stop_um, a mapping name -> "
                f"(start_um, stop_um), or a sequence of slab edges in µm; got {layers!r}"
            ) from None
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
            raise ValueError(
                f"layers as slab edges must be >= 2 finite values (µm), got {layers!r}"
            )
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"layers as slab edges must increase strictly, got {layers!r}")
        items = [(k, (a, b)) for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]
        index_name = "layer"
    if not items:
        raise ValueError("layers is empty")
    slabs = []
    for key, pair in items:
        a, b = _pair(pair, name=f"layers[{key!r}]")
        start, stop = max(0, _slice_index(a, v)), min(nz, _slice_index(b, v))
        if stop <= start:
            raise ValueError(
                f"layers[{key!r}] = ({a:g}, {b:g}) µm holds no slice of the volume "
                f"(slice centres at 0 … {(nz - 1) * v:g} µm)"
            )
        slabs.append((key, start, stop))
    return slabs, index_name


def _slabs(nz, v, layers, thickness_um, n_layers, z_range_um):
    """List of ``(name, start, stop)`` slice ranges and the name of the index."""
    given = [n for n, x in (("layers", layers), ("thickness_um", thickness_um),
                            ("n_layers", n_layers)) if x is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of layers, thickness_um, n_layers (got {given})")
    if layers is not None:
        if z_range_um is not None:
            raise ValueError("z_range_um cannot be combined with layers (explicit slabs)")
        return _explicit_slabs(layers, v, nz)
    lo_um, hi_um = -0.5 * v, (nz - 0.5) * v
    if z_range_um is not None:
        a, b = _pair(z_range_um, name="z_range_um")
        if b <= lo_um or a >= hi_um:
            raise ValueError(
                f"z_range_um = ({a:g}, {b:g}) µm lies outside the volume "
                f"[{lo_um:g}, {hi_um:g}] µm"
            )
        lo_um, hi_um = max(a, lo_um), min(b, hi_um)
    if n_layers is not None:
        is_int = isinstance(n_layers, (int, np.integer)) and not isinstance(n_layers, bool)
        if not is_int or n_layers < 1:
            raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
        edges = np.linspace(lo_um, hi_um, int(n_layers) + 1)
    else:
        t = v if thickness_um is None else float(thickness_um)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(
                f"thickness_um must be a finite number > 0 (µm), got {thickness_um!r}"
            )
        n = max(1, int(math.ceil((hi_um - lo_um) / t - _EDGE_TOL)))
        edges = np.minimum(lo_um + t * np.arange(n + 1), hi_um)
        edges[-1] = hi_um
    slabs = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        start, stop = max(0, _slice_index(a, v)), min(nz, _slice_index(b, v))
        if stop <= start:
            if n_layers is not None:
                raise ValueError(
                    f"n_layers={n_layers} between {lo_um:g} and {hi_um:g} µm gives slabs "
                    f"thinner than one slice ({v:g} µm)"
                )
            if thickness_um is not None and k < len(edges) - 2:
                raise ValueError(
                    f"thickness_um={thickness_um!r} is thinner than one slice ({v:g} µm)"
                )
            continue  # an empty remainder at the end of the range
        slabs.append((len(slabs), start, stop))
    if not slabs:
        raise ValueError(f"z_range_um={z_range_um!r} holds no slice centre of the volume")
    return slabs, "layer"


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


def _object_columns(ids, name, slabs, nz, shape, v):
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
        per[f"{name}_volume_um3"].append(float(vox[start:stop].sum()) * v**3)
    covered = _covered(ranges, nz)
    union = np.unique(np.concatenate(touching)) if touching else np.zeros(0)
    tot = {
        f"n_{name}": int(in_any.sum()),
        f"n_{name}_touching": int(union.size),
        f"{name}_volume_um3": float(vox[covered].sum()) * v**3,
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


def layer_stats(labels, voxel_size_um, *, schema=None, layers=None, thickness_um=None,
                n_layers=None, z_range_um=None, pore_labels=("pore",), exclude=("outside",),
                object_counts=None):
    """Porosity, phase fractions and object counts per layer (slab of constant z).

    The label volume is reduced once to per-slice voxel counts (:func:`slice_counts`, chunk
    by chunk), and every slab statistic is a ratio of summed counts, so the result of a
    chunked (dask, zarr) volume equals that of the in-memory volume exactly.

    Slabs are given by one of:

    - `layers`: explicit slabs (e.g. the cell's current collector, cathode, separator, Li);
    - `thickness_um`: consecutive slabs of that thickness from the start of the range (the
      last one may be thinner: see ``n_slices``);
    - `n_layers`: that many slabs of equal thickness spanning the range;
    - none of them: one slab per slice.

    The range is the whole volume, or `z_range_um` — typically two interface positions from
    :func:`tomopipe.quantify._interfaces.find_interfaces` (e.g. 10 layers through the
    separator, the porosity gradient of a soft-short study).

    Parameters
    ----------
    labels : (z, y, x) array_like of integer, or pandas.DataFrame
        Label volume (NumPy, dask or zarr array; processed out of core), or its per-slice
        counts from :func:`slice_counts` (to reuse one pass for several slab choices).
    voxel_size_um : float
        Voxel edge, µm; slice ``i`` is centred at ``z = i * voxel_size_um``.
    schema : mapping of str to int, optional
        Label schema ``name -> value``; default :data:`tomopipe.simulate.LABELS`.
    layers : pandas.DataFrame, mapping or sequence of float, optional
        Explicit slabs: a DataFrame with columns ``z_start_um`` and ``z_stop_um`` (index the
        layer names; e.g. :attr:`tomopipe.simulate.Cell.layers`), a mapping
        ``name -> (z_start_um, z_stop_um)``, or a sequence of increasing slab edges in µm.
        Slabs may overlap or leave gaps.
    thickness_um : float, optional
        Slab thickness, µm (rounded to whole slices by their centres).
    n_layers : int, optional
        Number of equal slabs in the range.
    z_range_um : (2,) tuple of float, optional
        ``(start, stop)`` of the range along z, µm (clipped to the volume); not with
        `layers`. Default: the whole volume, ``[-v/2, (n_z - ½) v]``.
    pore_labels : sequence of str
        Labels counted as void (porosity). Default ``("pore",)``.
    exclude : sequence of str
        Labels that are not part of the sample (air around it); excluded from the sample
        volume and from every fraction. Default ``("outside",)``.
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
          (``(start - ½) v`` and ``(stop - ½) v``), µm;
        - ``z_center_um``: their midpoint, µm;
        - ``n_slices``: number of slices;
        - ``n_voxels``: sample voxels (not in `exclude`);
        - ``volume_um3``: sample volume, ``n_voxels * v**3``, µm³;
        - ``porosity``: pore voxels / sample voxels (a fraction in [0, 1]; NaN where the slab
          holds no sample voxel);
        - ``fraction_<label>`` for every label not in `exclude`: its voxels / sample voxels;
        - the object columns described under `object_counts`, if given.
    totals : pandas.Series
        Name ``"total"``, float64: the same quantities over all slices covered by any slab
        (each slice once), ``z_start_um``/``z_stop_um`` the outermost faces. Returned
        together with `per_layer` as a :class:`LayerStats` named tuple.

    Raises
    ------
    ValueError
        If `labels` holds values not in `schema`, `voxel_size_um` is not > 0, more than one
        of `layers`, `thickness_um`, `n_layers` is given, a slab holds no slice, or a name
        in `pore_labels`/`exclude` is not in the schema (each message names the parameter).
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
    A slab ``[a, b)`` (µm) holds the slices whose centre ``i v`` satisfies ``a <= i v < b``;
    partial slices are not weighted. For the phase :math:`p` and slab :math:`S`,

    .. math:: f_p(S) = \\frac{\\sum_{i \\in S} N_p(i)}{\\sum_{i \\in S} \\sum_{q \\notin X} N_q(i)},

    with :math:`N_p(i)` the voxels of phase :math:`p` in slice :math:`i` and :math:`X` the
    excluded labels; the porosity sums :math:`f_p` over `pore_labels`.

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
    >>> per_layer, totals = layer_stats(lab, 0.5, schema={"pore": 0, "solid": 1},
    ...                                 n_layers=2, exclude=())
    >>> per_layer["porosity"].tolist(), float(totals["porosity"])
    ([0.25, 0.0], 0.125)
    """
    schema = _check_schema(schema)
    v = _check_voxel_size(voxel_size_um)
    pore = _label_names(pore_labels, schema, name="pore_labels")
    excl = _label_names(exclude, schema, name="exclude")
    both = sorted(set(pore) & set(excl))
    if both:
        raise ValueError(f"pore_labels and exclude share the label(s) {both}")
    shape = None if isinstance(labels, pd.DataFrame) else tuple(np.shape(labels))
    counts = _counts_table(labels, schema)
    nz = counts.shape[0]
    slabs, index_name = _slabs(nz, v, layers, thickness_um, n_layers, z_range_um)
    names = list(schema)
    col = {n: j for j, n in enumerate(names)}
    keep = [n for n in names if n not in excl]
    ranges = [(s, e) for _, s, e in slabs]
    covered = _covered(ranges, nz)

    def summarize(rows):
        sums = np.stack([r.sum(axis=0) for r in rows])  # (n_rows, n_labels)
        n_sample = sums[:, [col[n] for n in keep]].sum(axis=1)
        n_pore = sums[:, [col[n] for n in pore]].sum(axis=1)
        out = {"n_voxels": n_sample.astype(np.int64), "volume_um3": n_sample * v**3,
               "porosity": _fraction(n_pore, n_sample)}
        for n in keep:
            out[f"fraction_{n}"] = _fraction(sums[:, col[n]], n_sample)
        return out

    starts = np.array([s for s, _ in ranges])
    stops = np.array([e for _, e in ranges])
    per = {
        "z_start_um": (starts - 0.5) * v,
        "z_stop_um": (stops - 0.5) * v,
        "z_center_um": (starts + stops - 1) * 0.5 * v,
        "n_slices": (stops - starts).astype(np.int64),
    }
    per.update(summarize([counts[s:e] for s, e in ranges]))
    lo, hi = int(starts.min()), int(stops.max())
    tot = {
        "z_start_um": (lo - 0.5) * v,
        "z_stop_um": (hi - 0.5) * v,
        "z_center_um": (lo + hi - 1) * 0.5 * v,
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
                o_per, o_tot = _object_columns(ids, name, slabs, nz, shape, v)
                per.update(o_per)
                tot.update(o_tot)

    index = pd.Index([name for name, _, _ in slabs], name=index_name)
    per_layer = pd.DataFrame(per, index=index)
    totals = pd.Series({k: _scalar(val) for k, val in tot.items()}, name="total")
    return LayerStats(per_layer, totals)


def _scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def porosity_profile(labels, voxel_size_um, *, schema=None, pore_labels=("pore",),
                     exclude=("outside",)):
    """Porosity of every z slice (the porosity profile along the stack axis).

    Parameters
    ----------
    labels : (z, y, x) array_like of integer, or pandas.DataFrame
        Label volume (NumPy, dask or zarr array; processed out of core), or its per-slice
        counts from :func:`slice_counts`.
    voxel_size_um : float
        Voxel edge, µm.
    schema : mapping of str to int, optional
        Label schema; default :data:`tomopipe.simulate.LABELS`.
    pore_labels : sequence of str
        Labels counted as void. Default ``("pore",)``.
    exclude : sequence of str
        Labels outside the sample, not counted at all. Default ``("outside",)``.

    Returns
    -------
    profile : pandas.DataFrame
        Index ``z`` (slice index); columns ``z_um`` (slice centre, ``z * voxel_size_um``, µm)
        and ``porosity`` (pore voxels / sample voxels of the slice, a fraction; NaN for a
        slice without sample voxels).

    Raises
    ------
    ValueError, TypeError
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
    >>> porosity_profile(lab, 0.88, schema={"pore": 0, "solid": 1},
    ...                  exclude=())  # doctest: +NORMALIZE_WHITESPACE
       z_um  porosity
    z
    0  0.00       0.0
    1  0.88       0.5
    2  1.76       0.0
    """
    schema = _check_schema(schema)
    v = _check_voxel_size(voxel_size_um)
    pore = _label_names(pore_labels, schema, name="pore_labels")
    excl = _label_names(exclude, schema, name="exclude")
    both = sorted(set(pore) & set(excl))
    if both:
        raise ValueError(f"pore_labels and exclude share the label(s) {both}")
    counts = _counts_table(labels, schema)
    col = {n: j for j, n in enumerate(schema)}
    n_sample = counts[:, [col[n] for n in schema if n not in excl]].sum(axis=1)
    n_pore = counts[:, [col[n] for n in pore]].sum(axis=1)
    nz = counts.shape[0]
    return pd.DataFrame(
        {"z_um": np.arange(nz) * v, "porosity": _fraction(n_pore, n_sample)},
        index=pd.RangeIndex(nz, name="z"),
    )
