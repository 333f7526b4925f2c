"""Single-distance phase retrieval (Paganin et al. 2002), tomopy-compatible and physical forms.

Both functions filter each projection independently, so a dask wrapper chunks by angle and
keeps whole projections ``(row, col)`` in every chunk.
"""

from __future__ import annotations

import numpy as np
import scipy.constants
import scipy.fft

from .._validate import check_ndim

__all__ = ["retrieve_phase", "retrieve_phase_paganin", "paganin_alpha", "wavelength_m"]


def wavelength_m(energy_keV):
    """X-ray wavelength in metres for a photon energy in keV: ``λ = h c / E`` (CODATA).

    Parameters
    ----------
    energy_keV : float
        Photon energy in keV (> 0).

    Returns
    -------
    float
        Wavelength in m (20 keV → 6.199e-11 m).

    Raises
    ------
    ValueError
        If `energy_keV` is not a finite positive number.
    """
    energy_keV = float(energy_keV)
    if not (np.isfinite(energy_keV) and energy_keV > 0):
        raise ValueError(f"energy must be a finite positive number of keV, got {energy_keV!r}")
    return scipy.constants.h * scipy.constants.c / (energy_keV * 1e3 * scipy.constants.e)


def paganin_alpha(delta_beta):
    """tomopy's `alpha` of :func:`retrieve_phase` that corresponds to a ratio δ/β.

    ``alpha = 1 / (4 π² δ/β)``, independent of energy, distance and pixel size; see the Notes
    of :func:`retrieve_phase_paganin` for the derivation.

    Parameters
    ----------
    delta_beta : float
        Ratio δ/β of the refractive index decrement to the absorption index (> 0).

    Returns
    -------
    float
        The `alpha` to pass to :func:`retrieve_phase`.

    Raises
    ------
    ValueError
        If `delta_beta` is not a finite positive number.
    """
    delta_beta = float(delta_beta)
    if not (np.isfinite(delta_beta) and delta_beta > 0):
        raise ValueError(f"delta_beta must be a finite positive number, got {delta_beta!r}")
    return 1.0 / (4.0 * np.pi**2 * delta_beta)


