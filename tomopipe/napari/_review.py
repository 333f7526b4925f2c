"""Review without Qt: tiles ranked by uncertainty, class counts of a view, reviewed regions."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pandas as pd

from ._schema import NOT_REVIEWED
from ._store import uncertainty

__all__ = ["rank_tiles", "class_counts", "view_region", "tile_slices"]


def _tile_stats(u, lab, outside):
    u = np.asarray(u, dtype=np.float64)
    keep = np.ones(u.shape, dtype=bool) if lab is None else ~np.isin(np.asarray(lab), outside)
    n = int(keep.sum())
    out = np.full((1, 1, 1, 3), np.nan)
    out[..., 2] = n
    if n:
        vals = u[keep]
        out[..., 0] = vals.mean()
        out[..., 1] = vals.max()
    return out


def rank_tiles(probabilities, *, tile=(64, 64, 64), labels=None, outside=(255,), kind="least_confidence",
               origin=(0, 0, 0)):
    """Sub-volumes (tiles) ranked by their mean uncertainty, most uncertain first.

    Parameters
    ----------
    probabilities : (class, z, y, x) array_like
        Class probabilities (zarr, dask or NumPy); read chunk by chunk (one pass).
    tile : (3,) tuple of int
        Tile edge ``(z, y, x)`` in voxels (clipped to the volume; the last tile of an axis
        may be shorter).
    labels : (z, y, x) array_like, optional
        The segmentation; voxels whose label is in `outside` do not count (air around the
        sample is certain and would dilute a tile's mean), and tiles holding no sample voxel
        are dropped.
    outside : sequence of int
        Label values that are not the sample.
    kind : {"least_confidence", "entropy"}
        See :func:`tomopipe.napari.uncertainty`.
    origin : (3,) tuple of int
        Index of the first voxel in the volume (for a region version), added to the tile
        bounds.

    Returns
    -------
    pandas.DataFrame
        One row per tile, sorted by ``mean_uncertainty`` (descending): ``z0, z1, y0, y1,
        x0, x1`` (voxel index bounds, stop exclusive), ``mean_uncertainty``,
        ``max_uncertainty``, ``voxels`` (sample voxels counted). Index: rank 0, 1, ….

    Examples
    --------
    >>> p = np.zeros((2, 4, 4, 4), dtype=np.float32); p[0] = 1.0
    >>> p[:, :2, :2, :2] = 0.5                  # one unsure corner
    >>> t = rank_tiles(p, tile=(2, 2, 2))
    >>> t.loc[0, ["z0", "y0", "x0", "mean_uncertainty"]].tolist()
    [0.0, 0.0, 0.0, 0.5]
    """
    u = uncertainty(probabilities, kind=kind)
    tile = tuple(int(min(max(1, t), n)) for t, n in zip(tile, u.shape))
    u = u.rechunk(tile)
    args = [u, None]
    if labels is not None:
        lab = labels if isinstance(labels, da.Array) else da.from_array(labels, chunks=getattr(labels, "chunks", tile))
        if tuple(lab.shape) != tuple(u.shape):
            raise ValueError(f"labels {tuple(lab.shape)} and probabilities {tuple(u.shape)} differ in shape")
        args[1] = lab.rechunk(tile)
    if args[1] is None:
        stats = da.map_blocks(lambda b: _tile_stats(b, None, outside), u, new_axis=3, chunks=(1, 1, 1, 3),
                              dtype=np.float64)
    else:
        stats = da.map_blocks(lambda b, lb: _tile_stats(b, lb, tuple(outside)), u, args[1], new_axis=3,
                              chunks=(1, 1, 1, 3), dtype=np.float64)
    stats = np.asarray(stats.compute())
    bounds = [np.concatenate([[0], np.cumsum(c)]) for c in u.chunks]
    rows = []
    for i, j, k in itertools.product(*(range(len(c)) for c in u.chunks)):
        mean, mx, n = stats[i, j, k]
        if n == 0:
            continue
        b = [(int(bd[q] + o), int(bd[q + 1] + o)) for bd, q, o in zip(bounds, (i, j, k), origin)]
        rows.append({"z0": b[0][0], "z1": b[0][1], "y0": b[1][0], "y1": b[1][1], "x0": b[2][0], "x1": b[2][1],
                     "mean_uncertainty": mean, "max_uncertainty": mx, "voxels": int(n)})
    cols = ["z0", "z1", "y0", "y1", "x0", "x1", "mean_uncertainty", "max_uncertainty", "voxels"]
    table = pd.DataFrame(rows, columns=cols)
    return table.sort_values("mean_uncertainty", ascending=False, kind="stable").reset_index(drop=True)


def tile_slices(row):
    """``(z, y, x)`` slices of a row of :func:`rank_tiles`."""
    return tuple(slice(int(row[f"{a}0"]), int(row[f"{a}1"])) for a in "zyx")


def view_region(shape, *, current_step, displayed, corners=None):
    """Voxel region of a 2-D view of a 3-D volume: the current plane, clipped to the visible box.

    Parameters
    ----------
    shape : (3,) tuple of int
    current_step : (3,) sequence of int
        Index along each axis of the view (only the non-displayed axis is used).
    displayed : sequence of 2 int (or 3 in a 3-D view)
        The displayed axes.
    corners : (2, 3) array_like, optional
        First and last visible voxel index per axis (napari's ``layer.corner_pixels``);
        default: the whole plane.

    Returns
    -------
    tuple of 3 slice

    Examples
    --------
    >>> view_region((10, 20, 30), current_step=(4, 0, 0), displayed=(1, 2), corners=[[0, 5, 0], [0, 9, 29]])
    (slice(4, 5, None), slice(5, 10, None), slice(0, 30, None))
    """
    out = []
    for ax, n in enumerate(shape):
        if ax in displayed:
            if corners is None:
                out.append(slice(0, int(n)))
            else:
                lo = int(np.clip(corners[0][ax], 0, n - 1))
                hi = int(np.clip(corners[1][ax], lo, n - 1))
                out.append(slice(lo, hi + 1))
        else:
            i = int(np.clip(current_step[ax], 0, n - 1))
            out.append(slice(i, i + 1))
    return tuple(out)


def class_counts(labels, region, schema):
    """Voxels of each class in a region of a label volume.

    Parameters
    ----------
    labels : (z, y, x) array_like of integer
        NumPy, zarr or dask; only `region` is read.
    region : tuple of 3 slice
    schema : tomopipe.napari.Schema

    Returns
    -------
    pandas.DataFrame
        Index: class names (``not reviewed`` for 254, the value for labels outside the
        schema); columns ``value``, ``voxels``, ``fraction`` (of the region's voxels).
        Classes of the schema that are absent have 0 voxels.
    """
    block = labels[region]
    block = np.asarray(block.compute() if hasattr(block, "compute") else block)
    if block.size and (block.min() < 0 or block.max() > 255):
        raise ValueError("labels must hold values 0..255")
    counts = np.bincount(block.astype(np.int64).ravel(), minlength=256)
    values = list(schema.values) + [v for v in np.flatnonzero(counts) if v not in schema.values]
    if NOT_REVIEWED in values:
        values.remove(NOT_REVIEWED)
        if counts[NOT_REVIEWED]:
            values.append(NOT_REVIEWED)
    total = max(int(block.size), 1)
    rows = {schema.name_of(v): {"value": int(v), "voxels": int(counts[v]), "fraction": counts[v] / total}
            for v in values}
    return pd.DataFrame.from_dict(rows, orient="index")
