"""Flat/dark-field normalization and the minus-log transform (tomopy-compatible).

All kernels take a block of projections ``(angle, row, col)`` and return float32 transmission
of the same shape, so that a dask wrapper can map them over angle chunks.  The functions that
depend on *which* projections a block holds (``normalize_nf``, ``normalize_interp``) take the
absolute projection indices of the block as ``proj_index``.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_ndim, check_shape_equality
from ..errors import InvalidFlatError, ShapeMismatchError

__all__ = ["normalize", "normalize_nf", "normalize_interp", "minus_log"]

#: Smallest allowed flat − dark denominator (tomopy's value); dead detector pixels whose flat
#: does not exceed the dark are clipped to it instead of dividing by zero.
DENOMINATOR_FLOOR = np.float32(1e-6)

#: Default floor of :func:`minus_log`, see its Notes.
TRANSMISSION_FLOOR = 1e-6

_AVERAGING = ("mean", "median")


def _as_frames(a, name):
    """Return `a` as a float32 stack of frames ``(n, row, col)`` (a 2-D frame gets n = 1)."""
    a = np.asarray(a)
    check_ndim(a, (2, 3), name=name)
    if a.ndim == 2:
        a = a[np.newaxis]
    if a.shape[0] == 0:
        raise ShapeMismatchError(f"{name} holds no frames (shape {a.shape})")
    return a


def _average(frames, averaging):
    if averaging not in _AVERAGING:
        raise ValueError(f"averaging must be one of {_AVERAGING}, got {averaging!r}")
    if averaging == "mean":
        return np.mean(frames, axis=0, dtype=np.float32)
    return np.median(frames.astype(np.float32, copy=False), axis=0)


def _check_arr(arr):
    arr = np.asarray(arr)
    check_ndim(arr, 3, name="arr")
    return arr


def _check_frames(arr, flat, dark):
    """Validate the flat/dark frame stacks against `arr`; return them as 3-D arrays."""
    flat = _as_frames(flat, "flat")
    dark = _as_frames(dark, "dark")
    check_shape_equality(flat.shape, arr.shape, a_name="flat", b_name="arr", axes=(-2, -1))
    check_shape_equality(dark.shape, arr.shape, a_name="dark", b_name="arr", axes=(-2, -1))
    if np.issubdtype(flat.dtype, np.floating) and np.isnan(flat).any():
        raise InvalidFlatError("flat holds NaN values; the flat fields cannot be used")
    if np.issubdtype(dark.dtype, np.floating) and np.isnan(dark).any():
        raise InvalidFlatError("dark holds NaN values; the dark fields cannot be used")
    if not np.any(flat):
        raise InvalidFlatError("flat is zero everywhere: no beam was recorded in the flat fields")
    return flat, dark


def _check_denominator(flat_avg, dark_avg, what="flat"):
    """Refuse a flat whose (flat − dark) is nowhere positive (a few dead pixels are fine)."""
    if not np.any(flat_avg - dark_avg > 0):
        raise InvalidFlatError(
            f"{what} does not exceed dark anywhere (flat − dark <= 0 in every pixel): "
            "flat and dark may be swapped, or the beam was off"
        )


def _divide(arr, dark, denom, cutoff, out):
    """``(arr − dark) / max(denom, 1e-6)`` in float32, clipped above at `cutoff`."""
    np.maximum(denom, DENOMINATOR_FLOOR, out=denom)
    out = _out_array(out, arr.shape)
    np.subtract(arr, dark, out=out, dtype=np.float32, casting="unsafe")
    np.divide(out, denom, out=out)
    if cutoff is not None:
        np.minimum(out, np.float32(cutoff), out=out)
    return out


def _out_array(out, shape):
    """Return `out` (checked to be float32 of `shape`) or a new float32 array."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not isinstance(out, np.ndarray) or out.shape != tuple(shape) or out.dtype != np.float32:
        raise ShapeMismatchError(
            f"out must be a float32 ndarray of shape {tuple(shape)}, got "
            f"{getattr(out, 'dtype', type(out).__name__)} {np.shape(out)}"
        )
    return out


def _proj_index(proj_index, n):
    if proj_index is None:
        return np.arange(n, dtype=np.float64)
    proj_index = np.asarray(proj_index, dtype=np.float64)
    if proj_index.shape != (n,):
        raise ShapeMismatchError(
            f"proj_index shape {proj_index.shape} does not match the {n} projections of arr"
        )
    return proj_index


