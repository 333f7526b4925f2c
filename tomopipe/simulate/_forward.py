"""X-ray CT forward model: line integrals of voxel volumes, Fresnel propagation, raw counts.

Geometry is that of :func:`tomopipe.recon` (tomopy's): rotation about the z axis, which is
the detector-row axis; slice pixel ``(r, q)`` of an ``(n_y, n_x)`` slice sits at
``x = q − n_x//2``, ``y = (n_y − 1)//2 − r``, and projects at angle θ onto the detector
column index ``center + x cos θ + y sin θ``; volume slice ``k`` is detector row ``k``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dask.array as da
import numpy as np
import scipy.fft

from .._validate import check_ndim, check_theta_radians
from ..errors import ShapeMismatchError
from ..prep import wavelength_m

__all__ = ["project_volume", "fresnel_propagate", "simulate_scan", "write_scan"]

#: Bytes of complex64 work arrays per NUFFT batch of slices (bounds the projector's RAM).
_BATCH_BYTES = 256 * 2**20


def _positive(value, name):
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def project_volume(mu, theta, *, center=None, pixel_size_cm=None, n_cols=None, voxel_basis=True,
                   eps=2e-5, nthreads=None):
    """Parallel-beam line integrals of a voxel volume (Fourier-slice projector).

    Each slice's 2-D Fourier transform is sampled on the polar grid of the detector
    frequencies by a type-2 non-uniform FFT (finufft); a 1-D inverse FFT along each radial
    line gives the projection (Fourier-slice theorem). Slices are processed in batches, two
    real slices packed into one complex transform, so memory is bounded by the batch and the
    output, not by the volume.

    Parameters
    ----------
    mu : (n_z, n_y, n_x) array_like
        Volume ``(z, y, x)``, e.g. μ in 1/cm, or δ. Any array that slices along z and converts
        with ``numpy.asarray`` (NumPy, memory map, zarr, dask) is read `batch` slices at a
        time. A 2-D ``(n_y, n_x)`` slice gives a 2-D sinogram.
    theta : (n_angles,) array_like
        Projection angles in radians.
    center : float, optional
        Rotation-axis position on the detector as a (fractional) column index, as for
        :func:`tomopipe.recon` (pass the same value there). Default ``(n_cols − 1)/2``, the
        middle of the detector (as :func:`tomopipe.simulate._analytic.project_ellipsoids`).
    pixel_size_cm : float, optional
        Voxel size in cm. If given, the line integrals are multiplied by it: μ in 1/cm then
        gives the dimensionless ``∫μ dt`` that ``minus_log`` returns; δ gives ``∫δ dt`` in cm.
        Otherwise the result is in units of ``mu × voxel``.
    n_cols : int, optional
        Detector width in pixels (default ``n_x``).
    voxel_basis : bool
        If True (default), each voxel is a uniform cube (the transform of the slice is
        multiplied by the voxel's ``sinc(k_x) sinc(k_y)``), the natural model of a labelled
        phantom; if False, the slice is the band-limited (sinc-interpolated) function
        through the voxel values.
    eps : float
        Relative accuracy requested from finufft (single precision, ``>= 2e-5``).
    nthreads : int, optional
        Threads for finufft and the FFTs (default: all cores).

    Returns
    -------
    proj : (n_angles, n_z, n_cols) ndarray of float32
        Line integrals, axis order (angle, row, col); ``(n_angles, n_cols)`` for a 2-D input.
        Band-limited to the detector's Nyquist frequency and sampled at the column centres.

    Raises
    ------
    AngleUnitError
        If `theta` exceeds 2π (degrees).
    ValueError
        If `mu` is not 2-D or 3-D, or `center`, `pixel_size_cm`, `n_cols` are invalid.

    Notes
    -----
    With :math:`\\hat f(k_x, k_y) = \\sum_{r,q} f_{rq} e^{-2\\pi i (k_x x_q + k_y y_r)}`
    (times the voxel transform), the projection at angle θ is

    .. math::

        p_θ(s_m) = \\frac{1}{L} \\sum_{|k| < L/2} \\hat f\\bigl(ω_k \\cos θ, ω_k \\sin θ\\bigr)
                   e^{2\\pi i ω_k s_m}, \\qquad ω_k = k / L,

    on a periodic detector of :math:`L` pixels that holds the object's whole shadow (so the
    period does not wrap it onto the detector). A fractional `center` is a Fourier phase.
    Against exact line integrals of supersampled spheres and ellipsoids the error is below
    1 % of the peak away from the objects' edges (tests/simulate/test_forward.py).

    References
    ----------
    .. [1] A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*, IEEE
       Press (1988), ch. 3 — the Fourier-slice theorem.
    .. [2] A. H. Barnett, J. Magland, L. af Klinteberg, "A parallel nonuniform fast Fourier
       transform library based on an 'exponential of semicircle' kernel", SIAM J. Sci.
       Comput. 41 (2019) C479 — finufft. https://doi.org/10.1137/18M120885X
    """
    import finufft  # slow import; the plan is the only state

    squeeze = np.ndim(mu) == 2
    check_ndim(mu, (2, 3), name="mu")
    vol = np.asarray(mu)[None] if squeeze else mu
    n_z, n_y, n_x = vol.shape
    theta = check_theta_radians(theta, name="theta")
    n_cols = n_x if n_cols is None else int(n_cols)
    if n_cols < 1:
        raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}")
    center = (n_cols - 1) / 2.0 if center is None else float(center)
    if not np.isfinite(center):
        raise ValueError(f"center must be finite, got {center!r}")
    scale = 1.0 if pixel_size_cm is None else _positive(pixel_size_cm, "pixel_size_cm")
    n_angles = theta.size
    out = np.zeros((n_angles, n_z, n_cols), dtype=np.float32)
    if n_angles == 0 or n_z == 0:
        return out[:, 0] if squeeze else out

    # periodic detector of L pixels, s = -L/2 ... L/2-1, that holds the object's shadow
    # (|s| <= half diagonal) and the requested detector window, plus a margin for the tails
    c_int = int(np.round(center))
    c_frac = center - c_int
    half = max(0.5 * np.hypot(n_x, n_y) + 2, c_int + 1, n_cols - c_int + 1)
    n_fft = scipy.fft.next_fast_len(2 * int(np.ceil(half)) + 16)
    n_fft += n_fft % 2
    omega = np.fft.fftfreq(n_fft)
    cos_t, sin_t = np.cos(theta)[:, None], np.sin(theta)[:, None]
    kx, ky = omega[None, :] * cos_t, omega[None, :] * sin_t
    # slice grid: x = m_x, y = -m_y + dy with finufft's centred modes m = index - n//2
    dy = (n_y - 1) // 2 - n_y // 2
    factor = np.exp(-2j * np.pi * (ky * dy + omega[None, :] * c_frac))
    if voxel_basis:
        factor *= np.sinc(kx) * np.sinc(ky)
    factor[:, n_fft // 2] = 0.0  # unpaired Nyquist bin would mix the two packed slices
    factor = (factor * scale).astype(np.complex64)
    cols = (np.arange(n_cols) - c_int) % n_fft  # detector column j <-> s = j - c_int

    per_pair = 8 * (n_y * n_x + 2 * n_angles * n_fft)
    n_trans = int(max(1, min((n_z + 1) // 2, _BATCH_BYTES // per_pair)))
    opts = {} if nthreads is None else {"nthreads": int(nthreads)}
    # upsampling 1.25: a smaller fine grid (2-D FFT) than the default 2.0, which is what
    # costs most for few angles; single precision at eps >= 2e-5 keeps the kernel stable
    plan = finufft.Plan(2, (n_y, n_x), n_trans=n_trans, eps=max(float(eps), 2e-5), isign=-1,
                        dtype="complex64", upsampfac=1.25, **opts)
    plan.setpts((-2 * np.pi * ky).astype(np.float32).ravel(),
                (2 * np.pi * kx).astype(np.float32).ravel())
    workers = -1 if nthreads is None else int(nthreads)
    packed = np.zeros((n_trans, n_y, n_x), dtype=np.complex64)
    step = 2 * n_trans
    for z0 in range(0, n_z, step):
        z1 = min(n_z, z0 + step)
        block = np.asarray(vol[z0:z1], dtype=np.float32)
        k = z1 - z0
        n_pk = (k + 1) // 2
        packed[:] = 0
        packed[:n_pk].real = block[0::2]
        packed[: k // 2].imag = block[1::2]
        spec = plan.execute(packed).reshape(n_trans, n_angles, n_fft)
        spec *= factor[None]
        lines = scipy.fft.ifft(spec[:n_pk], axis=-1, workers=workers, overwrite_x=True)
        lines = lines[..., cols]  # (pairs, angles, cols)
        out[:, z0:z1:2] = np.moveaxis(lines.real, 0, 1)
        out[:, z0 + 1 : z1 : 2] = np.moveaxis(lines[: k // 2].imag, 0, 1)
    return out[:, 0] if squeeze else out


def _fresnel_pad(n, fresnel_px):
    """Padded length of an axis: room for the Fresnel zone on both sides, FFT-friendly."""
    return scipy.fft.next_fast_len(int(n + max(2 * int(np.ceil(fresnel_px / 2)), 16)))


def fresnel_propagate(wave, *, distance_mm, energy_keV, pixel_size_um, pad=True):
    """Near-field (Fresnel) propagation of exit waves to the detector; returns intensity.

    Each frame is (edge-)padded, Fourier transformed, multiplied by the paraxial free-space
    propagator :math:`\\exp(-i π λ z |\\mathbf u|^2)` on the exact DFT frequency grid,
    transformed back and cropped; the detector records :math:`|ψ_z|^2`.

    Parameters
    ----------
    wave : (..., row, col) complex array_like, or tuple (mu_t, phase)
        Exit wave behind the sample, normalized to a unit incident plane wave: either the
        complex transmission function :math:`T`, or its attenuation and phase as two real
        arrays of the same shape, ``mu_t = ∫μ dt`` (dimensionless, what ``minus_log``
        returns) and ``phase = −k ∫δ dt`` in radians (negative for matter, k = 2π/λ), from
        which :math:`T = \\exp(−μt/2 + i\\,\\mathrm{phase})`.
    distance_mm : float, keyword-only
        Sample–detector distance in mm (0 returns :math:`|T|^2`, the contact image).
    energy_keV : float, keyword-only
        Photon energy in keV.
    pixel_size_um : float, keyword-only
        Pixel size at the sample in µm.
    pad : bool, keyword-only
        Pad each axis by at least the width ``π λ z / Δx²`` pixels (the Fresnel-zone rule of
        :func:`tomopipe.retrieve_phase`), replicating the edge values of the wave, so that
        fringes do not wrap around; without padding the frame is periodic.

    Returns
    -------
    intensity : (..., row, col) ndarray of float32
        :math:`|ψ_z|^2`, relative to the incident intensity (1 where nothing is in the beam).

    Raises
    ------
    ShapeMismatchError
        If `mu_t` and `phase` differ in shape.
    ValueError
        If the wave has fewer than 2 dimensions, or a physical parameter is not a finite
        positive number (`distance_mm` may be 0).

    Notes
    -----
    For :math:`n = 1 − δ + iβ` the exit wave of a thin sample is
    :math:`T = \\exp(−\\tfrac12∫μ\\,dt − i k ∫δ\\,dt)` with :math:`μ = 2kβ`; propagation over
    :math:`z` multiplies its spectrum by :math:`\\exp(−iπλz|\\mathbf u|^2)` (the constant
    :math:`e^{ikz}` dropped). To first order in :math:`z` this is the transport-of-intensity
    equation that Paganin's retrieval (:func:`tomopipe.retrieve_phase_paganin`) inverts.

    References
    ----------
    .. [1] J. W. Goodman, *Introduction to Fourier Optics*, 3rd ed., Roberts & Co. (2005),
       ch. 4 — the angular-spectrum / Fresnel transfer function.
    .. [2] D. Paganin, *Coherent X-Ray Optics*, Oxford University Press (2006), ch. 1–2.
    """
    if isinstance(wave, tuple):
        if len(wave) != 2:
            raise ValueError("wave as a tuple must be (mu_t, phase)")
        mu_t, phase = np.asarray(wave[0]), np.asarray(wave[1])
        if mu_t.shape != phase.shape:
            raise ShapeMismatchError(f"mu_t shape {mu_t.shape} does not match phase {phase.shape}")
        shape = mu_t.shape
    else:
        wave = np.asarray(wave)
        mu_t = phase = None
        shape = wave.shape
    if len(shape) < 2:
        raise ValueError(f"wave must have at least 2 dimensions (row, col), got shape {shape}")
    distance = float(distance_mm)
    if not (np.isfinite(distance) and distance >= 0):
        raise ValueError(f"distance_mm must be a finite number >= 0, got {distance_mm!r}")
    pixel = _positive(pixel_size_um, "pixel_size_um") * 1e-6
    lam = wavelength_m(energy_keV)
    n_row, n_col = shape[-2:]
    lead = shape[:-2]
    if mu_t is not None:
        mu_t = mu_t.reshape((-1, n_row, n_col))
        phase = phase.reshape((-1, n_row, n_col))
        n_frames = mu_t.shape[0]
    else:
        wave = wave.reshape((-1, n_row, n_col))
        n_frames = wave.shape[0]

    def exit_wave(i):  # one frame at a time: memory of one padded frame
        if mu_t is None:
            return wave[i].astype(np.complex128)
        return np.exp(-0.5 * mu_t[i].astype(np.float64) + 1j * phase[i].astype(np.float64))

    out = np.empty((n_frames, n_row, n_col), dtype=np.float32)
    if distance == 0:
        for i in range(n_frames):
            out[i] = np.abs(exit_wave(i)) ** 2
        return out.reshape(shape)
    z = distance * 1e-3
    fresnel_px = np.pi * lam * z / pixel**2
    if pad:
        m_row, m_col = _fresnel_pad(n_row, fresnel_px), _fresnel_pad(n_col, fresnel_px)
    else:
        m_row, m_col = n_row, n_col
    r0, c0 = (m_row - n_row) // 2, (m_col - n_col) // 2
    u_row = scipy.fft.fftfreq(m_row, d=pixel)
    u_col = scipy.fft.fftfreq(m_col, d=pixel)
    kernel = np.exp(-1j * np.pi * lam * z * np.add.outer(u_row**2, u_col**2))
    widths = ((r0, m_row - n_row - r0), (c0, m_col - n_col - c0))
    for i in range(n_frames):
        padded = np.pad(exit_wave(i), widths, mode="edge")
        spec = scipy.fft.fft2(padded, overwrite_x=True)
        spec *= kernel
        field = scipy.fft.ifft2(spec, overwrite_x=True)[r0:r0 + n_row, c0:c0 + n_col]
        out[i] = field.real**2 + field.imag**2
    return out.reshape(lead + (n_row, n_col))


class _Volumes:
    """The phantom volumes, opaque to dask (not hashed, not traversed, shared by tasks)."""

    def __init__(self, mu, delta):
        self.mu = mu
        self.delta = delta
        self.token = uuid.uuid4().hex

    def __dask_tokenize__(self):
        return self.token


def _drift_gain(index, n_angles, flat_drift):
    """Beam intensity relative to the start of the scan, linear in the projection index."""
    return 1.0 + flat_drift * (np.asarray(index, dtype=np.float64) + 0.5) / n_angles


def _detector(shape, *, photons, beam_profile, stripes, hot_pixels, dark_level, seed):
    """Fixed detector/beam features: incident counts, column gain errors, hot pixels."""
    n_rows, n_cols = shape
    rng = np.random.default_rng([seed, 0])
    beam = np.full(shape, float(photons))
    if beam_profile:
        r = (np.arange(n_rows) - (n_rows - 1) / 2) / max(n_rows, 1)
        c = (np.arange(n_cols) - (n_cols - 1) / 2) / max(n_cols, 1)
        # Gaussian vertical profile (σ = frame height), slow horizontal fall-off (−10 % at
        # the edges), and a 1 % fixed pixel pattern (scintillator): all in the flats too.
        beam *= np.exp(-0.5 * r[:, None] ** 2) * (1.0 - 0.4 * c[None, :] ** 2)
        beam *= 1.0 + 0.01 * rng.standard_normal(shape)
    column_gain = 1.0 + float(stripes) * rng.standard_normal(n_cols) if stripes else None
    hot = None
    if hot_pixels:
        flat_idx = rng.choice(n_rows * n_cols, size=int(hot_pixels), replace=False)
        level = np.minimum(dark_level + rng.uniform(2.0, 4.0, flat_idx.size) * photons, 65535.0)
        hot = (np.unravel_index(flat_idx, shape), np.round(level).astype(np.uint16))
    return beam, column_gain, hot


def _counts(expected, rng, *, dark_level, poisson, hot):
    """Detector counts of one frame: Poisson photons + Poisson dark current, uint16 clip."""
    if poisson:
        counts = rng.poisson(expected).astype(np.float64)
        if dark_level > 0:
            counts += rng.poisson(dark_level, size=expected.shape)
    else:
        counts = expected + dark_level
    counts = np.clip(np.round(counts), 0, 65535).astype(np.uint16)
    if hot is not None:
        (rows, cols), level = hot
        counts[rows, cols] = level
    return counts


def _frames(expected_frame, n, shape, rng, **kwargs):
    """Stack of `n` uint16 frames, ``expected_frame(i)`` counts each (one frame in float64)."""
    out = np.empty((n,) + shape, dtype=np.uint16)
    for i in range(n):
        out[i] = _counts(expected_frame(i), rng, **kwargs)
    return out


def _blur(frames, psf_sigma_px):
    """Detector point-spread function: a Gaussian of σ pixels over (row, col) of each frame."""
    if not psf_sigma_px:
        return frames
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(frames, sigma=(0.0, psf_sigma_px, psf_sigma_px), mode="nearest")


def _projection_block(index, *, vols, theta, n_angles, center, n_cols, pixel_size_um,
                      energy_keV, distance_mm, beam, column_gain, hot, flat_drift, dark_level,
                      poisson, seed, psf_sigma_px=0.0, zingers=0.0):
    index = np.asarray(index)
    if index.size == 0:
        return np.zeros((0,) + beam.shape, dtype=np.uint16)
    th = theta[index]
    px_cm = pixel_size_um * 1e-4
    mu_t = project_volume(vols.mu, th, center=center, pixel_size_cm=px_cm, n_cols=n_cols)
    if distance_mm > 0:
        phase = np.zeros_like(mu_t)
        if vols.delta is not None:
            k = 2 * np.pi / (wavelength_m(energy_keV) * 100.0)  # 1/cm
            phase = project_volume(vols.delta, th, center=center, pixel_size_cm=px_cm,
                                   n_cols=n_cols)
            phase *= np.float32(-k)
        intensity = fresnel_propagate((mu_t, phase), distance_mm=distance_mm,
                                      energy_keV=energy_keV, pixel_size_um=pixel_size_um)
        del phase
    else:
        intensity = np.exp(-mu_t, out=mu_t)
    intensity = _blur(intensity, psf_sigma_px)
    gain = _drift_gain(index, n_angles, flat_drift)
    incident = beam if column_gain is None else beam * column_gain[None, :]
    rng = np.random.default_rng([seed, 1, int(index[0])])
    out = _frames(lambda i: incident * (gain[i] * intensity[i].astype(np.float64)), index.size,
                  beam.shape, rng, dark_level=dark_level, poisson=poisson, hot=hot)
    if zingers:
        # zingers: single pixels hit by scattered or cosmic photons in one frame only
        zrng = np.random.default_rng([seed, 4, int(index[0])])
        hits = zrng.random(out.shape) < zingers
        level = out.astype(np.float64) + zrng.uniform(1.0, 3.0, out.shape) * beam.max()
        out[hits] = np.clip(level[hits], 0, 65535).astype(np.uint16)
    return out


def _flat_block(index, *, flat_index, n_angles, beam, hot, flat_drift, dark_level, poisson, seed):
    index = np.asarray(index)
    if index.size == 0:
        return np.zeros((0,) + beam.shape, dtype=np.uint16)
    gain = _drift_gain(flat_index[index], n_angles, flat_drift)
    rng = np.random.default_rng([seed, 2, int(index[0])])
    return _frames(lambda i: beam * gain[i], index.size, beam.shape, rng,
                   dark_level=dark_level, poisson=poisson, hot=hot)


def _dark_block(index, *, shape, dark_level, poisson, seed):
    index = np.asarray(index)
    if index.size == 0:
        return np.zeros((0,) + shape, dtype=np.uint16)
    rng = np.random.default_rng([seed, 3, int(index[0])])
    zeros = np.zeros(shape)
    return _frames(lambda i: zeros, index.size, shape, rng, dark_level=dark_level,
                   poisson=poisson, hot=None)


def _lazy_frames(func, n, block, frame_shape, name, **kwargs):
    """(n, rows, cols) uint16 dask array whose block of frames ``i`` is ``func(indices)``."""
    idx = da.arange(n, chunks=block, dtype=np.int64)
    return da.map_blocks(
        func, idx, new_axis=[1, 2], chunks=(idx.chunks[0],) + tuple((m,) for m in frame_shape),
        dtype=np.uint16, meta=np.empty((0, 0, 0), dtype=np.uint16), name=name, **kwargs,
    )


def simulate_scan(mu, delta=None, *, theta, pixel_size_um, energy_keV, distance_mm=0.0,
                  photons=1e4, n_flats=20, flat_series=2, flat_drift=0.02, n_darks=10,
                  dark_level=100.0, beam_profile=True, stripes=0.0, hot_pixels=0, center=None,
                  n_cols=None, poisson=True, seed=0, chunk_angles=16, projector_angles=None,
                  psf_sigma_px=0.0, zingers=0.0):
    """Simulate the raw counts of a parallel-beam CT scan of a phantom, lazily.

    Line integrals of μ (and δ) by :func:`project_volume`, optional near-field propagation
    by :func:`fresnel_propagate`, then a detector model: incident counts with a beam profile
    and a linear intensity drift over the scan, an optional Gaussian point-spread function,
    Poisson noise, a dark current, optional column gain errors (stripes), hot pixels and
    zingers, uint16 saturation. Nothing is computed here:
    the returned dask arrays compute blocks of angles on demand, so a phantom of 1024³
    voxels never needs the whole projection stack in memory (stream them to disk with
    :func:`write_scan`).

    Parameters
    ----------
    mu : (n_z, n_y, n_x) array_like
        Linear attenuation coefficient in **1/cm** on voxels of `pixel_size_um`, axis order
        ``(z, y, x)`` with z along the rotation axis (detector rows). NumPy, memory-mapped,
        zarr or dask arrays; read `z` batches at a time by each block.
    delta : (n_z, n_y, n_x) array_like, optional
        Refractive-index decrement δ (dimensionless); used only when ``distance_mm > 0``
        (phase contrast). See :func:`tomopipe.simulate._materials.phase_properties` for μ and
        δ per label.
    theta : (n_angles,) array_like, keyword-only
        Projection angles in radians.
    pixel_size_um : float, keyword-only
        Voxel size = detector pixel size at the sample, in µm.
    energy_keV : float, keyword-only
        Photon energy in keV (monochromatic).
    distance_mm : float, keyword-only
        Sample–detector distance in mm; 0 (default) gives pure absorption contrast.
    photons : float, keyword-only
        Mean incident counts per pixel at the beam centre at the start of the scan.
    n_flats : int, keyword-only
        Flat-field frames in total, split evenly over the series.
    flat_series : int, keyword-only
        Number of flat series, spread evenly over the scan at projection indices
        ``−0.5, …, n_angles − 0.5`` (one series: before the scan only).
    flat_drift : float, keyword-only
        Relative change of the beam intensity over the scan, linear in the projection index:
        projection (or flat) index ``p`` sees ``1 + flat_drift (p + ½)/n_angles``. Flats and
        projections drift alike, so :func:`tomopipe.normalize_interp` with the returned
        `flat_index` removes it exactly (up to noise).
    n_darks : int, keyword-only
        Dark-field frames.
    dark_level : float, keyword-only
        Mean dark counts per pixel per frame (Poisson), added to every frame.
    beam_profile : bool, keyword-only
        Vertical Gaussian beam profile (σ = frame height), a 10 % horizontal fall-off to the
        edges and a fixed 1 % pixel pattern, in flats and projections alike. False: uniform.
    stripes : float, keyword-only
        Relative standard deviation of a per-column gain error of the projections that the
        flat field does not correct (a response changed between flats and projections);
        gives stripes in sinograms and rings in slices. 0 (default): none.
    hot_pixels : int, keyword-only
        Number of hot (stuck bright) pixels, at fixed random positions, with fixed counts of
        2–4 × `photons` in every flat and projection (not in darks).
    center : float, keyword-only, optional
        Rotation-axis position as a detector column index (default ``(n_cols − 1)/2``).
    n_cols : int, keyword-only, optional
        Detector width (default ``n_x``). Detector rows are the `n_z` slices.
    poisson : bool, keyword-only
        Poisson noise (default); False gives rounded expected counts.
    seed : int, keyword-only
        Random seed. The same seed and chunking give the same counts in any computing order.
    chunk_angles : int, keyword-only
        Projections per dask chunk.
    projector_angles : int, keyword-only, optional
        Angles whose line integrals are computed together (rounded up to a multiple of
        `chunk_angles`). The projector's cost per slice has a fixed part (a 2-D FFT) that
        these angles share, so more is faster; their line integrals (float32, twice with
        propagation) are held in memory while their chunks are computed. Default: as many
        as fit in 512 MiB.
    psf_sigma_px : float, keyword-only
        Detector point-spread function (scintillator and optics blur): σ in pixels of a
        Gaussian applied to the intensity of each projection before counting (not to the
        flats, which are uniform on that scale). 0 (default): none.
    zingers : float, keyword-only
        Probability per pixel and projection of a zinger (a pixel hit once by a scattered
        or cosmic photon burst: + 1–3 × the brightest incident counts in that frame only);
        unremoved zingers give streaks in the slices. 0 (default): none.

    Returns
    -------
    scan : dict
        ``projections`` (n_angles, n_z, n_cols), ``flats`` (n_flats, n_z, n_cols), ``darks``
        (n_darks, n_z, n_cols): dask arrays of uint16, axis order (angle, row, col);
        ``theta`` (n_angles,) float64 radians; ``flat_index`` (n_flats,) float64, the
        projection index of each flat frame; ``center`` (float, column index, for
        :func:`tomopipe.recon`); ``pixel_size_um``, ``energy_keV``, ``distance_mm``.

    Raises
    ------
    AngleUnitError
        If `theta` exceeds 2π (degrees).
    ShapeMismatchError
        If `delta` and `mu` differ in shape.
    ValueError
        If `mu` is not 3-D, a count is invalid (``n_flats < flat_series``, `chunk_angles`
        < 1, …), a physical parameter is not positive, or the brightest expected counts
        (``photons`` × profile × drift + dark) would exceed the uint16 range.

    Notes
    -----
    The counts of projection ``p`` in detector pixel ``(r, c)`` are

    .. math::

        N_p(r, c) \\sim \\mathrm{Poisson}\\bigl(N_0\\, b(r, c)\\, g_c\\, D(p)\\, |ψ_z|^2\\bigr)
                  + \\mathrm{Poisson}(d), \\qquad D(p) = 1 + a\\,(p + ½)/n,

    with :math:`N_0` = `photons`, :math:`b` the beam profile, :math:`g_c` the column gain
    error (`stripes`), :math:`a` = `flat_drift`, :math:`d` = `dark_level`, and
    :math:`|ψ_0|^2 = e^{−∫μ dt}` without propagation (Beer–Lambert); a flat is the same with
    :math:`|ψ_z|^2 = 1`, :math:`g_c = 1` and :math:`p` its `flat_index`. Scattered photons
    are assumed to miss the detector (μ is the total attenuation), the beam is
    monochromatic; the point-spread function (`psf_sigma_px`), when given, blurs
    :math:`|ψ_z|^2` before counting.

    References
    ----------
    .. [1] A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*, IEEE
       Press (1988), ch. 4 — measured projection data and their noise.
    .. [2] V. Van Nieuwenhove et al., "Dynamic intensity normalization using eigen flat
       fields in X-ray imaging", Opt. Express 23, 27975–27989 (2015) — flat-field drift.
       https://doi.org/10.1364/OE.23.027975
    .. [3] N. T. Vo, R. C. Atwood, M. Drakopoulos, "Superior techniques for eliminating ring
       artifacts in X-ray micro-tomography", Opt. Express 26, 28396–28412 (2018) — stripes
       from pixel responses that flat-fielding does not correct.
       https://doi.org/10.1364/OE.26.028396
    """
    check_ndim(mu, 3, name="mu")
    n_z, n_y, n_x = np.shape(mu)
    if delta is not None and tuple(np.shape(delta)) != (n_z, n_y, n_x):
        raise ShapeMismatchError(f"delta shape {np.shape(delta)} does not match mu {np.shape(mu)}")
    theta = check_theta_radians(theta, name="theta")
    n_angles = theta.size
    if n_angles == 0:
        raise ValueError("theta holds no angles")
    pixel_size_um = _positive(pixel_size_um, "pixel_size_um")
    energy_keV = _positive(energy_keV, "energy_keV")
    photons = _positive(photons, "photons")
    distance_mm = float(distance_mm)
    if not (np.isfinite(distance_mm) and distance_mm >= 0):
        raise ValueError(f"distance_mm must be a finite number >= 0, got {distance_mm!r}")
    for name, value, low in (("n_flats", n_flats, 1), ("flat_series", flat_series, 1),
                             ("n_darks", n_darks, 0), ("hot_pixels", hot_pixels, 0),
                             ("chunk_angles", chunk_angles, 1), ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if n_flats < flat_series:
        raise ValueError(f"n_flats ({n_flats}) must be at least flat_series ({flat_series})")
    flat_drift, dark_level, stripes = float(flat_drift), float(dark_level), float(stripes)
    if not (np.isfinite(flat_drift) and flat_drift > -1):
        raise ValueError(f"flat_drift must be a finite number > -1, got {flat_drift!r}")
    if not (np.isfinite(dark_level) and dark_level >= 0):
        raise ValueError(f"dark_level must be a finite number >= 0, got {dark_level!r}")
    if not (np.isfinite(stripes) and 0 <= stripes < 0.2):
        raise ValueError(f"stripes must be a relative gain error in [0, 0.2), got {stripes!r}")
    psf_sigma_px, zingers = float(psf_sigma_px), float(zingers)
    if not (np.isfinite(psf_sigma_px) and psf_sigma_px >= 0):
        raise ValueError(f"psf_sigma_px must be a finite number >= 0, got {psf_sigma_px!r}")
    if not (np.isfinite(zingers) and 0 <= zingers < 0.01):
        raise ValueError(f"zingers must be a probability per pixel in [0, 0.01), got {zingers!r}")
    n_cols = n_x if n_cols is None else int(n_cols)
    if n_cols < 1:
        raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}")
    center = (n_cols - 1) / 2.0 if center is None else float(center)
    if not np.isfinite(center):
        raise ValueError(f"center must be finite, got {center!r}")
    frame = (n_z, n_cols)
    if hot_pixels > n_z * n_cols:
        raise ValueError(f"hot_pixels ({hot_pixels}) exceeds the {n_z * n_cols} detector pixels")

    beam, column_gain, hot = _detector(frame, photons=photons, beam_profile=beam_profile,
                                       stripes=stripes, hot_pixels=hot_pixels,
                                       dark_level=dark_level, seed=seed)
    peak = beam.max() * max(1.0, 1.0 + flat_drift) * (1.0 + 3 * stripes)
    if peak + dark_level + 5 * np.sqrt(peak + dark_level) > 65535:
        raise ValueError(
            f"photons={photons:g} (× beam profile and drift, + dark_level={dark_level:g}) would "
            "saturate the uint16 detector; use fewer photons"
        )
    positions = np.linspace(-0.5, n_angles - 0.5, flat_series) if flat_series > 1 else np.array([-0.5])
    flat_index = np.concatenate([np.full(part.size, positions[k])
                                 for k, part in enumerate(np.array_split(np.arange(n_flats), flat_series))])

    if projector_angles is None:
        per_angle = 4 * n_z * n_cols * (2 if (distance_mm > 0 and delta is not None) else 1)
        projector_angles = max(1, (512 * 2**20) // per_angle)
    projector_angles = int(projector_angles)
    if projector_angles < 1:
        raise ValueError(f"projector_angles must be a positive integer, got {projector_angles!r}")
    group = min(n_angles, int(np.ceil(projector_angles / chunk_angles)) * chunk_angles)

    vols = _Volumes(mu, delta if distance_mm > 0 else None)
    token = vols.token
    projections = _lazy_frames(
        _projection_block, n_angles, group, frame, f"simulate-projections-{token}",
        vols=vols, theta=theta, n_angles=n_angles, center=center, n_cols=n_cols,
        pixel_size_um=pixel_size_um, energy_keV=energy_keV, distance_mm=distance_mm, beam=beam,
        column_gain=column_gain, hot=hot, flat_drift=flat_drift, dark_level=dark_level,
        poisson=bool(poisson), seed=int(seed), psf_sigma_px=psf_sigma_px, zingers=zingers,
    )
    if group != chunk_angles:
        projections = projections.rechunk((chunk_angles, n_z, n_cols))
    flats = _lazy_frames(
        _flat_block, n_flats, chunk_angles, frame, f"simulate-flats-{token}",
        flat_index=flat_index, n_angles=n_angles, beam=beam, hot=hot, flat_drift=flat_drift,
        dark_level=dark_level, poisson=bool(poisson), seed=int(seed),
    )
    darks = _lazy_frames(
        _dark_block, n_darks, chunk_angles, frame, f"simulate-darks-{token}",
        shape=frame, dark_level=dark_level, poisson=bool(poisson), seed=int(seed),
    )
    return {
        "projections": projections,
        "flats": flats,
        "darks": darks,
        "theta": theta,
        "flat_index": flat_index,
        "center": center,
        "pixel_size_um": pixel_size_um,
        "energy_keV": energy_keV,
        "distance_mm": distance_mm,
    }


class _TiffFrames:
    """A ``dask.array.store`` target that writes each frame to its own TIFF file."""

    def __init__(self, folder, prefix, n):
        self.folder = Path(folder)
        self.prefix = prefix
        self.digits = max(5, len(str(max(n - 1, 0))))

    def __setitem__(self, key, value):
        import tifffile

        start = key[0].start or 0
        for i, frame in enumerate(np.asarray(value)):
            name = f"{self.prefix}_{start + i:0{self.digits}d}.tif"
            tifffile.imwrite(self.folder / name, frame)


def write_scan(path, scan, *, tiff_dir=None, overwrite=False, chunk_angles=16):
    """Write a simulated scan to Data Exchange HDF5 (and a TIFF series), streaming.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.h5`` file, written by :func:`tomopipe.io.write_dxchange` (angles in degrees,
        flat angles from ``flat_index``); None writes only the TIFF series.
    scan : dict
        As returned by :func:`simulate_scan` (``projections, flats, darks, theta,
        flat_index``); NumPy arrays are accepted too.
    tiff_dir : str or os.PathLike, optional
        Folder for a TIFF series as well: one uint16 file per frame,
        ``proj/proj_00000.tif …``, ``flat/flat_00000.tif …``, ``dark/dark_00000.tif …``, plus
        ``theta.txt`` (radians, one per line) and ``flat_index.txt``, readable with
        :func:`tomopipe.io.read_tiff_series`.
    overwrite : bool
        Replace an existing file (and TIFF folders' files).
    chunk_angles : int
        Frames per HDF5 chunk / write block.

    Returns
    -------
    path : pathlib.Path or None
        The HDF5 file written (None if `path` is None).

    Raises
    ------
    FileExistsError
        If `path` or a TIFF folder with frames exists and `overwrite` is False.
    KeyError
        If `scan` lacks one of the keys above.
    """
    from ..io import write_dxchange

    missing = [k for k in ("projections", "flats", "darks", "theta", "flat_index") if k not in scan]
    if missing:
        raise KeyError(f"scan lacks {', '.join(missing)} (expected the dict of simulate_scan)")
    out = None
    if path is not None:
        out = write_dxchange(path, scan["projections"], scan["flats"], scan["darks"],
                             scan["theta"], flat_index=scan["flat_index"],
                             chunk_angles=chunk_angles, overwrite=overwrite)
    if tiff_dir is not None:
        tiff_dir = Path(tiff_dir)
        for sub, key in (("proj", "projections"), ("flat", "flats"), ("dark", "darks")):
            folder = tiff_dir / sub
            if folder.is_dir() and any(folder.glob("*.tif")) and not overwrite:
                raise FileExistsError(f"{folder}: holds TIFF files; pass overwrite=True to replace them")
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob(f"{sub}_*.tif"):
                old.unlink()
            arr = scan[key]
            if not isinstance(arr, da.Array):
                arr = da.from_array(np.asarray(arr), chunks=(chunk_angles,) + np.shape(arr)[1:])
            if arr.shape[0]:
                da.store(arr, _TiffFrames(folder, sub, arr.shape[0]), lock=False,
                         scheduler="threads")
        np.savetxt(tiff_dir / "theta.txt", np.asarray(scan["theta"], dtype=np.float64))
        np.savetxt(tiff_dir / "flat_index.txt", np.asarray(scan["flat_index"], dtype=np.float64))
    return out
