import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

import tomopipe as tp
from tomopipe.errors import AngleUnitError, ShapeMismatchError
from tomopipe.io import read_dxchange, read_tiff_series
from tomopipe.prep import wavelength_m
from tomopipe.simulate import _forward
from tomopipe.simulate._analytic import Ellipsoid, project_ellipsoids, rasterize_ellipsoids
from tomopipe.simulate._forward import fresnel_propagate, project_volume, simulate_scan, write_scan
from tomopipe.simulate._materials import attenuation, delta_beta_ratio, refractive_decrement

THETA = np.linspace(0, np.pi, 45, endpoint=False)


@pytest.mark.parametrize("center", [None, 33.3])
@pytest.mark.parametrize(
    "objects",
    [
        [Ellipsoid((0.0, 0.0, 0.0), (20.0, 20.0, 20.0), 1.0)],  # sphere
        [Ellipsoid((1.3, 5.2, -7.7), (11.0, 17.0, 25.0), 0.7, 0.6)],  # rotated, off-centre
    ],
    ids=["sphere", "ellipsoid"],
)
def test_line_integrals_match_analytic(objects, center):
    """Projected supersampled voxels vs exact line integrals of the continuous object.

    Accuracy measures (of a 64³ voxel object against the analytic projection):
    relative L2 error over the shadow < 1 %; max error ≤ 1 % of the peak on the shadow
    more than 3 pixels (rows or columns) from its edge, where the voxelization of the
    sub-pixel boundary and the band limit of the detector do not reach; and below 1 % of
    the peak outside the shadow 3 pixels from its edge.
    """
    n = 64
    vol = rasterize_ellipsoids(objects, (n, n, n), supersample=8)
    ref = project_ellipsoids(objects, THETA, n, n, center=center)
    proj = project_volume(vol, THETA, center=center)
    assert proj.shape == ref.shape and proj.dtype == np.float32
    shadow = ref > 0
    footprint = np.ones((1, 7, 7), bool)
    inner = binary_erosion(shadow, footprint)
    outer = ~binary_dilation(shadow, footprint)
    err = proj - ref
    peak = ref.max()
    rel_l2 = np.linalg.norm(err[shadow]) / np.linalg.norm(ref[shadow])
    assert rel_l2 < 0.01, rel_l2
    assert np.abs(err[inner]).max() < 0.01 * peak
    assert np.abs(err[outer]).max() < 0.01 * peak
    # a half-pixel error in the centre would fail these bounds: check it does
    shifted = project_ellipsoids(objects, THETA, n, n,
                                 center=(n - 1) / 2 + 0.5 if center is None else center + 0.5)
    assert np.linalg.norm((proj - shifted)[shadow]) / np.linalg.norm(ref[shadow]) > 0.01


def test_units_2d_input_and_round_trip():
    n = 48
    disc = [Ellipsoid((0.0, 3.0, -4.0), (100.0, 12.0, 12.0), 1.0)]
    vol = rasterize_ellipsoids(disc, (2, n, n), supersample=4)
    theta = np.linspace(0, np.pi, 72, endpoint=False)
    proj = project_volume(vol, theta)
    sino = project_volume(vol[0], theta)
    assert sino.shape == (72, n)
    np.testing.assert_allclose(sino, proj[:, 0], atol=1e-5 * proj.max())
    px = 0.88e-4
    np.testing.assert_allclose(project_volume(vol, theta, pixel_size_cm=px), proj * px, rtol=1e-5,
                               atol=1e-9)
    # the recon geometry: recon(project(v)) ≈ v inside the disc
    rec = tp.recon(proj, theta, center=(n - 1) / 2)
    inside = binary_erosion(vol[0] > 0.999, np.ones((5, 5), bool))
    assert np.abs(rec[0][inside] - 1.0).max() < 0.05
    assert np.abs(rec[0][inside].mean() - 1.0) < 0.01
    with pytest.raises(AngleUnitError):
        project_volume(vol, np.linspace(0, 180, 10))