def normalize(arr, flat, dark, cutoff=None, ncore=None, out=None, *, averaging="mean"):
    """Normalize raw projections with flat and dark fields.

    Computes ``(arr − d) / max(f − d, 1e-6)`` where ``f`` and ``d`` are the per-pixel mean (or
    median) of the flat and dark frames, in float32 — the same result as tomopy's
    ``normalize``.

    Parameters
    ----------
    arr : (angle, row, col) array_like
        Raw projections (any real dtype, e.g. uint16 counts).
    flat : (n_flat, row, col) or (row, col) array_like
        Flat (open-beam) fields.
    dark : (n_dark, row, col) or (row, col) array_like
        Dark fields.
    cutoff : float, optional
        Upper clip of the normalized values (tomopy's `cutoff`).
    ncore : int, optional
        Accepted for tomopy compatibility and ignored: parallelism comes from dask.
    out : (angle, row, col) ndarray of float32, optional
        Array the result is written to (honoured, as in tomopy; may be `arr` itself if that is
        float32).
    averaging : {"mean", "median"}, keyword-only
        How the flat and dark frames are averaged.  ``"mean"`` is tomopy's behaviour;
        ``"median"`` rejects zingers in the flats.

    Returns
    -------
    (angle, row, col) ndarray of float32
        Transmission (1 = open beam).

    Raises
    ------
    ShapeMismatchError
        If the (row, col) frame shape of `flat` or `dark` differs from that of `arr`.
    InvalidFlatError
        If `flat` is zero everywhere, holds NaN, or nowhere exceeds `dark` (dead pixels with
        flat − dark <= 0 are tolerated: their denominator is clipped to 1e-6).
    ValueError
        If `arr` is not 3-D or `averaging` is unknown.

    See Also
    --------
    normalize_nf, normalize_interp : flats recorded several times during the scan.
    minus_log : next step, transmission to line integrals.

    References
    ----------
    tomopy.prep.normalize.normalize (https://tomopy.readthedocs.io).

    Examples
    --------
    >>> import numpy as np
    >>> proj = np.full((2, 3, 4), 505, dtype=np.uint16)
    >>> normalize(proj, np.full((3, 4), 1000), np.full((3, 4), 10))[0, 0, 0]
    np.float32(0.5)
    """
    arr = _check_arr(arr)
    flat, dark = _check_frames(arr, flat, dark)
    flat_avg = _average(flat, averaging)
    dark_avg = _average(dark, averaging)
    _check_denominator(flat_avg, dark_avg)
    denom = np.subtract(flat_avg, dark_avg, dtype=np.float32)
    return _divide(arr, dark_avg, denom, cutoff, out)


