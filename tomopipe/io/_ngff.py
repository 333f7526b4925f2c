"""OME-Zarr (NGFF 0.4) multiscale pyramids of a volume stored in a zarr group."""

from __future__ import annotations

import dask.array as da
import numpy as np

__all__ = ["write_pyramid", "multiscales_metadata"]


def multiscales_metadata(n_levels, voxel_size_um, *, name="volume"):
    """The NGFF ``multiscales`` attribute of a 2× pyramid with arrays ``"0"``, ``"1"``, ….

    Parameters
    ----------
    n_levels : int
        Number of levels, full resolution included.
    voxel_size_um : (3,) sequence of float or None
        ``(dz, dy, dx)`` of level 0 in µm; None when the volume has no physical scale
        (then the scale is in voxels and the axes carry no unit).
    name : str

    Returns
    -------
    list of dict
        ``[{"version": "0.4", "name", "axes": [z, y, x], "datasets": [{"path", "coordinateTransformations"}]}]``.

    Examples
    --------
    >>> m = multiscales_metadata(2, (2.0, 1.0, 1.0))
    >>> [d["coordinateTransformations"][0]["scale"] for d in m[0]["datasets"]]
    [[2.0, 1.0, 1.0], [4.0, 2.0, 2.0]]
    """
    base = [1.0, 1.0, 1.0] if voxel_size_um is None else [float(v) for v in voxel_size_um]
    datasets = [{"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": [b * 2**k for b in base]}]}
                for k in range(n_levels)]
    unit = None if voxel_size_um is None else "micrometer"
    axes = [{"name": a, "type": "space", **({"unit": unit} if unit else {})} for a in ("z", "y", "x")]
    return [{"version": "0.4", "name": name, "axes": axes, "datasets": datasets}]


def write_pyramid(group, *, levels, voxel_size_um, tile=256, attrs=None, compute=None):
    """Add levels ``"1"``, ``"2"``, … of a 2× mean pyramid below the array ``group["0"]``.

    Each level is the 2×2×2 block mean of the one above (odd edges trimmed), read from the
    stored level above chunk by chunk, so RAM stays bounded by the chunk size.

    Parameters
    ----------
    group : zarr.Group
        Writable group holding the full-resolution ``(z, y, x)`` array ``"0"``.
    levels : int
        Total number of levels wanted, including ``"0"``; fewer are written when a level
        would have an axis shorter than 1.
    voxel_size_um : (3,) sequence of float or None
        ``(dz, dy, dx)`` of level 0 in µm (for the metadata).
    tile : int
        Chunk edge in y and x of the new levels (z keeps level 0's chunk height).
    attrs : dict, optional
        Attributes given to every new level (e.g. ``{"units": "1/cm"}``); ``downsample`` is
        added.
    compute : callable, optional
        ``compute(dask_array, zarr_array)`` that stores a level (default: ``dask.array.store``
        without locks — dask chunks cover whole zarr chunks).

    Returns
    -------
    list of dict
        The NGFF ``multiscales`` metadata (:func:`multiscales_metadata`) of the levels written.
    """
    compute = compute or (lambda src, dst: da.store(src, dst, lock=False, compute=True))
    prev = group["0"]
    n = 1
    for lev in range(1, levels):
        if min(prev.shape) < 2:
            break
        down = da.coarsen(np.mean, da.from_zarr(prev), {0: 2, 1: 2, 2: 2}, trim_excess=True).astype(np.float32)
        ch = tuple(min(s, c) for s, c in zip(down.shape, (max(1, prev.chunks[0]), tile, tile)))
        down = down.rechunk(ch)
        dst = group.create_array(str(lev), shape=down.shape, chunks=ch, dtype="float32",
                                 dimension_names=("z", "y", "x"),
                                 attributes={**(attrs or {}), "downsample": 2**lev}, overwrite=False)
        compute(down, dst)
        prev = dst
        n += 1
    return multiscales_metadata(n, voxel_size_um)