def test_reconstructed_mu_of_simulated_cus_cylinder():
    """Raw counts → normalize_interp → minus_log → recon in 1/cm gives μ(CuS, 35 keV)."""
    n, px_um = 96, 0.88
    mu_cus = attenuation("CuS", 35.0)
    cyl = [Ellipsoid((0.0, 0.0, 0.0), (1e3, 34.0, 34.0), mu_cus)]
    vol = rasterize_ellipsoids(cyl, (4, n, n), supersample=4)
    theta = np.linspace(0, np.pi, 144, endpoint=False)
    scan = simulate_scan(vol, theta=theta, pixel_size_um=px_um, energy_keV=35.0, photons=4e4,
                         n_flats=12, flat_series=3, flat_drift=0.05, center=47.8, seed=1)
    norm = tp.normalize_interp(scan["projections"].compute(), scan["flats"].compute(),
                               scan["darks"].compute(), scan["flat_index"])
    rec = tp.recon(tp.minus_log(norm), theta, center=scan["center"], pixel_size=px_um * 1e-4)
    inside = binary_erosion(vol[0] > 0.999 * mu_cus, np.ones((7, 7), bool))
    measured = rec[:, inside].mean()
    assert measured == pytest.approx(mu_cus, rel=0.02)
    outside = (vol[0] == 0) & binary_erosion(np.ones((n, n), bool), np.ones((25, 25), bool))
    assert abs(rec[:, outside].mean()) < 0.02 * mu_cus


def test_paganin_recovers_thickness_of_propagated_cylinder():
    """Fresnel-propagated CuS cylinder (0.88 µm, 35 keV, 10 cm): Paganin gives its thickness."""
    energy, px_um, dist_mm, material = 35.0, 0.88, 100.0, "CuS"
    mu = attenuation(material, energy)  # 1/cm
    delta = refractive_decrement(material, energy)
    k = 2 * np.pi / (wavelength_m(energy) * 100)  # 1/cm
    n_cols, radius = 256, 50.0
    s = np.arange(n_cols) - (n_cols - 1) / 2
    thick = 2 * np.sqrt(np.clip(radius**2 - s**2, 0, None)) * px_um * 1e-4  # cm
    thick = np.broadcast_to(thick, (1, 24, n_cols))
    intensity = fresnel_propagate((mu * thick, -k * delta * thick), distance_mm=dist_mm,
                                  energy_keV=energy, pixel_size_um=px_um)
    contact = np.exp(-mu * thick)
    assert np.abs(intensity - contact).max() > 0.3  # strong edge fringes
    retrieved = tp.retrieve_phase_paganin(intensity, delta_beta=delta_beta_ratio(material, energy),
                                          energy_keV=energy, distance_mm=dist_mm,
                                          pixel_size_um=px_um)
    support = thick > 0

    def rel_error(transmission):
        t = tp.minus_log(transmission) / mu
        return np.linalg.norm((t - thick)[support]) / np.linalg.norm(thick[support])

    assert rel_error(retrieved) < 0.05
    assert rel_error(intensity) > 0.3  # without Paganin the fringes ruin the thickness


def test_fresnel_propagate_limits():
    rng = np.random.default_rng(0)
    wave = np.exp(1j * 0.3 * rng.standard_normal((2, 32, 40)))
    # unitary propagator without padding: total intensity conserved
    out = fresnel_propagate(wave, distance_mm=50, energy_keV=20, pixel_size_um=1.0, pad=False)
    assert out.shape == wave.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=(1, 2)), np.full(2, 32 * 40), rtol=1e-5)
    assert np.abs(out - 1).max() > 0.05  # phase became intensity contrast
    # a plane wave stays a plane wave; distance 0 is the contact image
    flat = fresnel_propagate(np.full((8, 8), 0.5 + 0j), distance_mm=100, energy_keV=35,
                             pixel_size_um=0.88)
    np.testing.assert_allclose(flat, 0.25, rtol=1e-5)
    np.testing.assert_allclose(
        fresnel_propagate((np.ones((4, 4)), np.zeros((4, 4))), distance_mm=0, energy_keV=35,
                          pixel_size_um=1), np.exp(-1.0), rtol=1e-6)
    with pytest.raises(ShapeMismatchError):
        fresnel_propagate((np.ones((4, 4)), np.ones((4, 5))), distance_mm=1, energy_keV=35,
                          pixel_size_um=1)


