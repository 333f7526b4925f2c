"""Automatic rotation-centre finders (tomopy-compatible names and conventions).

Centre convention
-----------------
All centres here are in tomopy's convention, the one ``tomopy.recon`` (and tomopipe's
reconstruction) takes: a **detector column index**, in pixels, where pixel ``i`` has its centre
at ``i`` (index-centred).  TomoPy's ``find_center_vo`` and ``find_center_pc`` are index-centred
(they mirror projections about ``(N - 1) / 2``, the geometric middle of ``N`` columns), and so is
its gridrec, which moves column index ``center`` to the origin before back-projecting (a disc
centred on the detector reconstructs cleanly with ``center=(N - 1) / 2``, TomoPy issue #409).
TomoPy's default reconstruction centre, and the axis of ``skimage.transform.radon``, is column
``N // 2``: the Fourier origin of the row, half a pixel right of the geometric middle for even
``N``.  In the edge convention, where pixel ``i`` spans ``[i, i + 1)`` and the middle of the
detector is ``N / 2``, the same axis lies at ``centre + 0.5``.  No offset is applied: the value
returned can be passed unchanged as ``center`` to ``tomopy.recon``; a reconstruction written in
the edge convention needs ``centre + 0.5``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.fft
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from .._validate import check_shape_equality

__all__ = ["find_center_vo", "find_center_pc"]

# Above this many pixels (angles x columns) the coarse search runs on a 4x4-binned sinogram.
_LARGE_SINOGRAM = 4_000_000
_BIN = 4


def find_center_vo(tomo, ind=None, smin=-50, smax=50, srad=6, step=0.25, ratio=0.5, drop=20,
                   *, combine="mean"):
    """Find the rotation centre with Vo's Fourier metric of the 0–360° sinogram.

    The sinogram (0 to 180°) is joined with its left–right mirror image, shifted so that the
    mirror line falls on a trial centre, to make a 0–360° sinogram.  When the trial centre is
    the rotation axis the joined sinogram is that of a real object, whose 2-D Fourier transform
    is confined to a double wedge around the detector-frequency axis; the metric is the
    magnitude of the coefficients outside that wedge, and the centre is where it is smallest.
    A coarse search in half-pixel steps over ``N // 2 + [smin, smax]`` is followed by a fine
    search in steps of `step` over ``± srad`` around the coarse minimum [1]_.  This is the
    finder the pipeline runs on a few rows near the middle of the detector (`ind` a list).

    Parameters
    ----------
    tomo : (angle, row, col) or (angle, col) array_like
        Projections after flat-field normalization and ``minus_log`` (attenuation, not
        transmission), or a single sinogram; any float dtype (computed in float32).  Lazy
        arrays (dask, zarr, h5py) are read only at the rows used.  The angles must cover
        180° evenly with the end point left out (``theta = k * π / n_angles``).
    ind : int or sequence of int, optional
        Detector row(s) to use.  ``None`` (default): the middle row ``row // 2``; when there
        are more than 10 rows the mean of the ten rows ``row // 2 - 5 ... row // 2 + 4``, to
        raise the signal-to-noise ratio (as tomopy does).  A sequence: the rows are combined
        as `combine` says.  Must be ``None`` for a 2-D sinogram.
    smin, smax : float, optional
        Coarse search range, in pixels, relative to the column ``N // 2`` (``N`` columns).
        Only the part within ``N / 4`` of the detector middle ``(N - 1) / 2`` is searched
        (see Notes).
    srad : float, optional
        Fine search radius around the coarse minimum, in pixels (at most ``N / 4``).
    step : float, optional
        Fine search step, in pixels (at least 0.1, at most `srad`).
    ratio : float, optional
        Radius of the object divided by half the detector width, ``0 < ratio``; sets the
        opening of the double wedge.  0.5 suits most scans; raise it for an object that
        fills the field of view.
    drop : int, optional
        Rows of the Fourier metric (angular frequencies ``|k| <= drop``) left out around
        zero, where intensity drifts and non-object signal live.  Capped at 5 % of the
        number of rows of the 0–360° sinogram.
    combine : {'mean', 'median'}, optional
        Keyword only; how several rows given in `ind` are combined: ``'mean'`` searches the
        mean sinogram of the rows (one search, best signal-to-noise ratio); ``'median'``
        searches each row and returns the median centre (robust to a bad row).

    Returns
    -------
    center : float
        Rotation-axis position, in pixels, as a detector column index (pixel ``i`` centred at
        ``i``): tomopy's convention, which ``tomopy.recon`` takes as ``center``.  A centred
        axis gives ``(N - 1) / 2``; add 0.5 for the edge convention in which pixel ``i``
        spans ``[i, i + 1)``.

    Raises
    ------
    ValueError
        If `tomo` is not 2-D or 3-D, is too small (fewer than 2 angles or 8 columns), or
        holds NaN or infinite values in the rows used; if `ind` is out of range, not an
        integer, or given with a 2-D sinogram; if ``smin >= smax`` or the range
        ``N // 2 + [smin, smax]`` misses the searchable band ``(N - 1) / 2 ± N / 4``; if
        `srad`, `step` or `ratio` is not positive, `drop` is negative, or `combine` is
        unknown.

    See Also
    --------
    find_center_pc : centre from the 0° and 180° projections.

    Notes
    -----
    For a real object, every point at distance ``ρ`` from the axis traces a sinusoid of
    amplitude ``ρ`` over 0–360°; its transform lies where ``|k| <= 2 π ρ |u|`` (``k`` the
    angular frequency in cycles per turn, ``u`` the detector frequency in cycles per pixel).
    With ``ρ <= R = ratio * N / 2`` the metric sums ``|F(k, u)|`` over
    ``N |u| <= |k| / (π ratio)``, leaving out ``|k| <= drop`` and ``N |u| <= 1``.  The columns
    that the shifted mirror image leaves empty are filled from the sinogram reversed in angle.

    Centres further than ``N / 4`` from the middle are not searched: there the mirror image
    covers less than half of the detector, and once the object lies wholly in the filled
    columns the joined sinogram is smooth for any centre and scores a false minimum (without
    this limit, TomoPy's 91-column test sinogram gives 0 with the default range instead of
    44.75).  Scans with the axis near the detector edge (half-acquisition)
    are 0–360° scans and need another method.

    The coarse search works on a sinogram smoothed by a Gaussian of σ = (3, 1) pixels
    (angle, column) and, for more than 4·10⁶ pixels, binned 4 × 4; the fine search on one
    smoothed by σ = (2, 2), shifting by cubic B-spline interpolation.  Same inputs and
    defaults as ``tomopy.find_center_vo``; results agree with tomopy's to within the search
    step, not bit for bit.

    References
    ----------
    .. [1] N. T. Vo, M. Drakopoulos, R. C. Atwood and C. Reinhard, "Reliable method for
       calculating the center of rotation in parallel-beam tomography", Opt. Express 22,
       19078–19086 (2014). :doi:`10.1364/OE.22.019078`
    .. [2] ``tomopy.recon.rotation.find_center_vo`` (TomoPy), whose arguments and centre
       convention this function follows.

    Examples
    --------
    A centred axis in scikit-image's ``radon`` is column ``N // 2``, as in tomopy:

    >>> import numpy as np
    >>> from skimage.data import shepp_logan_phantom
    >>> from skimage.transform import radon, rescale
    >>> from tomopipe.reconstruction._center import find_center_vo
    >>> image = rescale(shepp_logan_phantom(), 0.32)                 # 128 x 128
    >>> sino = radon(image, theta=np.arange(180.0), circle=True).T   # (angle, col)
    >>> find_center_vo(sino, smin=-20, smax=20)
    64.0
    >>> find_center_vo(sino[:, 3:])          # 3 columns cut on the left: axis at 61
    61.0
    """
    # Arrays that read lazily (dask, zarr, h5py) are indexed before conversion, so that only
    # the rows used are read.
    arr = tomo if hasattr(tomo, "shape") and hasattr(tomo, "ndim") else np.asarray(tomo)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"tomo must be a 3-D (angle, row, col) projection stack or a 2-D (angle, col) "
            f"sinogram, got shape {arr.shape}"
        )
    _check_vo_parameters(smin, smax, srad, step, ratio, drop)
    if combine not in ("mean", "median"):
        raise ValueError(f"combine must be 'mean' or 'median', got {combine!r}")

    sinos = _select_sinograms(arr, ind, combine)
    ncol = sinos[0].shape[1]
    if sinos[0].shape[0] < 2 or ncol < 8:
        raise ValueError(
            f"tomo needs at least 2 angles and 8 columns for find_center_vo, got shape {arr.shape}"
        )
    # Search only where the mirror image overlaps at least half the detector (see Notes).
    mid, band = (ncol - 1) / 2.0, ncol / 4.0
    lo = max(ncol // 2 + smin, mid - band)
    hi = min(ncol // 2 + smax, mid + band)
    if lo > hi:
        raise ValueError(
            f"smin, smax = {smin}, {smax}: the search range N // 2 + [smin, smax] = "
            f"[{ncol // 2 + smin}, {ncol // 2 + smax}] misses the searchable band "
            f"[{mid - band:g}, {mid + band:g}] (within N / 4 of the detector middle)"
        )
    centres = [_vo_search(s, lo, hi, srad, step, ratio, drop) for s in sinos]
    return float(np.median(centres))


def find_center_pc(proj1, proj2, tol=0.5, rotc_guess=None):
    """Find the rotation centre by phase correlation of the 0° and mirrored 180° projections.

    A projection at 180° is the mirror image, about the rotation axis, of the one at 0°.
    Flipping `proj2` left–right and registering it on `proj1` by phase correlation [1]_ gives
    a column shift ``d``; the axis is at ``(N - 1 + d) / 2``.

    Parameters
    ----------
    proj1 : (row, col) array_like
        Projection at angle θ (normally 0°), after flat-field normalization, best after
        ``minus_log`` (background near zero).
    proj2 : (row, col) array_like
        Projection at θ + 180°, same shape as `proj1`, not flipped.
    tol : float, optional
        Precision of the registration, in pixels (``upsample_factor = 1 / tol`` of the phase
        correlation); the centre is then known to ``tol / 2``.
    rotc_guess : float, optional
        Guess of the centre (column index).  Both images are first shifted by the whole
        number of pixels that brings the guess to the middle ``(N - 1) / 2`` (columns
        shifted in are zero), which helps when the axis is far from the middle.

    Returns
    -------
    center : float
        Rotation-axis position, in pixels, as a detector column index (pixel ``i`` centred at
        ``i``), tomopy's convention; add 0.5 for the edge convention.

    Raises
    ------
    ValueError
        If `proj1` or `proj2` is not 2-D or holds NaN or infinite values; if `tol` is not
        positive; if `rotc_guess` is not finite or lies outside ``[0, N - 1]``.
    ShapeMismatchError
        If `proj1` and `proj2` differ in shape.

    See Also
    --------
    find_center_vo : centre from a sinogram, using all angles.

    Notes
    -----
    `proj2` must be 180° from `proj1`.  A scan with ``n`` angles ``k · 180° / n`` has no
    projection at 180°: the last one is ``180° - 180° / n``.  Using it instead leaves an
    angular error ``δ = 180° / n``, which moves a feature at depth ``y`` (distance from the
    axis along the beam) by ``y sin δ``; for an object centred on the axis these shifts
    cancel on average, for a lopsided one they bias the centre by up to ``R sin(δ) / 2``
    (``R`` the object radius).  With the projection at 180° + θ paired with that at θ
    (e.g. 0–360° scans) there is no such error.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman and J. R. Fienup, "Efficient subpixel image
       registration algorithms", Opt. Lett. 33, 156–158 (2008). :doi:`10.1364/OL.33.000156`
    .. [2] ``tomopy.recon.rotation.find_center_pc`` (TomoPy), whose arguments and centre
       convention this function follows.

    Examples
    --------
    >>> import numpy as np
    >>> from tomopipe.reconstruction._center import find_center_pc
    >>> j = np.arange(100)
    >>> p0 = np.exp(-((j - 30.0) / 4) ** 2) + 0.5 * np.exp(-((j - 55.0) / 6) ** 2)
    >>> p180 = np.exp(-((j - 70.0) / 4) ** 2) + 0.5 * np.exp(-((j - 45.0) / 6) ** 2)
    >>> find_center_pc(np.tile(p0, (8, 1)), np.tile(p180, (8, 1)), tol=0.25)  # axis at 50
    50.0
    """
    p1 = _as_finite_2d(proj1, "proj1")
    p2 = _as_finite_2d(proj2, "proj2")
    check_shape_equality(p1.shape, p2.shape, a_name="proj1", b_name="proj2")
    if not (isinstance(tol, numbers.Real) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number of pixels, got {tol!r}")
    ncol = p1.shape[1]
    mid = (ncol - 1) / 2.0

    offset = 0
    if rotc_guess is not None:
        if not (isinstance(rotc_guess, numbers.Real) and math.isfinite(rotc_guess)
                and 0 <= rotc_guess <= ncol - 1):
            raise ValueError(
                f"rotc_guess must be a column index in [0, {ncol - 1}], got {rotc_guess!r}"
            )
        offset = int(round(rotc_guess - mid))
        p1 = _shift_columns(p1, -offset)
        p2 = _shift_columns(p2, -offset)

    shift, _, _ = phase_cross_correlation(p1, p2[:, ::-1], upsample_factor=1.0 / tol)
    return float((ncol - 1 + shift[1]) / 2.0 + offset)


# --------------------------------------------------------------------------------------------
# helpers


def _check_vo_parameters(smin, smax, srad, step, ratio, drop):
    for name, val in (("smin", smin), ("smax", smax), ("srad", srad), ("step", step),
                      ("ratio", ratio), ("drop", drop)):
        if not (isinstance(val, numbers.Real) and math.isfinite(val)):
            raise ValueError(f"{name} must be a finite number, got {val!r}")
    if smin >= smax:
        raise ValueError(f"smin must be smaller than smax, got smin={smin}, smax={smax}")
    for name, val in (("srad", srad), ("step", step), ("ratio", ratio)):
        if val <= 0:
            raise ValueError(f"{name} must be positive, got {val!r}")
    if drop < 0:
        raise ValueError(f"drop must be >= 0, got {drop!r}")


def _as_finite_2d(a, name):
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (row, col) projection, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def _shift_columns(img, n):
    """Shift columns by the integer `n` (positive: to the right), filling with zeros."""
    out = np.zeros_like(img)
    if n >= 0:
        out[:, n:] = img[:, : img.shape[1] - n]
    else:
        out[:, :n] = img[:, -n:]
    return out


def _row_indices(ind, nrows):
    """Return `ind` as a list of valid row indices (negative ones counted from the end)."""
    if isinstance(ind, (numbers.Integral, np.integer)):
        rows = [ind]
    else:
        try:
            rows = list(ind)
        except TypeError:
            raise ValueError(
                f"ind must be an int or a sequence of ints, got {type(ind).__name__}"
            ) from None
        if not rows:
            raise ValueError("ind is an empty sequence; give at least one row")
    out = []
    for r in rows:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (numbers.Integral, np.integer)):
            raise ValueError(f"ind must hold integer row indices, got {r!r}")
        if not -nrows <= r < nrows:
            raise ValueError(f"ind row {r} is out of range for a detector with {nrows} rows")
        out.append(int(r) % nrows)
    return out


def _select_sinograms(arr, ind, combine):
    """Return the list of (angle, col) float32 sinograms to search."""
    if arr.ndim == 2:
        if ind is not None:
            raise ValueError("ind must be None when tomo is a 2-D (angle, col) sinogram")
        return [_finite_sinogram(arr)]
    nrows = arr.shape[1]
    if ind is None:
        mid = nrows // 2
        rows = list(range(mid - 5, mid + 5)) if nrows > 10 else [mid]
    else:
        rows = _row_indices(ind, nrows)
    # one row at a time, by basic indexing, which every array type supports
    sinos = [_finite_sinogram(arr[:, r, :]) for r in rows]
    if ind is None or combine == "mean":
        return [np.mean(sinos, axis=0, dtype=np.float64).astype(np.float32)]
    return sinos


def _finite_sinogram(s):
    s = np.asarray(s, dtype=np.float32)
    if not np.all(np.isfinite(s)):
        raise ValueError(
            "tomo holds NaN or infinite values in the rows used (clip before minus_log, "
            "or choose other rows with ind)"
        )
    return s


def _vo_search(sino, lo, hi, srad, step, ratio, drop):
    """Coarse search over centres [lo, hi], then fine search; centre as a column index."""
    nrow, ncol = sino.shape
    coarse = ndimage.gaussian_filter(sino, (3, 1), mode="reflect")
    if nrow * ncol > _LARGE_SINOGRAM:
        # Bin 4x4 for the coarse search; binned column k covers columns 4k ... 4k+3, whose
        # middle is at 4k + 1.5.
        nr, nc = nrow // _BIN * _BIN, ncol // _BIN * _BIN
        binned = coarse[:nr, :nc].reshape(nr // _BIN, _BIN, nc // _BIN, _BIN).mean(axis=(1, 3))
        nb = binned.shape[1]
        blo, bhi = (lo - 1.5) / _BIN, (hi - 1.5) / _BIN
        cands = np.arange(math.ceil(2 * blo), math.floor(2 * bhi) + 1) / 2.0
        cands = cands[(cands >= 0) & (cands <= nb - 1)]
        if cands.size == 0:  # range narrower than half a binned pixel: take its middle
            cands = np.array([min(max(round(blo + bhi), 0), 2 * (nb - 1)) / 2.0])
        c0 = _BIN * _best_centre(binned, cands, ratio, drop) + 1.5
    else:
        cands = np.arange(math.ceil(2 * lo), math.floor(2 * hi) + 1) / 2.0
        if cands.size == 0:  # range narrower than half a pixel: take its middle
            cands = np.array([(lo + hi) / 2.0])
        c0 = _best_centre(coarse, cands, ratio, drop)

    fine = ndimage.gaussian_filter(sino, (2, 2), mode="reflect")
    srad = min(float(srad), ncol / 4.0)
    step = min(max(float(step), 0.1), srad)
    n = int(math.floor(srad / step + 1e-9))
    cands = c0 + step * np.arange(-n, n + 1)
    cands = cands[(cands >= 0) & (cands <= ncol - 1)]
    return float(_best_centre(fine, cands, ratio, drop))


def _best_centre(sino, centres, ratio, drop):
    """Return the centre (column index) among `centres` with the smallest Vo metric."""
    nrow, ncol = sino.shape
    weights = _metric_weights(2 * nrow, ncol, ratio, drop)
    flipped = np.ascontiguousarray(sino[:, ::-1])
    coeffs = ndimage.spline_filter1d(flipped, order=3, axis=1, output=np.float32, mode="mirror")
    reversed_ = sino[::-1]
    joined = np.empty((2 * nrow, ncol), dtype=np.float32)
    joined[:nrow] = sino
    metric = np.empty(len(centres))
    for i, c in enumerate(centres):
        shift = 2.0 * (c - (ncol - 1) / 2.0)
        joined[nrow:] = _shift_rows(flipped, coeffs, shift)
        # columns the shifted mirror image does not cover: fill from the reversed sinogram
        if shift > 0:
            k = min(math.ceil(shift - 1e-9), ncol)
            joined[nrow:, :k] = reversed_[:, :k]
        elif shift < 0:
            k = min(math.ceil(-shift - 1e-9), ncol)
            joined[nrow:, ncol - k:] = reversed_[:, ncol - k:]
        spectrum = np.abs(scipy.fft.rfft2(joined))
        metric[i] = np.sum(spectrum * weights, dtype=np.float64)
    return centres[int(np.argmin(metric))]


def _shift_rows(img, coeffs, shift):
    """Shift each row of `img` by `shift` columns (cubic B-spline); edges hold the end values.

    `coeffs` are the cubic B-spline coefficients of `img` along axis 1.  The output at column
    ``j`` is the spline evaluated at ``j - shift``; the four weights are the same for every
    pixel, so this is a 4-tap filter of the coefficients (one pass instead of the 2-D
    interpolation of ``scipy.ndimage.shift``).
    """
    ncol = img.shape[1]
    n = math.floor(-shift)
    f = -shift - n
    if f < 1e-6 or f > 1 - 1e-6:  # whole-pixel shift: exact copy
        n = round(-shift)
        src = np.clip(np.arange(ncol) + n, 0, ncol - 1)
        return img[:, src]
    # cubic B-spline weights for the coefficients at offsets -1, 0, 1, 2 from floor(x)
    w = (
        (1 - f) ** 3 / 6.0,
        2.0 / 3.0 - f**2 + f**3 / 2.0,
        2.0 / 3.0 - (1 - f) ** 2 + (1 - f) ** 3 / 2.0,
        f**3 / 6.0,
    )
    out = np.zeros(img.shape, dtype=np.float32)
    base = np.arange(ncol) + n
    for m, wm in zip((-1, 0, 1, 2), w):
        out += wm * coeffs[:, np.clip(base + m, 0, ncol - 1)]
    return out


def _metric_weights(nrow2, ncol, ratio, drop):
    """Weights on the ``rfft2`` grid of a (nrow2, ncol) image selecting Vo's metric region.

    Row ``k`` (angular frequency, cycles per turn) and column ``j`` (detector frequency
    ``j / ncol``) are selected where ``j <= |k| / (π ratio)``, ``|k| > drop`` and ``j > 1``;
    columns with a mirror twin in the full spectrum count twice.
    """
    k = np.abs(scipy.fft.fftfreq(nrow2, 1.0 / nrow2))
    j = np.arange(ncol // 2 + 1)
    drop = min(int(drop), math.ceil(0.05 * nrow2))
    sel = (j[None, :] <= k[:, None] / (math.pi * ratio)) & (k[:, None] > drop) & (j[None, :] > 1)
    twin = np.where((j == 0) | (2 * j == ncol), 1.0, 2.0)
    return (sel * twin[None, :]).astype(np.float32)
