"""The rotation centre of a sinogram stack, as the pipeline finds it automatically."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ._center import find_center_pc, find_center_vo

__all__ = ["find_center"]

_METHODS = ("vo", "pc")


def find_center(sinograms, theta, *, method="vo", n_rows=8):
    """Rotation centre (column index, tomopy's convention) from a few central rows.

    Parameters
    ----------
    sinograms : (angle, row, col) array_like
        Line integrals after ``minus_log`` (NumPy, dask or zarr: only the rows used are read).
    theta : (angle,) array_like
        Angles in radians.
    method : {"vo", "pc"}
        ``"vo"``: :func:`find_center_vo` on the mean of `n_rows` rows around the middle
        of the detector (Vo et al. 2014); ``"pc"``: :func:`find_center_pc` on the projections
        closest to 0° and 180° (phase correlation, tomopy's ``find_center_pc``).
    n_rows : int
        Rows used by ``"vo"`` (all of them when the detector has fewer).

    Returns
    -------
    float
        The centre, a column index.

    Raises
    ------
    ConfigError
        An unknown `method`.
    """
    if method not in _METHODS:
        raise ConfigError(f"geometry.center_method: must be one of {_METHODS}, got {method!r}")
    theta = np.asarray(theta, dtype=np.float64)
    n_total = sinograms.shape[1]
    mid = n_total // 2
    lo, hi = max(0, mid - n_rows // 2), min(n_total, mid + (n_rows + 1) // 2)
    if method == "vo":
        block = np.asarray(sinograms[:, lo:hi, :])
        return float(find_center_vo(block, ind=list(range(hi - lo))))
    i0 = int(np.argmin(np.abs(theta - theta.min())))
    i1 = int(np.argmin(np.abs(theta - (theta[i0] + np.pi))))
    return float(find_center_pc(np.asarray(sinograms[i0]), np.asarray(sinograms[i1])))
