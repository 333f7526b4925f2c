"""Local (subset-based) digital volume correlation between two states of a sample.

Each node of a regular grid carries a cubic subset of the reference volume; its motion into
the deformed volume is found in three steps:

1. an integer start by zero-normalised cross-correlation (ZNCC, computed with FFTs) of the
   subset against a search region of the deformed volume, coarse to fine over a pyramid of
   volumes binned by 2 per level when large motions are expected;
2. inverse-compositional Gauss–Newton (IC-GN) refinement of a translation (3 parameters) or
   of a full affine map (12 parameters) under the zero-normalised sum of squared
   differences (ZNSSD, insensitive to brightness and contrast changes between scans), the
   deformed volume being interpolated by cubic (or linear) B-splines;
3. on the whole grid, outliers are flagged by the normalised median test (universal outlier
   detection).

Conventions
-----------
Axes
    Volumes are ``(z, y, x)``; z is the stack (pressure) axis of the cell. Every vector and
    gradient is ordered ``(z, y, x)``.
Displacement
    ``u`` maps the **reference** onto the **deformed** volume: the material point at ``x``
    in the reference is at ``x + u(x)`` in the deformed volume, so that
    ``deformed(x + u(x)) ≈ reference(x)``. A sample that moves towards larger z between
    the two scans has ``u_z > 0``. Units: voxels, and µm in the ``*_um`` columns.
Gradient
    With ``affine=True`` the subset's map is ``x ↦ x + u + G (x - c)`` with ``c`` the node
    centre; ``G[i, j] = ∂u_i/∂x_j`` (dimensionless; in voxel units from
    :func:`correlate_node`, physical from :func:`dvc`).

Speed
-----
The IC-GN Hessian depends only on the reference subset, so it is built and inverted once per
node. A translation of a B-spline volume is separable: the deformed subset is interpolated
with 4 (cubic) or 2 (linear) taps along each axis instead of the 64 of a general cubic map.
The B-spline prefilter runs once per node on a block just larger than the subset.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import NamedTuple

import numpy as np
import scipy.fft as sfft
from scipy import ndimage as ndi

from ..errors import ShapeMismatchError
from ._grid import NodeGrid, node_grid

__all__ = ["correlate_node", "dvc", "NodeResult", "STATUS", "ZNCC_MIN"]

#: Node status names, by status code.
STATUS = ("ok", "masked", "featureless", "no_convergence", "outlier", "low_correlation", "nan")
_OK, _MASKED, _FEATURELESS, _NO_CONV, _OUTLIER, _LOW_CORR, _NAN = range(7)

#: Default lowest ZNCC of an ``"ok"`` node. Anchor: spam's ``correctPhiField`` discards
#: pixel-search results whose correlation coefficient is below 0.98 (``pixelSearchCCmin``), a
#: value for low-noise images. Measured here (benchmarks/RESULTS.md, "DVC: ZNCC of true and
#: false matches"): subsets tracked between two reconstructed states of the simulated cell
#: (128³, 5·10⁴ photons) converge at ZNCC 0.86–0.98 (5th percentile 0.90); Gauss–Newton also
#: converges on subsets of two unrelated textures, at ZNCC 0.18–0.24 with |u| up to 8 voxels.
#: 0.8 keeps every true match at that noise and rejects the false ones by a wide margin.
ZNCC_MIN = 0.8

#: Extra voxels read around a block before the cubic B-spline prefilter: the recursive filter's
#: boundary error decays as 0.268**d with the distance d from the block face (1e-3 at 5).
_SPLINE_PAD = 5
#: Search radius (in voxels of the level) when refining the estimate of a coarser level.
_REFINE_RADIUS = 2
#: Smallest subset half-width used on a coarse pyramid level.
_MIN_COARSE_HALF = 2


class NodeResult(NamedTuple):
    """Result of correlating one node (see :func:`correlate_node`)."""

    #: (3,) float64, displacement ``(u_z, u_y, u_x)`` in voxels (NaN when not measured).
    displacement: np.ndarray
    #: (3, 3) float64 ``∂u_i/∂x_j`` in voxel units when ``affine=True``, else None.
    gradient: np.ndarray | None
    #: Zero-normalised cross-correlation of the subset pair at the solution, in [-1, 1].
    zncc: float
    #: Whether Gauss–Newton met the tolerance within ``max_iter`` iterations.
    converged: bool
    #: Gauss–Newton iterations done (translation and affine stages together).
    iterations: int
    #: Status name, one of :data:`STATUS`.
    status: str

    @property
    def status_code(self):
        """Index of :attr:`status` in :data:`STATUS`."""
        return STATUS.index(self.status)


# --------------------------------------------------------------------------------------------
# blocks, binning, FFT cross-correlation
# --------------------------------------------------------------------------------------------


class _Block:
    """An in-memory block of a volume with its origin (global voxel index of ``data[0,0,0]``).

    NaN (or infinite) voxels are replaced by the mean of the finite ones, so that the FFT
    search and the B-spline prefilter do not spread them over the block; ``nan`` keeps
    where they were (None when there were none), and :meth:`has_nan` tells whether a box
    touches one.
    """

    __slots__ = ("data", "lo", "hi", "nan")

    def __init__(self, data, lo):
        data = np.asarray(data)
        self.nan = None
        if np.issubdtype(data.dtype, np.floating):
            bad = ~np.isfinite(data)
            if bad.any():
                finite = data[~bad]
                data = np.where(bad, finite.mean() if finite.size else 0.0, data)
                self.nan = bad
        self.data = data
        self.lo = np.asarray(lo, dtype=np.int64)
        self.hi = self.lo + np.asarray(data.shape, dtype=np.int64)

    def has_nan(self, lo, hi):
        """True if the box ``[lo, hi)`` (clipped to the block) holds a voxel that was NaN."""
        if self.nan is None:
            return False
        lo, hi = self.clip(np.asarray(lo, np.int64), np.asarray(hi, np.int64))
        if np.any(hi <= lo):
            return False
        s = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, self.lo))
        return bool(self.nan[s].any())

    def clip(self, lo, hi):
        return np.maximum(lo, self.lo), np.minimum(hi, self.hi)

    def contains(self, lo, hi):
        return bool(np.all(lo >= self.lo) and np.all(hi <= self.hi))

    def get(self, lo, hi):
        s = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, self.lo))
        return np.asarray(self.data[s], dtype=np.float64)


def _binned(block, jlo, jhi, anchor, b):
    """Mean over ``b**3`` bins ``[anchor + j b, anchor + (j+1) b)`` for ``jlo <= j < jhi``.

    Bins not wholly inside `block` are dropped; returns ``(binned, first_bin)`` or None.
    """
    jlo = np.maximum(jlo, -((anchor - block.lo) // b))  # ceil((block.lo - anchor) / b)
    jhi = np.minimum(jhi, (block.hi - anchor) // b)
    if np.any(jhi <= jlo):
        return None
    data = block.get(anchor + jlo * b, anchor + jhi * b)
    n = jhi - jlo
    data = data.reshape(n[0], b, n[1], b, n[2], b).mean(axis=(1, 3, 5))
    return data, jlo


def _box_sums(a, w):
    """Sums of `a` over every ``w``-shaped (odd sizes) window wholly inside `a`."""
    m = ndi.uniform_filter(a, size=w, mode="constant")
    n = [s - k + 1 for s, k in zip(a.shape, w)]
    h = [k // 2 for k in w]
    return m[h[0]: h[0] + n[0], h[1]: h[1] + n[1], h[2]: h[2] + n[2]] * float(np.prod(w))


def _ncc_peak(image, template):
    """Integer and parabolic sub-voxel position of the ZNCC peak of `template` in `image`.

    Returns ``(p, frac, value)``: the window starting at ``image[p]`` matches best, ``frac``
    in [-0.5, 0.5] refines it by a 3-point parabola per axis; None if `image` is smaller
    than `template` or flat.
    """
    ts = template.shape
    if any(i < t for i, t in zip(image.shape, ts)):
        return None
    t = template - template.mean()
    tn = math.sqrt(_dot(t, t))
    img = image - image.mean()
    shape = img.shape
    fshape = [sfft.next_fast_len(s, real=True) for s in shape]
    corr = sfft.irfftn(sfft.rfftn(img, fshape) * np.conj(sfft.rfftn(t, fshape)), fshape)
    n = tuple(s - w + 1 for s, w in zip(shape, ts))
    corr = corr[: n[0], : n[1], : n[2]]
    s1 = _box_sums(img, ts)
    s2 = _box_sums(img * img, ts)
    var = np.maximum(s2 - s1 * s1 / t.size, 0.0)
    den = np.sqrt(var) * tn
    ok = den > 1e-12 * max(tn, 1e-300) * math.sqrt(t.size)
    if not np.any(ok) or tn == 0.0:
        return None
    ncc = np.where(ok, corr / np.where(ok, den, 1.0), -np.inf)
    p = np.array(np.unravel_index(int(np.argmax(ncc)), ncc.shape), dtype=np.int64)
    val = float(ncc[tuple(p)])
    frac = np.zeros(3)
    for ax in range(3):
        if 0 < p[ax] < n[ax] - 1:
            lo, hi = p.copy(), p.copy()
            lo[ax] -= 1
            hi[ax] += 1
            a, c = ncc[tuple(lo)], ncc[tuple(hi)]
            curv = a - 2.0 * val + c
            if np.isfinite(curv) and curv < 0:
                frac[ax] = np.clip(0.5 * (a - c) / curv, -0.5, 0.5)
    return p, frac, val


# --------------------------------------------------------------------------------------------
# B-spline interpolation
# --------------------------------------------------------------------------------------------


def _coef_block(block, center, half, order):
    """B-spline coefficients of `block` around integer `center` (± `half` + 2 + pad).

    Returns ``(coef, lo)``: float64 coefficients and their global origin, or None if the
    block has no voxel there.
    """
    pad = _SPLINE_PAD if order == 3 else 0
    lo, hi = block.clip(center - half - 2 - pad, center + half + 3 + pad)
    if np.any(hi - lo < 4):
        return None
    data = block.get(lo, hi)
    if order == 3:
        data = ndi.spline_filter(data, order=3, output=np.float64, mode="mirror")
    return data, lo


def _taps(t, order):
    """Interpolation weights at fractional offset ``t`` in [0, 1) and the first tap's offset."""
    if order == 1:
        return (1.0 - t, t), 0
    t2 = t * t
    t3 = t2 * t
    omt = 1.0 - t
    return (omt * omt * omt / 6.0, (4.0 - 6.0 * t2 + 3.0 * t3) / 6.0,
            (1.0 + 3.0 * (t + t2 - t3)) / 6.0, t3 / 6.0), -1


