"""TIFF series (one frame per file, or multi-page stacks): a streaming reader."""

from __future__ import annotations

import glob
import os
import struct

import numpy as np
import tifffile

from .._validate import check_theta_radians
from ..errors import (
    InputFileError,
    InvalidDataError,
    MissingKeyError,
    ShapeMismatchError,
    TruncatedFileError,
)
from ._scan import (
    RawScan,
    check_input_file,
    empty_stack,
    file_token,
    lazy_stack,
    natural_key,
    orthogonal_take,
    select_frames,
    split_index,
)

__all__ = ["read_tiff_series", "read_tiff_stack"]

_TIFF_ERRORS = (tifffile.TiffFileError, OSError, struct.error, ValueError, IndexError)


def read_tiff_series(
    projections,
    flats,
    darks,
    *,
    theta,
    flat_index=None,
    allow_missing_darks=False,
    chunks=None,
) -> RawScan:
    """Read a TIFF series (projections, flats, darks) lazily.

    Each file holds one frame or a stack of 2-D pages; the frames of the files, in natural
    order (``p2`` before ``p10``), form the stack.  Here only the TIFF headers are read (to
    count frames and check their shape); a computed chunk opens only the files of its
    frames and decodes only the pages it needs.

    Parameters
    ----------
    projections : str or os.PathLike or sequence of them
        Glob pattern (``"scan/proj_*.tif"``), a directory (all ``*.tif``/``*.tiff`` in it),
        a single file, or a list of files.  Files are sorted naturally, explicit lists too.
    flats : str or os.PathLike or sequence of them
        Flat-field files, as `projections`.
    darks : str or os.PathLike or sequence of them or None
        Dark-field files, as `projections`; None only with ``allow_missing_darks=True``.
    theta : (n_angles,) array_like
        Rotation angle of each projection frame, in radians.
    flat_index : (n_flats,) array_like, optional
        Projection index (fractional) at which each flat frame was acquired, see
        :class:`RawScan`.  None (or all values equal) means one flat series.
    allow_missing_darks : bool
        Accept ``darks=None`` and return a (0, rows, cols) `darks` array.
    chunks : int, tuple or str, optional
        Dask chunks of the projections (and flats/darks where they fit).  Default: whole
        frames, up to 16 angles and at most 64 MiB per chunk.

    Returns
    -------
    scan : RawScan
        ``projections`` (n_angles, rows, cols), ``flats``, ``darks`` lazy in the files'
        dtype (the common dtype if files differ), ``theta`` (n_angles,) float64 radians,
        ``flat_index`` (n_flats,) float64 or None, ``format="tiff"``.

    Raises
    ------
    InputFileError
        If no file matches a pattern (the message names it) or a listed file is missing.
    TruncatedFileError
        If a file is not a readable TIFF (truncated or corrupt).
    ShapeMismatchError
        If a frame's shape differs from the first projection frame's (the message names both
        files), a file's pages are not 2-D grayscale frames, or `theta` / `flat_index` do not
        match the number of projection / flat frames.
    AngleUnitError
        If `theta` holds values above 2π (degrees instead of radians).
    MissingKeyError
        If `darks` is None without ``allow_missing_darks=True``.

    References
    ----------
    .. [1] C. Gohlke, tifffile, https://github.com/cgohlke/tifffile (the TIFF decoder used).
    """
    proj_files, proj_src = _resolve_files(projections, "projections")
    flat_files, _ = _resolve_files(flats, "flats")
    if darks is None:
        if not allow_missing_darks:
            raise MissingKeyError(proj_src, "darks", tried=())
        dark_files = None
    else:
        dark_files, _ = _resolve_files(darks, "darks")

    proj = _TiffSlicer.from_files(proj_files, name="projections")
    ref = (proj_files[0], proj.shape[1:])
    flat = _TiffSlicer.from_files(flat_files, name="flats", reference=ref)
    dark = None
    if dark_files is not None:
        dark = _TiffSlicer.from_files(dark_files, name="darks", reference=ref)

    n_angles = proj.shape[0]
    theta = check_theta_radians(theta, name="theta")
    if theta.size != n_angles:
        raise ShapeMismatchError(
            f"theta holds {theta.size} angles but the projections {proj_src!r} hold "
            f"{n_angles} frames"
        )
    if flat_index is not None:
        flat_index = np.ravel(np.asarray(flat_index, dtype=np.float64))
        if flat_index.size != flat.shape[0]:
            raise ShapeMismatchError(
                f"flat_index holds {flat_index.size} values but the flats hold "
                f"{flat.shape[0]} frames"
            )
        # a series taken just before the first / after the last projection sits at -0.5 / n - 0.5
        if not np.all(np.isfinite(flat_index)) or np.any(
            (flat_index < -1) | (flat_index > n_angles)
        ):
            raise InvalidDataError(f"flat_index values must be finite and lie in [-1, {n_angles}] "
                                   f"(projection indices of the {n_angles} projections)")
        if np.all(flat_index == flat_index[0]):
            flat_index = None

    return RawScan(
        projections=lazy_stack(proj, chunks, name_prefix="tiff-projections"),
        flats=lazy_stack(flat, chunks, name_prefix="tiff-flats"),
        darks=(
            empty_stack(proj.shape[1:], proj.dtype)
            if dark is None
            else lazy_stack(dark, chunks, name_prefix="tiff-darks")
        ),
        theta=theta,
        flat_index=flat_index,
        source=proj_src,
        format="tiff",
    )


