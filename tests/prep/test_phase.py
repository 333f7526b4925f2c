import numpy as np
import pytest
import scipy.ndimage
from numpy.testing import assert_allclose

from tomopipe.prep import (
    minus_log,
    paganin_alpha,
    retrieve_phase,
    retrieve_phase_paganin,
    wavelength_m,
)
from tomopipe.prep._phase import _tomopy_frequencies


def test_wavelength():
    # λ[Å] = 12.3984198 / E[keV]
    assert wavelength_m(20) == pytest.approx(12.39841984e-10 / 20, rel=1e-8)
    with pytest.raises(ValueError, match="energy"):
        wavelength_m(0)


def test_paganin_alpha_makes_filter_functions_identical():
    """tomopy's transfer 1/(α + λz|w|²/4π), normalized at w = 0, equals 1/(1 + πλz δ/β |w|²)."""
    lam, z = wavelength_m(25) * 100, 12.0  # cm
    w2 = np.linspace(0, 4e6, 50)  # (cycles/cm)²
    for delta_beta in (10.0, 250.0, 3000.0):
        alpha = paganin_alpha(delta_beta)
        tomopy_filter = 1 / (alpha + lam * z * w2 / (4 * np.pi))
        tomopy_filter /= tomopy_filter[0]
        paganin_filter = 1 / (1 + np.pi * lam * z * delta_beta * w2)
        assert_allclose(tomopy_filter, paganin_filter, rtol=1e-12)
    assert paganin_alpha(1 / (4 * np.pi**2)) == pytest.approx(1.0)


def _blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n]
    thick = np.zeros((n, n))
    for _ in range(20):
        cy, cx = rng.uniform(0.2 * n, 0.8 * n, 2)
        r = rng.uniform(5, 20)
        thick += (y - cy) ** 2 + (x - cx) ** 2 < r * r
    return np.exp(-0.1 * scipy.ndimage.gaussian_filter(thick, 1))[None].astype(np.float32)


@pytest.mark.parametrize("delta_beta", [30.0, 100.0])
def test_tomopy_form_and_physical_form_agree(delta_beta):
    trans = _blobs(256)
    physical = retrieve_phase_paganin(
        trans, delta_beta=delta_beta, energy_keV=20, distance_mm=50, pixel_size_um=1
    )
    tomopy_form = retrieve_phase(
        trans, pixel_size=1e-4, dist=5.0, energy=20, alpha=paganin_alpha(delta_beta)
    )
    effect = np.max(np.abs(physical - trans))
    assert effect > 0.05  # the filter does something
    # Only tomopy's half-bin-shifted frequency grid separates the two.
    assert np.max(np.abs(physical - tomopy_form)) < 2e-3 * effect


def test_filter_response_matches_analytic_curve():
    """A cosine of DFT frequency u is scaled by exactly 1/(1 + πλz δ/β u²); DC is kept."""
    n_row, n_col, px = 32, 64, 2e-6
    energy, dist, delta_beta = 30.0, 80e-3, 200.0
    lam = wavelength_m(energy)
    col = np.arange(n_col)
    out_gain = []
    for k in (1, 3, 8, 20):
        u = k / (n_col * px)
        proj = 0.7 + 0.1 * np.cos(2 * np.pi * k * col / n_col)
        proj = np.broadcast_to(proj, (1, n_row, n_col))
        res = retrieve_phase_paganin(
            proj, delta_beta=delta_beta, energy_keV=energy, distance_mm=dist * 1e3,
            pixel_size_um=px * 1e6, pad=False,
        )
        assert_allclose(res.mean(), 0.7, rtol=1e-6)  # DC term unchanged
        gain = (res[0, 0] - 0.7).dot(np.cos(2 * np.pi * k * col / n_col)) / (0.1 * n_col / 2)
        expected = 1 / (1 + np.pi * lam * dist * delta_beta * u**2)
        assert gain == pytest.approx(expected, rel=1e-5)
        out_gain.append(gain)
    assert out_gain[-1] < 0.2 * out_gain[0]


def test_recovers_thickness_of_fresnel_propagated_homogeneous_object():
    """Near-field Fresnel propagation of exp(−kβT − ikδT), then Paganin: T recovered."""
    n, px, dist, energy, delta = 256, 1e-6, 0.05, 20.0, 1e-6
    delta_beta = 100.0
    beta = delta / delta_beta
    lam = wavelength_m(energy)
    k = 2 * np.pi / lam
    mu = 4 * np.pi * beta / lam
    y, x = (np.mgrid[:n, :n] - n / 2) * px
    t_max = 30e-6
    thick = t_max * np.exp(-(x**2 + y**2) / (2 * (15e-6) ** 2))
    wave = np.exp(-k * beta * thick - 1j * k * delta * thick)
    u = np.fft.fftfreq(n, d=px)
    propagator = np.exp(-1j * np.pi * lam * dist * (u[:, None] ** 2 + u[None, :] ** 2))
    intensity = np.abs(np.fft.ifft2(np.fft.fft2(wave) * propagator)) ** 2
    assert np.isclose(intensity.mean(), np.exp(-mu * thick).mean(), rtol=1e-10)

    filtered = retrieve_phase_paganin(
        intensity[None], delta_beta=delta_beta, energy_keV=energy, distance_mm=dist * 1e3,
        pixel_size_um=px * 1e6,
    )
    recovered = minus_log(filtered)[0] / mu
    raw = minus_log(intensity[None])[0] / mu
    assert np.max(np.abs(recovered - thick)) < 0.01 * t_max
    assert np.max(np.abs(raw - thick)) > 0.1 * t_max  # phase contrast dominates the raw image


def test_tomopy_grid():
    w = _tomopy_frequencies(4, 1.0)
    # k/(2(n−1)) for k = −3, −1, 1, 3, rotated so that +1/6 comes first
    assert_allclose(w, [1 / 6, 3 / 6, -3 / 6, -1 / 6], rtol=1e-6)
    assert_allclose(_tomopy_frequencies(1, 1.0), [0.0])


def test_retrieve_phase_without_padding_keeps_mean():
    trans = _blobs(64)
    out = retrieve_phase(trans, pad=False)
    assert out.shape == trans.shape
    assert np.isfinite(out).all()
    assert abs(out.mean() - trans.mean()) < 1e-3


def test_phase_is_per_projection(tomopy_ref):
    proj = tomopy_ref("proj")
    whole = retrieve_phase(proj)
    assert_allclose(retrieve_phase(proj[5:9]), whole[5:9], rtol=1e-6)
    whole = retrieve_phase_paganin(proj, delta_beta=50, energy_keV=20, distance_mm=100,
                                   pixel_size_um=1)
    part = retrieve_phase_paganin(proj[3:4], delta_beta=50, energy_keV=20, distance_mm=100,
                                  pixel_size_um=1)
    assert_allclose(part, whole[3:4], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"delta_beta": -1.0}, "delta_beta"),
        ({"distance_mm": 0.0}, "distance_mm"),
        ({"pixel_size_um": np.nan}, "pixel_size_um"),
        ({"energy_keV": -5}, "energy"),
    ],
)
def test_physical_parameters_validated(kwargs, name):
    args = dict(delta_beta=100.0, energy_keV=20, distance_mm=50, pixel_size_um=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        retrieve_phase_paganin(np.ones((1, 8, 8)), **args)


def test_tomo_must_be_3d():
    with pytest.raises(ValueError, match="tomo"):
        retrieve_phase(np.ones((8, 8)))
