"""NeXus NXtomo: a streaming reader splitting one interleaved frame stack by image_key."""

from __future__ import annotations

import h5py
import numpy as np

from .._validate import check_theta_radians
from ..errors import InputFileError, MissingKeyError, ShapeMismatchError
from ._scan import (
    H5Slicer,
    RawScan,
    angles_to_radians,
    as_str,
    check_frame_shape,
    check_input_file,
    empty_stack,
    first_key,
    lazy_stack,
    natural_key,
    open_h5,
    read_small,
)

__all__ = ["read_nxtomo", "find_nxtomo_entries"]

#: image_key values of the NXtomo application definition
PROJECTION, FLAT, DARK, INVALID = 0, 1, 2, 3


def find_nxtomo_entries(f: h5py.File) -> list[str]:
    """Names of the top-level NXentry groups of `f` whose ``definition`` is NXtomo.

    Parameters
    ----------
    f : h5py.File
        An open file.

    Returns
    -------
    entries : list of str
        Absolute group paths (``"/entry"``), naturally sorted.
    """
    found = []
    for name, obj in f.items():
        if not isinstance(obj, h5py.Group):
            continue
        if as_str(obj.attrs.get("NX_class", "")) != "NXentry":
            continue
        definition = obj.get("definition")
        if isinstance(definition, h5py.Dataset):
            try:
                value = as_str(definition[()]).strip()
            except OSError:
                continue
            if value.lower() == "nxtomo":
                found.append("/" + name)
    return sorted(found, key=natural_key)


