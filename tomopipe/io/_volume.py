"""Reconstructed volumes as input: TIFF stacks, HDF5/NeXus datasets, zarr/OME-Zarr arrays, .npy."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np

from ..errors import InputFileError, MissingKeyError, ShapeMismatchError

__all__ = ["VolumeSource", "read_volume", "VOLUME_FORMATS"]

VOLUME_FORMATS = ("tiff", "hdf5", "zarr", "npy")


@dataclass(frozen=True, eq=False)
class VolumeSource:
    """A reconstructed volume opened lazily.

    Attributes
    ----------
    data : (z, y, x) dask.array.Array
        The values, in the file's dtype, z the stack axis (the first axis of the file).
    voxel_size_um : tuple of 3 float or None
        ``(dz, dy, dx)`` when the file records it (OME-Zarr ``multiscales`` scale in µm).
    source : str
        File (and key) it came from.
    format : str
        One of :data:`VOLUME_FORMATS`.
    files : list of Path
        The files that make up the volume (for the input checksum).
    """

    data: da.Array
    voxel_size_um: tuple | None
    source: str
    format: str
    files: list


def _format_of(path, fmt):
    if fmt not in (None, "auto"):
        if fmt not in VOLUME_FORMATS:
            raise InputFileError(f"{path}: unknown volume format {fmt!r}; one of {VOLUME_FORMATS}")
        return fmt
    p = str(path)
    suffix = Path(p).suffix.lower()
    if suffix in (".tif", ".tiff") or any(c in p for c in "*?["):
        return "tiff"
    if suffix in (".h5", ".hdf5", ".hdf", ".nxs", ".nx", ".nx5", ".he5"):
        return "hdf5"
    if suffix == ".npy":
        return "npy"
    if suffix == ".zarr" or (Path(p).is_dir() and ((Path(p) / "zarr.json").is_file() or (Path(p) / ".zarray").is_file()
                                                   or (Path(p) / ".zgroup").is_file())):
        return "zarr"
    if Path(p).is_dir():
        return "tiff"
    raise InputFileError(f"{path}: cannot tell the volume format from the name; give input.format "
                         f"(one of {VOLUME_FORMATS})")


def _check_3d(shape, source):
    if len(shape) != 3:
        raise ShapeMismatchError(f"{source}: a volume must be 3-D (z, y, x), got shape {tuple(shape)}")
    if min(shape) < 1:
        raise ShapeMismatchError(f"{source}: the volume is empty (shape {tuple(shape)})")


def _zarr_volume(path, key):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputFileError(f"{path}: cannot open as zarr ({exc})") from None
    voxel = None
    where = str(path)
    if key:
        if not isinstance(node, zarr.Group) or key not in node:
            raise MissingKeyError(path, key)
        node = node[key]
        where = f"{path}:{key}"
    if isinstance(node, zarr.Group):
        ms = node.attrs.get("multiscales")
        if ms:  # OME-Zarr: the first dataset is full resolution
            ds = ms[0]["datasets"][0]
            node_key = ds["path"]
            axes = ms[0].get("axes", [])
            units = {a.get("unit") for a in axes if isinstance(a, dict) and a.get("type") == "space"}
            scale = next((t["scale"] for t in ds.get("coordinateTransformations", []) if t.get("type") == "scale"),
                         None)
            if scale is not None and units <= {"micrometer"} and units:
                voxel = tuple(float(v) for v in scale[-3:])
            if node_key not in node:
                raise MissingKeyError(path, node_key)
            node = node[node_key]
            where = f"{where} (multiscales level {node_key})"
        else:
            keys = sorted(node.array_keys())
            raise InputFileError(f"{path}: a zarr group without 'multiscales'; give input.key "
                                 f"(its arrays: {keys[:5] or 'none'})")
    return da.from_zarr(node), voxel, where


def _hdf5_volume(path, key):
    import h5py

    from ._scan import H5Slicer, lazy_stack, open_h5

    if not key:
        raise MissingKeyError(path, "<dataset>", tried=()) from None
    with open_h5(path) as f:
        if not isinstance(f.get(key), h5py.Dataset):
            raise MissingKeyError(path, key)
        ds = f[key]
        _check_3d(ds.shape, f"{path}:{key}")
        slicer = H5Slicer(path, key, ds.shape, ds.dtype)
    return lazy_stack(slicer, None, name_prefix="hdf5-volume"), None, f"{path}:{key}"


def read_volume(path, *, key=None, format=None):
    """Open a reconstructed volume lazily.

    Parameters
    ----------
    path : path-like
        A multi-page TIFF, a glob or folder of 2-D TIFF slices (z in natural file order), an
        HDF5/NeXus file, a zarr array or group (an OME-Zarr image: its first multiscale level),
        or a ``.npy`` file (memory-mapped).
    key : str, optional
        HDF5/NeXus dataset path (required there), or the array inside a zarr group.
    format : {"tiff", "hdf5", "zarr", "npy"}, optional
        Skip the guess from the name.

    Returns
    -------
    VolumeSource

    Raises
    ------
    InputFileError
        A missing file, an unknown format.
    MissingKeyError
        The HDF5 dataset or zarr array `key` does not exist (or none was given for HDF5).
    ShapeMismatchError
        Not 3-D, or a TIFF slice whose shape differs from the others (names the file).
    TruncatedFileError
        A file that cannot be read.
    """
    from ._tiff import read_tiff_stack

    p = os.fspath(path)
    is_glob = any(c in p for c in "*?[") and not os.path.exists(p)
    if not is_glob and not os.path.exists(p):
        raise InputFileError(f"{p}: no such file")
    fmt = _format_of(p, format)
    voxel = None
    if fmt == "tiff":
        data = read_tiff_stack(p, name="volume slices")
        where = p
        if is_glob:
            import glob

            files = [Path(f) for f in sorted(glob.glob(p))]
        elif os.path.isdir(p):
            files = sorted(q for q in Path(p).iterdir() if q.suffix.lower() in (".tif", ".tiff"))
        else:
            files = [Path(p)]
    elif fmt == "hdf5":
        data, voxel, where = _hdf5_volume(p, key)
        files = [Path(p)]
    elif fmt == "npy":
        try:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{p}: cannot be read as .npy ({exc})") from None
        _check_3d(arr.shape, p)
        data, where, files = da.from_array(arr, chunks=(min(16, arr.shape[0]), -1, -1)), p, [Path(p)]
    else:
        data, voxel, where = _zarr_volume(p, key)
        files = sorted(q for q in Path(p).rglob("*") if q.is_file())
    _check_3d(data.shape, where)
    if not (np.issubdtype(data.dtype, np.number) and not np.issubdtype(data.dtype, np.complexfloating)):
        raise ShapeMismatchError(f"{where}: values of dtype {data.dtype} are not real numbers")
    return VolumeSource(data=data, voxel_size_um=voxel, source=where, format=fmt, files=files)