def normalize_nf(arr, flat, dark, flat_loc, cutoff=None, ncore=None, out=None, *, proj_index=None):
    """Normalize with the nearest of several flat-field series ("nearest flat").

    The flat frames are split into ``len(flat_loc)`` equal consecutive series (tomopy's rule:
    ``n_flat // len(flat_loc)`` frames each; leftover frames at the end are unused), each
    series is median-averaged, the darks are median-averaged, and every projection is
    normalized with the series nearest to it: projection ``p`` uses series ``m`` for
    ``b[m-1] <= p < b[m]`` with boundaries ``b[m] = flat_loc[m] + round((flat_loc[m+1] −
    flat_loc[m]) / 2)`` (NumPy rounding, half to even), as tomopy does.

    Parameters
    ----------
    arr : (angle, row, col) array_like
        Raw projections, or a chunk of consecutive or scattered angles (see `proj_index`).
    flat : (n_flat, row, col) array_like
        All flat frames, series after series.
    dark : (n_dark, row, col) or (row, col) array_like
        Dark fields.
    flat_loc : sequence of int
        Projection index at which each flat series was taken, non-decreasing.
    cutoff : float, optional
        Upper clip of the normalized values.
    ncore : int, optional
        Accepted for tomopy compatibility and ignored.
    out : (angle, row, col) ndarray of float32, optional
        Array the result is written to (honoured).
    proj_index : (angle,) array_like of int, optional, keyword-only
        Absolute projection index of each row of `arr` in the full scan; default
        ``arange(len(arr))``.  Passing it lets a chunk of angles be normalized on its own
        with exactly the result of the whole array.

    Returns
    -------
    (angle, row, col) ndarray of float32
        Transmission.

    Raises
    ------
    ShapeMismatchError
        Frame shapes of `flat`/`dark` differ from `arr`; `proj_index` has the wrong length;
        fewer flat frames than series.
    InvalidFlatError
        Flats zero everywhere, NaN in flats, or a series nowhere exceeding the dark.
    ValueError
        `flat_loc` empty or decreasing.

    References
    ----------
    tomopy.prep.normalize.normalize_nf (https://tomopy.readthedocs.io).
    """
    arr = _check_arr(arr)
    flat, dark = _check_frames(arr, flat, dark)
    flat_loc = np.asarray(flat_loc, dtype=np.float64).ravel()
    if flat_loc.size == 0:
        raise ValueError("flat_loc must name at least one flat series")
    if np.any(np.diff(flat_loc) < 0):
        raise ValueError(f"flat_loc must be non-decreasing, got {flat_loc.tolist()}")
    n_series = flat_loc.size
    per_series = flat.shape[0] // n_series
    if per_series == 0:
        raise ShapeMismatchError(
            f"flat holds {flat.shape[0]} frames, fewer than the {n_series} series in flat_loc"
        )
    index = _proj_index(proj_index, arr.shape[0])

    dark_avg = np.median(dark.astype(np.float32, copy=False), axis=0)
    # Boundaries between series (tomopy's rule), then the series used by each projection.
    bounds = flat_loc[:-1] + np.round((flat_loc[1:] - flat_loc[:-1]) / 2)
    series = np.minimum(np.searchsorted(bounds, index, side="right"), n_series - 1)

    out = _out_array(out, arr.shape)
    for m in np.unique(series):
        sel = np.flatnonzero(series == m)
        frames = flat[m * per_series:(m + 1) * per_series].astype(np.float32, copy=False)
        flat_avg = np.median(frames, axis=0)
        _check_denominator(flat_avg, dark_avg, what=f"flat series {m} (flat_loc {flat_loc[m]:g})")
        denom = np.subtract(flat_avg, dark_avg, dtype=np.float32)
        out[sel] = _divide(arr[sel], dark_avg, denom, cutoff, None)
    return out


def normalize_interp(arr, flat, dark, flat_index, *, proj_index=None, cutoff=None,
                     averaging="median"):
    """Normalize with a flat field interpolated linearly between flat series.

    For scans that record flats in several series during the acquisition (e.g. 170 flats over
    2256 projections), the flat frames are grouped into series by equal `flat_index`, each
    series is averaged, and projection ``p`` is normalized with

    .. math::

        F(p) = (1 - w)\\,F_k + w\\,F_{k+1}, \\qquad w = \\frac{p - s_k}{s_{k+1} - s_k},
        \\qquad s_k \\le p \\le s_{k+1},

    where :math:`s_k` is the projection index of series :math:`k`; before the first and after
    the last series the nearest series is used unchanged.  The result is
    ``(arr − d) / max(F(p) − d, 1e-6)``.  This follows a linear drift of the beam (e.g.
    top-up decay, monochromator heating) exactly.

    Parameters
    ----------
    arr : (angle, row, col) array_like
        Raw projections, or a chunk of them (see `proj_index`).
    flat : (n_flat, row, col) array_like
        Flat frames of all series, in any order.
    dark : (n_dark, row, col) or (row, col) array_like
        Dark fields.
    flat_index : (n_flat,) array_like of float
        Projection index (fractional allowed, e.g. 563.5 for a series taken between
        projections 563 and 564) at which each flat frame was recorded.
    proj_index : (angle,) array_like of float, optional, keyword-only
        Absolute projection index of each row of `arr`; default ``arange(len(arr))``.  A chunk
        normalized with its `proj_index` equals the same rows of the whole-array result.
    cutoff : float, optional, keyword-only
        Upper clip of the normalized values.
    averaging : {"median", "mean"}, keyword-only
        How the frames of one series, and the darks, are averaged.

    Returns
    -------
    (angle, row, col) ndarray of float32
        Transmission.

    Raises
    ------
    ShapeMismatchError
        Frame shapes differ from `arr`, or `flat_index`/`proj_index` lengths do not match.
    InvalidFlatError
        Flats zero everywhere, NaN in flats or darks, or a series nowhere exceeding the dark.
    ValueError
        Non-finite `flat_index`.

    See Also
    --------
    normalize_nf : nearest series instead of interpolation (tomopy).

    Notes
    -----
    Only the series next to the projections of the block are averaged (and checked), so a
    chunk of angles costs the averaging of two or three series.  Frames may also be passed
    already averaged, one per series (unique `flat_index` values): averaging one frame
    returns it unchanged.
    """
    arr = _check_arr(arr)
    flat, dark = _check_frames(arr, flat, dark)
    flat_index = np.asarray(flat_index, dtype=np.float64).ravel()
    if flat_index.shape != (flat.shape[0],):
        raise ShapeMismatchError(
            f"flat_index has {flat_index.size} entries but flat holds {flat.shape[0]} frames"
        )
    if not np.all(np.isfinite(flat_index)):
        raise ValueError("flat_index holds NaN or infinite values")
    index = _proj_index(proj_index, arr.shape[0])

    dark_avg = _average(dark, averaging)
    positions, group = np.unique(flat_index, return_inverse=True)

    # Left neighbour k and weight w of each projection; constant beyond the ends.
    if positions.size == 1:
        left = np.zeros(index.size, dtype=np.intp)
        weight = np.zeros(index.size)
    else:
        left = np.clip(np.searchsorted(positions, index, side="right") - 1, 0, positions.size - 2)
        weight = (index - positions[left]) / (positions[left + 1] - positions[left])
        weight = np.clip(weight, 0.0, 1.0)
    right = np.minimum(left + 1, positions.size - 1)

    # Average only the series this block needs (a chunk of angles touches few of them).
    needed = np.unique(np.concatenate([left, right]))
    slot = np.zeros(positions.size, dtype=np.intp)
    slot[needed] = np.arange(needed.size)
    series = np.empty((needed.size,) + flat.shape[1:], dtype=np.float32)
    for j, k in enumerate(needed):
        series[j] = _average(flat[group == k], averaging)
        _check_denominator(series[j], dark_avg, what=f"flat series at flat_index {positions[k]:g}")

    w = weight.astype(np.float32)[:, np.newaxis, np.newaxis]
    denom = (1 - w) * series[slot[left]] + w * series[slot[right]]
    denom -= dark_avg
    return _divide(arr, dark_avg, denom, cutoff, None)