def read_nxtomo(
    path, *, entry=None, theta=None, allow_missing_darks=False, chunks=None
) -> RawScan:
    """Read a NeXus NXtomo scan lazily, splitting frames by ``image_key``.

    NXtomo stores projections, flats and darks as one frame stack in acquisition order,
    with an ``image_key`` per frame: 0 projection, 1 flat, 2 dark, 3 invalid (skipped).
    The returned arrays are lazy views of that one dataset, each mapping its own frame
    index to the dataset frame; only metadata (keys, angles) is read here.

    Parameters
    ----------
    path : str or os.PathLike
        NeXus/HDF5 file.
    entry : str, optional
        The NXentry group (``"entry"`` or ``"/entry"``).  Default: the top-level NXentry
        whose ``definition`` is ``NXtomo``; else a group named ``entry``.
    theta : (n_angles,) array_like, optional
        Rotation angles of the projections in radians; overrides the file's angles (and is
        required when the file has none).
    allow_missing_darks : bool
        Return a (0, rows, cols) `darks` array instead of raising when no frame has
        ``image_key == 2``.
    chunks : int, tuple or str, optional
        Dask chunks of the projections (and flats/darks where they fit).  Default: whole
        frames, up to 16 angles and at most 64 MiB per chunk.

    Returns
    -------
    scan : RawScan
        ``projections`` (n_angles, rows, cols), ``flats``, ``darks`` lazy in the file's
        dtype; ``theta`` (n_angles,) float64 radians, from
        ``<entry>/sample/rotation_angle`` (degrees unless its ``units`` attribute says
        radians; one value per frame or one per projection); ``flat_index`` (n_flats,):
        a flat acquired after k projections gets index ``k - 0.5`` clipped to
        ``[0, n_angles - 1]``, or None when no projection was acquired between any two
        flats (a single flat series); ``format="nxtomo"``.

    Raises
    ------
    InputFileError
        If `path` does not exist, an unknown ``image_key`` value is found, or several
        NXtomo entries exist and `entry` is not given.
    TruncatedFileError
        If the file is truncated or corrupt (at read time, or later when a chunk is read).
    MissingKeyError
        If the entry, ``data``, ``image_key``, the angles (unless `theta` is given), the
        projection or flat frames, or the dark frames (unless `allow_missing_darks`) are
        missing; the message names the file and the keys tried.
    ShapeMismatchError
        If ``data`` is not a (frames, rows, cols) stack, or ``image_key`` / the angles do
        not have one value per frame (or per projection, for angles).
    AngleUnitError
        If `theta` holds values above 2π, or the angles carry an unknown unit.

    References
    ----------
    .. [1] NeXus International Advisory Committee, "NXtomo application definition",
       https://manual.nexusformat.org/classes/applications/NXtomo.html
    .. [2] M. Könnecke et al., "The NeXus data format", J. Appl. Cryst. 48, 301-305 (2015).
       https://doi.org/10.1107/S1600576714027575
    """
    path = check_input_file(path)
    with open_h5(path) as f:
        entry = _resolve_entry(f, entry, path)
        data_key = first_key(
            f, (f"{entry}/instrument/detector/data", f"{entry}/data/data"), path
        )
        ds = f[data_key]
        check_frame_shape(ds.shape, data_key, path, name="data")
        n_frames = ds.shape[0]
        frame = tuple(ds.shape[1:])
        dtype = ds.dtype

        key_key = first_key(
            f,
            (f"{entry}/instrument/detector/image_key", f"{entry}/data/image_key"),
            path,
        )
        image_key = np.ravel(np.asarray(read_small(f, key_key, path)))
        if image_key.size != n_frames:
            raise ShapeMismatchError(
                f"{path}: {key_key!r} holds {image_key.size} values but {data_key!r} holds "
                f"{n_frames} frames"
            )
        image_key = image_key.astype(np.int64)
        unknown = np.setdiff1d(np.unique(image_key), [PROJECTION, FLAT, DARK, INVALID])
        if unknown.size:
            raise InputFileError(
                f"{path}: {key_key!r} holds unknown image_key values {unknown.tolist()} "
                "(NXtomo allows 0 projection, 1 flat, 2 dark, 3 invalid)"
            )
        proj_frames = np.flatnonzero(image_key == PROJECTION)
        flat_frames = np.flatnonzero(image_key == FLAT)
        dark_frames = np.flatnonzero(image_key == DARK)
        n_angles = proj_frames.size
        if n_angles == 0:
            raise MissingKeyError(path, f"{data_key} frames with {key_key} == 0 (projections)")
        if flat_frames.size == 0:
            raise MissingKeyError(path, f"{data_key} frames with {key_key} == 1 (flats)")
        if dark_frames.size == 0 and not allow_missing_darks:
            raise MissingKeyError(path, f"{data_key} frames with {key_key} == 2 (darks)")

        if theta is not None:
            theta = check_theta_radians(theta, name="theta")
            if theta.size != n_angles:
                raise ShapeMismatchError(
                    f"theta holds {theta.size} angles but {path}: {data_key!r} holds "
                    f"{n_angles} projection frames"
                )
        else:
            theta = _read_rotation_angle(f, entry, path, proj_frames, n_frames)

    # projections acquired before each flat frame -> its place in the projection sequence
    before = np.searchsorted(proj_frames, flat_frames)
    if np.all(before == before[0]):
        flat_index = None
    else:
        flat_index = np.clip(before - 0.5, 0.0, n_angles - 1.0)

    def view(frames, prefix):
        slicer = H5Slicer(path, data_key, (frames.size,) + frame, dtype, frames=frames)
        return lazy_stack(slicer, chunks, name_prefix=prefix)

    return RawScan(
        projections=view(proj_frames, "nxtomo-projections"),
        flats=view(flat_frames, "nxtomo-flats"),
        darks=(
            view(dark_frames, "nxtomo-darks")
            if dark_frames.size
            else empty_stack(frame, dtype)
        ),
        theta=theta,
        flat_index=flat_index,
        source=path,
        format="nxtomo",
    )


def _resolve_entry(f, entry, path):
    if entry is not None:
        name = "/" + str(entry).strip("/")
        if not isinstance(f.get(name), h5py.Group):
            raise MissingKeyError(path, name)
        return name
    entries = find_nxtomo_entries(f)
    if len(entries) == 1:
        return entries[0]
    if len(entries) > 1:
        raise InputFileError(
            f"{path}: holds several NXtomo entries {entries}; choose one with entry="
        )
    if isinstance(f.get("/entry"), h5py.Group):
        return "/entry"
    raise MissingKeyError(path, "NXentry with definition 'NXtomo'", tried=("/entry",))


def _read_rotation_angle(f, entry, path, proj_frames, n_frames):
    """Projection angles in radians from ``rotation_angle`` (per frame or per projection)."""
    key = first_key(
        f, (f"{entry}/sample/rotation_angle", f"{entry}/data/rotation_angle"), path
    )
    values = np.ravel(np.asarray(read_small(f, key, path), dtype=np.float64))
    n_angles = proj_frames.size
    if values.size == n_frames:
        values = values[proj_frames]
    elif values.size != n_angles:
        raise ShapeMismatchError(
            f"{path}: {key!r} holds {values.size} angles; expected one per frame "
            f"({n_frames}) or one per projection ({n_angles})"
        )
    return angles_to_radians(values, f[key].attrs.get("units"), path=path, key=key)
