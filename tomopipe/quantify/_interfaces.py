"""Grey-value profiles along z and the positions of the layer interfaces of a cell.

In a reconstructed cell the layers stacked along z (current collector | cathode | separator
| Li metal) differ in attenuation, so the median grey value of each z slice is a step-like
profile and its derivative peaks at the interfaces [1]_. :func:`grey_profile` computes the
per-slice median (or mean) out of core; :func:`find_interfaces` locates the strongest steps
with sub-slice precision, e.g. to anchor :func:`tomopipe.quantify._layers.layer_stats`
between two interfaces.

Conventions
-----------
Volumes are ``(z, y, x)`` with z the stack (pressure) axis; slice ``i`` is centred at
``z = i * voxel_size_um`` (µm), so the face between slices ``i - 1`` and ``i`` lies at
``(i - ½) * voxel_size_um``. Positions are returned in increasing z.

References
----------
.. [1] Cao et al., Adv. Funct. Mater. (2023), e2307998, doi:10.1002/adfm.202307998: the
   median grey value of each slice and its derivative along the stack axis locate the
   cathode | separator | Li boundaries of a solid-state cell in X-ray tomograms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ShapeMismatchError

from ._input import _as_array, _check_voxel_size, _is_dask

__all__ = ["grey_profile", "find_interfaces", "Interfaces"]

#: Bytes of whole (y, x) slices gathered at once to take per-slice medians of a lazy volume.
_PROFILE_BLOCK_BYTES = 64 << 20

_STATS = ("median", "mean")


def _slice_stat(values, stat):
    """Median or mean of the finite entries of a 1-D array (NaN if there is none)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    if stat == "median":
        return float(np.median(values))
    return float(np.mean(values, dtype=np.float64))


def _profile_block(block, mask_block, stat):
    block = np.asarray(block)
    out = np.empty(block.shape[0], dtype=np.float64)
    for z in range(block.shape[0]):
        sl = block[z]
        if mask_block is None:
            vals = sl.ravel()
        elif mask_block.ndim == 2:
            vals = sl[mask_block]
        else:
            vals = sl[np.asarray(mask_block[z], dtype=bool)]
        out[z] = _slice_stat(vals, stat)
    return out


def _check_mask(mask, shape):
    if mask is None:
        return None
    if getattr(mask, "ndim", np.ndim(mask)) == 2:
        m = np.asarray(mask)
        if m.shape != tuple(shape[1:]):
            raise ShapeMismatchError(
                f"mask (2-D, applied to every slice) has shape {m.shape}, the (y, x) shape of "
                f"volume is {tuple(shape[1:])}"
            )
        if m.dtype.kind != "b":
            raise TypeError(f"mask must be boolean (True = voxel used), got dtype {m.dtype}")
        return m
    m = _as_array(mask, name="mask")
    if tuple(m.shape) != tuple(shape):
        raise ShapeMismatchError(f"mask has shape {tuple(m.shape)}, volume has {tuple(shape)}")
    if m.dtype.kind != "b":
        raise TypeError(f"mask must be boolean (True = voxel used), got dtype {m.dtype}")
    return m


