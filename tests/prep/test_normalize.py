import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from tomopipe.errors import InvalidFlatError, ShapeMismatchError
from tomopipe.prep import minus_log, normalize, normalize_interp, normalize_nf


@pytest.fixture
def raw():
    """Projections of a known transmission with flats and darks (uint16 counts)."""
    rng = np.random.default_rng(1)
    trans = rng.uniform(0.1, 1.0, size=(12, 5, 7))
    dark = np.full((3, 5, 7), 100, dtype=np.uint16)
    flat = np.full((4, 5, 7), 10100, dtype=np.uint16)
    proj = np.round(100 + trans * 10000).astype(np.uint16)
    return proj, flat, dark, trans


def test_normalize_recovers_transmission(raw):
    proj, flat, dark, trans = raw
    out = normalize(proj, flat, dark)
    assert out.dtype == np.float32 and out.shape == proj.shape
    assert_allclose(out, trans, atol=1e-4)


def test_normalize_median_rejects_zinger_in_flat(raw):
    proj, flat, dark, trans = raw
    flat = flat.copy()
    flat[0, 2, 3] = 60000
    assert_allclose(normalize(proj, flat, dark, averaging="median"), trans, atol=1e-4)
    assert abs(normalize(proj, flat, dark)[0, 2, 3] - trans[0, 2, 3]) > 0.1


def test_normalize_cutoff_and_out(raw):
    proj, flat, dark, _ = raw
    out = np.empty(proj.shape, dtype=np.float32)
    res = normalize(proj, flat, dark, 0.5, None, out)
    assert res is out
    assert out.max() <= 0.5


def test_normalize_2d_flat_and_dark(raw):
    proj, flat, dark, _ = raw
    assert_array_equal(normalize(proj, flat[0], dark[0]), normalize(proj, flat, dark))


def test_normalize_dead_pixels_are_clipped_not_rejected(raw):
    proj, flat, dark, _ = raw
    flat = flat.copy()
    flat[:, 0, 0] = 50  # flat below dark: dead pixel
    out = normalize(proj, flat, dark)
    assert np.isfinite(out).all()
    assert out[0, 0, 0] == pytest.approx((proj[0, 0, 0] - 100.0) / 1e-6, rel=1e-6)


@pytest.mark.parametrize("func", ["normalize", "normalize_nf", "normalize_interp"])
def test_frame_shape_mismatch(raw, func):
    proj, flat, dark, _ = raw
    bad_flat = flat[:, :, :-1]
    with pytest.raises(ShapeMismatchError, match="flat.*arr"):
        if func == "normalize":
            normalize(proj, bad_flat, dark)
        elif func == "normalize_nf":
            normalize_nf(proj, bad_flat, dark, flat_loc=(0, 10))
        else:
            normalize_interp(proj, bad_flat, dark, flat_index=[0, 0, 10, 10])
    with pytest.raises(ShapeMismatchError, match="dark"):
        normalize(proj, flat, dark[:, :-1])


@pytest.mark.parametrize(
    "make_flat",
    [
        lambda f: np.zeros_like(f),  # beam off
        lambda f: np.full(f.shape, 50, dtype=f.dtype),  # flat <= dark everywhere
        lambda f: np.where(np.arange(f.size).reshape(f.shape) == 3, np.nan, f.astype(float)),
    ],
    ids=["zero", "below_dark", "nan"],
)
def test_invalid_flat(raw, make_flat):
    proj, flat, dark, _ = raw
    bad = make_flat(flat)
    with pytest.raises(InvalidFlatError, match="flat"):
        normalize(proj, bad, dark)
    with pytest.raises(InvalidFlatError, match="flat"):
        normalize_nf(proj, bad, dark, flat_loc=(0, 10))
    with pytest.raises(InvalidFlatError, match="flat"):
        normalize_interp(proj, bad, dark, flat_index=[0, 0, 10, 10])


def test_invalid_flat_is_value_error(raw):
    proj, flat, dark, _ = raw
    with pytest.raises(ValueError):
        normalize(proj, np.zeros_like(flat), dark)


def test_arr_must_be_3d(raw):
    proj, flat, dark, _ = raw
    with pytest.raises(ValueError, match="arr"):
        normalize(proj[0], flat, dark)


def test_unknown_averaging(raw):
    proj, flat, dark, _ = raw
    with pytest.raises(ValueError, match="averaging"):
        normalize(proj, flat, dark, averaging="mode")


@pytest.fixture
def nf_data():
    """Three flat series of different intensity at projections 0, 10, 20 (two frames each)."""
    rng = np.random.default_rng(2)
    levels = np.array([1000.0, 1200.0, 900.0])
    flat = np.repeat(levels, 2)[:, None, None] * np.ones((6, 4, 5))
    flat += rng.normal(0, 1, flat.shape)
    dark = np.full((2, 4, 5), 10.0)
    proj = rng.uniform(100, 800, size=(24, 4, 5))
    return proj, flat, dark, levels


def test_normalize_nf_nearest_series(nf_data):
    proj, flat, dark, levels = nf_data
    out = normalize_nf(proj, flat, dark, flat_loc=[0, 10, 20])
    flat_med = [np.median(flat[2 * m:2 * m + 2], axis=0) for m in range(3)]
    # boundaries at 0 + 5 and 10 + 5
    for p in range(24):
        m = 0 if p < 5 else (1 if p < 15 else 2)
        assert_allclose(out[p], (proj[p] - 10) / (flat_med[m] - 10), rtol=2e-6)