def _check_positive(value, name):
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def _pad_widths(shape, pixel_size, wavelength, distance, pad):
    """Per-side padding of (row, col), tomopy's rule.

    The padded length of an axis of ``n`` pixels is the next power of two of
    ``n + ceil(π λ z / Δx²)`` (the Fresnel-zone width in pixels); `pixel_size`, `wavelength`
    and `distance` must share one length unit.
    """
    if not pad:
        return 0, 0
    fresnel_px = np.ceil(np.pi * wavelength * distance / pixel_size**2)
    widths = []
    for n in shape:
        total = 2.0 ** np.ceil(np.log2(n + fresnel_px))
        widths.append(int((total - n) // 2))
    return tuple(widths)


def _filter_projections(tomo, transfer, pads, *, real_transfer):
    """Multiply each edge-padded projection's spectrum by `transfer`; crop; float32 result.

    `transfer` is on the full ``fft2`` grid, or on the ``rfft2`` grid if `real_transfer`
    (Hermitian-symmetric filters only).  One projection at a time keeps memory at one padded
    frame whatever the chunk size.
    """
    n_angle, n_row, n_col = tomo.shape
    prow, pcol = pads
    out = np.empty(tomo.shape, dtype=np.float32)
    for a in range(n_angle):
        frame = np.pad(tomo[a].astype(np.float64), ((prow, prow), (pcol, pcol)), mode="edge")
        if real_transfer:
            spec = scipy.fft.rfft2(frame)
            spec *= transfer
            frame = scipy.fft.irfft2(spec, s=frame.shape)
        else:
            spec = scipy.fft.fft2(frame)
            spec *= transfer
            frame = scipy.fft.ifft2(spec, overwrite_x=True).real
        out[a] = frame[prow:prow + n_row, pcol:pcol + n_col]
    return out


def _tomopy_frequencies(n, pixel_size):
    """tomopy's reciprocal coordinate (cycles per unit of `pixel_size`) of an ``n``-point axis.

    tomopy samples ``k / (2 (n − 1) Δx)`` for ``k = −(n−1), −(n−3), …, n−1`` and moves the
    centre to index 0 (``fftshift``).  For even ``n`` this grid has no zero and its spacing is
    ``1 / ((n − 1) Δx)`` instead of the DFT's ``1 / (n Δx)``; it is kept here, in float32 as
    tomopy computes it, only so that :func:`retrieve_phase` reproduces tomopy's numbers.
    """
    if n == 1:
        return np.zeros(1, dtype=np.float32)
    k = np.arange(-(n - 1), n, 2, dtype=np.float32)
    k *= np.float32(0.5 / ((n - 1) * pixel_size))
    return np.fft.fftshift(k)


def retrieve_phase(tomo, pixel_size=1e-4, dist=50, energy=20, alpha=1e-3, pad=True, ncore=None,
                   nchunk=None):
    """Paganin single-distance phase retrieval with tomopy's parameters and numbers.

    Each projection is edge-padded, its 2-D spectrum multiplied by the low-pass filter

    .. math::

        H(\\mathbf{w}) = \\frac{\\alpha + \\lambda z |\\mathbf{w}_0|^2 / 4\\pi}
                             {\\alpha + \\lambda z |\\mathbf{w}|^2 / 4\\pi}

    (normalized to 1 at the grid point ``w₀`` nearest zero frequency), transformed back and
    cropped.  The frequency grid is tomopy's (see Notes).  Reproduces tomopy's
    ``retrieve_phase`` (the version that returns filtered intensity, which produced tomopy's
    test reference) to rtol 1e-6.

    Parameters
    ----------
    tomo : (angle, row, col) array_like
        Flat-field-corrected projections (transmission, not yet minus-logged).
    pixel_size : float
        Detector pixel size in **cm** (tomopy's unit).
    dist : float
        Sample–detector propagation distance in **cm**.
    energy : float
        Photon energy in keV.
    alpha : float
        Regularization parameter; ``alpha = 1/(4π² δ/β)`` for a single material of ratio δ/β
        (:func:`paganin_alpha`).
    pad : bool
        Pad each projection by edge replication to the next power of two of
        ``size + ceil(π λ dist / pixel_size²)`` per axis (tomopy's rule).
    ncore, nchunk : int, optional
        Accepted for tomopy compatibility and ignored: parallelism comes from dask.

    Returns
    -------
    (angle, row, col) ndarray of float32
        Filtered transmission; apply :func:`minus_log` next to get ``μ T`` line integrals.

    Raises
    ------
    ValueError
        If `tomo` is not 3-D, or a physical parameter is not a finite positive number.

    See Also
    --------
    retrieve_phase_paganin : the same filter in physical units (µm, mm, keV, δ/β) on the exact
        DFT frequency grid.

    Notes
    -----
    tomopy's frequency grid along an axis of ``n`` padded pixels is
    ``k / (2 (n − 1) Δx)`` for ``k = −(n−1), −(n−3), …, n−1`` (rotated so the value nearest
    zero sits at index 0): half a bin off the DFT frequencies and stretched by
    ``n / (n − 1)``.  The result therefore differs slightly from the textbook filter at low
    frequencies; :func:`retrieve_phase_paganin` uses the exact grid.  Unlike that tomopy
    version, ``pad=False`` filters the unpadded projection (tomopy overwrote it with its last
    row).  Newer tomopy changed this function to also take ``−log`` and divide by
    ``4π/λ``; this function keeps the older, reference-tested behaviour.

    References
    ----------
    .. [1] D. Paganin, S. C. Mayo, T. E. Gureyev, P. R. Miller, S. W. Wilkins, "Simultaneous
       phase and amplitude extraction from a single defocused image of a homogeneous
       object", J. Microsc. 206, 33–40 (2002). :doi:`10.1046/j.1365-2818.2002.01010.x`
    .. [2] tomopy.prep.phase.retrieve_phase (https://tomopy.readthedocs.io).
    """
    tomo = np.asarray(tomo)
    check_ndim(tomo, 3, name="tomo")
    pixel_size = _check_positive(pixel_size, "pixel_size")
    dist = _check_positive(dist, "dist")
    alpha = _check_positive(alpha, "alpha")
    wavelength = wavelength_m(energy) * 100.0  # cm, like pixel_size and dist
    pads = _pad_widths(tomo.shape[1:], pixel_size, wavelength, dist, pad)
    n_row = tomo.shape[1] + 2 * pads[0]
    n_col = tomo.shape[2] + 2 * pads[1]
    w_row = _tomopy_frequencies(n_row, pixel_size)
    w_col = _tomopy_frequencies(n_col, pixel_size)
    w2 = np.add.outer(w_row**2, w_col**2)
    transfer = 1.0 / (wavelength * dist * w2 / (4 * np.pi) + alpha)
    transfer /= transfer.max()
    return _filter_projections(tomo, transfer, pads, real_transfer=False)


def retrieve_phase_paganin(tomo, *, delta_beta, energy_keV, distance_mm, pixel_size_um, pad=True):
    """Paganin single-material phase retrieval in physical units.

    Each projection (edge-padded as in :func:`retrieve_phase`) is filtered with

    .. math::

        \\tilde I(\\mathbf{u}) \\;\\leftarrow\\;
        \\frac{\\tilde I(\\mathbf{u})}{1 + \\pi \\lambda z \\,(\\delta/\\beta)\\, |\\mathbf{u}|^2}

    on the exact DFT frequency grid (:math:`\\mathbf{u}` in cycles per metre).

    Parameters
    ----------
    tomo : (angle, row, col) array_like
        Flat-field-corrected projections ``I/I₀`` (transmission), not minus-logged.
    delta_beta : float, keyword-only
        Ratio δ/β of the (single) material's refractive index decrement to its absorption
        index, e.g. ~ 100–1000 for light materials at 20–35 keV.
    energy_keV : float, keyword-only
        Photon energy in keV.
    distance_mm : float, keyword-only
        Sample–detector propagation distance in mm.
    pixel_size_um : float, keyword-only
        Effective pixel size at the sample in µm.
    pad : bool, keyword-only
        Edge-replicated padding to the next power of two of ``size + ceil(π λ z / Δx²)``
        pixels per axis, as in :func:`retrieve_phase`.

    Returns
    -------
    (angle, row, col) ndarray of float32
        Filtered transmission ``exp(−μ T)`` (the contact-plane intensity of the single-material
        model).  Apply :func:`minus_log` next: the result is the projected attenuation
        ``μ T`` with ``μ = 4πβ/λ``, which reconstructs to μ; the projected thickness is
        ``T = minus_log(...) / μ``.

    Raises
    ------
    ValueError
        If `tomo` is not 3-D or a physical parameter is not a finite positive number.

    Notes
    -----
    For a single material of refractive index :math:`n = 1 - \\delta + i\\beta` and projected
    thickness :math:`T(\\mathbf{r})`, the transport-of-intensity equation at distance
    :math:`z` gives (Paganin et al. 2002, eq. 7)

    .. math::

        I_z(\\mathbf{r}) = \\Bigl(1 - \\frac{z\\delta}{\\mu}\\nabla^2\\Bigr)\\, I_0
        e^{-\\mu T(\\mathbf{r})}, \\qquad \\mu = \\frac{4\\pi\\beta}{\\lambda},

    i.e. :math:`\\mathcal F[I_z/I_0] = (1 + 4\\pi^2 z\\delta|\\mathbf{u}|^2/\\mu)\\,
    \\mathcal F[e^{-\\mu T}] = (1 + \\pi\\lambda z (\\delta/\\beta) |\\mathbf{u}|^2)\\,
    \\mathcal F[e^{-\\mu T}]`; this function applies the inverse.  The filter is 1 at
    :math:`\\mathbf{u} = 0`, so the mean transmission is unchanged.

    **Relation to tomopy's alpha.**  tomopy's filter is
    :math:`1/(\\alpha + \\lambda z |\\mathbf w|^2/4\\pi)`, normalized to 1 at zero frequency,
    i.e. :math:`1/(1 + \\lambda z |\\mathbf w|^2 / (4\\pi\\alpha))` with :math:`\\mathbf w` in
    cycles per unit length.  Equating with the above,
    :math:`\\lambda z/(4\\pi\\alpha) = \\pi\\lambda z\\,\\delta/\\beta`, so

    .. math::

        \\alpha = \\frac{1}{4\\pi^2\\,\\delta/\\beta}

    (:func:`paganin_alpha`), independent of λ, z and pixel size.  With it,
    ``retrieve_phase(tomo, pixel_size=Δx_µm·1e-4, dist=z_mm·0.1, energy=E,
    alpha=paganin_alpha(δ/β))`` applies the same filter function; the results differ only
    through tomopy's slightly shifted frequency grid (see :func:`retrieve_phase`), by
    ~1e-3 of the transmission for typical padded sizes.

    References
    ----------
    .. [1] D. Paganin, S. C. Mayo, T. E. Gureyev, P. R. Miller, S. W. Wilkins, "Simultaneous
       phase and amplitude extraction from a single defocused image of a homogeneous
       object", J. Microsc. 206, 33–40 (2002). :doi:`10.1046/j.1365-2818.2002.01010.x`
    """
    tomo = np.asarray(tomo)
    check_ndim(tomo, 3, name="tomo")
    delta_beta = _check_positive(delta_beta, "delta_beta")
    pixel = _check_positive(pixel_size_um, "pixel_size_um") * 1e-6
    distance = _check_positive(distance_mm, "distance_mm") * 1e-3
    wavelength = wavelength_m(energy_keV)
    pads = _pad_widths(tomo.shape[1:], pixel, wavelength, distance, pad)
    n_row = tomo.shape[1] + 2 * pads[0]
    n_col = tomo.shape[2] + 2 * pads[1]
    u_row = scipy.fft.fftfreq(n_row, d=pixel)
    u_col = scipy.fft.rfftfreq(n_col, d=pixel)
    u2 = np.add.outer(u_row**2, u_col**2)
    transfer = 1.0 / (1.0 + np.pi * wavelength * distance * delta_beta * u2)
    return _filter_projections(tomo, transfer, pads, real_transfer=True)
