import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tomopipe.errors import ShapeMismatchError
from tomopipe.prep import remove_outlier


def test_hot_pixels_removed_rest_unchanged():
    rng = np.random.default_rng(4)
    y, x = np.mgrid[:40, :50]
    clean = (1000 + 5 * x + 3 * y + rng.normal(0, 2, size=(6, 40, 50))).astype(np.float32)
    arr = clean.copy()
    hot = [(0, 5, 7), (2, 20, 30), (5, 39, 49), (3, 0, 0)]
    for idx in hot:
        arr[idx] += 5000
    out = remove_outlier(arr, dif=500, size=3)
    mask = np.zeros(arr.shape, dtype=bool)
    for idx in hot:
        mask[idx] = True
    assert_array_equal(out[~mask], clean[~mask])
    assert np.abs(out[mask] - clean[mask]).max() < 30


def test_dark_outliers_kept_and_threshold_inclusive():
    arr = np.full((1, 5, 5), 10.0, dtype=np.float32)
    arr[0, 1, 1] = -100.0
    arr[0, 3, 3] = 15.0
    out = remove_outlier(arr, dif=5.0)
    assert out[0, 1, 1] == -100.0
    assert out[0, 3, 3] == 10.0  # arr − median == dif is replaced (tomopy's >=)


def test_filters_each_projection_independently():
    arr = np.zeros((3, 7, 7), dtype=np.float32)
    arr[1, 3, 3] = 100.0
    arr[0] = 100.0  # would be the median of a 3-D window along angles
    out = remove_outlier(arr, dif=10)
    assert out[1, 3, 3] == 0.0
    assert_array_equal(out[0], arr[0])
    assert_array_equal(remove_outlier(arr[1:2], dif=10), out[1:2])


def test_axis_and_out():
    arr = np.zeros((7, 3, 7), dtype=np.float32)
    arr[3, 1, 3] = 100.0
    out = np.empty_like(arr)
    res = remove_outlier(arr, 10, 3, 1, None, out)
    assert res is out and out[3, 1, 3] == 0.0
    with pytest.raises(ShapeMismatchError, match="out"):
        remove_outlier(arr, 10, out=np.empty((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="axis"):
        remove_outlier(arr, 10, axis=3)
    with pytest.raises(ValueError, match="size"):
        remove_outlier(arr, 10, size=0)