def minus_log(arr, ncore=None, out=None, *, clip_min=TRANSMISSION_FLOOR):
    """Line integrals ``−log(arr)`` of transmission, finite for every input.

    Parameters
    ----------
    arr : (angle, row, col) array_like
        Transmission (any shape is accepted; float32 result).
    ncore : int, optional
        Accepted for tomopy compatibility and ignored.
    out : ndarray of float32, optional
        Array the result is written to (honoured; may be `arr` itself if that is float32).
    clip_min : float, keyword-only
        Transmission floor, default 1e-6 (so the result is at most −log(1e-6) ≈ 13.8).

    Returns
    -------
    ndarray of float32
        ``−log(max(arr, clip_min))`` with NaN and ±inf transmission set to `clip_min` first;
        the result is finite everywhere.

    Raises
    ------
    ValueError
        If `clip_min` is not a finite positive number.

    Notes
    -----
    tomopy's ``minus_log`` returns ``inf`` for zero and ``NaN`` for negative transmission;
    one such pixel (a dead pixel, or noise pushing ``p − dark`` below zero in an opaque
    region) then spreads over a whole slice through the reconstruction filter.  Here every
    value below `clip_min`, and every non-finite value, is replaced by `clip_min` before the
    logarithm.  The default floor 1e-6 equals the flat − dark floor of :func:`normalize` and
    lies below the dynamic range of any real detector (a 16-bit detector's smallest
    non-zero transmission is 1/65535 ≈ 1.5e-5), so measured values are never altered; the
    resulting maximum, 13.8, marks such pixels as "opaque" without making them infinite.
    Values above 1 (negative line integrals, from noise or flat drift) are kept.

    References
    ----------
    tomopy.prep.normalize.minus_log (https://tomopy.readthedocs.io).

    Examples
    --------
    >>> import numpy as np
    >>> minus_log(np.array([1.0, 0.0, -0.5, np.nan]))
    array([ 0.      , 13.815511, 13.815511, 13.815511], dtype=float32)
    """
    clip_min = float(clip_min)
    if not (np.isfinite(clip_min) and clip_min > 0):
        raise ValueError(f"clip_min must be a finite positive number, got {clip_min!r}")
    arr = np.asarray(arr)
    out = _out_array(out, arr.shape)
    floor = np.float32(clip_min)
    np.copyto(out, arr, casting="unsafe")
    bad = ~np.isfinite(out)
    np.maximum(out, floor, out=out)
    out[bad] = floor
    np.log(out, out=out)
    np.subtract(np.float32(0), out, out=out)  # 0 − log gives +0.0 (not −0.0) at arr = 1
    return out
