"""Filtered back-projection through the Fourier-slice theorem, with finufft as gridder.

Work per pair of slices (two real slices share one complex transform, gridrec's trick),
on blocks of angles that stay in cache:

1. the two detector rows packed as ``row_a + i·row_b``, zero-padded to ``n_pad`` columns
   (≥ 1.5 × the width), FFT;
2. multiply by the filter and by the phase that moves the rotation axis to ``s = 0``;
3. inverse FFT, keep the ``n_win`` samples ``|s| < n_win/2`` that the image reads, FFT of
   length ``n_win``, multiply by the angle weights, the image-grid offset and the
   pixel-mean factor (still in cache);
4. gather the polar samples into the tile order of the points;
5. type-1 NUFFT of the polar samples onto the ``N × N`` image: finufft spreads them onto a
   grid about 1.15 N wide, SciPy transforms it (the second pass only over the ``N`` rows
   that hold modes, block by block), and the modes are divided by the kernel's Fourier
   transform (deapodization) while the block is in cache.

Everything that depends only on the geometry — filter, weights, the polar points and the
finufft plans with their sorted points — is built once and cached, so that the chunks of a
volume (and repeated calls) reuse it. The pairs of a call run on ``nthreads`` worker threads,
each with its own single-threaded plan, so a slice's result does not depend on the number
of threads or on how rows are chunked (given the same pairing of rows).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import scipy.fft

from .._validate import check_ndim, check_theta_radians
from ..errors import ShapeMismatchError
from ._filters import FILTER_NAMES, fbp_filter

__all__ = ["recon", "angle_weights"]

_ALGORITHMS = ("gridrec", "fbp")

#: Oversampling of the spreading grid (finufft's ``upsampfac``) for ``eps >= 1e-4``: the
#: grid is 1.15 N wide. Spreading costs about the same for kernels of 5–8 points, so the
#: smallest grid finufft supports is the fastest (``benchmarks/bench_recon.py --sweep``).
#: Below ``eps = 1e-4`` single precision needs a wider grid (finufft caps the kernel at 8
#: points there), so 1.5 is used.
_UPSAMPFAC = 1.15
#: Zero padding of a detector row before the ramp filter: ``n_pad >= _PAD_FACTOR · n_cols``.
_PAD_FACTOR = 1.5
#: Bytes of one block of padded rows (the row transforms run block by block).
_ROW_BLOCK_BYTES = 2 * 2**20
#: Geometries (angles, sizes, filter, accuracy) kept with their plans.
_CACHE_SIZE = 2


def angle_weights(theta):
    """Quadrature weights ``Δθ`` of projection angles for back-projection over [0, π).

    Parameters
    ----------
    theta : (n_angles,) array_like
        Projection angles in radians, any order, any range (a 0–2π scan counts each direction
        twice and gets half weights).

    Returns
    -------
    w : (n_angles,) ndarray of float64
        Weights summing to π: half the distance, modulo π, to the neighbouring angles.
    """
    theta = np.asarray(theta, dtype=np.float64)
    n = theta.size
    if n == 1:
        return np.array([np.pi])
    t = np.mod(theta, np.pi)
    order = np.argsort(t, kind="stable")
    ts = t[order]
    nxt = np.roll(ts, -1)
    nxt[-1] += np.pi
    prv = np.roll(ts, 1)
    prv[0] -= np.pi
    w = np.empty(n)
    w[order] = 0.5 * (nxt - prv)
    return w


def _upsampfac(eps):
    """Grid oversampling for accuracy `eps` (see :data:`_UPSAMPFAC`)."""
    return _UPSAMPFAC if eps >= 1e-4 else 1.5


def _pad_length(n_cols, pad_factor):
    """Even FFT-friendly length ``>= pad_factor · n_cols`` (at least 64)."""
    n = max(64, int(np.ceil(pad_factor * n_cols)))
    n = scipy.fft.next_fast_len(n, real=True)
    while n % 2:
        n = scipy.fft.next_fast_len(n + 1, real=True)
    return n


class _Setup:
    """What a reconstruction needs besides the data, for one geometry; holds a pool of plans.

    Attributes are read by ``benchmarks/bench_recon.py`` for its per-step profile.
    """

    def __init__(self, theta, n_cols, n_out, filter_name, filter_par, eps, pixel_average,
                 circle, upsampfac=_UPSAMPFAC, pad_factor=_PAD_FACTOR, tile_order=True):
        self.n_angles = theta.size
        self.n_cols, self.n_out = n_cols, n_out
        self.eps, self.upsampfac = max(float(eps), 1e-6), float(upsampfac)
        self.n_pad = _pad_length(n_cols, pad_factor)
        # window of the filtered projection that the back-projection reads: the detector
        # coordinates |s| < N/2 of the inscribed circle (circle=True) or |s| < N/sqrt(2) of
        # the whole square, plus a margin; periodic beyond it, so pixels outside that region
        # see wrap.
        reach = n_out if circle else int(np.ceil(n_out * np.sqrt(2.0)))
        self.n_win = n_win = scipy.fft.next_fast_len(reach + 16)
        h = fbp_filter(filter_name, self.n_pad, filter_par)
        h[self.n_pad // 2] = 0.0  # Nyquist bin has no Hermitian partner: drop it
        self.filter = h  # FFT order, real and even
        self.freq = np.fft.fftfreq(self.n_pad)
        fwin = np.fft.fftfreq(n_win)
        w = angle_weights(theta) / n_win
        cos_t, sin_t = np.cos(theta), np.sin(theta)
        # tomopy's image grid: pixel (r, q) at x = q - N//2, y = (N-1)//2 - r; with the
        # modes (m_y, m_x) = (r, q) - N//2 that is x = m_x, y = -m_y + dy
        dy = -1.0 if n_out % 2 == 0 else 0.0
        # common (angle, freq) factor: quadrature, the grid offset, and the pixel mean
        common = w[:, None] * np.exp(2j * np.pi * fwin[None, :] * dy * sin_t[:, None])
        if pixel_average:
            # value of a pixel = mean of the band-limited image over the pixel's square
            common *= (np.sinc(fwin[None, :] * cos_t[:, None])
                       * np.sinc(fwin[None, :] * sin_t[:, None]))
        if n_win % 2 == 0:
            common[:, n_win // 2] = 0.0  # unpaired Nyquist bin would mix the two packed slices
        # (angle, freq) order: applied block by block while the rows' spectra are in cache
        self.common = common.astype(np.complex64)
        # tomopy's orientation: image rows run against y; s = x cos θ + y sin θ
        kx = (2 * np.pi * fwin[None, :] * cos_t[:, None]).ravel()
        ky = (-2 * np.pi * fwin[None, :] * sin_t[:, None]).ravel()
        # type-1 NUFFT = finufft's spreading onto an (nf, nf) grid + FFT + deapodization
        self.nf = nf = _even_fast_len(int(np.ceil(self.upsampfac * n_out)))
        # the polar points in the order of 16 × 16 tiles of that grid: spreading then
        # writes to one small region at a time (about a fifth faster than angle by angle,
        # after paying for the gather of the strengths into this order)
        n_tiles = -(-nf // 16)
        if tile_order:
            ty = ((ky / (2 * np.pi) + 0.5) * (nf / 16)).astype(np.int64)
            tx = ((kx / (2 * np.pi) + 0.5) * (nf / 16)).astype(np.int64)
            key = ty * n_tiles + tx  # row-major tile index
            if n_tiles * n_tiles <= 2**16:
                key = key.astype(np.uint16)  # stable sort of 16-bit keys is a radix sort
            self.order = np.argsort(key, kind="stable").astype(np.intp)
        else:
            self.order = np.arange(kx.size, dtype=np.intp)
        self.kx = kx[self.order].astype(np.float32)
        self.ky = ky[self.order].astype(np.float32)
        # 1/Φ along one axis; the 2-D factor is its outer product, formed block by block
        self.deapod = _deapodization(n_out, self.nf, self.eps, self.upsampfac).astype(np.float32)
        self._free = {}  # finufft threads -> idle plans
        self._lock = threading.Lock()

    def row_filter(self, center):
        """Filter × axis shift for rows with this centre, in FFT order (complex64).

        Detector sample ``i`` sits at ``s = i − center``; the phase moves sample ``center``
        to index 0 (exact for any fractional centre: band-limited interpolation), so the
        window is always ``[0, n_win/2)`` and ``[n_pad − n_win/2, n_pad)``. The product is
        Hermitian, so two real rows packed as ``a + i·b`` stay separable.
        """
        g = self.filter * np.exp(2j * np.pi * self.freq * center)
        return g.astype(np.complex64)

    def plan_options(self, nthreads=1):
        """Keyword arguments of a finufft spreading plan."""
        return _spread_options(self.eps, self.upsampfac, nthreads)

    @contextmanager
    def spreaders(self, nthreads):
        """Borrow `nthreads` single-threaded finufft spreading plans (points set).

        Plan ``k`` holds the ``k``-th contiguous part of the (tile-ordered) points, so
        the parts can be spread on separate threads into separate grids and summed:
        the same result on every run, unlike finufft's multi-threaded spreading.
        """
        import finufft  # imported here: import is slow

        with self._lock:
            free = self._free.setdefault(nthreads, [])
            plans = free.pop() if free else None
        if plans is None:
            plans = []
            for k0, k1 in self.parts(nthreads):
                p = finufft.Plan(1, (self.nf, self.nf), **self.plan_options(1))
                p.setpts(self.ky[k0:k1], self.kx[k0:k1])  # first coordinate -> axis 0 (y)
                plans.append(p)
        try:
            yield plans
        finally:
            with self._lock:
                self._free[nthreads].append(plans)

    def parts(self, n):
        """``n`` contiguous ``(start, stop)`` ranges covering the points."""
        edges = np.linspace(0, self.kx.size, n + 1).astype(int)
        return list(zip(edges[:-1], edges[1:]))

    def image(self, grid, out_a, out_b, threads, scale=1.0, steps=None):
        """Image of the spread `grid` (overwritten): inverse FFT, then the modes times 1/Φ.

        Mode ``k = -N//2 … (N-1)//2`` sits at grid index ``k mod nf``; the real part goes
        to `out_a`, the imaginary part to `out_b` (None: dropped), times `scale`. The FFT is
        pruned: along axis 0 for every grid column, then along axis 1 only for the ``N``
        rows that hold modes, in blocks of rows that stay in cache through the
        deapodization (the outer product of :attr:`deapod` with itself, formed per block).
        """
        g = scipy.fft.ifft(grid, axis=0, norm="forward", workers=threads, overwrite_x=True)
        if steps is not None:
            steps.lap("fft2 (axis 0)")
        n, nf, h = self.n_out, self.nf, self.n_out // 2
        d = self.deapod
        d_rows = d if scale == 1.0 else d * np.float32(scale)
        targets = [(o, part) for o, part in ((out_a, np.real), (out_b, np.imag)) if o is not None]
        tmp = np.empty((_IMAGE_ROWS, n), dtype=np.float32)
        # output rows [0, h) hold modes -h … -1 (grid rows nf-h …), rows [h, n) modes 0 …
        for r_dst, r_src in ((0, nf - h), (h, 0)):
            n_rows = h if r_dst == 0 else n - h
            for i0 in range(0, n_rows, _IMAGE_ROWS):
                b = min(_IMAGE_ROWS, n_rows - i0)
                rows = slice(r_src + i0, r_src + i0 + b)
                z = scipy.fft.ifft(g[rows], axis=1, norm="forward", workers=threads,
                                   overwrite_x=True)
                fac = np.multiply.outer(d_rows[r_dst + i0:r_dst + i0 + b], d, out=tmp[:b])
                for dst, part in targets:
                    o = dst[r_dst + i0:r_dst + i0 + b]
                    zz = part(z)
                    np.multiply(zz[:, nf - h:], fac[:, :h], out=o[:, :h])
                    np.multiply(zz[:, : n - h], fac[:, h:], out=o[:, h:])


#: Rows of the image transformed and deapodized together (a block stays in cache).
_IMAGE_ROWS = 32


def _even_fast_len(n):
    """Smallest even length ``>= n`` with no prime factor above 5.

    For the 2-D FFT of the spreading grid these are faster than SciPy's other fast lengths
    (factors 7 and 11), e.g. 2400² takes 8 % less time than 2376².
    """
    n = max(2, int(n))
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1 and n % 2 == 0:
            return n
        n += 1


def _spread_options(eps, upsampfac, nthreads):
    return {"n_trans": 1, "eps": eps, "isign": 1, "dtype": "complex64",
            "upsampfac": upsampfac, "nthreads": int(nthreads), "spreadinterponly": 1}


def _deapodization(n_out, nf, eps, upsampfac, sub=16):
    """``1 / Φ(k)`` for the modes ``k = -N//2 … (N-1)//2`` of an (nf, nf) spreading grid.

    Φ is the Fourier transform of finufft's spreading kernel (the one its plans for `eps`
    and `upsampfac` use), read off by spreading unit points at `sub` sub-grid offsets and
    integrated by the trapezoid rule, times the phase ``(−1)^k`` of the grid's centre
    ``nf/2``, where finufft puts the origin.
    """
    import finufft

    m = 64  # any grid wider than the kernel: its shape depends on eps and upsampfac only
    p = finufft.Plan(1, (m, m), **{**_spread_options(eps, upsampfac, 1), "n_trans": sub})
    off = np.arange(sub) / sub
    p.setpts((-2 * np.pi * off / m).astype(np.float32), np.zeros(sub, np.float32))
    b = p.execute(np.eye(sub, dtype=np.complex64)).real.astype(np.float64)  # (sub, m, m)
    phi = b.sum(axis=2) / np.sqrt(b[0].sum())  # phi(j - m/2 + off): kernel along axis 0
    j = np.flatnonzero(np.any(phi != 0, axis=0))  # the kernel's support
    phi = phi[:, j]
    t = (j - m // 2)[None, :] + off[:, None]
    k = np.arange(n_out) - n_out // 2
    ft = np.einsum("qj,kqj->k", phi, np.exp(2j * np.pi * k[:, None, None] * t[None] / nf)) / sub
    return (np.where(k % 2 == 0, 1.0, -1.0) / ft.real).astype(np.float64)


_CACHE_LOCK = threading.Lock()
_CACHE = OrderedDict()


def _setup(theta, n_cols, n_out, filter_name, filter_par, eps, pixel_average, circle,
           upsampfac=None, pad_factor=_PAD_FACTOR, tile_order=True):
    """Cached :class:`_Setup` for these arguments (least recently used ones are dropped)."""
    eps = max(float(eps), 1e-6)
    if upsampfac is None:
        upsampfac = _upsampfac(eps)
    par = None if filter_par is None else tuple(float(p) for p in filter_par)
    key = (theta.tobytes(), n_cols, n_out, filter_name, par, float(eps), bool(pixel_average),
           bool(circle), float(upsampfac), float(pad_factor), bool(tile_order))
    with _CACHE_LOCK:
        s = _CACHE.get(key)
        if s is not None:
            _CACHE.move_to_end(key)
            return s
    s = _Setup(theta, n_cols, n_out, filter_name, par, eps, pixel_average, circle,
               upsampfac, pad_factor, tile_order)
    with _CACHE_LOCK:
        s = _CACHE.setdefault(key, s)
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return s


class _Steps:
    """Per-step time accumulator (the benchmark's profile); ``None`` in `_pairs` costs nothing.

    `clock` is ``time.perf_counter`` (wall) or ``time.thread_time`` (CPU time of the calling
    thread: steady on a loaded machine; meaningful with one worker thread).
    """

    def __init__(self, clock=time.perf_counter):
        self.seconds = {}
        self._clock = clock
        self._t = clock()

    def lap(self, name):
        t = self._clock()
        self.seconds[name] = self.seconds.get(name, 0.0) + t - self._t
        self._t = t


def _pairs(setup, sino, centers, scale, out, pairs, threads, steps=None):
    """Reconstruct the row pairs ``(a, b)`` (``b`` None for a lone row) into `out`.

    `pairs` is an iterable that may be shared with other workers (each takes the next pair
    when it is free, so a worker that gets less CPU on a busy machine takes fewer pairs).
    """
    n_pad, n_win, n_cols = setup.n_pad, setup.n_win, setup.n_cols
    n_pos, n_neg = (n_win + 1) // 2, n_win // 2  # window: s = 0 … n_pos-1 and -n_neg … -1
    # the rows' transforms run on blocks of angles, so that the padded block stays in cache
    # through packing, FFT, filter, inverse FFT and windowing (and two workers do not
    # compete for memory bandwidth with whole padded sinograms)
    step = max(8, _ROW_BLOCK_BYTES // (n_pad * 8))
    pad_block = np.empty((min(step, setup.n_angles), n_pad), dtype=np.complex64)
    win = np.empty((setup.n_angles, n_win), dtype=np.complex64)
    strengths = np.empty(win.size, dtype=np.complex64)
    grids = [np.empty((setup.nf, setup.nf), dtype=np.complex64) for _ in range(threads)]
    parts = setup.parts(threads)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    lap = steps.lap if steps is not None else (lambda name: None)

    def spread(k):
        k0, k1 = parts[k]
        plans[k].execute(strengths[k0:k1], out=grids[k])

    with setup.spreaders(threads) as plans:
        for a, b in pairs:
            if b is None or centers[a] == centers[b]:
                g_a, g_b = setup.row_filter(centers[a]), None
            else:  # different centres: the spectra A, B of the two rows are shifted apart
                g_a = np.complex64(0.5) * setup.row_filter(centers[a])
                g_b = np.complex64(0.5) * setup.row_filter(centers[b])
            for i0 in range(0, setup.n_angles, step):
                i1 = min(setup.n_angles, i0 + step)
                # rows a and b packed as a + i·b, zero-padded, filtered and shifted (a common
                # Hermitian factor keeps them apart), transformed back in place
                pad = pad_block[: i1 - i0]
                pad[:, :n_cols].real = sino[a][i0:i1]
                pad[:, :n_cols].imag = 0.0 if b is None else sino[b][i0:i1]
                pad[:, n_cols:] = 0.0
                lap("pack")
                pad = scipy.fft.fft(pad, axis=-1, workers=threads, overwrite_x=True)
                lap("fft")
                if g_b is None:
                    pad *= g_a
                else:  # Z = A + iB, conj(Z(-f)) = A - iB: Z·G = (A + iB) mixes; use
                    # (Z + conj Z(-f))·G_a/2 + (Z − conj Z(-f))·G_b/2 = A·G_a + iB·G_b
                    mirror = np.conj(pad[:, (-np.arange(n_pad)) % n_pad])
                    spec_b = pad - mirror
                    pad += mirror
                    pad *= g_a
                    spec_b *= g_b
                    pad += spec_b
                    del mirror, spec_b
                lap("filter")
                pad = scipy.fft.ifft(pad, axis=-1, workers=threads, overwrite_x=True)
                lap("ifft")
                w = win[i0:i1]
                w[:, :n_pos] = pad[:, :n_pos]
                w[:, n_pos:] = pad[:, n_pad - n_neg:]
                lap("window")
                res = scipy.fft.fft(w, axis=-1, workers=threads, overwrite_x=True)
                np.multiply(res, setup.common[i0:i1], out=w)  # weights, while in cache
                lap("fft_win")
            np.take(win.reshape(-1), setup.order, out=strengths)
            lap("gather")
            if pool is None:
                spread(0)
            else:
                list(pool.map(spread, range(threads)))
                for g in grids[1:]:
                    grids[0] += g
            lap("spread")
            setup.image(grids[0], out[a], None if b is None else out[b], threads, scale, steps)
            lap("fft2 (axis 1) + deapodize")
    if pool is not None:
        pool.shutdown()


def _reconstruct(sino, theta, centers, n_out, filter_name, filter_par, *, eps, nthreads,
                 pixel_average, circle, scale=1.0, upsampfac=None, pad_factor=_PAD_FACTOR,
                 tile_order=True, steps=None):
    """Core of :func:`recon` on validated input; `sino` is ``(rows, angles, cols)``."""
    n_rows, _, n_cols = sino.shape
    setup = _setup(theta, n_cols, n_out, filter_name, filter_par, eps, pixel_average, circle,
                   upsampfac, pad_factor, tile_order)
    pairs = [(r, r + 1 if r + 1 < n_rows else None) for r in range(0, n_rows, 2)]
    out = np.empty((n_rows, n_out, n_out), dtype=np.float32)
    if nthreads is None:
        try:
            nthreads = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            nthreads = os.cpu_count() or 1
    nthreads = max(1, int(nthreads))
    workers = max(1, min(nthreads, len(pairs)))
    inner = max(1, nthreads // workers)  # threads per pair when pairs are fewer than threads
    if workers == 1:
        _pairs(setup, sino, centers, scale, out, pairs, inner, steps)
    else:
        queue = _Shared(pairs)
        with ThreadPoolExecutor(workers) as ex:
            jobs = [ex.submit(_pairs, setup, sino, centers, scale, out, queue, inner)
                    for _ in range(workers)]
            for j in jobs:
                j.result()
    return out


class _Shared:
    """An iterator that several threads can draw from."""

    def __init__(self, items):
        self._it = iter(items)
        self._lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        with self._lock:
            return next(self._it)


def recon(
    tomo,
    theta,
    center=None,
    algorithm="gridrec",
    filter_name="shepp",
    filter_par=None,
    *,
    sinogram_order=False,
    num_gridx=None,
    pixel_size=None,
    eps=1e-3,
    nthreads=None,
    pixel_average=True,
    circle=True,
):
    """Reconstruct slices by filtered back-projection (tomopy-compatible ``recon``).

    The Fourier-slice method of gridrec: each (zero-padded) projection row is Fourier
    transformed, filtered, and its samples on the polar grid are summed onto the image by a
    type-1 non-uniform FFT (finufft), which replaces gridrec's hand-written gridder.

    Parameters
    ----------
    tomo : (n_angles, n_rows, n_cols) array_like
        Projections after ``minus_log``: line integrals of μ in units of pixels (i.e. μ·pixel
        length summed along the ray). With ``sinogram_order=True`` the axes are
        ``(n_rows, n_angles, n_cols)``. A 2-D ``(n_angles, n_cols)`` sinogram is accepted
        too and gives a single slice.
    theta : (n_angles,) array_like
        Projection angles in **radians**.
    center : float or (n_rows,) array_like, optional
        Rotation-axis position on the detector as a (fractional) **column index**, tomopy's
        convention (gridrec shifts column ``center`` to the origin, and
        :func:`tomopipe.find_center_vo` returns the same quantity): the axis through the
        middle of an ``n_cols`` detector is ``(n_cols − 1) / 2``. Default ``n_cols / 2`` as in
        tomopy (half a pixel right of the middle for even widths). Fractional values are
        exact (a Fourier phase), and a different centre per row costs nothing extra.
    algorithm : {'gridrec', 'fbp'}
        Both select this Fourier-domain filtered back-projection. (tomopy's ``'fbp'`` applies
        no filter; here it is filtered like ``'gridrec'``.)
    filter_name : str
        One of ``none, shepp, cosine, hann, hamming, ramlak, parzen, butterworth`` with
        tomopy's window definitions (:func:`tomopipe.reconstruction.filter_window`). Default ``shepp``.
    filter_par : sequence of float, optional
        tomopy's ``filter_par`` ``[cutoff, order]``; default ``[0.5, 8]``.
    sinogram_order : bool
        If True, `tomo` is ``(n_rows, n_angles, n_cols)``.
    num_gridx : int, optional
        Output width ``N`` in pixels (default ``n_cols``). tomopy's grid: the rotation axis
        is at the centre of pixel ``(row, col) = ((N−1)//2, N//2)``, the middle pixel for odd
        ``N`` and half a pixel off the middle in x and y for even ``N``.
    pixel_size : float, optional
        Pixel size in **cm**. If given, the output is μ in 1/cm; otherwise μ in 1/pixel
        (tomopy's unit).
    eps : float
        Relative accuracy of the non-uniform FFT (finufft's tolerance, single precision,
        ``>= 1e-6``). The default ``1e-3`` adds an error of about 0.1 % of the image's RMS
        value — below the discretization error of the reconstruction itself and far below
        the noise of measured projections (``benchmarks/RESULTS.md``, settings table);
        lower it for noise-free simulations (``1e-4`` costs about 10 % more time; below
        ``1e-4`` a wider spreading grid is used, about 1.3× the time).
    nthreads : int, optional
        Threads (default: all usable cores). Pairs of slices are shared out among them,
        each pair computed by one thread; with fewer pairs than threads a pair's spreading
        is split among them. The result is the same on every run and for any chunking of
        the rows; with one pair per thread it is also the same for any `nthreads` (a pair
        spread by several threads differs in rounding only). Use 1 inside a parallel
        scheduler that already keeps every core busy.
    circle : bool
        If True (default), the reconstruction is exact inside the circle inscribed in the
        output square (the field of view every angle sees) and the corners outside it are
        not meaningful, as with tomopy's gridrec (mask them if needed); False makes the whole
        square exact at about 1.4× the cost.
    pixel_average : bool
        If True (default), each output pixel is the mean of the band-limited reconstruction
        over the pixel's square (the Fourier transform of the square, a product of two sincs,
        multiplies the strengths); if False, the reconstruction is sampled at pixel centres.
        The mean is what a voxel's μ means, and it damps Gibbs ringing at sharp edges.

    Returns
    -------
    rec : (n_rows, N, N) ndarray of float32
        Slices ``(z, y, x)`` with z the detector-row axis. tomopy's gridrec geometry: the
        pixel in row ``r``, column ``q`` of a slice, at ``x = q − N//2`` and
        ``y = (N−1)//2 − r`` (y grows upwards, towards row 0), projects onto the detector
        column index ``center + x cos θ + y sin θ``; at ``θ = 0`` the rays run along the
        rows' axis and the image columns point the same way as the detector columns.

    Raises
    ------
    ShapeMismatchError
        If ``len(theta)`` differs from the number of projections, or a per-row `center`
        has the wrong length.
    AngleUnitError
        If `theta` exceeds 2π (degrees passed instead of radians).
    ValueError
        For an unknown `algorithm` or `filter_name`, a non-finite `center`, or a
        non-positive `num_gridx` or `pixel_size`.

    Notes
    -----
    With detector coordinate :math:`s_i = i - c` and image coordinates
    :math:`\\mathbf{x} = (x, y)` relative to the axis,

    .. math::

        f(\\mathbf{x}) = \\sum_a Δθ_a \\frac{1}{L} \\sum_k \\hat p_a(ω_k) H(ω_k)
                         e^{2πi ω_k (x \\cos θ_a + y \\sin θ_a)},

    with :math:`\\hat p_a` the DFT of the row zero-padded to :math:`L \\ge 1.5\\, n_{cols}`
    (enough for the ramp's tails: against 4× padding it changes the image by under 0.1 %
    of its RMS value for objects inside the field of view, 2× padding by 0.03 %), :math:`ω_k = k/L` and :math:`H` from
    :func:`tomopipe.reconstruction.fbp_filter`. Unlike tomopy's gridrec, which transforms
    the detector without zero padding and scales its output empirically (10–40 % off on a
    Shepp–Logan phantom), this sum is the calibrated inverse Radon transform: a uniform
    disc of μ = 1/pixel reconstructs to 1. The filtered rows are cut to the detector
    window the image sees and resampled in frequency; two real slices are packed into one
    complex transform; the polar samples are spread onto a grid 1.15 N wide with
    finufft's kernel (its ``spreadinterponly`` mode), which is then Fourier transformed
    (SciPy) and divided by the kernel's transform (deapodization). The geometry's filter,
    weights, sorted points and finufft plans are cached and reused by later calls and
    chunks (a few geometries at a time).

    References
    ----------
    .. [1] B. A. Dowd et al., "Developments in synchrotron x-ray computed microtomography at
       the National Synchrotron Light Source", Proc. SPIE 3772 (1999) — gridrec.
    .. [2] A. H. Barnett, J. Magland, L. af Klinteberg, "A parallel nonuniform fast Fourier
       transform library based on an 'exponential of semicircle' kernel", SIAM J. Sci.
       Comput. 41 (2019) C479 — finufft.
    .. [3] A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*, IEEE
       Press (1988), ch. 3.
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not supported; use one of {_ALGORITHMS}")
    if filter_name not in FILTER_NAMES:
        raise ValueError(f"filter_name={filter_name!r} is not one of {', '.join(FILTER_NAMES)}")
    tomo = np.asarray(tomo)
    check_ndim(tomo, (2, 3), name="tomo")
    if tomo.ndim == 2:
        tomo = tomo[None] if sinogram_order else tomo[:, None]
    sino = tomo if sinogram_order else np.swapaxes(tomo, 0, 1)  # (rows, angles, cols)
    n_rows, n_angles, n_cols = sino.shape
    theta = check_theta_radians(theta, name="theta")
    if theta.size != n_angles:
        raise ShapeMismatchError(
            f"theta has {theta.size} angles but tomo has {n_angles} projections"
        )
    if center is None:
        center = n_cols / 2.0
    centers = np.broadcast_to(np.asarray(center, dtype=np.float64), (n_rows,)) if np.ndim(
        center
    ) == 0 else np.asarray(center, dtype=np.float64)
    if centers.shape != (n_rows,):
        raise ShapeMismatchError(
            f"center has {centers.size} values but tomo has {n_rows} rows"
        )
    if not np.all(np.isfinite(centers)):
        raise ValueError("center holds NaN or infinite values")
    n_out = int(num_gridx) if num_gridx is not None else n_cols
    if n_out < 1:
        raise ValueError(f"num_gridx must be positive, got {num_gridx}")
    scale = 1.0
    if pixel_size is not None:
        if not pixel_size > 0:
            raise ValueError(f"pixel_size must be positive (cm), got {pixel_size}")
        scale = 1.0 / float(pixel_size)
    return _reconstruct(sino, theta, centers, n_out, filter_name, filter_par, eps=eps,
                        nthreads=nthreads, pixel_average=pixel_average, circle=circle,
                        scale=scale)
