"""Per-slice profiles along z and the positions of the layer interfaces of a cell.

The layers stacked along z (current collector | cathode | separator | Li metal) differ in
what they are made of. :func:`find_interfaces` locates the faces between slices where the
make-up of the slices changes most, from what distinguishes the layers:

- for a label volume, the phase fractions of every slice (:func:`slice_counts`): the
  cathode | separator boundary is found even where the electrolyte is the majority phase on
  both sides (a median grey value, or the majority label, does not change there);
- for a grey volume, the grey-value histogram of every slice, as its quantiles
  (:func:`grey_quantiles`, out of core): the boundary of a layer whose dense minority phase
  (e.g. CuS particles) disappears moves the upper quantiles even when the median stays.

Each interface comes with a contrast (how different the two sides are) and a confidence
(how far the change stands out from the slice-to-slice fluctuation inside the layers).
:func:`grey_profile` (median or mean per slice, the classic profile of [1]_) is kept for
plots and 1-D input.

Conventions
-----------
Volumes are ``(z, y, x)`` with z the stack (pressure) axis; slice ``i`` is centred at
``z = i * dz`` (µm, ``voxel_size_um = (dz, dy, dx)`` or one number), so the face between
slices ``i - 1`` and ``i`` lies at ``(i - ½) * dz``. Positions are returned in increasing z.

References
----------
.. [1] Cao et al., Adv. Funct. Mater. (2023), e2307998, doi:10.1002/adfm.202307998: the
   median grey value of each slice and its derivative along the stack axis locate the
   cathode | separator | Li boundaries of a solid-state cell in X-ray tomograms.
.. [2] E. S. Page, "Continuous inspection schemes", Biometrika 41, 100–115 (1954); and
   C. Truong, L. Oudre, N. Vayatis, "Selective review of offline change point detection
   methods", Signal Process. 167, 107299 (2020), doi:10.1016/j.sigpro.2019.107299: change
   points from the distance between the means of two adjacent windows.
.. [3] C. Villani, *Optimal Transport* (Springer, 2009): the 1-Wasserstein distance of two
   distributions on a line is the mean absolute difference of their quantile functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ShapeMismatchError

from ._input import _as_array, _check_schema, _check_voxel_size, _is_dask

__all__ = ["grey_profile", "grey_quantiles", "find_interfaces", "Interfaces"]

#: Default quantile levels of the per-slice grey histogram (5 %, 10 %, … 95 %).
QUANTILES = tuple(np.round(np.linspace(0.05, 0.95, 19), 4))

#: Bytes of whole (y, x) slices gathered at once to take per-slice medians of a lazy volume.
_PROFILE_BLOCK_BYTES = 64 << 20

_STATS = ("median", "mean")


def _slice_stat(values, stat):
    """Median, mean or quantiles (`stat` a tuple of levels) of the finite entries of a 1-D
    array (NaN if there is none)."""
    values = values[np.isfinite(values)]
    if isinstance(stat, tuple):
        if values.size == 0:
            return np.full(len(stat), np.nan)
        return np.quantile(values.astype(np.float64), stat)
    if values.size == 0:
        return np.nan
    if stat == "median":
        return float(np.median(values))
    return float(np.mean(values, dtype=np.float64))


def _profile_block(block, mask_block, stat):
    block = np.asarray(block)
    shape = (block.shape[0], len(stat)) if isinstance(stat, tuple) else (block.shape[0],)
    out = np.empty(shape, dtype=np.float64)
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
    return _per_slice(volume, mask, stat)


def _per_slice(volume, mask, stat):
    """Per-slice statistic (``(z,)``) or quantiles (``(z, n_q)``, `stat` a tuple of levels)."""
    arr = _as_array(volume, name="volume")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"volume must hold real numbers, got dtype {arr.dtype}")
    m = _check_mask(mask, arr.shape)
    nz, ny, nx = arr.shape
    multi = isinstance(stat, tuple)
    lazy = _is_dask(arr) or (m is not None and _is_dask(m))
    if not lazy:
        m_np = None if m is None else np.asarray(m)
        out = np.empty((nz, len(stat)) if multi else nz, dtype=np.float64)
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
    kw = {"drop_axis": (1, 2), "dtype": np.float64}
    if multi:
        kw = {"drop_axis": 2, "chunks": (darr.chunks[0], (len(stat),)), "dtype": np.float64}
    if m is None or m.ndim == 2:
        res = darr.map_blocks(_profile_block, m, stat, **kw)
    else:
        dm = m if _is_dask(m) else da.from_array(m, chunks=(k, ny, nx))
        dm = dm.rechunk((k, ny, nx))
        res = da.map_blocks(_profile_block, darr, dm, stat, **kw)
    return np.asarray(res.compute(), dtype=np.float64)


def grey_quantiles(volume, *, quantiles=QUANTILES, mask=None):
    """Quantiles of the grey values of every z slice: the per-slice grey histogram.

    Parameters
    ----------
    volume : (z, y, x) array_like of float or integer
        Reconstructed volume (NumPy, dask, zarr or h5py), read as in :func:`grey_profile`
        (whole slices, at most ~64 MiB at once for lazy input).
    quantiles : sequence of float
        Levels in [0, 1]; default 5 %, 10 %, … 95 %.
    mask : (y, x) or (z, y, x) array_like of bool, optional
        Voxels used (True); non-finite voxels are always left out.

    Returns
    -------
    (z, n_q) ndarray of float64
        ``out[i, j]`` is the `quantiles[j]` quantile of slice ``i`` (linear interpolation,
        :func:`numpy.quantile`), in the unit of `volume`; NaN rows for slices without finite
        voxels.

    Raises
    ------
    ValueError
        If a level is outside [0, 1] or `volume` is not 3-D.
    ShapeMismatchError, TypeError
        As :func:`grey_profile`.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.arange(2 * 2 * 5, dtype=float).reshape(2, 2, 5)
    >>> grey_quantiles(vol, quantiles=(0.0, 0.5, 1.0)).tolist()
    [[0.0, 4.5, 9.0], [10.0, 14.5, 19.0]]
    """
    q = tuple(float(x) for x in np.ravel(quantiles))
    if not q or not all(0.0 <= x <= 1.0 for x in q):
        raise ValueError(f"quantiles must be levels in [0, 1], got {quantiles!r}")
    return _per_slice(volume, mask, q)


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
        between slices ``i - 1`` and ``i`` is at ``(i - ½) * dz``).
    faces : (n,) ndarray of intp
        Index ``i`` of the face (between slices ``i`` and ``i + 1``) of each peak.
    contrast : (n,) ndarray of float64
        How different the two sides are: the distance between the mean per-slice features
        of the `window` slices on either side. For labels, the total-variation distance of
        the phase fractions (0 = same make-up, 1 = no phase in common); for a grey volume,
        the 1-Wasserstein distance of the grey histograms (mean absolute difference of the
        quantiles), in grey units; for a 1-D profile, the absolute step.
    confidence : (n,) ndarray of float64
        How far the contrast stands out from the fluctuation of the same statistic inside
        the layers: ``(contrast - median) / (1.4826 MAD)`` of the statistic over all faces
        (a robust z-score; ``inf`` for a noiseless profile). The strongest face of a profile
        of pure noise reaches 4–8 (100–300 slices; the faces are many and correlated), so
        an interface below ~10 is not told from the texture of the layers.
    steps : (n,) ndarray of float64
        Signed change of the median grey value (grey input) or of the profile (1-D input)
        from the ``-z`` to the ``+z`` side; NaN for labels (see `changes`).
    changes : pandas.DataFrame
        One row per interface: ``position_um`` and the change of every feature (phase
        fraction, grey quantile) from the ``-z`` to the ``+z`` side.
    profile : pandas.DataFrame
        Index ``z`` (slice): ``z_um`` (slice centre, µm) and the per-slice features
        (``fraction_<class>``; ``q05`` … ``q95``; or ``grey``), NaN slices filled by linear
        interpolation.
    statistic : pandas.DataFrame
        Index ``face`` (0 … n_z − 2): ``z_um`` (face position ``(face + ½) * dz``) and
        ``distance`` (the window distance whose peaks are the interfaces).
    kind : str
        ``"labels"``, ``"grey"``, ``"features"`` or ``"profile"``: what the features were.
    """

    positions_um: np.ndarray
    faces: np.ndarray
    contrast: np.ndarray
    confidence: np.ndarray
    steps: np.ndarray
    changes: pd.DataFrame
    profile: pd.DataFrame
    statistic: pd.DataFrame
    kind: str

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


