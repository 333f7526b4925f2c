"""The :class:`RawScan` container and the helpers shared by the readers.

Every reader returns lazy dask arrays built with :func:`dask.array.from_array` over a small
*slicer* object.  A slicer holds only the file path, the key (or file list), the shape and the
dtype, and opens the file inside ``__getitem__``: it pickles, so the same graph runs on the
threaded scheduler and on dask.distributed worker processes, where open ``h5py`` objects
cannot travel.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

import dask.array as da
import h5py
import numpy as np

from ..errors import (
    InputFileError,
    MissingKeyError,
    ShapeMismatchError,
    TruncatedFileError,
)

__all__ = ["RawScan"]

#: Upper bound, in bytes, of one default chunk of a projection stack.
DEFAULT_CHUNK_BYTES = 64 * 2**20
#: Number of angles in one default chunk (fewer if the frames are large).
DEFAULT_CHUNK_ANGLES = 16


@dataclass(frozen=True, eq=False)
class RawScan:
    """One raw tomography scan, read lazily.

    Attributes
    ----------
    projections : (n_angles, rows, cols) dask.array.Array
        Projection frames in the file's dtype (uint16, float32, ...), axis order
        (angle, row, col), chunked along angles.
    flats : (n_flats, rows, cols) dask.array.Array
        Flat-field (white) frames, same frame shape as `projections`.
    darks : (n_darks, rows, cols) dask.array.Array
        Dark-field frames.  ``n_darks == 0`` only when the reader was called with
        ``allow_missing_darks=True`` and the input holds no darks.
    theta : (n_angles,) ndarray of float64
        Rotation angle of each projection, in radians.
    flat_index : (n_flats,) ndarray of float64 or None
        For each flat frame, the (fractional) projection index at which it was acquired, for
        interpolating flats between series; ``None`` when all flats form one series.
    source : str
        Path (or glob pattern) of the input.
    format : str
        ``"dxchange"``, ``"tiff"`` or ``"nxtomo"``.
    """

    projections: da.Array
    flats: da.Array
    darks: da.Array
    theta: np.ndarray
    flat_index: np.ndarray | None
    source: str
    format: str

    @property
    def n_angles(self) -> int:
        """Number of projections."""
        return int(self.projections.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """Detector frame shape ``(rows, cols)``."""
        return tuple(int(s) for s in self.projections.shape[1:])

    def __repr__(self):
        fi = "None" if self.flat_index is None else f"({self.flat_index.size},)"
        return (
            f"RawScan(format={self.format!r}, source={self.source!r}, "
            f"projections={self.projections.shape} {self.projections.dtype}, "
            f"flats={self.flats.shape}, darks={self.darks.shape}, "
            f"theta=({self.theta.size},) rad, flat_index={fi})"
        )


# --------------------------------------------------------------------------------------
# shared helpers


def natural_key(path) -> tuple:
    """Sort key putting ``p2`` before ``p10`` (digit runs compare as integers)."""
    parts = re.split(r"(\d+)", os.fspath(path))
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def check_input_file(path) -> str:
    """Return `path` as str; raise :class:`InputFileError` if it is no readable file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputFileError(f"{path}: no such file") from FileNotFoundError(path)
    if os.path.isdir(path):
        raise InputFileError(f"{path}: is a directory, expected a file")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{path}: file is not readable (permission denied)")
    return path


