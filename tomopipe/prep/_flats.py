"""Flat-field series: average each series of flat frames and the darks, out of core."""

from __future__ import annotations

from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from .._validate import check_shape_equality
from ..errors import ConfigError, InvalidFlatError
from ._normalize import normalize_interp

__all__ = ["FlatField", "flat_field"]

_MODES = ("auto", "mean", "median", "interpolate")


@dataclass(frozen=True, eq=False)
class FlatField:
    """Averaged reference fields of one scan, ready for :func:`normalize_interp`.

    Attributes
    ----------
    flats : (n_series, row, col) ndarray of float32
        One averaged flat per series.
    darks : (row, col) ndarray of float32
        Averaged dark field (zeros when the scan has no darks).
    index : (n_series,) ndarray of float64
        Projection index at which each series was recorded (0 for a single series).
    mode : {"mean", "median", "interpolate"}
        How flats are applied: one averaged flat, or interpolated between series.
    averaging : {"mean", "median"}
        How the frames of one series were averaged.
    """

    flats: np.ndarray
    darks: np.ndarray
    index: np.ndarray
    mode: str
    averaging: str


def flat_field(flats, darks, flat_index=None, *, mode="auto", rows_per_chunk=16, source="flats"):
    """Average the flat series and darks of a scan chunk by chunk of rows, and validate them.

    Flat frames are grouped into series by equal `flat_index`; each series is reduced along
    the frame axis with the mean (``mode="mean"``) or the median (``"median"``,
    ``"interpolate"``), ``rows_per_chunk`` detector rows at a time, so RAM holds at most one
    series × ``rows_per_chunk`` rows × all columns.

    Parameters
    ----------
    flats : (n_flats, row, col) array_like or dask.array.Array
        Flat (white) frames, in any dtype.
    darks : (n_darks, row, col) array_like or dask.array.Array
        Dark frames; ``n_darks = 0`` means no darks (zero dark current).
    flat_index : (n_flats,) array_like of float, optional
        Projection index at which each flat frame was taken (DXchange ``theta_white``,
        NXtomo image keys); None for a single series.
    mode : {"auto", "mean", "median", "interpolate"}
        ``"interpolate"`` between series in projection index (tomopy's ``normalize_nf`` idea
        with linear weights); ``"auto"`` interpolates when there are several series.
    rows_per_chunk : int
        Detector rows per reduction task.
    source : str
        Name of the input (file) used in error messages.

    Returns
    -------
    FlatField

    Raises
    ------
    InvalidFlatError
        No flat frames, NaN in flats or darks, flats zero everywhere, or flat − dark ≤ 0 in
        every pixel (the message names `source`).
    ConfigError
        ``mode="interpolate"`` without `flat_index`.
    ShapeMismatchError
        Flats and darks of different frame shapes.

    See Also
    --------
    normalize_interp : applies the result to projections.
    """
    if mode not in _MODES:
        raise ConfigError(f"normalize.flats: must be one of {_MODES}, got {mode!r}")
    flats, darks = da.asarray(flats), da.asarray(darks)
    if flats.shape[0] == 0:
        raise InvalidFlatError(f"{source}: no flat fields")
    if darks.shape[0]:
        check_shape_equality(darks.shape[1:], flats.shape[1:], a_name=f"darks of {source}",
                             b_name="flats")
    fi = None if flat_index is None else np.asarray(flat_index, dtype=np.float64)
    if mode == "auto":
        mode = "interpolate" if fi is not None and np.unique(fi).size > 1 else "mean"
    if mode == "interpolate" and fi is None:
        raise ConfigError(f"normalize.flats: 'interpolate' needs flat positions, which {source} lacks")
    averaging = "median" if mode in ("median", "interpolate") else "mean"
    reduce = da.median if averaging == "median" else da.mean
    r = max(1, int(rows_per_chunk))
    if mode == "interpolate":
        index = np.unique(fi)
        groups = [np.flatnonzero(fi == v) for v in index]
    else:
        index = np.zeros(1)
        groups = [np.arange(flats.shape[0])]
    series = [reduce(flats[g].astype(np.float32).rechunk((-1, r, -1)), axis=0) for g in groups]
    if darks.shape[0]:
        dark = reduce(darks.astype(np.float32).rechunk((-1, r, -1)), axis=0)
    else:
        dark = da.zeros(flats.shape[1:], dtype=np.float32)
    series, dark = dask.compute(da.stack(series), dark)
    series, dark = np.asarray(series, np.float32), np.asarray(dark, np.float32)
    try:  # the checks of normalization itself, once, on the averaged fields
        normalize_interp(series[:1], series, dark, index, proj_index=np.zeros(1), averaging=averaging)
    except InvalidFlatError as exc:
        raise InvalidFlatError(f"{source}: {exc}") from None
    return FlatField(flats=series, darks=dark, index=index, mode=mode, averaging=averaging)