def test_flat_drift_removed_by_interpolated_flats():
    n_angles = 120
    theta = np.linspace(0, np.pi, n_angles, endpoint=False)
    empty = np.zeros((6, 32, 32), np.float32)
    scan = simulate_scan(empty, theta=theta, pixel_size_um=1.0, energy_keV=35.0, photons=2e4,
                         n_flats=30, flat_series=3, flat_drift=0.04, chunk_angles=32)
    proj, flats, darks = (scan[k].compute() for k in ("projections", "flats", "darks"))
    np.testing.assert_array_equal(np.unique(scan["flat_index"]), [-0.5, 59.5, 119.5])
    mean_t = tp.normalize_interp(proj, flats, darks, scan["flat_index"], averaging="mean").mean(axis=(1, 2))
    noise = 1 / np.sqrt(2e4 * 0.9 * 6 * 32)  # std of a projection's mean, ~5e-4
    slope = np.polyfit(np.arange(n_angles), mean_t, 1)[0] * n_angles
    assert abs(slope) < 10 * noise
    assert abs(mean_t.mean() - 1) < 10 * noise
    # one averaged flat leaves the ±2 % drift in: the test can fail
    plain = tp.normalize(proj, flats, darks).mean(axis=(1, 2))
    assert abs(np.polyfit(np.arange(n_angles), plain, 1)[0] * n_angles) > 0.03


def test_stripes_and_hot_pixels():
    theta = np.linspace(0, np.pi, 16, endpoint=False)
    empty = np.zeros((8, 40, 40), np.float32)
    scan = simulate_scan(empty, theta=theta, pixel_size_um=1.0, energy_keV=35.0, photons=3e4,
                         stripes=0.02, hot_pixels=5, flat_drift=0.0, seed=3)
    proj, flats, darks = (scan[k].compute() for k in ("projections", "flats", "darks"))
    trans = tp.normalize(proj, flats, darks)
    hot = np.all(proj == proj[0], axis=0) & np.all(flats == proj[0], axis=0)
    assert hot.sum() == 5  # fixed bright pixels in every frame
    assert np.all(proj[0][hot] > 2 * 3e4)
    assert not np.any(np.all(darks == darks[0], axis=0) & hot)
    col_gain = np.median(trans, axis=(0, 1))  # per column, over angles and rows
    assert 0.01 < np.std(col_gain) < 0.03
    # a stripe is constant over the projections
    row_std = trans[:, :, 5].std(axis=0).mean()
    assert abs(col_gain[5] - 1) > 0 and row_std < 0.02


def test_scan_is_lazy_per_chunk(monkeypatch):
    calls = []
    real = _forward.project_volume

    def counting(mu, theta, **kwargs):
        calls.append(np.asarray(theta).copy())
        return real(mu, theta, **kwargs)

    monkeypatch.setattr(_forward, "project_volume", counting)
    vol = rasterize_ellipsoids([Ellipsoid((0.0, 0.0, 0.0), (6.0, 8.0, 8.0), 10.0)], (8, 24, 24))
    theta = np.linspace(0, np.pi, 40, endpoint=False)
    kw = dict(theta=theta, pixel_size_um=1.0, energy_keV=35.0, chunk_angles=8, seed=5)
    scan = simulate_scan(vol, projector_angles=8, **kw)
    for key in ("projections", "flats", "darks"):
        assert isinstance(scan[key], da.Array) and scan[key].dtype == np.uint16
    assert scan["projections"].chunks[0] == (8,) * 5
    assert calls == []  # nothing computed yet
    chunk = scan["projections"][16:24].compute()
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], theta[16:24])
    # the chunk equals the same rows of the whole stack, and does not depend on grouping
    whole = scan["projections"].compute()
    np.testing.assert_array_equal(chunk, whole[16:24])
    grouped = simulate_scan(vol, projector_angles=16, **kw)
    calls.clear()
    grouped["projections"][16:24].compute()
    assert len(calls) == 1 and calls[0].size == 16  # its group of 16 angles only