def _window_means(feat, w):
    """Mean of the `w` slices below and above every face (fewer at the volume ends)."""
    nz = feat.shape[0]
    cs = np.concatenate([np.zeros((1, feat.shape[1])), np.cumsum(feat, axis=0)])
    faces = np.arange(nz - 1)
    lo = np.maximum(faces + 1 - w, 0)
    hi = np.minimum(faces + 1 + w, nz)
    left = (cs[faces + 1] - cs[lo]) / (faces + 1 - lo)[:, None]
    right = (cs[hi] - cs[faces + 1]) / (hi - faces - 1)[:, None]
    return left, right


def _label_features(labels, schema):
    from ._layers import slice_counts

    sch = _check_schema(schema, labels)
    counts = slice_counts(labels, schema=sch)
    keep = [c for c in counts.columns if c != sch.outside]
    sub = counts[keep].to_numpy(np.float64)
    tot = sub.sum(axis=1, keepdims=True)
    frac = np.divide(sub, tot, out=np.full(sub.shape, np.nan), where=tot > 0)
    return frac, [f"fraction_{c}" for c in keep]


def _has_schema_attrs(arr):
    attrs = getattr(arr, "attrs", None)
    try:
        return attrs is not None and ("label_schema" in attrs or "labels" in attrs)
    except TypeError:
        return False