def read_tiff_stack(spec, *, name="volume", chunks=None):
    """A stack of 2-D TIFF frames (slices of a volume, or projections) as a lazy dask array.

    Parameters
    ----------
    spec : str or os.PathLike or sequence of them
        One multi-page file, a glob pattern, a folder, or a list of files (sorted naturally).
    name : str
        What the stack is, in error messages.
    chunks : optional
        Dask chunks (default: whole frames, a few per chunk).

    Returns
    -------
    (frames, rows, cols) dask.array.Array
        In the files' dtype; only headers are read here.

    Raises
    ------
    InputFileError
        No file matches.
    ShapeMismatchError
        A frame whose shape differs from the first one (names the file).
    TruncatedFileError
        A file that is not a readable TIFF.
    """
    files, _ = _resolve_files(spec, name)
    slicer = _TiffSlicer.from_files(files, name=name)
    return lazy_stack(slicer, chunks, name_prefix=f"tiff-{name}")


def _resolve_files(spec, name):
    """Files of a pattern / directory / file / list, naturally sorted, and a source string."""
    if isinstance(spec, (str, os.PathLike)):
        pattern = os.path.expanduser(os.fspath(spec))
        if os.path.isdir(pattern):
            files = [
                os.path.join(pattern, n)
                for n in os.listdir(pattern)
                if n.lower().endswith((".tif", ".tiff"))
            ]
        elif os.path.isfile(pattern):
            files = [pattern]
        else:
            files = glob.glob(pattern)
        files = [p for p in files if os.path.isfile(p)]
        if not files:
            raise InputFileError(f"{name}: no file matches {pattern!r}")
        return sorted(files, key=natural_key), pattern
    try:
        files = [os.fspath(p) for p in spec]
    except TypeError as exc:
        raise TypeError(
            f"{name} must be a glob pattern, a path or a list of paths, got {type(spec).__name__}"
        ) from exc
    if not files:
        raise InputFileError(f"{name}: the file list is empty")
    for p in files:
        check_input_file(p)
    files = sorted(files, key=natural_key)
    src = files[0] if len(files) == 1 else f"{files[0]} .. {files[-1]} ({len(files)} files)"
    return files, src