def _eval_shift(coef, start, shape, order):
    """Spline values on the grid ``start + (i, j, k)`` of `shape` (coef index units), or None.

    A translated grid is separable: ``len(taps)`` weighted slices along each axis.
    """
    i0 = np.floor(start).astype(np.int64)
    t = start - i0
    taps, off = [], []
    for ax in range(3):
        w, o = _taps(float(t[ax]), order)
        taps.append(w)
        off.append(i0[ax] + o)
    nt = len(taps[0])
    for ax in range(3):
        if off[ax] < 0 or off[ax] + shape[ax] + nt - 1 > coef.shape[ax]:
            return None
    c = coef[off[0]: off[0] + shape[0] + nt - 1,
             off[1]: off[1] + shape[1] + nt - 1,
             off[2]: off[2] + shape[2] + nt - 1]
    w = taps[0]
    n = shape[0]
    r = w[0] * c[0:n]
    for k in range(1, nt):
        r += w[k] * c[k: k + n]
    w = taps[1]
    n = shape[1]
    s = w[0] * r[:, 0:n]
    for k in range(1, nt):
        s += w[k] * r[:, k: k + n]
    w = taps[2]
    n = shape[2]
    r = w[0] * s[:, :, 0:n]
    for k in range(1, nt):
        r += w[k] * s[:, :, k: k + n]
    return r