def find_interfaces(volume, voxel_size_um, *, n=None, kind="auto", schema=None,
                    window_um=None, min_separation_um=None, min_confidence=10.0, mask=None,
                    quantiles=QUANTILES):
    """Positions of the layer interfaces along z: where the make-up of the slices changes.

    Every slice is described by a feature vector — its phase fractions (labels), its grey
    histogram as quantiles (grey volume) or one value (1-D profile). At each face between
    slices, the mean features of the `window` slices below and of the `window` slices above
    are compared (total-variation distance for fractions, 1-Wasserstein distance for grey
    histograms [3]_, absolute difference for a profile) [2]_. An ideal step between two
    uniform layers gives a tent of half-width `window` peaking at the step's face; peaks at
    least `min_separation_um` apart are the interfaces, refined to sub-slice precision by
    the vertex of the parabola through the peak and its neighbours (exact for an ideal
    step: ``(i - ½) dz``, the boundary convention of :attr:`tomopipe.simulate.Cell.layers`).

    Parameters
    ----------
    volume : (z, y, x) array_like, (z, K) array_like or (z,) array_like
        A label volume (integer, with a schema), a grey volume (NumPy, dask, zarr; read out
        of core, whole slices at a time), a table of per-slice features (e.g. fractions) or
        a per-slice profile (:func:`grey_profile`).
    voxel_size_um : float or (3,) sequence of float
        ``(dz, dy, dx)`` in µm or one number; only the slice spacing ``dz`` is used.
    n : int, optional
        Number of interfaces: the `n` strongest peaks (e.g. 3 for current collector |
        cathode | separator | Li). By default every peak with `confidence` at least
        `min_confidence`.
    kind : {"auto", "labels", "grey"}
        What a 3-D `volume` is. ``"auto"``: labels if `schema` is given or the array
        carries a label schema in its attributes, else grey. For a (z, K) table,
        ``"labels"`` means its columns are fractions (total-variation distance).
    schema : LabelSchema or mapping, optional
        Label schema of a label volume (the outside class, if any, is left out of the
        fractions).
    window_um : float, optional
        Thickness of the windows compared on either side of a face, µm. Default: half of
        `min_separation_um` (so two interfaces `min_separation_um` apart are resolved).
    min_separation_um : float, optional
        Smallest distance between two interfaces (the thinnest layer expected), µm.
        Default: 8 slices.
    min_confidence : float
        With ``n=None``: smallest `confidence` of an interface returned (default 10, above
        what noise reaches).
    mask : (y, x) or (z, y, x) array_like of bool, optional
        Voxels used for the histograms of a grey volume, e.g. the disk of the sample so
        that the air around it does not dilute the contrast.
    quantiles : sequence of float
        Levels of the per-slice grey histogram.

    Returns
    -------
    Interfaces
        ``positions_um``, ``faces``, ``contrast``, ``confidence``, ``steps``, ``changes``,
        ``profile``, ``statistic``, ``kind``.

    Raises
    ------
    ValueError
        If a length parameter is not > 0, `kind` is unknown, the profile has fewer than 3
        slices or no finite value, or fewer than `n` interfaces are found (each message
        names the parameter).
    tomopipe.schema.LabelSchemaError
        If `kind` is ``"labels"`` and no schema is given or stored with the labels.

    Notes
    -----
    With :math:`F_i` the features of slice :math:`i` and :math:`w` the window (slices),
    the statistic at the face between slices :math:`f` and :math:`f+1` is

    .. math:: D_f = c \\, \\Big\\lVert \\tfrac{1}{w}\\sum_{i=f-w+1}^{f} F_i
              - \\tfrac{1}{w}\\sum_{i=f+1}^{f+w} F_i \\Big\\rVert_1,

    with :math:`c = ½` for fractions (total variation) and :math:`c = 1 / K` for :math:`K`
    evenly spread quantiles (1-Wasserstein). It does not depend on which phase is the
    majority: a cathode | separator boundary where the electrolyte dominates both sides
    is found from the active and pore fractions alone.

    References
    ----------
    .. [1] Cao et al., Adv. Funct. Mater. (2023), e2307998, doi:10.1002/adfm.202307998.
    .. [2] C. Truong, L. Oudre, N. Vayatis, Signal Process. 167, 107299 (2020),
       doi:10.1016/j.sigpro.2019.107299 (window-based change point detection).
    .. [3] C. Villani, *Optimal Transport* (Springer, 2009) (Wasserstein distance).

    Examples
    --------
    >>> import numpy as np
    >>> prof = np.r_[np.zeros(10), np.full(10, 5.0), np.full(10, 1.0)]
    >>> found = find_interfaces(prof, 0.5, min_separation_um=2.0)
    >>> found.positions_um.tolist(), found.steps.tolist()
    ([4.75, 9.75], [5.0, -4.0])
    """
    dz = _check_voxel_size(voxel_size_um).dz
    if kind not in ("auto", "labels", "grey"):
        raise ValueError(f"kind must be 'auto', 'labels' or 'grey', got {kind!r}")
    sep = 8.0 * dz if min_separation_um is None else float(min_separation_um)
    if not (math.isfinite(sep) and sep > 0):
        raise ValueError(f"min_separation_um must be a finite number > 0 (µm), got {min_separation_um!r}")
    sep_slices = max(1, int(round(sep / dz)))
    if window_um is None:
        w = max(1, sep_slices // 2)
    else:
        wu = float(window_um)
        if not (math.isfinite(wu) and wu > 0):
            raise ValueError(f"window_um must be a finite number > 0 (µm), got {window_um!r}")
        w = max(1, int(round(wu / dz)))
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    mc = float(min_confidence)
    if math.isnan(mc):
        raise ValueError("min_confidence must be a number")

    ndim = getattr(volume, "ndim", np.ndim(volume))
    median_col = None
    if ndim == 3:
        if kind == "auto":
            kind = "labels" if schema is not None or _has_schema_attrs(volume) else "grey"
        if kind == "labels":
            if schema is None and not _has_schema_attrs(volume):
                from ..schema import LabelSchemaError

                raise LabelSchemaError(
                    "find_interfaces(kind='labels') needs the label schema (schema=)")
            feat, cols = _label_features(volume, schema)
            scale = 0.5
        else:
            q = tuple(float(x) for x in np.ravel(quantiles))
            feat = grey_quantiles(volume, quantiles=q, mask=mask)
            cols = [f"q{round(100 * x):02d}" for x in q]
            scale = 1.0 / len(q)
            median_col = int(np.argmin(np.abs(np.asarray(q) - 0.5)))
    elif ndim == 2:
        if isinstance(volume, pd.DataFrame):
            cols = [str(c) for c in volume.columns]
        else:
            cols = [f"f{k}" for k in range(np.shape(volume)[1])]
        feat = np.asarray(volume, dtype=np.float64)
        scale = 0.5 if kind == "labels" else 1.0
        kind = "labels" if kind == "labels" else "features"
    elif ndim == 1:
        feat = np.asarray(volume, dtype=np.float64).reshape(-1, 1)
        cols, kind, scale, median_col = ["grey"], "profile", 1.0, 0
    else:
        raise ValueError(
            "volume must be a 3-D (z, y, x) volume, a (z, K) feature table or a 1-D profile, "
            f"got {ndim} dimensions")
    feat = np.array(feat, dtype=np.float64, copy=True)
    nz = feat.shape[0]
    if nz < 3:
        raise ValueError(f"the profile needs at least 3 slices, got {nz}")
    good = np.isfinite(feat).all(axis=1)
    if not good.any():
        raise ValueError("the per-slice profile holds no finite value (empty mask?)")
    if not good.all():
        z = np.arange(nz)
        for k in range(feat.shape[1]):
            feat[~good, k] = np.interp(z[~good], z[good], feat[good, k])

    left, right = _window_means(feat, w)
    delta = right - left
    dist = scale * np.abs(delta).sum(axis=1)
    med = float(np.median(dist))
    mad = 1.4826 * float(np.median(np.abs(dist - med)))

    from scipy import signal

    peaks, _ = signal.find_peaks(np.r_[0.0, dist, 0.0], distance=sep_slices)
    peaks = peaks - 1  # the zero padding lets a step at the first or last face count
    peaks = peaks[dist[peaks] > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        conf_all = (dist - med) / mad if mad > 0 else np.where(dist > med, np.inf, 0.0)
    if peaks.size:
        peaks = peaks[np.argsort(-dist[peaks], kind="stable")]
        if n is None:
            peaks = peaks[conf_all[peaks] >= mc]
        else:
            if peaks.size < n:
                raise ValueError(
                    f"found {peaks.size} interface(s), n={n} requested: lower n or "
                    "min_separation_um")
            peaks = peaks[:n]
    elif n is not None:
        raise ValueError(f"found no interface (flat profile), n={n} requested")
    peaks = np.sort(peaks)
    positions = np.array([(i + 0.5 + _parabolic_offset(dist, i)) * dz for i in peaks],
                         dtype=np.float64)
    steps = (delta[peaks, median_col] if median_col is not None
             else np.full(peaks.size, np.nan)).astype(np.float64)
    profile = pd.DataFrame(feat, columns=cols, index=pd.RangeIndex(nz, name="z"))
    profile.insert(0, "z_um", np.arange(nz) * dz)
    statistic = pd.DataFrame({"z_um": (np.arange(nz - 1) + 0.5) * dz, "distance": dist},
                             index=pd.RangeIndex(nz - 1, name="face"))
    changes = pd.DataFrame(delta[peaks], columns=cols)
    changes.insert(0, "position_um", positions)
    return Interfaces(
        positions_um=positions, faces=peaks.astype(np.intp),
        contrast=dist[peaks].astype(np.float64), confidence=conf_all[peaks].astype(np.float64),
        steps=steps, changes=changes, profile=profile, statistic=statistic, kind=kind,
    )
