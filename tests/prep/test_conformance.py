"""tomopipe.prep against tomopy's own reference arrays (tolerances as in tomopy's tests)."""

import numpy as np
from numpy.testing import assert_allclose

from tomopipe import prep


def test_angle_reference_is_float32_castable(tomopy_ref):
    # tomopy's tests cast the float64 angles k·π/16 to float32.
    theta = tomopy_ref("angle").astype(np.float32)
    assert_allclose(theta, np.arange(16) * np.pi / 16, rtol=1e-6)


def test_normalize(tomopy_ref):
    out = prep.normalize(tomopy_ref("tomo"), tomopy_ref("flat"), tomopy_ref("dark"))
    assert out.dtype == np.float32
    assert_allclose(out, tomopy_ref("normalize"), rtol=1e-7)


def test_normalize_nf(tomopy_ref):
    out = prep.normalize_nf(
        tomopy_ref("tomo"), tomopy_ref("flat_1"), tomopy_ref("dark"), flat_loc=(0, 4, 8, 12, 16)
    )
    assert out.dtype == np.float32
    expected = tomopy_ref("normalize_nf")  # float64 in tomopy's test data
    assert_allclose(out.astype(np.float64), expected, rtol=1e-7)


def test_retrieve_phase(tomopy_ref):
    out = prep.retrieve_phase(tomopy_ref("proj"))
    assert out.dtype == np.float32
    assert_allclose(out, tomopy_ref("retrieve_phase"), rtol=1e-6)


def test_remove_stripe_fw(tomopy_ref):
    out = prep.remove_stripe_fw(tomopy_ref("proj"))
    assert_allclose(out, tomopy_ref("remove_stripe_fw"), rtol=1e-2)


def test_remove_stripe_ti(tomopy_ref):
    out = prep.remove_stripe_ti(tomopy_ref("proj"))
    assert_allclose(out, tomopy_ref("remove_stripe_ti"), rtol=1e-2)


def test_inputs_are_not_modified(tomopy_ref):
    proj = tomopy_ref("proj")
    before = proj.copy()
    prep.retrieve_phase(proj)
    prep.remove_stripe_fw(proj)
    prep.remove_stripe_ti(proj)
    np.testing.assert_array_equal(proj, before)