def _ref_gradient(block, center, half, order):
    """Gradient ``(3, *subset)`` of the reference's interpolant at the subset's voxels.

    Cubic: exact derivative of the B-spline interpolant at the knots,
    ``(c[i+1] - c[i-1]) / 2`` of the coefficients. Linear: central differences.
    """
    pad = _SPLINE_PAD if order == 3 else 0
    lo, hi = block.clip(center - half - 1 - pad, center + half + 2 + pad)
    data = block.get(lo, hi)
    if order == 3:
        data = ndi.spline_filter(data, order=3, output=np.float64, mode="mirror")
    a = center - half - lo  # first subset voxel in data
    n = 2 * half + 1
    g = np.empty((3, *n))
    for ax in range(3):
        sl_p = [slice(a[i], a[i] + n[i]) for i in range(3)]
        sl_m = list(sl_p)
        sl_p[ax] = slice(a[ax] + 1, a[ax] + 1 + n[ax])
        sl_m[ax] = slice(a[ax] - 1, a[ax] - 1 + n[ax])
        g[ax] = 0.5 * (data[tuple(sl_p)] - data[tuple(sl_m)])
    return g


# --------------------------------------------------------------------------------------------
# Gauss–Newton
# --------------------------------------------------------------------------------------------


def _dot(a, b):
    """Dot product of two same-shape arrays, flattened (einsum: no multithreaded BLAS call,
    which costs more than it saves on these small vectors, and far more on a busy machine)."""
    return float(np.einsum("i,i->", a.ravel(), b.ravel()))


def _zn(g):
    """Zero-mean copy and its norm."""
    g = g - g.mean()
    return g, math.sqrt(_dot(g, g))


def _gn_translation(fn, fnorm, sd, hinv, dblock, center, half, u, order, max_iter, tol):
    """IC-GN on a translation. Returns ``(u, zncc, converged, iterations)``; zncc NaN if lost."""
    shape = fn.shape
    cb = _coef_block(dblock, center + np.rint(u).astype(np.int64), half, order)
    if cb is None:
        return u, np.nan, False, 0
    coef, clo = cb
    converged = False
    it = 0
    while True:
        g = _eval_shift(coef, center - half + u - clo, shape, order)
        if g is None:  # moved off the prefiltered block: rebuild it around the new position
            cb = _coef_block(dblock, center + np.rint(u).astype(np.int64), half, order)
            g = None if cb is None else _eval_shift(cb[0], center - half + u - cb[1], shape, order)
            if g is None:
                return u, np.nan, False, it
            coef, clo = cb
        gn, gnorm = _zn(g)
        if gnorm == 0.0:
            return u, np.nan, False, it
        if converged or it >= max_iter:
            return u, _dot(fn, gn) / (fnorm * gnorm), converged, it
        r = (fnorm / gnorm) * gn - fn
        dp = hinv @ np.einsum("kn,n->k", sd, r.ravel())
        u = u - dp
        it += 1
        converged = bool(math.sqrt(float(dp @ dp)) < tol)


def _gn_affine(fn, fnorm, grad, dblock, center, half, u, order, max_iter, tol):
    """IC-GN on the 12-parameter affine map. Returns ``(u, G, zncc, converged, iterations)``."""
    rel = np.stack(np.meshgrid(*[np.arange(-h, h + 1, dtype=np.float64) for h in half],
                               indexing="ij"), axis=-1).reshape(-1, 3)
    gr = grad.reshape(3, -1).T  # (n, 3)
    sd = np.empty((gr.shape[0], 12))
    sd[:, :3] = gr
    for i in range(3):
        for j in range(3):
            sd[:, 3 + 3 * i + j] = gr[:, i] * rel[:, j]
    hinv = np.linalg.inv(np.einsum("ni,nj->ij", sd, sd))
    scale = float(np.max(half))
    m = np.eye(4)
    m[:3, 3] = u
    fnr = fn.ravel()
    cb = None
    converged = False
    it = 0
    tap_lo, tap_hi = (1, 2) if order == 3 else (0, 1)
    while True:
        pts = np.einsum("nj,ij->ni", rel, m[:3, :3]) + (m[:3, 3] + center)
        for attempt in range(2):
            if cb is not None:
                p = pts - cb[1]
                if np.all(np.floor(p.min(0)) - tap_lo >= 0) and np.all(
                        np.floor(p.max(0)) + tap_hi <= np.asarray(cb[0].shape) - 1):
                    break
            if attempt == 1:
                return m[:3, 3].copy(), m[:3, :3] - np.eye(3), np.nan, False, it
            spread = np.abs(m[:3, :3] - np.eye(3)) @ half  # |G| (x - c) at the corners
            reach = half + np.ceil(spread).astype(np.int64) + 1
            cb = _coef_block(dblock, center + np.rint(m[:3, 3]).astype(np.int64), reach, order)
        g = ndi.map_coordinates(cb[0], (pts - cb[1]).T, order=order, prefilter=False,
                                mode="nearest")
        gn, gnorm = _zn(g)
        if gnorm == 0.0:
            return m[:3, 3].copy(), m[:3, :3] - np.eye(3), np.nan, False, it
        if converged or it >= max_iter:
            zncc = _dot(fnr, gn) / (fnorm * gnorm)
            return m[:3, 3].copy(), m[:3, :3] - np.eye(3), zncc, converged, it
        r = (fnorm / gnorm) * gn - fnr
        dp = hinv @ np.einsum("nk,n->k", sd, r)
        dm = np.eye(4)
        dm[:3, 3] = dp[:3]
        dm[:3, :3] += dp[3:].reshape(3, 3)
        m = m @ np.linalg.inv(dm)
        it += 1
        step = math.sqrt(float(dp[:3] @ dp[:3])) + scale * float(np.abs(dp[3:]).max())
        converged = step < tol


# --------------------------------------------------------------------------------------------
# one node, on in-memory blocks
# --------------------------------------------------------------------------------------------


