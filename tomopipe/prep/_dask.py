"""Dask wrappers of the preprocessing kernels, each on the chunks its physics needs.

================================ =========================================================
wrapper                          chunks of the input ``(angle, row, col)``
================================ =========================================================
:func:`normalize_dask`           any angles, whole frames (dezinger and absolute indices)
:func:`retrieve_phase_dask`      any angles, whole frames (2-D filter of each projection)
:func:`sinograms_dask`           all angles, any rows (stripe filters work per sinogram)
================================ =========================================================

Each wrapper rechunks its input to that contract, maps the NumPy kernel over the blocks and
returns a lazy float32 array equal to the kernel applied to the whole array.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ._normalize import minus_log, normalize_interp
from ._outlier import remove_outlier
from ._phase import retrieve_phase_paganin
from ._stripe import remove_stripe_based_sorting, remove_stripe_fw

__all__ = ["normalize_dask", "retrieve_phase_dask", "sinograms_dask"]

_META = np.empty((0, 0, 0), np.float32)


def normalize_dask(projections, flat_field, *, dezinger=None):
    """Flat/dark-normalize a lazy projection stack, chunk by chunk of angles.

    Parameters
    ----------
    projections : (angle, row, col) dask.array.Array
        Raw counts. Rechunked to whole frames (angle chunks are kept).
    flat_field : tomopipe.prep.FlatField
        Averaged flat series and darks (:func:`tomopipe.prep.flat_field`).
    dezinger : tuple of (int, float), optional
        ``(size, threshold)`` of :func:`remove_outlier` applied to each frame first
        (counts above the local median by more than `threshold` are replaced).

    Returns
    -------
    (angle, row, col) dask.array.Array of float32
        Transmission ``(I − D) / (F(p) − D)``, with F interpolated between series as in
        :func:`normalize_interp`; equal to it applied to the whole stack.
    """
    src = da.asarray(projections)
    src = src.rechunk((src.chunks[0], -1, -1))
    ff = flat_field

    def block(b, block_info=None):
        a0 = block_info[0]["array-location"][0][0]
        b = np.asarray(b, dtype=np.float32)
        if dezinger is not None:
            b = remove_outlier(b, dezinger[1], size=dezinger[0])
        return normalize_interp(b, ff.flats, ff.darks, ff.index, proj_index=np.arange(a0, a0 + b.shape[0]),
                                averaging=ff.averaging)

    return src.map_blocks(block, dtype=np.float32, meta=_META)


def retrieve_phase_dask(projections, *, delta_beta, energy_keV, distance_mm, pixel_size_um):
    """Paganin phase retrieval of a lazy stack, one task per chunk of whole projections.

    Parameters are those of :func:`retrieve_phase_paganin` (δ/β, keV, mm, µm).

    Returns
    -------
    (angle, row, col) dask.array.Array of float32
    """
    src = da.asarray(projections)
    src = src.rechunk((src.chunks[0], -1, -1))
    kw = dict(delta_beta=delta_beta, energy_keV=energy_keV, distance_mm=distance_mm,
              pixel_size_um=pixel_size_um)
    return src.map_blocks(lambda b: retrieve_phase_paganin(b, **kw), dtype=np.float32, meta=_META)


def sinograms_dask(projections, *, rows_per_chunk, stripes="none", level=None, wname="db5", sigma=2.0,
                   size=None):
    """``minus_log`` and stripe removal of a lazy stack, one task per slab of detector rows.

    Parameters
    ----------
    projections : (angle, row, col) dask.array.Array
        Transmission. Rechunked to ``(all angles, rows_per_chunk, all cols)``.
    rows_per_chunk : int
        Detector rows per task.
    stripes : {"none", "fw", "sorting"}
        :func:`remove_stripe_fw` (Münch et al. 2009; `level`, `wname`, `sigma`) or
        :func:`remove_stripe_based_sorting` (Vo et al. 2018; `size`).

    Returns
    -------
    (angle, row, col) dask.array.Array of float32
        Line integrals (pixel units), chunked ``(all angles, rows_per_chunk, all cols)``.
    """
    src = da.asarray(projections)
    src = src.rechunk((src.shape[0], int(rows_per_chunk), -1))

    def block(b):
        b = minus_log(b)
        if stripes == "fw":
            b = remove_stripe_fw(b, level=level, wname=wname, sigma=sigma)
        elif stripes == "sorting":
            b = remove_stripe_based_sorting(b, size=size)
        return b

    return src.map_blocks(block, dtype=np.float32, meta=_META)
