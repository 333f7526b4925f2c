"""Tests of tomopipe.quantify._thickness: analytic shapes, porespy, chunked == in-memory."""

import warnings

import dask.array as da
import numpy as np
import pytest

from tomopipe.quantify import ResolutionWarning
from tomopipe.quantify._thickness import _have_edt, local_thickness, thickness_distribution


def _ball(shape, centre, radius):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return r2 <= radius**2, r2


def _blobs(n=48, seed=3, porosity=0.45, sigma=2.5):
    """Smooth random two-phase volume (independent of porespy)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), sigma)
    return field > np.quantile(field, 1 - porosity)


# ------------------------------------------------------------------------ analytic shapes
@pytest.mark.parametrize("radius", [3, 5, 8])
def test_ball_reads_its_diameter(radius):
    vox = 0.7
    shape = (2 * radius + 7,) * 3
    c = (radius + 3,) * 3
    ball, r2 = _ball(shape, c, radius)
    lt = local_thickness(ball, vox)
    assert lt.dtype == np.float32 and lt.shape == shape
    assert np.all(lt[~ball] == 0)
    assert np.all(lt[ball] > 0)
    inner = r2 <= (radius - 1) ** 2
    # the digital ball {|p - c| <= R} reads 2R (centre-to-centre convention), ±1 voxel
    np.testing.assert_allclose(lt[inner], 2 * radius * vox, atol=1.0 * vox)
    assert lt.max() <= (2 * radius + 1) * vox + 1e-5


@pytest.mark.parametrize("t", [3, 4, 5, 6, 9, 10])
def test_slab_reads_its_thickness(t):
    vox = 2.0
    slab = np.zeros((t + 6, 20, 21), dtype=bool)
    slab[3 : 3 + t] = True
    lt = local_thickness(slab, vox)
    expected = (t if t % 2 == 0 else t + 1) * vox  # T for even T, T + 1 for odd T
    np.testing.assert_array_equal(lt[slab], np.float32(expected))
    assert np.all(lt[~slab] == 0)


def test_two_touching_spheres_keep_their_own_sizes():
    r1, r2 = 8, 4
    shape = (24, 24, 40)
    c1 = (12, 12, 10)
    c2 = (12, 12, 10 + r1 + r2)  # touching along x
    big, d1 = _ball(shape, c1, r1)
    small, d2 = _ball(shape, c2, r2)
    lt = local_thickness(big | small)
    in_big = d1 <= (r1 - 1) ** 2
    in_small = (d2 <= (r2 - 1) ** 2) & (d1 > (r1 + 1) ** 2)
    assert in_small.sum() > 50
    np.testing.assert_allclose(lt[in_big], 2 * r1, atol=1.0)
    np.testing.assert_allclose(lt[in_small], 2 * r2, atol=1.0)
    # the big ball does not leak its size into the small one beyond the contact zone
    assert np.median(lt[small & ~big]) == pytest.approx(2 * r2, abs=1.0)


def test_cylinder_reads_its_diameter():
    radius = 6
    shape = (16, 2 * radius + 5, 2 * radius + 5)  # axis along z, spanning the volume
    yy, xx = np.ogrid[: shape[1], : shape[2]]
    r2 = (yy - radius - 2) ** 2 + (xx - radius - 2) ** 2
    cyl = np.broadcast_to(r2 <= radius**2, shape)
    lt = local_thickness(cyl, 1.5)
    inner = np.broadcast_to(r2 <= (radius - 1) ** 2, shape)
    np.testing.assert_allclose(lt[inner], 2 * radius * 1.5, atol=1.5)
    assert np.all(lt[~cyl] == 0)


def test_empty_full_and_bad_input():
    assert not local_thickness(np.zeros((5, 5, 5), bool)).any()
    full = np.ones((6, 6, 6), bool)
    with pytest.raises(ValueError, match="max_diameter_um"):
        local_thickness(full)
    np.testing.assert_array_equal(local_thickness(full, 0.5, max_diameter_um=3.0), 3.0)
    with pytest.raises(ValueError, match="voxel_size_um"):
        local_thickness(full, 0.0)
    with pytest.raises(ValueError, match="resolution_um"):
        local_thickness(full, 1.0, resolution_um=-1)
    with pytest.raises(ValueError, match="engine"):
        local_thickness(full, 1.0, engine="gpu")


def test_max_diameter_clips():
    ball, _ = _ball((25, 25, 25), (12, 12, 12), 9)
    lt = local_thickness(ball, 1.0, max_diameter_um=7.0)
    assert lt.max() == pytest.approx(7.0)
    assert np.all(lt[ball] > 0)


def test_engines_agree():
    pytest.importorskip("edt")
    im = _blobs(40, seed=5)
    a = local_thickness(im, 0.9, engine="scipy")
    b = local_thickness(im, 0.9, engine="edt")
    np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------------------------- porespy
def _porespy():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import porespy
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"porespy not importable: {exc}")
    return porespy


def test_agrees_with_porespy_blobs():
    ps = _porespy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = ps.generators.blobs(shape=[64, 64, 64], porosity=0.4, seed=7)
        ref_radius = ps.filters.local_thickness(im)  # radius in voxels, integer radii
    im = np.asarray(im, dtype=bool)
    vox = 0.88
    ref = 2.0 * ref_radius * vox  # porespy radius (voxels) -> our diameter (µm)

    # same integer-radius levels: identical voxel by voxel
    same = local_thickness(im, vox, resolution_um=2 * vox)
    np.testing.assert_allclose(same, ref, rtol=0, atol=1e-4)

    # default one-voxel levels: never below porespy, nearly always within one voxel
    ours = local_thickness(im, vox)
    diff = (ours - ref)[im] / vox
    assert diff.min() >= -1e-4
    assert np.mean(np.abs(diff) <= 1 + 1e-4) >= 0.95
    mean_ours, mean_ref = ours[im].mean(), ref[im].mean()
    assert 0 <= (mean_ours - mean_ref) / vox <= 1.0  # half-step quantization bias at most
    assert abs(mean_ours / mean_ref - 1) < 0.10


# -------------------------------------------------------------------------------- chunked
@pytest.mark.parametrize("chunks", [8, (16, 12, 20)])
def test_chunked_equals_in_memory(chunks):
    im = _blobs(48, seed=11)
    vox = 0.5
    ref = local_thickness(im, vox)
    dmax = float(ref.max())  # covers the largest thickness: exact equality
    lazy = local_thickness(da.from_array(im, chunks=chunks), vox, max_diameter_um=dmax)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
    np.testing.assert_array_equal(lazy.compute(), ref)

    # a smaller cap: chunked equals in-memory with the same cap, exactly
    cap = 3.5
    ref_cap = local_thickness(im, vox, max_diameter_um=cap)
    assert ref_cap.max() == pytest.approx(cap)
    lazy_cap = local_thickness(da.from_array(im, chunks=chunks), vox, max_diameter_um=cap)
    np.testing.assert_array_equal(lazy_cap.compute(), ref_cap)


def test_chunked_zarr_input(tmp_path):
    zarr = pytest.importorskip("zarr")
    im = _blobs(32, seed=2)
    z = zarr.create_array(tmp_path / "m.zarr", shape=im.shape, chunks=(10, 16, 16),
                          dtype=bool)
    z[...] = im
    ref = local_thickness(im, 1.0)
    out = local_thickness(z, 1.0, max_diameter_um=float(ref.max()))
    np.testing.assert_array_equal(out.compute(), ref)


def test_chunked_requires_max_diameter():
    x = da.zeros((16, 16, 16), dtype=bool, chunks=8)
    with pytest.raises(ValueError, match="max_diameter_um"):
        local_thickness(x, 1.0)


# --------------------------------------------------------------------------- distribution
def test_distribution_single_size_packing():
    radius, vox = 4, 0.5
    shape = (40, 40, 40)
    packing = np.zeros(shape, bool)
    for c in [(8, 8, 8), (8, 8, 28), (8, 28, 18), (28, 10, 10), (28, 28, 28), (20, 20, 20)]:
        packing |= _ball(shape, c, radius)[0]
    lt = local_thickness(packing, vox)
    table = thickness_distribution(lt, voxel_size_um=vox)
    s = table.attrs["summary"]
    assert table["fraction"].sum() == pytest.approx(1.0)
    assert table["cumulative_fraction"].iloc[-1] == pytest.approx(1.0)
    assert s["median_um"] == pytest.approx(2 * radius * vox)
    assert s["d50_um"] == s["median_um"]
    assert s["n_voxels"] == packing.sum()
    assert s["volume_um3"] == pytest.approx(packing.sum() * vox**3)
    assert table["volume_um3"].sum() == pytest.approx(s["volume_um3"])
    assert s["d10_um"] <= s["d50_um"] <= s["d90_um"]


def test_distribution_bins_weights_and_chunked():
    im = _blobs(40, seed=4)
    vox = 0.8
    lt = local_thickness(im, vox)
    exact = thickness_distribution(lt, im, voxel_size_um=vox)
    vals = lt[im]
    s = exact.attrs["summary"]
    assert s["mean_um"] == pytest.approx(vals.mean(), rel=1e-6)
    assert s["median_um"] == pytest.approx(np.quantile(vals, 0.5, method="inverted_cdf"))
    assert s["d90_um"] == pytest.approx(np.quantile(vals, 0.9, method="inverted_cdf"))
    np.testing.assert_array_equal(exact["thickness_um"], np.unique(vals))

    binned = thickness_distribution(lt, bins=5, voxel_size_um=vox)
    assert len(binned) == 5
    assert binned["fraction"].sum() == pytest.approx(1.0)
    assert binned["n_voxels"].sum() == im.sum()
    assert binned.attrs["summary"]["median_um"] == s["median_um"]

    edges = np.arange(0.0, vals.max() + 2.0, 1.0)
    by_edges = thickness_distribution(lt, bins=edges)
    hist = np.histogram(vals, edges)[0]
    np.testing.assert_allclose(by_edges["fraction"], hist / hist.sum())

    number = thickness_distribution(lt, weights="number")
    w = number["fraction"].to_numpy()
    assert w.sum() == pytest.approx(1.0)
    assert number.attrs["summary"]["mean_um"] < s["mean_um"]  # small sizes weigh more

    lazy = thickness_distribution(da.from_array(lt, chunks=9), da.from_array(im, chunks=9),
                                  voxel_size_um=vox)
    np.testing.assert_allclose(lazy["fraction"], exact["fraction"])
    assert lazy.attrs["summary"] == exact.attrs["summary"]

    with pytest.raises(ValueError, match="weights"):
        thickness_distribution(lt, weights="area")
    with pytest.raises(ValueError, match="bins"):
        thickness_distribution(lt, bins=[3.0, 1.0])


# ------------------------------------------------------------------------ anisotropic voxels
def test_anisotropic_voxels_need_no_resampling():
    """A ball on voxels twice as long in z reads the diameter of the same ball on cubes."""
    n = 40
    ball, _ = _ball((n, n, n), (20, 20, 20), 8.2)
    iso = local_thickness(ball, 1.0)
    aniso = local_thickness(ball[::2], (2.0, 1.0, 1.0))
    assert np.median(aniso[ball[::2]]) == pytest.approx(np.median(iso[ball]), abs=1.0)
    assert aniso[ball[::2]].mean() == pytest.approx(iso[ball].mean(), rel=0.03)
    # a slab of 3 slices of 2 µm reads 4 slices: 8 µm (odd slab: T + 1 slices)
    slab = np.zeros((9, 12, 12), bool)
    slab[3:6] = True
    np.testing.assert_array_equal(local_thickness(slab, (2.0, 0.5, 0.5))[slab], 8.0)
    # chunked equals in-memory, both engines agree
    lazy = local_thickness(da.from_array(ball[::2], chunks=(7, 13, 11)), (2.0, 1.0, 1.0),
                           max_diameter_um=20.0)
    np.testing.assert_array_equal(lazy.compute(), aniso)
    if _have_edt():
        np.testing.assert_array_equal(local_thickness(ball[::2], (2.0, 1.0, 1.0), engine="edt"),
                                      local_thickness(ball[::2], (2.0, 1.0, 1.0), engine="scipy"))
    with pytest.raises(ValueError, match="voxel_size_um"):
        local_thickness(ball, (1.0, 1.0))


def test_cap_below_a_voxel_warns():
    ball, _ = _ball((20, 20, 20), (10, 10, 10), 6)
    with pytest.warns(ResolutionWarning, match="max_diameter_um = 20 µm"):
        lt = local_thickness(ball, 34.0, max_diameter_um=20.0)
    assert np.all(lt[ball] == 20.0)  # every value clipped: what the warning is about
