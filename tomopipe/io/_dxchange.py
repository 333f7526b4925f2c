"""Data Exchange (DXchange) HDF5: a streaming reader and a chunked writer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import dask.array as da
import h5py
import numpy as np
import scipy.interpolate

from .._validate import check_ndim, check_shape_equality, check_theta_radians
from ..errors import InvalidFlatError, MissingKeyError, ShapeMismatchError
from ._scan import (
    H5Slicer,
    RawScan,
    angles_to_radians,
    check_frame_shape,
    check_input_file,
    empty_stack,
    first_key,
    lazy_stack,
    open_h5,
    read_small,
)

__all__ = ["read_dxchange", "write_dxchange"]

DATA_KEY = "/exchange/data"
FLAT_KEYS = ("/exchange/data_white", "/exchange/data_flat")
DARK_KEYS = ("/exchange/data_dark",)
THETA_KEYS = ("/exchange/theta", "/exchange/theta_deg")
THETA_FLAT_KEYS = ("/exchange/theta_white", "/exchange/theta_flat")


def read_dxchange(path, *, theta=None, allow_missing_darks=False, chunks=None) -> RawScan:
    """Read a Data Exchange HDF5 scan lazily.

    Only metadata is read here; frames are read chunk by chunk when the dask arrays are
    computed, each chunk opening the file anew (the graph pickles, see :class:`RawScan`).

    Parameters
    ----------
    path : str or os.PathLike
        HDF5 file in the Data Exchange layout: ``/exchange/data`` (projections),
        ``/exchange/data_white`` (flats; also ``/exchange/data_flat``),
        ``/exchange/data_dark`` (darks), ``/exchange/theta`` (angles; also
        ``/exchange/theta_deg``), optionally ``/exchange/theta_white`` (or ``theta_flat``,
        the angle of each flat frame).
    theta : (n_angles,) array_like, optional
        Rotation angles in radians; overrides the file's angles (and is required when the
        file has none).
    allow_missing_darks : bool
        Return a (0, rows, cols) `darks` array instead of raising when the file has no darks.
    chunks : int, tuple or str, optional
        Dask chunks of the projections (and flats/darks where they fit).  Default: whole
        frames, up to 16 angles and at most 64 MiB per chunk.

    Returns
    -------
    scan : RawScan
        ``projections`` (n_angles, rows, cols), ``flats`` (n_flats, rows, cols), ``darks``
        (n_darks, rows, cols), all lazy and in the file's dtype; ``theta`` (n_angles,)
        float64 in radians (the file's angles are degrees unless their ``units`` attribute
        says radians); ``flat_index`` (n_flats,) float64 interpolated from
        ``theta_white`` over the projection angles, or None when the file has no flat angles
        or all flats sit at one projection index.

    Raises
    ------
    InputFileError
        If `path` does not exist or cannot be read.
    TruncatedFileError
        If the file is truncated or corrupt (at read time, or later when a chunk is read).
    MissingKeyError
        If projections, flats, darks (unless `allow_missing_darks`) or angles (unless `theta`
        is given) are missing; the message names the file and the keys tried.
    ShapeMismatchError
        If the flat or dark frame shape differs from the projection frame shape, or the
        number of angles differs from the number of projections.
    AngleUnitError
        If `theta` holds values above 2π (degrees passed as radians), or the file's angles
        carry an unknown unit.
    InvalidFlatError
        If the flats dataset holds no frames.

    References
    ----------
    .. [1] F. De Carlo et al., "Scientific data exchange: a schema for HDF5-based storage of
       raw and analyzed data", J. Synchrotron Rad. 21, 1224-1230 (2014).
       https://doi.org/10.1107/S160057751401604X
    .. [2] The ``dxchange`` package (``dxchange.read_aps_32id``), which reads the same layout
       into memory; this reader keeps the same keys and fallbacks but streams.
    """
    path = check_input_file(path)
    with open_h5(path) as f:
        data_key = first_key(f, (DATA_KEY,), path)
        proj = f[data_key]
        check_frame_shape(proj.shape, data_key, path, name="projections")
        n_angles = proj.shape[0]
        if n_angles == 0:
            raise ShapeMismatchError(f"{path}: projections {data_key!r} hold no frames")
        frame = tuple(proj.shape[1:])

        flat_key = first_key(f, FLAT_KEYS, path)
        flats = _checked_stack(f, flat_key, path, frame, data_key, "flats")
        if flats.shape[0] == 0:
            raise InvalidFlatError(f"{path}: flats {flat_key!r} hold no frames")

        dark_key = first_key(f, DARK_KEYS, path, required=False)
        darks = None
        if dark_key is not None:
            darks = _checked_stack(f, dark_key, path, frame, data_key, "darks")
            if darks.shape[0] == 0:
                darks = None
        if darks is None and not allow_missing_darks:
            raise MissingKeyError(path, DARK_KEYS[0], tried=DARK_KEYS[1:])

        if theta is not None:
            theta = check_theta_radians(theta, name="theta")
            theta_src = "theta (given)"
        else:
            theta_key = first_key(f, THETA_KEYS, path)
            theta = _read_angles(f, theta_key, path)
            theta_src = f"{path}: {theta_key!r}"
        if theta.size != n_angles:
            raise ShapeMismatchError(
                f"{theta_src} holds {theta.size} angles but {path}: {data_key!r} holds "
                f"{n_angles} projections"
            )

        flat_index = None
        tf_key = first_key(f, THETA_FLAT_KEYS, path, required=False)
        if tf_key is not None:
            theta_flat = _read_angles(f, tf_key, path)
            if theta_flat.size != flats.shape[0]:
                raise ShapeMismatchError(
                    f"{path}: {tf_key!r} holds {theta_flat.size} angles but {flat_key!r} holds "
                    f"{flats.shape[0]} flat frames"
                )
            flat_index = angles_to_index(theta_flat, theta)
            if np.all(flat_index == flat_index[0]):
                flat_index = None

        proj_slicer = H5Slicer(path, data_key, proj.shape, proj.dtype)

    projections = lazy_stack(proj_slicer, chunks, name_prefix="dxchange-projections")
    flats_arr = lazy_stack(flats, chunks, name_prefix="dxchange-flats")
    if darks is None:
        darks_arr = empty_stack(frame, proj_slicer.dtype)
    else:
        darks_arr = lazy_stack(darks, chunks, name_prefix="dxchange-darks")
    return RawScan(
        projections=projections,
        flats=flats_arr,
        darks=darks_arr,
        theta=theta,
        flat_index=flat_index,
        source=path,
        format="dxchange",
    )


def _checked_stack(f, key, path, frame, data_key, name):
    ds = f[key]
    check_frame_shape(ds.shape, key, path, name=name)
    check_shape_equality(
        ds.shape,
        (ds.shape[0],) + frame,
        a_name=f"{path}: {name} {key!r}",
        b_name=f"projections {data_key!r} frame",
        axes=(-2, -1),
    )
    return H5Slicer(path, key, ds.shape, ds.dtype)


def _read_angles(f, key, path):
    """Angles of `key` in radians (degrees unless the ``units`` attribute says radians)."""
    values = np.ravel(np.asarray(read_small(f, key, path), dtype=np.float64))
    units = f[key].attrs.get("units")
    if units is None and key.endswith("_deg"):  # the key names its unit
        units = "degree"
    return angles_to_radians(values, units, path=path, key=key)


def angles_to_index(theta_flat, theta):
    """Fractional projection index at which each flat angle was reached.

    Linear interpolation of the projection index over angle when `theta` is strictly
    monotonic (extrapolated linearly from the end steps beyond the scan range, so a series
    taken just before the first projection gets e.g. −0.5); the index of the nearest angle
    otherwise.

    Parameters
    ----------
    theta_flat : (n_flats,) ndarray
        Flat angles, radians.
    theta : (n_angles,) ndarray
        Projection angles, radians.

    Returns
    -------
    index : (n_flats,) ndarray of float64
    """
    theta_flat = np.asarray(theta_flat, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    idx = np.arange(theta.size, dtype=np.float64)
    if theta.size == 1:
        return np.zeros_like(theta_flat)
    step = np.diff(theta)
    if np.all(step > 0) or np.all(step < 0):
        return scipy.interpolate.interp1d(theta, idx, fill_value="extrapolate", assume_sorted=False)(theta_flat)
    nearest = np.argmin(np.abs(theta[None, :] - theta_flat[:, None]), axis=1)
    return nearest.astype(np.float64)


def write_dxchange(
    path,
    projections,
    flats,
    darks,
    theta,
    *,
    chunk_angles=16,
    overwrite=False,
    flat_index=None,
) -> Path:
    """Write a scan to a Data Exchange HDF5 file, block by block.

    Numpy arrays (memory-mapped ones included) are written in blocks of `chunk_angles`
    frames; dask arrays through :func:`dask.array.store` on the threaded scheduler, chunk
    by chunk, so a stack larger than RAM never sits in memory.  The file is written under a
    temporary name and renamed when complete, so an interrupted write leaves no file that
    looks valid.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.h5``).
    projections : (n_angles, rows, cols) ndarray or dask.array.Array
        Projections, axis order (angle, row, col); the dtype is kept.
    flats : (n_flats, rows, cols) ndarray or dask.array.Array
        Flat-field frames.
    darks : (n_darks, rows, cols) ndarray or dask.array.Array or None
        Dark-field frames; None writes no ``/exchange/data_dark``.
    theta : (n_angles,) array_like
        Rotation angles in radians; stored in degrees in ``/exchange/theta`` (``units``
        attribute ``"degrees"``) per the Data Exchange convention.
    chunk_angles : int
        Frames per write block, and the upper bound of frames per HDF5 chunk.
    overwrite : bool
        Replace an existing file at `path`.
    flat_index : (n_flats,) array_like, optional
        Projection index at which each flat was acquired (see :class:`RawScan`); stored as
        the flat angles ``/exchange/theta_white`` (degrees), interpolated over `theta`,
        which must then be strictly monotonic.

    Returns
    -------
    path : pathlib.Path
        The written file.

    Raises
    ------
    FileExistsError
        If `path` exists and `overwrite` is False.
    ShapeMismatchError
        If frame shapes differ, or `theta` / `flat_index` have the wrong length.
    AngleUnitError
        If `theta` holds values above 2π (degrees instead of radians).
    ValueError
        If an array is not 3-D, `chunk_angles` is not a positive integer, or `flat_index`
        is given with non-monotonic `theta`.

    References
    ----------
    .. [1] F. De Carlo et al., "Scientific data exchange: a schema for HDF5-based storage of
       raw and analyzed data", J. Synchrotron Rad. 21, 1224-1230 (2014).
       https://doi.org/10.1107/S160057751401604X
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; pass overwrite=True to replace it")
    if not isinstance(chunk_angles, (int, np.integer)) or chunk_angles < 1:
        raise ValueError(f"chunk_angles must be a positive integer, got {chunk_angles!r}")

    arrays = {"projections": _as_array(projections), "flats": _as_array(flats)}
    if darks is not None:
        arrays["darks"] = _as_array(darks)
    for name, arr in arrays.items():
        check_ndim(arr, 3, name=name)
    proj = arrays["projections"]
    for name in ("flats", "darks"):
        if name in arrays:
            check_shape_equality(
                arrays[name].shape, proj.shape, a_name=name, b_name="projections",
                axes=(-2, -1),
            )
    theta = check_theta_radians(theta, name="theta")
    if theta.size != proj.shape[0]:
        raise ShapeMismatchError(
            f"theta holds {theta.size} angles but projections hold {proj.shape[0]} frames"
        )
    theta_deg = np.rad2deg(theta)

    theta_white = None
    if flat_index is not None:
        flat_index = np.ravel(np.asarray(flat_index, dtype=np.float64))
        if flat_index.size != arrays["flats"].shape[0]:
            raise ShapeMismatchError(
                f"flat_index holds {flat_index.size} values but flats hold "
                f"{arrays['flats'].shape[0]} frames"
            )
        if theta.size > 1 and not (np.all(np.diff(theta) > 0) or np.all(np.diff(theta) < 0)):
            raise ValueError("flat_index can only be stored with strictly monotonic theta")
        theta_white = scipy.interpolate.interp1d(np.arange(theta.size), theta_deg, fill_value="extrapolate")(flat_index)

    keys = {"projections": DATA_KEY, "flats": FLAT_KEYS[0], "darks": DARK_KEYS[0]}
    axes = {"projections": "theta:y:x", "flats": "theta_white:y:x", "darks": "theta_dark:y:x"}
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            from .. import __version__

            f.attrs["creator"] = f"tomopipe {__version__}"
            f.create_dataset("implements", data="exchange")
            for name, arr in arrays.items():
                ds = f.create_dataset(
                    keys[name],
                    shape=arr.shape,
                    dtype=arr.dtype,
                    chunks=_h5_chunks(arr.shape, arr.dtype, chunk_angles),
                )
                ds.attrs["axes"] = axes[name]
                _store(arr, ds, chunk_angles)
            ds = f.create_dataset(THETA_KEYS[0], data=theta_deg)
            ds.attrs["units"] = "degrees"
            if theta_white is not None:
                ds = f.create_dataset(THETA_FLAT_KEYS[0], data=theta_white)
                ds.attrs["units"] = "degrees"
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _as_array(arr):
    if isinstance(arr, (da.Array, np.ndarray)):
        return arr
    return np.asarray(arr)


def _h5_chunks(shape, dtype, chunk_angles):
    if 0 in shape:
        return None
    frame_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    per = max(1, min(int(chunk_angles), shape[0], (4 * 2**20) // max(frame_bytes, 1)))
    return (per,) + tuple(shape[1:])


def _store(arr, ds, chunk_angles):
    if arr.shape[0] == 0:
        return
    if isinstance(arr, da.Array):
        da.store(arr, ds, lock=threading.Lock(), scheduler="threads")
        return
    for start in range(0, arr.shape[0], int(chunk_angles)):
        stop = min(start + int(chunk_angles), arr.shape[0])
        ds[start:stop] = arr[start:stop]
