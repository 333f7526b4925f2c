"""Format dispatch: :func:`read_scan` picks the reader from the file suffix or contents."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputFileError
from ._dxchange import read_dxchange
from ._nxtomo import find_nxtomo_entries, read_nxtomo
from ._scan import RawScan, check_input_file, open_h5
from ._tiff import read_tiff_series

__all__ = ["read_scan"]


_HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".he5"}
_NEXUS_SUFFIXES = {".nx", ".nxs", ".nx5", ".nexus"}
_TIFF_SUFFIXES = {".tif", ".tiff"}
_FORMATS = ("dxchange", "nxtomo", "tiff")


def read_scan(path_or_spec, *, format=None, **kw) -> RawScan:
    """Read a raw scan, choosing the reader from the file suffix or `format`.

    Parameters
    ----------
    path_or_spec : str or os.PathLike or mapping
        An HDF5 / NeXus file, or for a TIFF series either the projections' glob pattern
        (with ``flats=``, ``darks=`` and ``theta=`` in `kw`) or a mapping holding the keyword
        arguments of :func:`read_tiff_series` (``projections``, ``flats``, ``darks``,
        ``theta``, ...).
    format : {"dxchange", "nxtomo", "tiff"}, optional
        Skip the guess.  Without it: ``.h5``/``.hdf5``/``.hdf`` -> ``"nxtomo"`` if the file
        holds an NXentry whose definition is NXtomo, else ``"dxchange"``; ``.nx``/``.nxs`` ->
        ``"nxtomo"``; ``.tif``/``.tiff``, a glob pattern, a directory or a mapping ->
        ``"tiff"``.
    **kw
        Passed on to :func:`read_dxchange`, :func:`read_nxtomo` or :func:`read_tiff_series`.

    Returns
    -------
    scan : RawScan

    Raises
    ------
    InputFileError
        If the file does not exist or its format cannot be told from the suffix.
    ValueError
        If `format` is not one of the known formats.
    """
    if format is not None and format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if isinstance(path_or_spec, Mapping):
        if format not in (None, "tiff"):
            raise ValueError(f"a mapping spec describes a TIFF series, but format={format!r}")
        args = dict(path_or_spec)
        args.update(kw)
        for name in ("projections", "flats", "darks", "theta"):
            if name not in args and not (name == "darks" and args.get("allow_missing_darks")):
                raise ValueError(f"TIFF spec for read_scan lacks {name!r}")
        args.setdefault("darks", None)
        return read_tiff_series(
            args.pop("projections"), args.pop("flats"), args.pop("darks"), **args
        )

    path = os.fspath(path_or_spec)
    if format is None:
        suffix = Path(path).suffix.lower()
        if suffix in _TIFF_SUFFIXES or _is_glob(path) or os.path.isdir(path):
            format = "tiff"
        elif suffix in _NEXUS_SUFFIXES:
            format = "nxtomo"
        elif suffix in _HDF5_SUFFIXES:
            check_input_file(path)
            with open_h5(path) as f:
                format = "nxtomo" if find_nxtomo_entries(f) else "dxchange"
        else:
            check_input_file(path)
            raise InputFileError(
                f"{path}: cannot tell the scan format from the suffix {suffix!r}; "
                f"pass format= (one of {_FORMATS})"
            )
    if format == "dxchange":
        return read_dxchange(path, **kw)
    if format == "nxtomo":
        return read_nxtomo(path, **kw)
    missing = [n for n in ("flats", "theta") if n not in kw]
    if "darks" not in kw and not kw.get("allow_missing_darks"):
        missing.insert(1, "darks")
    if missing:
        raise ValueError(f"reading the TIFF series {path!r} needs {', '.join(missing)}= as well")
    kw.setdefault("darks", None)
    return read_tiff_series(path, kw.pop("flats"), kw.pop("darks"), **kw)


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[") and not os.path.exists(path)