@pytest.mark.parametrize("chunk", [1, 5, 7])
def test_normalize_nf_chunked_equals_whole(nf_data, chunk):
    proj, flat, dark, _ = nf_data
    whole = normalize_nf(proj, flat, dark, flat_loc=[0, 10, 20])
    for start in range(0, len(proj), chunk):
        idx = np.arange(start, min(start + chunk, len(proj)))
        part = normalize_nf(proj[idx], flat, dark, flat_loc=[0, 10, 20], proj_index=idx)
        assert_array_equal(part, whole[idx])


def test_normalize_nf_bad_arguments(nf_data):
    proj, flat, dark, _ = nf_data
    with pytest.raises(ShapeMismatchError, match="proj_index"):
        normalize_nf(proj[:3], flat, dark, flat_loc=[0, 10], proj_index=[0, 1])
    with pytest.raises(ValueError, match="flat_loc"):
        normalize_nf(proj, flat, dark, flat_loc=[10, 0])
    with pytest.raises(ShapeMismatchError, match="flat"):
        normalize_nf(proj, flat[:2], dark, flat_loc=[0, 10, 20])


def _drifting_scan(n_proj=60, series_at=(0.0, 20.5, 41.0, 59.0), per_series=3):
    """A linear flat drift F(p) = F0 + p·G, flats recorded in series, known transmission."""
    rng = np.random.default_rng(3)
    shape = (6, 8)
    f0 = rng.uniform(8000, 12000, size=shape)
    gain = rng.uniform(-40, 40, size=shape)
    dark = rng.uniform(90, 110, size=shape)
    flat_index = np.repeat(np.asarray(series_at), per_series)
    flat = f0 + flat_index[:, None, None] * gain
    trans = rng.uniform(0.05, 1.0, size=(n_proj,) + shape)
    p = np.arange(n_proj)[:, None, None]
    proj = dark + trans * (f0 + p * gain - dark)
    return proj, flat, dark, flat_index, trans


def test_normalize_interp_recovers_linear_drift_exactly():
    proj, flat, dark, flat_index, trans = _drifting_scan()
    out = normalize_interp(proj, flat, dark[None], flat_index)
    assert out.dtype == np.float32
    assert_allclose(out, trans, rtol=2e-6)
    # plain normalization with the mean flat is biased by the drift
    assert np.max(np.abs(normalize(proj, flat, dark) - trans)) > 0.05


def test_normalize_interp_constant_beyond_ends():
    proj, flat, dark, flat_index, trans = _drifting_scan(series_at=(10.0, 30.0))
    out = normalize_interp(proj, flat, dark, flat_index, averaging="mean")
    first = flat[flat_index == 10.0].mean(axis=0)
    last = flat[flat_index == 30.0].mean(axis=0)
    assert_allclose(out[:10], (proj[:10] - dark) / (first - dark), rtol=2e-6)
    assert_allclose(out[31:], (proj[31:] - dark) / (last - dark), rtol=2e-6)
    assert_allclose(out[10:31], trans[10:31], rtol=2e-6)


def test_normalize_interp_single_series_is_plain_normalize():
    proj, flat, dark, _, _ = _drifting_scan()
    out = normalize_interp(proj, flat[:3], dark, np.full(3, 7.0), averaging="mean")
    assert_allclose(out, normalize(proj, flat[:3], dark), rtol=1e-6)


@pytest.mark.parametrize("chunk", [1, 7, 25])
def test_normalize_interp_chunked_equals_whole(chunk):
    proj, flat, dark, flat_index, _ = _drifting_scan()
    whole = normalize_interp(proj, flat, dark, flat_index)
    for start in range(0, len(proj), chunk):
        idx = np.arange(start, min(start + chunk, len(proj)))
        part = normalize_interp(proj[idx], flat, dark, flat_index, proj_index=idx)
        assert_array_equal(part, whole[idx])


def test_normalize_interp_flat_index_length():
    proj, flat, dark, flat_index, _ = _drifting_scan()
    with pytest.raises(ShapeMismatchError, match="flat_index"):
        normalize_interp(proj, flat, dark, flat_index[:-1])


def test_minus_log_values():
    t = np.array([1.0, np.exp(-2.0), 0.0, -0.3, np.nan, np.inf, -np.inf, 1e-9, 2.0])
    out = minus_log(t)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    floor = -np.log(1e-6)
    assert_allclose(out[:2], [0.0, 2.0], atol=1e-6)
    assert_allclose(out[2:8], floor, rtol=1e-6)
    assert out[8] == pytest.approx(-np.log(2.0), rel=1e-6)


def test_minus_log_clip_min_and_out():
    t = np.array([[[0.0, 0.5]]], dtype=np.float32)
    res = minus_log(t, None, t, clip_min=1e-3)
    assert res is t
    assert_allclose(t, [[[-np.log(1e-3), -np.log(0.5)]]], rtol=1e-6)
    with pytest.raises(ValueError, match="clip_min"):
        minus_log(t, clip_min=0)
    with pytest.raises(ShapeMismatchError, match="out"):
        minus_log(t, out=np.empty((2,), dtype=np.float32))


def test_normalize_interp_accepts_pre_averaged_series():
    proj, flat, dark, flat_index, _ = _drifting_scan()
    positions = np.unique(flat_index)
    averaged = np.stack([flat[flat_index == s].mean(axis=0) for s in positions])
    assert_allclose(
        normalize_interp(proj, averaged, dark, positions),
        normalize_interp(proj, flat, dark, flat_index, averaging="mean"),
        rtol=1e-6,
    )
