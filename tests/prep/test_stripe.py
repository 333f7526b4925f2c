import numpy as np
import pytest
from numpy.testing import assert_allclose

from tomopipe.prep import remove_stripe_based_sorting, remove_stripe_fw, remove_stripe_ti

STRIPE_COL = 70


@pytest.fixture(scope="module")
def smooth_tomo():
    """Smooth sinograms of three Gaussian blobs (360 angles over π, 128 columns, 2 rows)."""
    theta = np.linspace(0, np.pi, 360, endpoint=False)[:, None]
    col = np.arange(128)[None, :] - 64
    sino = np.full((360, 128), 0.05)
    for x0, y0, s, a in [(10, -5, 20, 1.0), (-20, 15, 16, 0.6), (0, 0, 40, 0.5)]:
        trace = x0 * np.cos(theta) + y0 * np.sin(theta)
        sino += a * np.exp(-((col - trace) ** 2) / (2 * s * s))
    return np.stack([sino, 0.8 * sino], axis=1).astype(np.float32)


def _striped(tomo):
    out = tomo.copy()
    out[:, :, STRIPE_COL] += 0.1  # a constant offset on one detector column
    return out


@pytest.mark.parametrize("dim", [1, 2])
def test_sorting_removes_stripe_and_preserves_sinogram(smooth_tomo, dim):
    striped = _striped(smooth_tomo)
    out = remove_stripe_based_sorting(striped, dim=dim)
    assert out.dtype == np.float32 and out.shape == striped.shape
    err_before = np.abs(striped - smooth_tomo)[:, :, STRIPE_COL].mean()
    err_after = np.abs(out - smooth_tomo)[:, :, STRIPE_COL].mean()
    assert err_after < err_before / 5
    elsewhere = np.delete(np.abs(out - smooth_tomo), STRIPE_COL, axis=2)
    assert elsewhere.max() < 0.01 * np.ptp(smooth_tomo)


def test_sorting_keeps_values_of_each_column_order():
    # A sinogram that is constant along columns has nothing to correct.
    rng = np.random.default_rng(0)
    tomo = np.repeat(rng.uniform(size=(50, 1, 1)), 40, axis=2).astype(np.float32)
    assert_allclose(remove_stripe_based_sorting(tomo, size=5), tomo)


def test_fw_reduces_stripe(smooth_tomo):
    striped = _striped(smooth_tomo)
    out = remove_stripe_fw(striped, level=3)
    err_before = np.abs(striped - smooth_tomo)[:, :, STRIPE_COL].mean()
    err_after = np.abs(out - smooth_tomo)[:, :, STRIPE_COL].mean()
    assert err_after < err_before / 4


@pytest.mark.parametrize(
    "func, kwargs",
    [
        (remove_stripe_fw, {}),
        (remove_stripe_ti, {}),
        (remove_stripe_ti, {"nblock": 3}),
        (remove_stripe_based_sorting, {}),
    ],
)
def test_row_chunks_equal_whole(smooth_tomo, func, kwargs):
    tomo = np.concatenate([smooth_tomo, smooth_tomo[:, ::-1] * 1.1], axis=1)
    whole = func(tomo, **kwargs)
    for r in range(tomo.shape[1]):
        assert_allclose(func(tomo[:, r:r + 1], **kwargs), whole[:, r:r + 1], rtol=1e-6, atol=1e-7)


def test_ti_blocks_cover_all_angles(smooth_tomo):
    out = remove_stripe_ti(_striped(smooth_tomo)[:100], nblock=3)  # 100 = 3·33 + 1
    assert np.isfinite(out).all()
    assert np.abs(out[-1] - 1.0).max() > 0.01  # the last angle is filtered, not set to 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda t: remove_stripe_fw(t[:1]), "angles"),
        (lambda t: remove_stripe_fw(t, level=0), "level"),
        (lambda t: remove_stripe_fw(t, sigma=0), "sigma"),
        (lambda t: remove_stripe_ti(t, nblock=-1), "nblock"),
        (lambda t: remove_stripe_based_sorting(t, dim=3), "dim"),
        (lambda t: remove_stripe_based_sorting(t[0]), "tomo"),
    ],
)
def test_bad_arguments(smooth_tomo, call, match):
    with pytest.raises(ValueError, match=match):
        call(smooth_tomo)
