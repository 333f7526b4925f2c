"""Reconstruction filters with tomopy's names and window definitions.

tomopy's gridrec multiplies the Fourier transform of each projection by ``f(x)`` with ``x``
the frequency in cycles per pixel (0 … 0.5) and ``f(x) = |2x| · w(x)`` for a window ``w``.
tomopipe keeps the windows ``w`` exactly, but builds the ramp from the band-limited spatial
ramp of Ramachandran & Lakshminarayanan (Kak & Slaney, ch. 3, eq. 61) on a zero-padded
detector, so that the DC term — and with it the absolute scale of μ — is right.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FILTER_NAMES", "filter_window", "fbp_filter"]

#: Filter names accepted by :func:`tomopipe.recon` (tomopy's set).
FILTER_NAMES = ("none", "shepp", "cosine", "hann", "hamming", "ramlak", "parzen", "butterworth")

_DEFAULT_PAR = (0.5, 8.0)


def filter_window(filter_name, x, filter_par=None):
    """Window ``w(x)`` that multiplies the ramp, as defined by tomopy's gridrec filters.

    Parameters
    ----------
    filter_name : str
        One of :data:`FILTER_NAMES`.
    x : ndarray of float
        Frequency in cycles per pixel, ``|x| <= 0.5``.
    filter_par : sequence of float, optional
        tomopy's ``filter_par``: ``[cutoff, order]``; default ``[0.5, 8]``. Used by
        ``hann``, ``hamming`` (period), ``parzen`` (cutoff) and ``butterworth`` (cutoff, order).

    Returns
    -------
    w : ndarray of float64
        Same shape as `x`.

    Raises
    ------
    ValueError
        If `filter_name` is not a known filter.

    Notes
    -----
    With ``p = filter_par`` (tomopy, ``source/libtomo/gridrec/filters.c``):

    ============  =======================================
    shepp         sin(πx)/(πx)
    cosine        cos(πx)
    hann          ½ (1 + cos(2πx/p₀))   (cos 4πx at p₀ = ½)
    hamming       0.54 + 0.46 cos(2πx/p₀)
    ramlak        1
    parzen        (1 − |x|/p₀)³
    butterworth   1 / (1 + (x/p₀)^(2 p₁))
    ============  =======================================

    ``none`` is not a window: tomopy's ``none`` applies no ramp at all (plain back-projection);
    see :func:`fbp_filter`.
    """
    par = tuple(_DEFAULT_PAR if filter_par is None else filter_par)
    x = np.abs(np.asarray(x, dtype=np.float64))
    if filter_name in ("ramlak", "none"):
        return np.ones_like(x)
    if filter_name == "shepp":
        return np.sinc(x)
    if filter_name == "cosine":
        return np.cos(np.pi * x)
    if filter_name == "hann":
        return 0.5 * (1.0 + np.cos(2 * np.pi * x / par[0]))
    if filter_name == "hamming":
        return 0.54 + 0.46 * np.cos(2 * np.pi * x / par[0])
    if filter_name == "parzen":
        return (1.0 - x / par[0]) ** 3
    if filter_name == "butterworth":
        return 1.0 / (1.0 + (x / par[0]) ** (2 * par[1]))
    raise ValueError(
        f"filter_name={filter_name!r} is not one of {', '.join(FILTER_NAMES)}"
    )


def fbp_filter(filter_name, n_pad, filter_par=None):
    """Frequency response of the FBP filter on a zero-padded detector of `n_pad` pixels.

    Parameters
    ----------
    filter_name : str
        One of :data:`FILTER_NAMES`.
    n_pad : int
        Length of the zero-padded detector row (at least twice the detector width so that
        the circular convolution of the FFT equals the linear one).
    filter_par : sequence of float, optional
        See :func:`filter_window`.

    Returns
    -------
    h : (n_pad,) ndarray of float64
        Filter in FFT order (``numpy.fft.fftfreq(n_pad)``), including the ramp, in units of
        cycles per pixel. Multiply the detector FFT by ``h`` and back-project with angle
        weights ``Δθ`` to obtain μ in 1/pixel.

    Notes
    -----
    The ramp is the DFT of the sampled band-limited ramp ``h[0] = 1/4``,
    ``h[n] = −1/(π n)²`` for odd ``n``, 0 otherwise [1]_, which avoids the DC offset of a
    sampled ``|x|``. ``none`` returns the constant ½ — the unfiltered back-projection scaled
    like tomopy's (whose filters are ``|2x|·w(x)``, twice the ramp).

    References
    ----------
    .. [1] A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*,
       IEEE Press (1988), ch. 3, eq. (61).
    """
    freq = np.fft.fftfreq(n_pad)
    if filter_name == "none":
        return np.full(n_pad, 0.5)
    n = np.fft.fftfreq(n_pad, d=1.0 / n_pad)  # integer offsets in FFT order
    h = np.zeros(n_pad)
    h[0] = 0.25
    odd = (n.astype(np.int64) % 2) != 0
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    ramp = np.real(np.fft.fft(h))
    return ramp * filter_window(filter_name, freq, filter_par)