def _extents(half, search, levels, order, affine):
    """Half-extents (voxels, per axis) of the reference and deformed blocks a node needs."""
    pad = _SPLINE_PAD if order == 3 else 0
    ref = half + 1 + pad
    dfm = half + 3 + pad + search + (2 * (2 ** levels) if levels else 0)
    if affine:
        dfm = dfm + 2
    for lev in range(1, levels + 1):
        b = 2 ** lev
        hl = np.maximum(half // b, _MIN_COARSE_HALF)
        ref = np.maximum(ref, (hl + 1) * b)
        r = math.ceil(search / b) if lev == levels else _REFINE_RADIUS + 1
        dfm = np.maximum(dfm, (hl + r + 2) * b + search)
    return ref.astype(np.int64), dfm.astype(np.int64)


def _failed(code, it=0):
    return NodeResult(np.full(3, np.nan), None, np.nan, False, it, STATUS[code])


def _solve(rblock, dblock, center, half, u0, *, order, affine, max_iter, tol, search, levels,
           min_std, zncc_min=ZNCC_MIN):
    """Correlate one node on in-memory blocks (see :func:`correlate_node`)."""
    center = np.asarray(center, dtype=np.int64)
    if rblock.has_nan(center - half, center + half + 1):
        return _failed(_NAN)
    f = rblock.get(center - half, center + half + 1)
    fn, fnorm = _zn(f)
    if fnorm <= min_std * math.sqrt(f.size) or fnorm == 0.0:
        return _failed(_FEATURELESS)
    u = np.array(u0, dtype=np.float64)
    if search > 0:
        for lev in range(levels, 0, -1):
            b = 2 ** lev
            hl = np.maximum(half // b, _MIN_COARSE_HALF)
            tb = _binned(rblock, -hl, hl + 1, center, b)
            if tb is None or np.any(np.asarray(tb[0].shape) != 2 * hl + 1):
                continue
            r = math.ceil(search / b) if lev == levels else _REFINE_RADIUS
            d0 = np.rint(u / b).astype(np.int64)
            ib = _binned(dblock, d0 - hl - r, d0 + hl + r + 1, center, b)
            peak = None if ib is None else _ncc_peak(ib[0], tb[0])
            if peak is None:
                continue
            p, frac, _ = peak
            u = (ib[1] + p + hl + frac) * b
        r = search if levels == 0 else _REFINE_RADIUS
        d0 = np.rint(u).astype(np.int64)
        lo, hi = dblock.clip(center + d0 - half - r, center + d0 + half + r + 1)
        peak = None if np.any(hi <= lo) else _ncc_peak(dblock.get(lo, hi), f)
        if peak is None:
            return _failed(_NO_CONV)
        p, frac, _ = peak
        u = (lo + p - (center - half)) + frac
    grad = _ref_gradient(rblock, center, half, order)
    sd = grad.reshape(3, -1)
    hinv = np.linalg.inv(np.einsum("in,jn->ij", sd, sd))
    u, zncc, conv, it = _gn_translation(fn, fnorm, sd, hinv, dblock, center, half, u, order,
                                        max_iter, tol)
    gmat = None
    if affine and np.isfinite(zncc):
        u, gmat, zncc, conv, it2 = _gn_affine(fn, fnorm, grad, dblock, center, half, u, order,
                                              max_iter, tol)
        it += it2
    if np.all(np.isfinite(u)):
        # the voxels of the deformed subset where it was found
        lo = np.floor(center + u - half).astype(np.int64)
        hi = np.ceil(center + u + half).astype(np.int64) + 1
        if dblock.has_nan(lo, hi):
            return NodeResult(np.full(3, np.nan), None, np.nan, False, it, STATUS[_NAN])
    if not np.isfinite(zncc) or not conv:
        return NodeResult(u if np.isfinite(zncc) else np.full(3, np.nan), gmat, zncc, False, it,
                          STATUS[_NO_CONV])
    if zncc < zncc_min:
        return NodeResult(u, gmat, zncc, True, it, STATUS[_LOW_CORR])
    return NodeResult(u, gmat, zncc, True, it, STATUS[_OK])


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _is_dask(arr):
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(arr, da.Array)


class _Lazy:
    """A region of an array-like (zarr, h5py) read when the task runs."""

    __slots__ = ("arr", "sl")

    def __init__(self, arr, sl):
        self.arr = arr
        self.sl = sl

    def read(self):
        return np.asarray(self.arr[self.sl])


def _region(arr, lo, hi):
    """The region ``[lo, hi)`` of `arr`: a view (NumPy), a lazy slice (dask) or a reader."""
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    if isinstance(arr, np.ndarray) or _is_dask(arr):
        return arr[sl]
    return _Lazy(arr, sl)


def _materialize(x):
    if isinstance(x, _Lazy):
        return x.read()
    return np.asarray(x)


def _check_volume(arr, name):
    if not hasattr(arr, "shape") or not hasattr(arr, "__getitem__"):
        arr = np.asarray(arr)
    if len(arr.shape) != 3:
        raise ValueError(f"{name} must be a (z, y, x) volume, got shape {tuple(arr.shape)}")
    return arr


def _check_order(order):
    if order not in (1, 3):
        raise ValueError(f"order must be 1 (linear) or 3 (cubic B-spline), got {order!r}")


def _half_width(half_width):
    h = np.asarray(half_width, dtype=np.int64)
    if h.ndim == 0:
        h = np.repeat(h, 3)
    if h.shape != (3,) or np.any(h < 1):
        raise ValueError(f"half_width must be a positive int or (z, y, x) triple, got {half_width!r}")
    return h


def _check_zncc(value):
    value = float(value)
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"zncc_min must lie in [-1, 1], got {value!r}")
    return value


def _check_nonneg(value, name, integer=False):
    if integer:
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        return int(value)
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# public: one node
# --------------------------------------------------------------------------------------------


def correlate_node(ref, deformed, center, half_width, *, u0=None, order=3, affine=False,
                   max_iter=50, tol=1e-4, search_voxels=8, pyramid_levels=0, min_std=0.0,
                   zncc_min=ZNCC_MIN):
    """Measure the displacement of one subset between a reference and a deformed volume.

    An integer start is found by zero-normalised cross-correlation (ZNCC, via FFT) of the
    reference subset against a search region of the deformed volume (coarse to fine over
    `pyramid_levels` volumes binned by 2 per level), then refined to sub-voxel precision by
    inverse-compositional Gauss–Newton (IC-GN) on the ZNSSD criterion, with B-spline
    interpolation of the deformed volume (``scipy.ndimage.spline_filter`` once per node,
    then separable B-spline taps for a translation, ``map_coordinates(prefilter=False)`` for
    an affine map). Only the subvolumes around the node are read.

    Parameters
    ----------
    ref, deformed : (Z, Y, X) array_like
        Reference and deformed volumes ``(z, y, x)`` (NumPy, dask or zarr arrays; any real
        dtype). Their grey levels may differ by an offset and a scale factor.
    center : (3,) sequence of int
        Node centre ``(z, y, x)``, voxel indices in the reference.
    half_width : int or (3,) sequence of int
        Subset half-width in voxels: the subset is ``2 * half_width + 1`` voxels per axis and
        must lie inside `ref`.
    u0 : (3,) sequence of float, optional
        Initial guess of the displacement in voxels (default 0); the search is centred on it.
    order : {3, 1}, default 3
        B-spline order of the interpolation: 3 (cubic, ~0.001 voxel bias on speckle) or 1
        (trilinear, faster, ~0.01 voxel bias).
    affine : bool, default False
        Fit the 12-parameter affine map (displacement and its gradient) after the
        translation. Without it, the subset is translated rigidly and the displacement is the
        subset's mean displacement.
    max_iter : int, default 50
        Maximum Gauss–Newton iterations per stage.
    tol : float, default 1e-4
        Convergence threshold on the Gauss–Newton step, in voxels (for the affine map: the
        step of the translation plus the largest step of the gradient times the half-width).
    search_voxels : int, default 8
        Radius of the integer ZNCC search around `u0`, in voxels; 0 skips the search and
        starts Gauss–Newton at `u0`.
    pyramid_levels : int, default 0
        Number of coarse levels (volumes binned by 2, 4, ...); the search radius on the
        coarsest is ``ceil(search_voxels / 2**levels)``, refined by ±2 voxels per finer level.
    min_std : float, default 0
        Subsets whose standard deviation (grey-value units) is at or below this are
        ``"featureless"`` and skipped.
    zncc_min : float, default :data:`ZNCC_MIN` (0.8)
        A converged node whose ZNCC at the solution is below this is
        ``"low_correlation"``: Gauss–Newton converges on unrelated subsets too.

    Returns
    -------
    NodeResult
        ``displacement`` (3,) float64 in voxels, ordered ``(z, y, x)``, such that
        ``deformed(center + displacement) ≈ ref(center)``; ``gradient`` (3, 3) float64
        ``∂u_i/∂x_j`` if `affine`, else None; ``zncc``; ``converged``; ``iterations``;
        ``status`` (``"ok"``, ``"featureless"``, ``"no_convergence"``,
        ``"low_correlation"``, or ``"nan"`` when the reference subset or the deformed
        subset where it was found holds a NaN voxel) and ``status_code``. NaN voxels
        elsewhere in the regions read are replaced by the regions' mean and do not affect
        the node.

    Raises
    ------
    ShapeMismatchError
        If `ref` and `deformed` differ in shape.
    ValueError
        If a volume is not 3-D, the subset does not fit in `ref` around `center`, or an
        option is out of range.

    See Also
    --------
    dvc : all the nodes of a grid, in parallel, with outlier detection.

    Notes
    -----
    The displacement maps the reference to the deformed volume: a material point at ``x``
    in the reference is at ``x + u`` in the deformed one. IC-GN minimises

    .. math:: C(p) = \\sum_x \\left(\\frac{f(W(x;\\Delta p)) - \\bar f}{\\Delta f}
              - \\frac{g(W(x;p)) - \\bar g}{\\Delta g}\\right)^2

    with the warp updated as ``W(p) ← W(p) ∘ W(Δp)^{-1}``; the Hessian uses only the
    reference gradient and is inverted once.

    References
    ----------
    .. [1] B. Pan, K. Li, W. Tong, "Fast, robust and accurate digital image correlation
       calculation without redundant computations", Exp. Mech. 53, 1277–1289 (2013),
       :doi:`10.1007/s11340-013-9717-6`.
    .. [2] S. Baker, I. Matthews, "Lucas-Kanade 20 years on: a unifying framework",
       Int. J. Comput. Vis. 56, 221–255 (2004), :doi:`10.1023/B:VISI.0000011205.11775.fd`.
    .. [3] B. K. Bay, T. S. Smith, D. P. Fyhrie, M. Saad, "Digital volume correlation:
       three-dimensional strain mapping using X-ray tomography", Exp. Mech. 39, 217–226
       (1999), :doi:`10.1007/BF02323555`.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage as ndi
    >>> rng = np.random.default_rng(0)
    >>> ref = ndi.gaussian_filter(rng.normal(size=(48, 48, 48)), 1.5)
    >>> deformed = np.roll(ref, (2, 0, -1), axis=(0, 1, 2))   # deformed(x + u) = ref(x)
    >>> res = correlate_node(ref, deformed, (24, 24, 24), 8)
    >>> (np.round(res.displacement, 3) + 0.0).tolist(), res.status
    ([2.0, 0.0, -1.0], 'ok')
    """
    ref = _check_volume(ref, "ref")
    deformed = _check_volume(deformed, "deformed")
    if tuple(ref.shape) != tuple(deformed.shape):
        raise ShapeMismatchError(
            f"ref shape {tuple(ref.shape)} does not match deformed {tuple(deformed.shape)}")
    _check_order(order)
    half = _half_width(half_width)
    center = np.asarray(center)
    if center.shape != (3,) or not np.all(np.equal(np.mod(center, 1), 0)):
        raise ValueError(f"center must be a (z, y, x) triple of voxel indices, got {center!r}")
    center = center.astype(np.int64)
    shape = np.asarray(ref.shape, dtype=np.int64)
    if np.any(center - half < 0) or np.any(center + half >= shape):
        raise ValueError(f"the subset of half_width {half.tolist()} around center "
                         f"{center.tolist()} does not fit in ref of shape {tuple(ref.shape)}")
    u0 = np.zeros(3) if u0 is None else np.asarray(u0, dtype=np.float64)
    if u0.shape != (3,) or not np.all(np.isfinite(u0)):
        raise ValueError(f"u0 must be a finite (z, y, x) triple, got {u0!r}")
    search = _check_nonneg(search_voxels, "search_voxels", integer=True)
    levels = _check_nonneg(pyramid_levels, "pyramid_levels", integer=True)
    max_iter = _check_nonneg(max_iter, "max_iter", integer=True)
    tol = _check_nonneg(tol, "tol")
    min_std = _check_nonneg(min_std, "min_std")
    zncc_min = _check_zncc(zncc_min)
    ext_r, ext_d = _extents(half, search, levels, order, affine)
    rlo, rhi = np.maximum(center - ext_r, 0), np.minimum(center + ext_r + 1, shape)
    dc = center + np.rint(u0).astype(np.int64)
    dlo, dhi = np.maximum(dc - ext_d, 0), np.minimum(dc + ext_d + 1, shape)
    if np.any(dhi <= dlo):
        return _failed(_NO_CONV)
    rblock = _Block(_materialize(_region(ref, rlo, rhi)), rlo)
    dblock = _Block(_materialize(_region(deformed, dlo, dhi)), dlo)
    return _solve(rblock, dblock, center, half, u0, order=order, affine=affine,
                  max_iter=max_iter, tol=tol, search=search, levels=levels, min_std=min_std,
                  zncc_min=zncc_min)


# --------------------------------------------------------------------------------------------
# public: the grid
# --------------------------------------------------------------------------------------------


def _run_batch(rdata, rlo, ddata, dlo, mdata, mlo, centers, u0, half, mask_fraction, opts):
    """Correlate a batch of nodes on the blocks covering them; arrays, one row per node."""
    rblock = _Block(_materialize(rdata), rlo)
    dblock = _Block(_materialize(ddata), dlo)
    mblock = None if mdata is None else _Block(_materialize(mdata), mlo)
    n = len(centers)
    disp = np.full((n, 3), np.nan)
    grad = np.full((n, 9), np.nan)
    zncc = np.full(n, np.nan)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    for i, c in enumerate(centers):
        if mblock is not None:
            m = mblock.get(c - half, c + half + 1)
            if m.mean() < mask_fraction:
                status[i] = _MASKED
                continue
        res = _solve(rblock, dblock, c, half, u0, **opts)
        disp[i] = res.displacement
        if res.gradient is not None:
            grad[i] = res.gradient.ravel()
        zncc[i] = res.zncc
        conv[i] = res.converged
        iters[i] = res.iterations
        status[i] = res.status_code
    return disp, grad, zncc, conv, iters, status


def _affine_trend(u, valid):
    """Robust least-squares affine trend ``u ≈ a + B i`` of a grid field over `valid` nodes.

    One least-squares fit, then a refit without the nodes whose residual exceeds three
    scaled median absolute deviations; returns the trend on the whole grid (zeros if fewer
    than 8 valid nodes).
    """
    idx = np.indices(valid.shape, dtype=np.float64).reshape(3, -1).T
    design = np.column_stack([np.ones(len(idx)), idx])
    keep = valid.ravel().copy()
    flat = u.reshape(-1, 3)
    if keep.sum() < 8:
        return np.zeros_like(u)
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], flat[keep], rcond=None)
        res = np.linalg.norm(flat - design @ coef, axis=1)
        r_valid = res[valid.ravel()]
        mad = np.median(np.abs(r_valid - np.median(r_valid)))
        new_keep = valid.ravel() & (res <= np.median(r_valid) + 3.0 * 1.4826 * mad + 1e-12)
        if new_keep.sum() < 8 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return (design @ coef).reshape(u.shape)


