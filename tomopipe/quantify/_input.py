"""Input checks shared by the quantification modules (each message names the parameter).

- label schemas (:func:`_check_schema`): a :class:`tomopipe.schema.LabelSchema` from what the
  caller passed, the labels array's attributes, or the simulator's truth schema;
- voxel sizes (:func:`_check_voxel_size`): ``(dz, dy, dx)`` in µm from a scalar or a triple;
- µm parameters against the voxel size (:func:`_warn_below_voxel`, :class:`ResolutionWarning`);
- layers (:func:`_resolve_slabs`, :func:`_slab_frame`): the one meaning of ``layers`` shared
  by every per-layer table;
- array wrapping (:func:`_as_array`, :func:`_as_volume`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from numbers import Integral

import dask.array as da
import numpy as np
import pandas as pd

from ..schema import SIMULATOR_TRUTH, as_schema

__all__ = ["ResolutionWarning", "VoxelSize"]


class ResolutionWarning(UserWarning):
    """A length parameter (µm) is below one voxel: the result is clipped or meaningless."""


class VoxelSize(tuple):
    """Voxel edges ``(dz, dy, dx)`` in µm (a tuple of three positive floats).

    Attributes ``dz``, ``dy``, ``dx``, ``volume`` (µm³), ``min``, ``max`` and
    ``isotropic``.
    """

    __slots__ = ()

    def __new__(cls, values):
        return super().__new__(cls, tuple(float(v) for v in values))

    dz = property(lambda self: self[0])
    dy = property(lambda self: self[1])
    dx = property(lambda self: self[2])
    volume = property(lambda self: self[0] * self[1] * self[2])
    min = property(lambda self: min(self))
    max = property(lambda self: max(self))
    isotropic = property(lambda self: self[0] == self[1] == self[2])

    def __repr__(self):
        return f"VoxelSize(dz={self[0]:g}, dy={self[1]:g}, dx={self[2]:g})"


def _check_voxel_size(voxel_size_um, *, name="voxel_size_um"):
    """``VoxelSize (dz, dy, dx)`` in µm from a positive number (isotropic) or a triple."""
    if isinstance(voxel_size_um, VoxelSize):
        return voxel_size_um
    if np.ndim(voxel_size_um) == 0:
        values = [voxel_size_um] * 3
    else:
        values = list(np.ravel(np.asarray(voxel_size_um, dtype=object)))
        if len(values) != 3:
            raise ValueError(
                f"{name} must be a number or (dz, dy, dx) in µm, got {len(values)} values: {voxel_size_um!r}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name} must be a number (µm) or (dz, dy, dx), got {voxel_size_um!r}")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number (µm) or (dz, dy, dx), got {voxel_size_um!r}") from None
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"{name} must be finite and > 0 (µm), got {voxel_size_um!r}")
        out.append(f)
    return VoxelSize(out)


def _warn_below_voxel(value_um, voxel, *, name, axis="max", stacklevel=3):
    """Warn (:class:`ResolutionWarning`) when a length parameter is below one voxel.

    `axis` chooses the voxel edge compared with: ``"max"`` (the coarsest), ``"min"`` or
    ``"z"``.
    """
    if value_um is None:
        return
    edge = {"max": voxel.max, "min": voxel.min, "z": voxel.dz}[axis]
    if float(value_um) < edge:
        warnings.warn(
            f"{name} = {float(value_um):g} µm is below one voxel ({edge:g} µm): "
            "every value is clipped to it; give it in µm for these voxels or leave the default",
            ResolutionWarning, stacklevel=stacklevel)


def _check_schema(schema, labels=None, *, name="schema"):
    """The :class:`LabelSchema` to use: `schema`, else the one stored with `labels` (zarr
    attributes), else :data:`tomopipe.schema.SIMULATOR_TRUTH`."""
    return as_schema(schema, array=labels, default=SIMULATOR_TRUTH, name=name)


def _as_array(arr, *, name, ndim=3):
    """A NumPy or dask view of `arr` (zarr, h5py and other array-likes become lazy dask arrays).

    NumPy and dask arrays are returned unchanged; anything with ``shape``, ``dtype`` and
    ``__getitem__`` (zarr, h5py) is wrapped by :func:`dask.array.from_array` with its own
    chunks, so it is never read whole; other inputs (lists) go through :func:`numpy.asarray`.
    """
    if isinstance(arr, (np.ndarray, da.Array)):
        out = arr
    elif all(hasattr(arr, a) for a in ("shape", "dtype", "__getitem__")):
        chunks = getattr(arr, "chunks", None)
        ok = (
            isinstance(chunks, tuple)
            and len(chunks) == len(arr.shape)
            and all(isinstance(c, (int, np.integer)) and c > 0 for c in chunks)
        )
        out = da.from_array(arr, chunks=chunks if ok else "auto")
    else:
        out = np.asarray(arr)
    if out.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D (z, y, x) array, got shape {tuple(out.shape)}")
    return out


def _is_dask(arr):
    return isinstance(arr, da.Array)


def _is_numpy(arr):
    return isinstance(arr, np.ndarray)


def _as_volume(arr, name, *, chunks_like=None):
    """`arr` as a 3-D NumPy or dask array; with `chunks_like`, a dask array with those chunks."""
    out = _as_array(arr, name=name)
    if chunks_like is not None:
        if not _is_dask(out):
            out = da.from_array(out, chunks=chunks_like)
        elif out.chunks != chunks_like:
            out = out.rechunk(chunks_like)
    return out


def _class_values(schema, names, *, param):
    """Label values of `names` (a name or names) in `schema`, the message naming `param`."""
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    schema.require(*names, metric=param)
    return names, tuple(schema[n] for n in names)


# --------------------------------------------------------------------------------------------
# layers: slabs of constant z, one meaning for every function
# --------------------------------------------------------------------------------------------

#: Tolerance (in slices) when a slab boundary in µm falls on a slice centre.
_EDGE_TOL = 1e-6

#: Docstring of the layer parameters shared by every per-layer function.
LAYERS_DOC = """layers : pandas.DataFrame, mapping or sequence of float, optional
        Explicit slabs, in µm along z: a DataFrame with columns ``z_start_um`` and
        ``z_stop_um`` (index the layer names; e.g. :attr:`tomopipe.simulate.Cell.layers`),
        a mapping ``name -> (z_start_um, z_stop_um)``, or a sequence of increasing slab
        edges in µm. Slabs may overlap or leave gaps. A slab ``[a, b)`` holds the slices
        whose centre ``i * dz`` satisfies ``a <= i * dz < b``. With none of `layers`,
        `n_layers` and `thickness_um`: one slab per slice.
    n_layers : int, optional
        Instead of `layers`: that many slabs of equal thickness spanning the range.
    thickness_um : float, optional
        Instead of `layers`: consecutive slabs of this thickness (µm) from the start of the
        range (the last may be thinner).
    z_range_um : (2,) tuple of float, optional
        ``(start, stop)`` in µm of the range split by `n_layers` or `thickness_um` (clipped
        to the volume; default the whole volume ``[-dz/2, (n_z - ½) dz]``)."""


def _slice_index(edge_um, dz):
    """First slice whose centre lies at or above `edge_um`."""
    return int(math.ceil(edge_um / dz - _EDGE_TOL))


def _pair(value, *, name):
    try:
        a, b = (float(x) for x in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (start_um, stop_um), got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        raise ValueError(f"{name} must be finite with start < stop (µm), got {value!r}")
    return a, b


def _explicit_slabs(layers, dz, nz):
    if isinstance(layers, pd.DataFrame):
        cols = [c for c in ("z_start_um", "z_stop_um") if c not in layers.columns]
        if cols:
            raise ValueError(f"layers (a DataFrame) lacks the column(s) {cols} (slab faces in µm)")
        items = [
            (idx, (row["z_start_um"], row["z_stop_um"]))
            for idx, row in layers[["z_start_um", "z_stop_um"]].iterrows()
        ]
    elif isinstance(layers, Mapping):
        items = list(layers.items())
    elif isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        raise TypeError(
            f"layers={layers!r}: layers are slabs in µm (DataFrame, mapping or edges); for "
            f"{layers} equal slabs pass n_layers={layers}")
    else:
        try:
            edges = np.asarray(layers, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                "layers must be a DataFrame with z_start_um/z_stop_um, a mapping name -> "
                f"(start_um, stop_um), or a sequence of slab edges in µm; got {layers!r}"
            ) from None
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
            raise ValueError(f"layers as slab edges must be >= 2 finite values (µm), got {layers!r}")
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"layers as slab edges must increase strictly, got {layers!r}")
        items = [(k, (a, b)) for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]
    if not items:
        raise ValueError("layers is empty")
    slabs = []
    for key, pair in items:
        a, b = _pair(pair, name=f"layers[{key!r}]")
        start, stop = max(0, _slice_index(a, dz)), min(nz, _slice_index(b, dz))
        if stop <= start:
            raise ValueError(
                f"layers[{key!r}] = ({a:g}, {b:g}) µm holds no slice of the volume "
                f"(slice centres at 0 … {(nz - 1) * dz:g} µm)")
        slabs.append((key, start, stop))
    return slabs


def _resolve_slabs(nz, dz, layers=None, n_layers=None, thickness_um=None, z_range_um=None):
    """``[(name, start, stop), …]`` slice ranges (stop exclusive) of the requested layers.

    See :data:`LAYERS_DOC` for the meaning of the parameters; every per-layer table of
    :mod:`tomopipe.quantify` resolves its layers here, so the same arguments give the same
    slabs everywhere.
    """
    given = [n for n, x in (("layers", layers), ("thickness_um", thickness_um),
                            ("n_layers", n_layers)) if x is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of layers, thickness_um, n_layers (got {given})")
    if layers is not None:
        if z_range_um is not None:
            raise ValueError("z_range_um cannot be combined with layers (explicit slabs)")
        return _explicit_slabs(layers, dz, nz)
    lo_um, hi_um = -0.5 * dz, (nz - 0.5) * dz
    if z_range_um is not None:
        a, b = _pair(z_range_um, name="z_range_um")
        if b <= lo_um or a >= hi_um:
            raise ValueError(
                f"z_range_um = ({a:g}, {b:g}) µm lies outside the volume [{lo_um:g}, {hi_um:g}] µm")
        lo_um, hi_um = max(a, lo_um), min(b, hi_um)
    if n_layers is not None:
        is_int = isinstance(n_layers, (int, np.integer)) and not isinstance(n_layers, bool)
        if not is_int or n_layers < 1:
            raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
        edges = np.linspace(lo_um, hi_um, int(n_layers) + 1)
    else:
        t = dz if thickness_um is None else float(thickness_um)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"thickness_um must be a finite number > 0 (µm), got {thickness_um!r}")
        n = max(1, int(math.ceil((hi_um - lo_um) / t - _EDGE_TOL)))
        edges = np.minimum(lo_um + t * np.arange(n + 1), hi_um)
        edges[-1] = hi_um
    slabs = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        start, stop = max(0, _slice_index(a, dz)), min(nz, _slice_index(b, dz))
        if stop <= start:
            if n_layers is not None:
                raise ValueError(
                    f"n_layers={n_layers} between {lo_um:g} and {hi_um:g} µm gives slabs thinner "
                    f"than one slice ({dz:g} µm)")
            if thickness_um is not None and k < len(edges) - 2:
                raise ValueError(f"thickness_um={thickness_um!r} is thinner than one slice ({dz:g} µm)")
            continue  # an empty remainder at the end of the range
        slabs.append((len(slabs), start, stop))
    if not slabs:
        raise ValueError(f"z_range_um={z_range_um!r} holds no slice centre of the volume")
    return slabs


def _slab_frame(slabs, dz):
    """Per-layer DataFrame (index ``layer``) with ``z_start_um``, ``z_stop_um``,
    ``z_center_um`` (µm, outer faces of the first and last slice and their midpoint) and
    ``n_slices``."""
    starts = np.array([s for _, s, _ in slabs], dtype=np.int64)
    stops = np.array([e for _, _, e in slabs], dtype=np.int64)
    return pd.DataFrame(
        {
            "z_start_um": (starts - 0.5) * dz,
            "z_stop_um": (stops - 0.5) * dz,
            "z_center_um": (starts + stops - 1) * 0.5 * dz,
            "n_slices": stops - starts,
        },
        index=pd.Index([name for name, _, _ in slabs], name="layer"),
    )


def _doc_layers(func):
    """Insert :data:`LAYERS_DOC` at the ``LAYERS_PARAMS`` line of `func`'s docstring."""
    func.__doc__ = func.__doc__.replace("LAYERS_PARAMS", LAYERS_DOC)
    return func