def test_write_scan_dxchange_and_tiff(tmp_path):
    theta = np.linspace(0, np.pi, 10, endpoint=False)
    vol = rasterize_ellipsoids([Ellipsoid((0.0, 0.0, 0.0), (4.0, 6.0, 6.0), 20.0)], (6, 16, 16))
    scan = simulate_scan(vol, theta=theta, pixel_size_um=1.0, energy_keV=35.0, n_flats=4,
                         n_darks=3, chunk_angles=4)
    h5 = write_scan(tmp_path / "scan.h5", scan, tiff_dir=tmp_path / "tiff")
    raw = read_dxchange(h5)
    np.testing.assert_array_equal(raw.projections.compute(), scan["projections"].compute())
    np.testing.assert_array_equal(raw.flats.compute(), scan["flats"].compute())
    np.testing.assert_allclose(raw.theta, theta, atol=1e-12)
    np.testing.assert_allclose(raw.flat_index, scan["flat_index"], atol=1e-9)
    tdir = tmp_path / "tiff"
    tif = read_tiff_series(tdir / "proj", tdir / "flat", tdir / "dark",
                           theta=np.loadtxt(tdir / "theta.txt"),
                           flat_index=np.loadtxt(tdir / "flat_index.txt"))
    assert len(list((tdir / "proj").glob("*.tif"))) == 10
    np.testing.assert_array_equal(tif.projections.compute(), scan["projections"].compute())
    np.testing.assert_array_equal(tif.darks.compute(), scan["darks"].compute())
    with pytest.raises(FileExistsError):
        write_scan(tmp_path / "scan.h5", scan)


def test_simulate_scan_bad_inputs():
    vol = np.zeros((2, 8, 8), np.float32)
    theta = np.linspace(0, np.pi, 4, endpoint=False)
    kw = dict(pixel_size_um=1.0, energy_keV=35.0)
    with pytest.raises(ValueError, match="photons"):
        simulate_scan(vol, theta=theta, photons=7e4, **kw)
    with pytest.raises(AngleUnitError):
        simulate_scan(vol, theta=np.rad2deg(theta) + 10, **kw)
    with pytest.raises(ShapeMismatchError, match="delta"):
        simulate_scan(vol, np.zeros((2, 8, 9)), theta=theta, distance_mm=10, **kw)
    with pytest.raises(ValueError, match="flat_series"):
        simulate_scan(vol, theta=theta, n_flats=1, flat_series=2, **kw)
    with pytest.raises(ValueError, match="pixel_size_um"):
        simulate_scan(vol, theta=theta, pixel_size_um=0.0, energy_keV=35.0)


def test_psf_blurs_and_zingers_hit_single_frames():
    """Detector blur widens an edge; zingers are bright pixels of single projections."""
    from tomopipe.simulate import simulate_scan

    mu = np.zeros((8, 32, 32), np.float32)
    mu[:, :, 16:] = 50.0  # an edge along x in every slice
    theta = np.array([0.0, np.pi / 2])
    kw = dict(theta=theta, pixel_size_um=1.0, energy_keV=35.0, photons=1e4, poisson=False, beam_profile=False,
              flat_drift=0.0)
    sharp = simulate_scan(mu, **kw)["projections"].compute().astype(float)
    blurred = simulate_scan(mu, psf_sigma_px=2.0, **kw)["projections"].compute().astype(float)
    prof_s, prof_b = sharp[0, 4], blurred[0, 4]  # θ = 0: the edge is a step along the columns
    grad = lambda p: np.abs(np.diff(p)).max()  # noqa: E731
    assert grad(prof_b) < 0.6 * grad(prof_s)
    assert prof_b[:8].mean() == pytest.approx(prof_s[:8].mean(), rel=0.01)  # far from the edge: unchanged
    zing = simulate_scan(mu, zingers=5e-3, seed=1, **kw)["projections"].compute().astype(float)
    hits = zing > sharp + 0.5e4
    assert 0 < hits.sum() < 0.02 * hits.size
    with pytest.raises(ValueError, match="psf_sigma_px"):
        simulate_scan(mu, psf_sigma_px=-1.0, **kw)
    with pytest.raises(ValueError, match="zingers"):
        simulate_scan(mu, zingers=0.5, **kw)