def _universal_outliers(u, valid, *, threshold, eps):
    """Normalised median test on a node grid, after removing the field's affine trend.

    Parameters
    ----------
    u : (nz, ny, nx, 3) ndarray
        Displacements on the node grid (voxels).
    valid : (nz, ny, nx) ndarray of bool
        Nodes that were measured; only those are tested and used as neighbours.

    Returns
    -------
    (nz, ny, nx) ndarray of bool
        True where, for some component of ``v = u - trend``, ``|v - median(neighbours)| /
        (median(|neighbours - median(neighbours)|) + eps) > threshold`` over the valid nodes
        of the 3 × 3 × 3 neighbourhood (at least 3 needed). Removing the robust affine trend
        first keeps a uniform strain from tripping the test where the neighbourhood is
        one-sided (grid faces, next to masked nodes).
    """
    v = u - _affine_trend(u, valid)
    v = np.where(valid[..., None], v, np.nan)
    pad = np.pad(v, ((1, 1), (1, 1), (1, 1), (0, 0)), constant_values=np.nan)
    win = np.lib.stride_tricks.sliding_window_view(pad, (3, 3, 3), axis=(0, 1, 2))
    # win: (nz, ny, nx, 3 comps, 3, 3, 3) -> neighbours without the centre
    nb = win.reshape(*win.shape[:4], 27)
    nb = np.delete(nb, 13, axis=-1)
    count = np.sum(np.isfinite(nb[..., 0, :]), axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods
        med = np.nanmedian(nb, axis=-1)
        rm = np.nanmedian(np.abs(nb - med[..., None]), axis=-1)
        r0 = np.abs(v - med) / (rm + eps)
    bad = np.any(r0 > threshold, axis=-1)
    return bad & valid & (count >= 3)


def _batches(grid, batch_size):
    """Tiles of the node grid (lists of node numbers) holding at most `batch_size` nodes."""
    nz, ny, nx = grid.grid_shape
    tx = min(nx, batch_size)
    ty = min(ny, max(1, batch_size // tx))
    tz = min(nz, max(1, batch_size // (tx * ty)))
    num = np.arange(grid.n_nodes).reshape(grid.grid_shape)
    out = []
    for z in range(0, nz, tz):
        for y in range(0, ny, ty):
            for x in range(0, nx, tx):
                out.append(num[z:z + tz, y:y + ty, x:x + tx].ravel())
    return out


def dvc(ref, deformed, voxel_size_um, *, node_spacing_um=None, subset_size_um=None,
        margin_voxels=0, grid=None, mask=None, mask_fraction=0.5, u0=None, search_voxels=8,
        pyramid_levels=0, affine=False, order=3, min_std=0.0, max_iter=50, tol=1e-4,
        outlier_threshold=2.0, outlier_eps=0.1, zncc_min=ZNCC_MIN, batch_size=None, scheduler=None,
        client=None):
    """Local digital volume correlation of two states on a regular grid of subsets.

    The reference volume is cut into subsets around the nodes of a regular grid (e.g. 50 µm
    cuboids: ``node_spacing_um=50``); each subset is followed into the deformed volume by
    :func:`correlate_node` (FFT ZNCC integer start, optionally coarse to fine, then
    inverse-compositional Gauss–Newton on ZNSSD with B-spline interpolation). Nodes run in
    parallel over dask in batches of neighbouring nodes; a batch reads only the region of
    the volumes its subsets and their search margins cover, so NumPy, dask and zarr
    volumes larger than memory are handled out of core.

    Parameters
    ----------
    ref, deformed : (Z, Y, X) array_like
        Reference and deformed volumes ``(z, y, x)``: NumPy, dask or zarr (or h5py) arrays,
        any real dtype. Grey levels may differ by an offset and a scale factor.
    voxel_size_um : float or (3,) sequence of float
        Voxel size in µm (e.g. 0.88), one value or one per axis ``(z, y, x)``.
    node_spacing_um : float or (3,) sequence of float
        Node spacing in µm (required unless `grid` is given).
    subset_size_um : float or (3,) sequence of float, optional
        Subset edge in µm; default `node_spacing_um` (non-overlapping cuboids).
    margin_voxels : int or (3,) sequence of int, default 0
        Voxels kept free between the subsets and the volume's faces (see :func:`node_grid`).
        Subsets within ~5 voxels of a face are measured with a slightly less accurate
        B-spline prefilter there (the volume is mirrored beyond its faces).
    grid : NodeGrid, optional
        A grid from :func:`node_grid` to use instead of `node_spacing_um`/`subset_size_um`/
        `margin_voxels`.
    mask : (Z, Y, X) array_like of bool, optional
        True where there is material to correlate (NumPy, dask or zarr). Nodes whose subset
        holds a fraction of True below `mask_fraction` are ``"masked"`` and skipped.
    mask_fraction : float, default 0.5
        Minimum fraction of the subset inside `mask`.
    u0 : (3,) sequence of float, optional
        Global initial guess of the displacement, in voxels (e.g. a known rigid motion).
    search_voxels : int, default 8
        Integer search radius around `u0`, in voxels (0: no search, Gauss–Newton from `u0`).
    pyramid_levels : int, default 0
        Coarse levels for large motions: volumes binned by 2 per level, the search done on
        the coarsest and refined level by level (see :func:`correlate_node`).
    affine : bool, default False
        Also fit each subset's displacement gradient (12-parameter affine map).
    order : {3, 1}, default 3
        B-spline interpolation order (cubic or trilinear).
    min_std : float, default 0
        Subsets whose standard deviation (grey-value units) is at or below this are
        ``"featureless"`` and skipped (uniform subsets always are).
    max_iter : int, default 50
        Gauss–Newton iteration limit per stage.
    tol : float, default 1e-4
        Gauss–Newton convergence threshold, voxels.
    outlier_threshold : float, default 2.0
        Threshold of the normalised median test (universal outlier detection, applied to
        the field less its robust affine trend over the grid); ``"ok"`` nodes above it
        become ``"outlier"`` (their displacement is kept). 0 disables the test.
    outlier_eps : float, default 0.1
        Noise level (voxels) added to the median residual of the test.
    zncc_min : float, default :data:`ZNCC_MIN` (0.8)
        Converged nodes whose ZNCC is below this are ``"low_correlation"`` (their
        displacement is kept, but not used as a neighbour by the outlier test).
    batch_size : int, optional
        Nodes per dask task (default: enough tasks for 4 per core, at most 64 nodes each).
    scheduler : str, optional
        dask scheduler (``"threads"``, ``"processes"``, ``"synchronous"``); default dask's.
    client : distributed.Client, optional
        Run on a dask.distributed cluster instead.

    Returns
    -------
    pandas.DataFrame
        One row per node, x fastest: ``node, iz, iy, ix`` (grid index), ``node_z, node_y,
        node_x`` (node centre, voxels), ``node_z_um, node_y_um, node_x_um``, ``u_z, u_y, u_x``
        (displacement, voxels),
        ``u_z_um, u_y_um, u_x_um`` (µm), with `affine` also ``grad_zz, grad_zy, ...,
        grad_xx`` (``∂u_i/∂x_j``, dimensionless, physical lengths), then ``zncc``,
        ``converged``, ``iterations`` and ``status`` (``"ok"``, ``"masked"``,
        ``"featureless"``, ``"no_convergence"``, ``"outlier"``, ``"low_correlation"``,
        ``"nan"``). Displacements are NaN for masked, featureless and NaN nodes. ``attrs``
        records the grid, the convention, the parameters and ``n_nan_nodes``.

    Warns
    -----
    TomopipeWarning
        When NaN voxels cost nodes: the warning counts them. A NaN voxel costs only the nodes
        whose reference subset, or deformed subset where it was found, holds it; elsewhere NaN
        voxels are replaced by the mean of the region read.

    Raises
    ------
    ShapeMismatchError
        If `ref`, `deformed` and `mask` differ in shape.
    ValueError
        If a volume is not 3-D, the subsets do not fit, or an option is out of range.

    See Also
    --------
    correlate_node, node_grid

    Notes
    -----
    Displacements map the reference to the deformed volume:
    ``deformed(x + u(x)) ≈ reference(x)``, components ``(z, y, x)``. A translation-only
    subset measures the mean displacement over the subset (the centre value for a linear
    field).

    References
    ----------
    .. [1] B. K. Bay, T. S. Smith, D. P. Fyhrie, M. Saad, "Digital volume correlation",
       Exp. Mech. 39, 217–226 (1999), :doi:`10.1007/BF02323555`.
    .. [2] B. Pan, K. Li, W. Tong, "Fast, robust and accurate digital image correlation
       calculation without redundant computations", Exp. Mech. 53, 1277–1289 (2013),
       :doi:`10.1007/s11340-013-9717-6`.
    .. [3] J. Westerweel, F. Scarano, "Universal outlier detection for PIV data",
       Exp. Fluids 39, 1096–1100 (2005), :doi:`10.1007/s00348-005-0016-6`.
    .. [4] W. Zhang et al., "Unveiling the mechanism of the CuS cathode in all-solid-state
       Li batteries", Adv. Energy Mater. (2022) — DVC on 50 µm cuboids between states.
    """
    import dask
    import pandas as pd

    ref = _check_volume(ref, "ref")
    deformed = _check_volume(deformed, "deformed")
    shape = tuple(int(s) for s in ref.shape)
    if tuple(deformed.shape) != shape:
        raise ShapeMismatchError(f"ref shape {shape} does not match deformed {tuple(deformed.shape)}")
    if mask is not None:
        mask = _check_volume(mask, "mask")
        if tuple(mask.shape) != shape:
            raise ShapeMismatchError(f"mask shape {tuple(mask.shape)} does not match ref {shape}")
    _check_order(order)
    search = _check_nonneg(search_voxels, "search_voxels", integer=True)
    levels = _check_nonneg(pyramid_levels, "pyramid_levels", integer=True)
    max_iter = _check_nonneg(max_iter, "max_iter", integer=True)
    tol = _check_nonneg(tol, "tol")
    min_std = _check_nonneg(min_std, "min_std")
    mask_fraction = _check_nonneg(mask_fraction, "mask_fraction")
    outlier_threshold = _check_nonneg(outlier_threshold, "outlier_threshold")
    outlier_eps = _check_nonneg(outlier_eps, "outlier_eps")
    zncc_min = _check_zncc(zncc_min)
    u0 = np.zeros(3) if u0 is None else np.asarray(u0, dtype=np.float64)
    if u0.shape != (3,) or not np.all(np.isfinite(u0)):
        raise ValueError(f"u0 must be a finite (z, y, x) triple in voxels, got {u0!r}")
    if grid is None:
        if node_spacing_um is None:
            raise ValueError("node_spacing_um is required (or pass grid=node_grid(...))")
        grid = node_grid(shape, voxel_size_um, node_spacing_um=node_spacing_um,
                         subset_size_um=subset_size_um, margin_voxels=margin_voxels)
    elif not isinstance(grid, NodeGrid):
        raise ValueError(f"grid must be a NodeGrid from node_grid(), got {type(grid).__name__}")
    elif tuple(grid.shape) != shape:
        raise ShapeMismatchError(f"grid was laid out for shape {tuple(grid.shape)}, not ref {shape}")
    vs = grid.voxel_size_um
    half = grid.half_width
    ext_r, ext_d = _extents(half, search, levels, order, affine)
    n = grid.n_nodes
    if batch_size is None:
        batch_size = int(np.clip(math.ceil(n / (4 * (os.cpu_count() or 1))), 1, 64))
    elif int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    opts = dict(order=order, affine=affine, max_iter=max_iter, tol=tol, search=search,
                levels=levels, min_std=min_std, zncc_min=zncc_min)
    shp = np.asarray(shape, dtype=np.int64)
    d_off = np.rint(u0).astype(np.int64)
    parts = []
    tasks = []
    for nodes in _batches(grid, int(batch_size)):
        c = grid.centers[nodes]
        rlo = np.maximum(c.min(0) - ext_r, 0)
        rhi = np.minimum(c.max(0) + ext_r + 1, shp)
        dlo = np.clip(c.min(0) + d_off - ext_d, 0, shp)
        dhi = np.clip(c.max(0) + d_off + ext_d + 1, 0, shp)
        dlo = np.minimum(dlo, dhi - 1).clip(0)
        if mask is not None:
            mlo, mhi = c.min(0) - half, c.max(0) + half + 1
            mreg = _region(mask, mlo, mhi)
        else:
            mlo, mreg = None, None
        tasks.append(dask.delayed(_run_batch, pure=False)(
            _region(ref, rlo, rhi), rlo, _region(deformed, dlo, dhi), dlo, mreg, mlo,
            c, u0, half, mask_fraction, opts))
        parts.append(nodes)
    if client is not None:
        results = client.gather(client.compute(tasks))
    else:
        results = dask.compute(*tasks, scheduler=scheduler)

    disp = np.full((n, 3), np.nan)
    grad = np.full((n, 9), np.nan)
    zncc = np.full(n, np.nan)
    conv = np.zeros(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    for nodes, (d, g, z, cv, it, st) in zip(parts, results):
        disp[nodes], grad[nodes], zncc[nodes] = d, g, z
        conv[nodes], iters[nodes], status[nodes] = cv, it, st

    ok = (status == _OK).reshape(grid.grid_shape)
    if outlier_threshold > 0 and n > 1:
        bad = _universal_outliers(disp.reshape(*grid.grid_shape, 3), ok,
                                  threshold=outlier_threshold, eps=outlier_eps)
        status[bad.ravel()] = _OUTLIER

    df = grid.to_frame()
    for k, ax in enumerate("zyx"):
        df[f"u_{ax}"] = disp[:, k]
    for k, ax in enumerate("zyx"):
        df[f"u_{ax}_um"] = disp[:, k] * vs[k]
    if affine:
        for i, a in enumerate("zyx"):
            for j, b in enumerate("zyx"):
                df[f"grad_{a}{b}"] = grad[:, 3 * i + j] * vs[i] / vs[j]
    df["zncc"] = zncc
    df["converged"] = conv
    df["iterations"] = iters
    df["status"] = pd.Categorical.from_codes(status.astype(np.int64), categories=list(STATUS))
    n_nan = int((status == _NAN).sum())
    if n_nan:
        from ..errors import TomopipeWarning

        warnings.warn(f"dvc: {n_nan} of {n} nodes hold NaN voxels in their subsets (status 'nan', not measured)",
                      TomopipeWarning, stacklevel=2)
    df.attrs.update(grid.describe())
    df.attrs.update({
        "convention": "deformed(x + u(x)) = reference(x); components (z, y, x)",
        "displacement_units": "voxels (u_*), um (u_*_um)",
        "order": int(order), "affine": bool(affine), "search_voxels": search,
        "pyramid_levels": levels, "min_std": min_std, "mask_fraction": mask_fraction,
        "max_iter": max_iter, "tol_voxels": tol, "outlier_threshold": outlier_threshold,
        "outlier_eps_voxels": outlier_eps, "u0_voxels": [float(v) for v in u0],
        "zncc_min": zncc_min, "n_nan_nodes": n_nan,
    })
    return df