def _layer_kwargs(layers, n_layers, thickness_um, z_range_um):
    return {"layers": layers, "n_layers": n_layers, "thickness_um": thickness_um,
            "z_range_um": z_range_um}



def _check_count(value, name, *, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _size_distribution(diameters_um, volumes_um3, diameter_bins, vox):
    """Count and volume per bin of equivalent diameter (µm): a DataFrame with
    ``diameter_lo_um, diameter_hi_um, count, volume_um3``. `diameter_bins`: a number of equal
    bins over the diameters' range, or increasing bin edges (µm)."""
    d = np.asarray(diameters_um, dtype=np.float64)
    if isinstance(diameter_bins, Integral) and not isinstance(diameter_bins, bool):
        nb = _check_count(diameter_bins, "diameter_bins")
        lo, hi = (float(d.min()), float(d.max())) if d.size else (0.0, 1.0)
        edges = np.linspace(lo, hi if hi > lo else lo + vox.max, nb + 1)
    else:
        edges = np.asarray(diameter_bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("diameter_bins must be an int or increasing bin edges (µm)")
    cnt, _ = np.histogram(d, bins=edges)
    vol, _ = np.histogram(d, bins=edges, weights=np.asarray(volumes_um3, dtype=np.float64))
    return pd.DataFrame({"diameter_lo_um": edges[:-1], "diameter_hi_um": edges[1:],
                         "count": cnt.astype(np.int64), "volume_um3": vol})