def _file_frames(path, name):
    """Frame count, frame shape and dtype of one TIFF file, from its headers."""
    try:
        with tifffile.TiffFile(path) as tf:
            pages = list(tf.pages)
            shapes = {tuple(p.shape) for p in pages}
            dtypes = {np.dtype(p.dtype) for p in pages}
            series_size = int(np.prod(tf.series[0].shape)) if tf.series else 0
    except _TIFF_ERRORS as exc:
        raise TruncatedFileError(
            f"{path}: cannot be read as TIFF - the file is truncated or corrupt ({exc})"
        ) from exc
    if not pages:
        raise TruncatedFileError(f"{path}: TIFF file holds no images")
    if len(shapes) != 1:
        raise ShapeMismatchError(
            f"{path}: {name} file holds pages of different shapes {sorted(shapes)}"
        )
    (frame,) = shapes
    if len(frame) != 2:
        raise ShapeMismatchError(
            f"{path}: {name} pages have shape {frame}; expected 2-D grayscale frames (rows, cols) "
            "(a stack of 3 or 4 frames written without photometric='minisblack' is stored as "
            "one colour image)"
        )
    if series_size != len(pages) * frame[0] * frame[1]:
        raise InputFileError(
            f"{path}: image data not stored one frame per TIFF page (e.g. a contiguous ImageJ "
            "hyperstack); save the frames as separate pages or files"
        )
    return len(pages), frame, np.result_type(*dtypes)


class _TiffSlicer:
    """Picklable, lazily-reading view of the frames of a list of TIFF files.

    Parameters
    ----------
    files : tuple of str
        The files, in stack order.
    counts : tuple of int
        Number of frames (pages) of each file.
    frame : (rows, cols)
        Frame shape.
    dtype : numpy dtype
        Dtype of the stack (frames of other dtypes are cast to it).
    """

    ndim = 3

    def __init__(self, files, counts, frame, dtype):
        self.files = tuple(files)
        self.counts = tuple(int(c) for c in counts)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self.shape = (int(self.offsets[-1]),) + tuple(int(s) for s in frame)
        self.dtype = np.dtype(dtype)
        self._token = tuple(file_token(p) for p in self.files)

    @classmethod
    def from_files(cls, files, *, name, reference=None):
        """Read the headers of `files`; check every frame against the first (or `reference`)."""
        counts, dtypes = [], []
        ref_file, ref_frame = reference if reference is not None else (None, None)
        for path in files:
            n, frame, dtype = _file_frames(path, name)
            if ref_frame is None:
                ref_file, ref_frame = path, frame
            elif frame != tuple(ref_frame):
                raise ShapeMismatchError(
                    f"{path}: {name} frame shape {frame} does not match {ref_file} "
                    f"frame shape {tuple(ref_frame)}"
                )
            counts.append(n)
            dtypes.append(dtype)
        return cls(files, counts, ref_frame, np.result_type(*dtypes))

    def __dask_tokenize__(self):
        return ("_TiffSlicer", self.files, self.counts, self.shape, str(self.dtype), self._token)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        i0, i1, i2 = split_index(index, 3)
        positions, scalar = select_frames(i0, self.shape[0])
        uniq, inverse = np.unique(positions, return_inverse=True)
        block = np.empty((uniq.size,) + self.shape[1:], dtype=self.dtype)
        file_of = np.searchsorted(self.offsets, uniq, side="right") - 1
        for k in np.unique(file_of):
            where = np.flatnonzero(file_of == k)
            pages = (uniq[where] - self.offsets[k]).tolist()
            block[where] = self._read_pages(self.files[k], pages)
        block = orthogonal_take(block[inverse], (i1, i2))
        return block[0] if scalar else block

    def _read_pages(self, path, pages):
        try:
            with tifffile.TiffFile(path) as tf:
                data = tf.asarray(key=pages if len(pages) > 1 else pages[0])
        except FileNotFoundError as exc:
            raise InputFileError(f"{path}: no such file (it was there at read time)") from exc
        except _TIFF_ERRORS as exc:
            raise TruncatedFileError(
                f"{path}: reading TIFF pages {pages} failed - the file is truncated or "
                f"corrupt ({exc})"
            ) from exc
        return np.reshape(data, (len(pages),) + self.shape[1:])

    def __repr__(self):
        return f"_TiffSlicer({len(self.files)} files, shape={self.shape}, dtype={self.dtype})"
