"""Input checks shared by the quantification modules (each message names the parameter)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import dask.array as da
import numpy as np

__all__ = []


def _default_schema():
    from tomopipe.simulate._cell import LABELS

    return LABELS


def _check_schema(schema, *, name="schema"):
    """Validated schema as an ordered ``dict`` name -> non-negative int."""
    if schema is None:
        schema = _default_schema()
    if not isinstance(schema, Mapping) or len(schema) == 0:
        raise TypeError(f"{name} must be a non-empty mapping name -> label value, got {schema!r}")
    out = {}
    for key, value in schema.items():
        if not isinstance(key, str):
            raise TypeError(f"{name}: label names must be str, got {key!r}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}[{key!r}] must be an integer label value, got {value!r}")
        if int(value) < 0:
            raise ValueError(f"{name}[{key!r}] must be >= 0, got {value!r}")
        out[key] = int(value)
    values = list(out.values())
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1})
        raise ValueError(f"{name} maps several names to the same label value(s) {dup}")
    return out


def _check_voxel_size(voxel_size_um, *, name="voxel_size_um"):
    try:
        v = float(voxel_size_um)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number (µm), got {voxel_size_um!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0 (µm), got {voxel_size_um!r}")
    return v


def _as_array(arr, *, name, ndim=3):
    """A NumPy or dask view of `arr` (zarr, h5py and other array-likes become lazy dask arrays).

    NumPy and dask arrays are returned unchanged; anything with ``shape``, ``dtype`` and
    ``__getitem__`` (zarr, h5py) is wrapped by :func:`dask.array.from_array` with its own
    chunks, so it is never read whole; other inputs (lists) go through :func:`numpy.asarray`.
    """
    import dask.array as da

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
    import dask.array as da

    return isinstance(arr, da.Array)


def _as_volume(arr, name, *, chunks_like=None):
    """`arr` as a 3-D NumPy or dask array; with `chunks_like`, a dask array with those chunks."""
    out = _as_array(arr, name=name)
    if chunks_like is not None:
        if not _is_dask(out):
            out = da.from_array(out, chunks=chunks_like)
        elif out.chunks != chunks_like:
            out = out.rechunk(chunks_like)
    return out


def _is_numpy(arr):
    return isinstance(arr, np.ndarray)
