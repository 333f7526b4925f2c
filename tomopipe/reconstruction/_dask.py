"""Dask wrapper of :func:`tomopipe.recon`: one task per slab of detector rows."""

from __future__ import annotations

import dask.array as da
import numpy as np

from .._validate import check_theta_radians
from ..errors import ShapeMismatchError
from ._fbp import recon

__all__ = ["recon_dask"]


def recon_dask(tomo, theta, center=None, *, rows_per_chunk=8, nthreads=1, **kwargs):
    """Lazily reconstruct a projection stack slab by slab.

    Parameters
    ----------
    tomo : (n_angles, n_rows, n_cols) dask.array.Array or array_like
        Projections after ``minus_log`` (line integrals in pixel units). Rechunked to
        ``(n_angles, rows_per_chunk, n_cols)`` if needed: each task sees every angle of its rows.
    theta : (n_angles,) array_like
        Angles in radians.
    center : float or (n_rows,) array_like, optional
        Rotation axis (tomopy's convention, see :func:`tomopipe.recon`).
    rows_per_chunk : int
        Detector rows (output slices) per task. Even numbers waste nothing (slices are
        reconstructed two at a time; an odd chunk pays a full transform for its last row).
        RAM per task: the input slab ``rows_per_chunk · n_angles · n_cols · 4`` bytes, the
        output slab ``rows_per_chunk · N² · 4`` bytes and, per thread, about
        ``n_angles · (16 N + 12 n_cols) + 11 N²`` bytes of work arrays; the geometry's
        filter, weights, sorted points and plans (about ``n_angles · N · 40`` bytes) are
        built once and shared by all tasks.
    nthreads : int
        Threads inside each task (finufft and FFTs); 1 lets dask's workers use the cores.
    **kwargs
        Passed to :func:`tomopipe.recon` (``filter_name``, ``pixel_size``, ``num_gridx`` …).

    Returns
    -------
    vol : (n_rows, N, N) dask.array.Array of float32
        Chunked ``(rows_per_chunk, N, N)``; equal to ``recon(tomo, theta, center, ...)``.
    """
    tomo = da.asarray(tomo)
    if tomo.ndim != 3:
        raise ValueError(f"tomo must be (angle, row, col), got shape {tomo.shape}")
    n_angles, n_rows, n_cols = tomo.shape
    theta = check_theta_radians(theta)
    if theta.size != n_angles:
        raise ShapeMismatchError(f"theta has {theta.size} angles but tomo has {n_angles} projections")
    centers = np.broadcast_to(
        np.asarray(n_cols / 2.0 if center is None else center, dtype=np.float64), (n_rows,)
    )
    n_out = int(kwargs.get("num_gridx") or n_cols)
    sino = tomo.rechunk((n_angles, int(rows_per_chunk), n_cols)).transpose(1, 0, 2)

    def _block(block, block_info=None):
        r0 = block_info[0]["array-location"][0][0]
        c = centers[r0 : r0 + block.shape[0]]
        return recon(block, theta, c, sinogram_order=True, nthreads=nthreads, **kwargs)

    return da.map_blocks(
        _block,
        sino,
        chunks=(sino.chunks[0], (n_out,), (n_out,)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
    )
