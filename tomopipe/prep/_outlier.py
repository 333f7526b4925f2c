"""Zinger (bright outlier) removal, tomopy-compatible."""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from ..errors import ShapeMismatchError

__all__ = ["remove_outlier"]


def remove_outlier(arr, dif, size=3, axis=0, ncore=None, out=None):
    """Replace bright outliers (zingers) by the local median.

    Each slice ``arr[..., i, ...]`` along `axis` (a projection, for ``axis=0``) is median
    filtered with a ``size × size`` window in the other axes; a pixel is replaced by the median
    where it exceeds it by at least `dif` (``arr − median >= dif``).  Dark outliers are kept.

    Parameters
    ----------
    arr : (angle, row, col) array_like
        Projections (raw counts or transmission); any N-D array works.
    dif : float
        Threshold, in the units of `arr`: how far above the local median a pixel must be to
        count as an outlier.
    size : int
        Median window width in pixels (odd, ≥ 1).
    axis : int
        Axis along which the array is split into slices filtered independently; 0 filters each
        projection in (row, col).  Projection chunks can then be processed on their own.
    ncore : int, optional
        Accepted for tomopy compatibility and ignored.
    out : ndarray of float32, optional
        Array the result is written to (honoured).

    Returns
    -------
    ndarray of float32
        `arr` with outliers replaced, same shape.

    Raises
    ------
    ValueError
        If `size` < 1 or `axis` is out of range.
    ShapeMismatchError
        If `out` does not have the shape of `arr` or is not float32.

    Notes
    -----
    The median filter reflects at the edges (``scipy.ndimage.median_filter`` default mode),
    as in tomopy's per-slice ``remove_outlier``.  Some recent tomopy versions filter along
    `axis` only (``remove_outlier1d`` semantics); this function keeps the per-slice 2-D
    filter, the established dezinger.

    References
    ----------
    tomopy.misc.corr.remove_outlier (https://tomopy.readthedocs.io).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.ones((1, 5, 5), dtype=np.float32)
    >>> a[0, 2, 2] = 100.0
    >>> float(remove_outlier(a, dif=10)[0, 2, 2])
    1.0
    """
    arr = np.asarray(arr, dtype=np.float32)
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"axis {axis} is out of range for arr with {arr.ndim} dimensions")
    window = [size] * arr.ndim
    window[axis] = 1
    median = scipy.ndimage.median_filter(arr, size=window)
    if out is None:
        out = np.empty(arr.shape, dtype=np.float32)
    elif not isinstance(out, np.ndarray) or out.shape != arr.shape or out.dtype != np.float32:
        raise ShapeMismatchError(
            f"out must be a float32 ndarray of shape {arr.shape}, got "
            f"{getattr(out, 'dtype', type(out).__name__)} {np.shape(out)}"
        )
    np.copyto(out, np.where(arr - median >= np.float32(dif), median, arr))
    return out
