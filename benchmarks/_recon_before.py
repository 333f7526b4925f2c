"""The reconstruction core as it was before issue 15 (commit 92ba824), kept for comparison.

``bench_recon.py`` times this "before" path next to today's :func:`tomopipe.recon` in the
same run and profiles its steps. It is the old ``tomopipe.reconstruction._fbp.recon`` for a
single scalar centre (the benchmark's case), with the step timer added: zero padding to a
power of two ≥ 2 × width, complex FFT of two packed rows, filter, inverse FFT, window, FFT,
weights, and one finufft type-1 plan per call (``upsampfac=1.25``, its own FFT and
deapodization, multi-threaded spreading), batched over up to 768 MiB of strengths.
Not used by the package.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from tomopipe.reconstruction._fbp import angle_weights
from tomopipe.reconstruction._filters import fbp_filter

_BATCH_BYTES = 768 * 2**20


def recon_before(tomo, theta, center, filter_name="shepp", *, eps=1e-4, nthreads=None,
                 steps=None, plan_options=None):
    """Old ``recon(tomo, theta, center, filter_name=..., eps=1e-4, nthreads=...)``.

    `tomo` is ``(angles, rows, cols)``; `center` a scalar column index; `steps` an optional
    ``tomopipe.reconstruction._fbp._Steps``; `plan_options` extra finufft options (the
    profile passes ``debug=1`` to read finufft's own split of its time).
    """
    import finufft

    lap = steps.lap if steps is not None else (lambda name: None)
    theta = np.asarray(theta, dtype=np.float64)
    sino = np.swapaxes(np.asarray(tomo), 0, 1)
    n_rows, n_angles, n_cols = sino.shape
    n_out = n_cols
    n_pad = max(64, 1 << int(np.ceil(np.log2(2 * n_cols))))
    n_win = scipy.fft.next_fast_len(n_out + 16)
    freq = np.fft.fftfreq(n_pad)
    fwin = np.fft.fftfreq(n_win)
    h = fbp_filter(filter_name, n_pad)
    h[n_pad // 2] = 0.0
    h32 = h.astype(np.float32)
    w = angle_weights(theta) / n_win
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    dy = -1.0 if n_out % 2 == 0 else 0.0
    common = w[:, None] * np.exp(2j * np.pi * fwin[None, :] * dy * sin_t[:, None])
    common *= np.sinc(fwin[None, :] * cos_t[:, None]) * np.sinc(fwin[None, :] * sin_t[:, None])
    if n_win % 2 == 0:
        common[:, n_win // 2] = 0.0
    common = common.astype(np.complex64)
    kx = (2 * np.pi * fwin[None, :] * cos_t[:, None]).astype(np.float32).ravel()
    ky = (-2 * np.pi * fwin[None, :] * sin_t[:, None]).astype(np.float32).ravel()
    t = float(center)
    t_int = int(round(t))
    frac = np.exp(2j * np.pi * freq * (t - t_int)).astype(np.complex64)
    offsets = np.round(fwin * n_win).astype(np.int64)
    idx = (t_int + offsets) % n_pad
    n_pairs = (n_rows + 1) // 2
    per_pair = n_angles * max(n_pad, n_win) * 8 * 2
    n_trans = int(max(1, min(n_pairs, _BATCH_BYTES // per_pair)))
    opts = {} if nthreads is None else {"nthreads": int(nthreads)}
    opts.update(plan_options or {})
    lap("setup")
    plan = finufft.Plan(1, (n_out, n_out), n_trans=n_trans, eps=max(eps, 1e-6), isign=1,
                        dtype="complex64", upsampfac=1.25, **opts)
    plan.setpts(ky, kx)
    lap("plan+setpts")
    workers = nthreads if nthreads is not None else -1
    out = np.empty((n_rows, n_out, n_out), dtype=np.float32)
    strengths = np.zeros((n_trans, n_angles, n_win), dtype=np.complex64)
    for r0 in range(0, n_rows, 2 * n_trans):
        r1 = min(n_rows, r0 + 2 * n_trans)
        k = r1 - r0
        n_pk = (k + 1) // 2
        block = np.asarray(sino[r0:r1], dtype=np.float32)
        packed = np.zeros((n_pk, n_angles, n_pad), dtype=np.complex64)
        for j in range(n_pk):
            packed[j].real[:, :n_cols] = block[2 * j]
            if 2 * j + 1 < k:
                packed[j].imag[:, :n_cols] = block[2 * j + 1]
        lap("pack rows")
        spec = scipy.fft.fft(packed, axis=-1, workers=workers, overwrite_x=True)
        lap("fft (padded)")
        spec *= (frac * h32)[None, None, :]
        lap("filter")
        filt = scipy.fft.ifft(spec, axis=-1, workers=workers, overwrite_x=True)
        lap("ifft (padded)")
        win = np.take(filt, idx, axis=-1)
        lap("window")
        wspec = scipy.fft.fft(win, axis=-1, workers=workers, overwrite_x=True)
        lap("fft (window)")
        np.multiply(wspec, common[None], out=strengths[:n_pk])
        strengths[n_pk:] = 0
        lap("weights")
        img = plan.execute(strengths.reshape(n_trans, -1)).reshape(n_trans, n_out, n_out)
        lap("finufft type 1")
        out[r0:r1:2] = img[:n_pk].real
        out[r0 + 1 : r1 : 2] = img[: k // 2].imag
        lap("output")
    return out