def grey_profile(volume, *, stat="median", mask=None):
    """Median (or mean) grey value of every z slice of a reconstructed volume.

    Parameters
    ----------
    volume : (z, y, x) array_like of float or integer
        Reconstructed volume (e.g. μ in 1/cm): a NumPy array, a dask array or a zarr (or
        h5py) array. A lazy volume is read as blocks of whole ``(k, y, x)`` slabs (the median
        of a slice needs its whole plane), ``k`` chosen so a block holds at most ~64 MiB, so
        RAM is bounded by the slice size, not the volume size; the mean is reduced from the
        volume's own chunks.
    stat : {"median", "mean"}
        Statistic of each slice.
    mask : (y, x) or (z, y, x) array_like of bool, optional
        Voxels to use (True), e.g. the disk of the cylindrical sample so that the air around
        it does not weigh on the statistic; a 2-D mask applies to every slice. Non-finite
        voxels (NaN, ±inf) are always ignored.

    Returns
    -------
    profile : (z,) ndarray of float64
        The statistic of each slice, in the unit of `volume`; NaN for a slice without any
        finite voxel in the mask. Slice ``i`` is centred at ``z = i * voxel_size_um``.

    Raises
    ------
    ValueError
        If `volume` is not 3-D or `stat` is unknown.
    ShapeMismatchError
        If `mask` does not match the volume's (z, y, x) or (y, x) shape.
    TypeError
        If `volume` is not numeric or `mask` is not boolean.

    See Also
    --------
    find_interfaces : the layer boundaries from the steps of this profile.

    References
    ----------
    .. [1] Cao et al., Adv. Funct. Mater. (2023), e2307998, doi:10.1002/adfm.202307998.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((3, 4, 4), dtype=np.float32)
    >>> vol[1:] = 2.0
    >>> vol[2, 0, 0] = np.nan
    >>> grey_profile(vol).tolist()
    [0.0, 2.0, 2.0]
    """
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {_STATS}, got {stat!r}")
    arr = _as_array(volume, name="volume")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"volume must hold real numbers, got dtype {arr.dtype}")
    m = _check_mask(mask, arr.shape)
    nz, ny, nx = arr.shape
    lazy = _is_dask(arr) or (m is not None and _is_dask(m))
    if not lazy:
        m_np = None if m is None else np.asarray(m)
        out = np.empty(nz, dtype=np.float64)
        for z in range(nz):
            mz = None if m_np is None else (m_np if m_np.ndim == 2 else m_np[z:z + 1])
            out[z] = _profile_block(arr[z:z + 1], mz, stat)[0]
        return out
    import dask.array as da

    darr = arr if _is_dask(arr) else da.from_array(arr, chunks=(1, ny, nx))
    if stat == "mean":
        return _mean_profile(darr, m)
    slice_bytes = max(1, ny * nx * darr.dtype.itemsize)
    k = max(1, min(nz, _PROFILE_BLOCK_BYTES // slice_bytes))
    cz = max(darr.chunks[0])
    if k >= cz:
        k = (k // cz) * cz  # whole source chunks per block: each chunk is read once
    darr = darr.rechunk((k, ny, nx))
    if m is None or m.ndim == 2:
        res = darr.map_blocks(_profile_block, m, stat, dtype=np.float64, drop_axis=(1, 2))
    else:
        dm = m if _is_dask(m) else da.from_array(m, chunks=(k, ny, nx))
        dm = dm.rechunk((k, ny, nx))
        res = da.map_blocks(_profile_block, darr, dm, stat, dtype=np.float64, drop_axis=(1, 2))
    return np.asarray(res.compute(), dtype=np.float64)


def _sum_count_block(block, mask_block):
    block = np.asarray(block)
    good = np.isfinite(block) if block.dtype.kind == "f" else np.ones(block.shape, dtype=bool)
    if mask_block is not None:
        good &= np.asarray(mask_block, dtype=bool)
    s = np.where(good, block, 0).sum(axis=(1, 2), dtype=np.float64)
    c = good.sum(axis=(1, 2)).astype(np.float64)
    return np.stack([s, c], axis=-1)[:, None, None, :]


def _mean_profile(darr, m):
    """Per-slice mean from per-block sums and counts (no rechunking)."""
    import dask.array as da

    nby, nbx = len(darr.chunks[1]), len(darr.chunks[2])
    out_chunks = (darr.chunks[0], (1,) * nby, (1,) * nbx, (2,))
    if m is None:
        parts = darr.map_blocks(_sum_count_block, None, dtype=np.float64, new_axis=3,
                                chunks=out_chunks)
    elif m.ndim == 2:
        dm = da.broadcast_to(da.from_array(m, chunks=darr.chunks[1:]), darr.shape,
                             chunks=darr.chunks)
        parts = da.map_blocks(_sum_count_block, darr, dm, dtype=np.float64, new_axis=3,
                              chunks=out_chunks)
    else:
        dm = (m if _is_dask(m) else da.from_array(m, chunks=darr.chunks)).rechunk(darr.chunks)
        parts = da.map_blocks(_sum_count_block, darr, dm, dtype=np.float64, new_axis=3,
                              chunks=out_chunks)
    sc = np.asarray(parts.sum(axis=(1, 2)).compute(), dtype=np.float64)
    s, c = sc[:, 0], sc[:, 1]
    return np.divide(s, c, out=np.full(s.shape, np.nan), where=c > 0)


@dataclass(frozen=True)
class Interfaces:
    """Result of :func:`find_interfaces`.

    Attributes
    ----------
    positions_um : (n,) ndarray of float64
        Interface positions along z, µm, in increasing z (sub-slice precision; a boundary
        between slices ``i - 1`` and ``i`` is at ``(i - ½) * voxel_size_um``).
    steps : (n,) ndarray of float64
        Signed derivative of the smoothed profile at each interface, grey value per µm:
        positive where the grey value rises going to +z (denser material above the
        interface), negative where it falls.
    faces : (n,) ndarray of intp
        Index ``i`` of the face (between slices ``i`` and ``i + 1``) where each derivative
        peak lies.
    profile : pandas.DataFrame
        Index ``z`` (slice); columns ``z_um`` (slice centre, µm), ``grey`` (the input
        profile, NaN slices filled by linear interpolation) and ``smoothed`` (after the
        Gaussian of `smooth_um`).
    derivative : pandas.DataFrame
        Index ``face`` (0 … n_z − 2); columns ``z_um`` (face position
        ``(face + ½) * voxel_size_um``, µm) and ``derivative`` (``(smoothed[face + 1] −
        smoothed[face]) / voxel_size_um``, grey value per µm).
    """

    positions_um: np.ndarray
    steps: np.ndarray
    faces: np.ndarray
    profile: pd.DataFrame
    derivative: pd.DataFrame

    def __len__(self):
        return int(self.positions_um.size)


def _parabolic_offset(a, i):
    """Offset in (−½, ½) of the vertex of the parabola through ``a[i-1], a[i], a[i+1]``."""
    if i <= 0 or i >= a.size - 1:
        return 0.0
    left, mid, right = a[i - 1], a[i], a[i + 1]
    den = left - 2.0 * mid + right
    if den >= 0:  # not a strict maximum (flat): no refinement
        return 0.0
    return float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def find_interfaces(volume, voxel_size_um, *, n=None, smooth_um=0.5, min_separation_um=5.0,
                    min_rel_step=0.02, stat="median", mask=None):
    """Positions of the layer interfaces along z: the strongest steps of the grey profile.

    The per-slice median grey value (:func:`grey_profile`) is smoothed with a Gaussian of
    standard deviation `smooth_um`, differentiated along z by the difference of neighbouring
    slices (which sits at the face between them), and the peaks of ``|d profile / dz|`` at
    least `min_separation_um` apart are the interfaces [1]_. Each peak is refined to
    sub-slice precision by the vertex of the parabola through ``|d/dz|`` at the peak face
    and its two neighbours; for an ideal step between slices ``i - 1`` and ``i`` this gives
    exactly ``(i - ½) * voxel_size_um``, the boundary convention of
    :attr:`tomopipe.simulate.Cell.layers`.

    Parameters
    ----------
    volume : (z, y, x) array_like or (z,) array_like
        Reconstructed volume (NumPy, dask or zarr; see :func:`grey_profile`), or an already
        computed per-slice profile (a 1-D array or :class:`pandas.Series` ordered by z).
    voxel_size_um : float
        Voxel edge (slice spacing), µm; slice ``i`` is centred at ``i * voxel_size_um``.
    n : int, optional
        Number of interfaces to return: the `n` strongest peaks (recommended: the number of
        layer boundaries in the field of view, e.g. 3 for current collector | cathode |
        separator | Li). By default every peak at least `min_rel_step` times the strongest.
    smooth_um : float
        Standard deviation of the Gaussian smoothing along z, µm (0: none). Default 0.5 µm;
        more suppresses noise but pulls a peak towards the gentler side of an asymmetric
        step.
    min_separation_um : float
        Smallest distance between two interfaces, µm (the thinnest layer expected).
        Default 5 µm.
    min_rel_step : float
        With ``n=None``: smallest peak height kept, relative to the strongest peak.
        Default 0.02.
    stat : {"median", "mean"}
        Statistic of each slice when `volume` is 3-D. Default "median", robust to the
        minority phases of a composite layer.
    mask : (y, x) or (z, y, x) array_like of bool, optional
        Voxels used for the profile of a 3-D `volume`; the disk of the sample is
        recommended, so that the air around it does not dilute the contrast.

    Returns
    -------
    Interfaces
        ``positions_um`` (µm, increasing z), ``steps`` (signed slope at the interface, grey
        value per µm: positive = grey value rising towards +z), ``faces`` (face index of
        each peak), ``profile`` (per slice: ``z_um``, ``grey``, ``smoothed``) and
        ``derivative`` (per face: ``z_um``, ``derivative``).

    Raises
    ------
    ValueError
        If `voxel_size_um`, `smooth_um`, `min_separation_um` or `min_rel_step` are out of
        range, the profile is all NaN or shorter than 3 slices, or fewer than `n`
        interfaces are found (each message names the parameter).

    See Also
    --------
    grey_profile : the per-slice profile.
    tomopipe.quantify._layers.layer_stats : statistics per slab, e.g. ``n_layers`` slabs
        with ``z_range_um`` set to two interfaces found here.

    References
    ----------
    .. [1] Cao et al., Adv. Funct. Mater. (2023), e2307998, doi:10.1002/adfm.202307998:
       median grey value per slice and its derivative locate the cathode | separator | Li
       boundaries.

    Examples
    --------
    >>> import numpy as np
    >>> prof = np.r_[np.zeros(10), np.full(10, 5.0), np.full(10, 1.0)]
    >>> found = find_interfaces(prof, 0.5, smooth_um=0.0, min_separation_um=2.0)
    >>> found.positions_um.tolist(), np.sign(found.steps).tolist()
    ([4.75, 9.75], [1.0, -1.0])
    """
    from scipy import ndimage, signal

    v = _check_voxel_size(voxel_size_um)
    smooth = float(smooth_um)
    if not (math.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"smooth_um must be a finite number >= 0 (µm), got {smooth_um!r}")
    sep = float(min_separation_um)
    if not (math.isfinite(sep) and sep >= 0):
        raise ValueError(
            f"min_separation_um must be a finite number >= 0 (µm), got {min_separation_um!r}"
        )
    rel = float(min_rel_step)
    if not (math.isfinite(rel) and 0 <= rel <= 1):
        raise ValueError(f"min_rel_step must be in [0, 1], got {min_rel_step!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}")

    ndim = getattr(volume, "ndim", np.ndim(volume))
    if ndim == 3:
        prof = grey_profile(volume, stat=stat, mask=mask)
    elif ndim == 1:
        prof = np.asarray(volume, dtype=np.float64).copy()
    else:
        raise ValueError(
            "volume must be a 3-D (z, y, x) volume or a 1-D per-slice profile, got "
            f"{ndim} dimensions"
        )
    if prof.size < 3:
        raise ValueError(f"the profile needs at least 3 slices, got {prof.size}")
    good = np.isfinite(prof)
    if not good.any():
        raise ValueError("the grey profile holds no finite value (empty mask?)")
    if not good.all():
        z = np.arange(prof.size)
        prof[~good] = np.interp(z[~good], z[good], prof[good])

    sigma = smooth / v
    if sigma > 0:
        smoothed = ndimage.gaussian_filter1d(prof, sigma, mode="nearest", truncate=4.0)
    else:
        smoothed = prof.copy()
    deriv = np.diff(smoothed) / v  # at the faces between slices i and i + 1
    mag = np.abs(deriv)
    distance = max(1, int(round(sep / v)))
    peaks, _ = signal.find_peaks(np.r_[0.0, mag, 0.0], distance=distance)
    peaks = peaks - 1  # the zero padding lets a step at the first or last face count
    peaks = peaks[mag[peaks] > 0]
    if peaks.size:
        order = np.argsort(-mag[peaks], kind="stable")
        peaks = peaks[order]
        if n is None:
            peaks = peaks[mag[peaks] >= rel * mag[peaks[0]]]
        else:
            if peaks.size < n:
                raise ValueError(
                    f"found {peaks.size} interface(s), n={n} requested: lower n, smooth_um or "
                    "min_separation_um"
                )
            peaks = peaks[:n]
    elif n is not None:
        raise ValueError(f"found no interface (flat profile), n={n} requested")
    peaks = np.sort(peaks)
    positions = np.array([(i + 0.5 + _parabolic_offset(mag, i)) * v for i in peaks],
                         dtype=np.float64)
    nz = prof.size
    table = pd.DataFrame(
        {"z_um": np.arange(nz) * v, "grey": prof, "smoothed": smoothed},
        index=pd.RangeIndex(nz, name="z"),
    )
    faces = pd.DataFrame(
        {"z_um": (np.arange(nz - 1) + 0.5) * v, "derivative": deriv},
        index=pd.RangeIndex(nz - 1, name="face"),
    )
    return Interfaces(
        positions_um=positions,
        steps=deriv[peaks].astype(np.float64),
        faces=peaks.astype(np.intp),
        profile=table,
        derivative=faces,
    )