@contextmanager
def open_h5(path):
    """Open an HDF5 file read-only, turning h5py's ``OSError`` into tomopipe errors."""
    path = check_input_file(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError as exc:
        raise InputFileError(f"{path}: no such file") from exc
    except OSError as exc:
        raise TruncatedFileError(
            f"{path}: cannot be opened as HDF5 - the file is truncated or corrupt ({exc})"
        ) from exc
    try:
        yield f
    finally:
        f.close()


def read_small(f, key, path):
    """Read a small dataset (angles, keys) eagerly, mapping read failures to errors."""
    try:
        return f[key][()]
    except OSError as exc:
        raise TruncatedFileError(
            f"{path}: reading {key!r} failed - the file is truncated or corrupt ({exc})"
        ) from exc


def first_key(f, keys, path, *, required=True):
    """Return the first of `keys` that is a dataset in `f` (or None / MissingKeyError)."""
    for key in keys:
        if isinstance(f.get(key), h5py.Dataset):
            return key
    if required:
        raise MissingKeyError(path, keys[0], tried=keys[1:])
    return None


def as_str(value) -> str:
    """Decode an HDF5 attribute or scalar string value (bytes, str or 0-d/1-element array)."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def angle_units_factor(units, *, path, key, default="degree") -> float:
    """Factor converting stored angles with `units` (an HDF5 attribute value) to radians."""
    u = as_str(units).strip().lower() if units is not None else default
    if u in ("deg", "degree", "degrees", "°"):
        return np.pi / 180.0
    if u in ("rad", "radian", "radians"):
        return 1.0
    from ..errors import AngleUnitError

    raise AngleUnitError(
        f"{path}: {key!r} has units {as_str(units)!r}; expected degrees or radians"
    )


def angles_to_radians(values, units, *, path, key):
    """Stored rotation angles in radians, checked.

    Parameters
    ----------
    values : (N,) array_like
        The angles as stored.
    units : str or bytes or None
        The dataset's ``units`` attribute. Without one the unit is decided from the values,
        with a :class:`~tomopipe.errors.TomopipeWarning`: a scan covering at least 45° whose
        angles all lie within ±2π is in radians (in degrees it would span at most 6.3°, which
        no tomography scan does); anything larger is in degrees.
    path, key : str
        File and dataset, named in messages.

    Returns
    -------
    (N,) ndarray of float64

    Raises
    ------
    InvalidDataError
        NaN or infinite angles.
    AngleUnitError
        An unknown unit, or values above 2π where the attribute says radians.
    """
    import warnings

    from .._validate import check_theta_radians
    from ..errors import InvalidDataError, TomopipeWarning

    values = np.ravel(np.asarray(values, dtype=np.float64))
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))
        raise InvalidDataError(
            f"{path}: {key!r} holds {bad.size} NaN or infinite angles (first at index {int(bad[0])})"
        )
    if units is None and values.size:
        top = float(np.max(np.abs(values)))
        span = float(np.ptp(values))
        as_rad = top <= 2 * np.pi + 1e-6 and span >= np.pi / 4
        warnings.warn(
            f"{path}: {key!r} has no 'units' attribute; its values span {values.min():.4g} to "
            f"{values.max():.4g}, read as {'radians' if as_rad else 'degrees'}",
            TomopipeWarning, stacklevel=3,
        )
        return values if as_rad else np.deg2rad(values)
    factor = angle_units_factor(units, path=path, key=key)
    if factor == 1.0:
        return check_theta_radians(values, name=key, source=path)
    return values * factor


def check_frame_shape(shape, key, path, *, name):
    """Raise ShapeMismatchError unless `shape` is a 3-D (frames, rows, cols) shape."""
    if len(shape) != 3:
        raise ShapeMismatchError(
            f"{path}: {name} {key!r} must be 3-D (frames, rows, cols), got shape {tuple(shape)}"
        )


def frame_chunks(shape, dtype, chunks=None):
    """Chunks for a (frames, rows, cols) stack: `chunks` if given and valid, else the default.

    The default holds whole frames and up to :data:`DEFAULT_CHUNK_ANGLES` of them, fewer if
    that would exceed :data:`DEFAULT_CHUNK_BYTES` (at least one frame per chunk).
    """
    shape = tuple(int(s) for s in shape)
    if chunks is not None:
        try:
            return da.core.normalize_chunks(chunks, shape, dtype=np.dtype(dtype))
        except ValueError:
            # explicit block sizes written for another array (e.g. the projections' chunks
            # handed on to the flats): fall back to the default for this one
            pass
    frame_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize)
    per = max(1, min(DEFAULT_CHUNK_ANGLES, DEFAULT_CHUNK_BYTES // frame_bytes))
    per = max(1, min(per, shape[0]))
    return da.core.normalize_chunks((per,) + shape[1:], shape)


def lazy_stack(slicer, chunks, *, name_prefix):
    """Wrap a slicer into a dask array with the given chunks (no file opened here)."""
    chunks = frame_chunks(slicer.shape, slicer.dtype, chunks)
    return da.from_array(
        slicer,
        chunks=chunks,
        lock=False,
        meta=np.empty((0,) * slicer.ndim, dtype=slicer.dtype),
        name=f"{name_prefix}-{da.core.tokenize(slicer, chunks)}",
    )


def empty_stack(frame_shape, dtype):
    """A (0, rows, cols) dask array (used for absent darks)."""
    return da.zeros((0,) + tuple(frame_shape), dtype=dtype, chunks=(1,) + tuple(frame_shape))


def split_index(index, ndim):
    """Expand a numpy-style index into exactly `ndim` entries (no newaxis allowed)."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(i is None for i in index):
        raise IndexError("newaxis is not supported by tomopipe slicers")
    n_ell = sum(i is Ellipsis for i in index)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis")
    if n_ell:
        pos = next(k for k, i in enumerate(index) if i is Ellipsis)
        fill = (slice(None),) * (ndim - len(index) + 1)
        index = index[:pos] + fill + index[pos + 1 :]
    if len(index) > ndim:
        raise IndexError(f"too many indices for a {ndim}-D array")
    return index + (slice(None),) * (ndim - len(index))


def select_frames(frame_index, n_frames):
    """Resolve the first-axis index into ``(frames, scalar)``: positions in 0..n_frames-1.

    `frames` is a 1-D int64 array (possibly empty); `scalar` tells that the axis is dropped.
    """
    positions = np.arange(n_frames, dtype=np.int64)[frame_index]
    scalar = np.ndim(positions) == 0
    return np.atleast_1d(positions).astype(np.int64), scalar


def is_simple(index) -> bool:
    """True for an index h5py reads directly: an int or a slice with positive step."""
    if isinstance(index, slice):
        return index.step is None or index.step > 0
    return isinstance(index, (int, np.integer))


def orthogonal_take(block, indices, first_axis=1):
    """Index `block` one axis at a time from `first_axis` on (outer, not broadcast, indexing)."""
    axis = first_axis
    for ix in indices:
        if isinstance(ix, (int, np.integer)):
            block = np.take(block, int(ix), axis=axis)
        else:
            if not (isinstance(ix, slice) and ix == slice(None)):
                block = block[(slice(None),) * axis + (ix,)]
            axis += 1
    return block


def file_token(path):
    """Size and modification time of `path`, so tokens change when the file does."""
    try:
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return None


class H5Slicer:
    """Picklable, lazily-opening view of (selected frames of) a 3-D HDF5 dataset.

    Parameters
    ----------
    path : str
        HDF5 file.
    key : str
        Dataset path inside the file, shape (frames, rows, cols).
    shape : tuple of int
        Shape of the view: ``(len(frames), rows, cols)``, or the dataset shape.
    dtype : numpy dtype
        Dataset dtype.
    frames : (n,) ndarray of int, optional
        Dataset frame index of each frame of the view (e.g. the projections among
        NXtomo's interleaved frames); all frames in order if None.
    """

    ndim = 3

    def __init__(self, path, key, shape, dtype, frames=None):
        self.path = os.fspath(path)
        self.key = key
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.frames = None if frames is None else np.asarray(frames, dtype=np.int64)
        self._token = file_token(self.path)

    def __dask_tokenize__(self):
        frames = None if self.frames is None else self.frames.tobytes()
        return ("H5Slicer", self.path, self.key, self.shape, str(self.dtype), frames, self._token)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        i0, i1, i2 = split_index(index, 3)
        positions, scalar = select_frames(i0, self.shape[0])
        frames = positions if self.frames is None else self.frames[positions]
        rest = (i1, i2)
        h5_rest = tuple(i if is_simple(i) else slice(None) for i in rest)
        np_rest = tuple(slice(None) if is_simple(i) else i for i in rest)

        if frames.size == 0:
            return orthogonal_take(np.empty((0,) + self.shape[1:], dtype=self.dtype), rest)
        uniq, inverse = np.unique(frames, return_inverse=True)
        contiguous = uniq[-1] - uniq[0] + 1 == uniq.size
        sel0 = slice(int(uniq[0]), int(uniq[-1]) + 1) if contiguous else uniq.tolist()

        try:
            with h5py.File(self.path, "r") as f:
                try:
                    ds = f[self.key]
                except KeyError as exc:
                    raise MissingKeyError(self.path, self.key) from exc
                block = ds[(sel0,) + h5_rest]
        except FileNotFoundError as exc:
            raise InputFileError(f"{self.path}: no such file (it was there at read time)") from exc
        except PermissionError as exc:
            raise InputFileError(f"{self.path}: file is not readable ({exc})") from exc
        except OSError as exc:
            raise TruncatedFileError(
                f"{self.path}: reading {self.key!r} frames {int(uniq[0])}..{int(uniq[-1])} "
                f"failed - the file is truncated or corrupt ({exc})"
            ) from exc

        if not (uniq.size == frames.size and np.all(np.diff(frames) > 0)):
            block = block[inverse]
        # h5py dropped the axes indexed by an int; apply the numpy-only parts
        kept = tuple(j for j, i in zip(np_rest, h5_rest) if not isinstance(i, (int, np.integer)))
        block = orthogonal_take(block, kept)
        block = np.asarray(block, dtype=self.dtype)
        return block[0] if scalar else block

    def __repr__(self):
        return f"H5Slicer({self.path!r}, {self.key!r}, shape={self.shape}, dtype={self.dtype})"


def frame_defects(stack):
    """Flag frames of a stack that hold no measurement: all NaN/inf, or all zero.

    Parameters
    ----------
    stack : (frames, row, col) dask.array.Array or ndarray
        Projections (or flats, darks), any dtype.

    Returns
    -------
    (frames,) dask.array.Array of int8
        0 for a usable frame, 1 for a frame without a single finite value, 2 for a frame that
        is zero everywhere. Lazy: compute it together with the copy of the data, so the file
        is read once.
    """
    stack = da.asarray(stack)

    def block(b):
        b = np.asarray(b)
        flat = b.reshape(b.shape[0], -1)
        out = np.zeros(b.shape[0], dtype=np.int8)
        if np.issubdtype(b.dtype, np.floating):
            out[~np.isfinite(flat).any(axis=1)] = 1
        out[(out == 0) & ~flat.any(axis=1)] = 2
        return out

    return stack.map_blocks(block, drop_axis=(1, 2), dtype=np.int8, meta=np.empty((0,), np.int8))
