"""Shared input validators; each message names the parameter at fault."""

from __future__ import annotations

import numpy as np

from .errors import AngleUnitError, InvalidDataError, ShapeMismatchError

__all__ = ["check_theta_radians", "check_shape_equality", "check_ndim"]


def check_theta_radians(theta, *, name="theta", source=None):
    """Return `theta` as a float64 array, refusing values that look like degrees.

    Parameters
    ----------
    theta : (N,) array_like
        Rotation angles, in radians.
    name : str
        Parameter name used in the error message.
    source : str, optional
        File or key the angles came from, named in the error message.

    Returns
    -------
    theta : (N,) ndarray of float64

    Raises
    ------
    AngleUnitError
        If any ``|theta| > 2π`` (+1e-6): such a range means degrees were passed.
    InvalidDataError
        If `theta` holds NaN or infinite values (a ``ValueError``).
    ValueError
        If `theta` is not one-dimensional.
    """
    theta = np.asarray(theta, dtype=np.float64)
    where = f" (from {source})" if source else ""
    if theta.ndim != 1:
        raise ValueError(f"{name}{where} must be 1-D, got shape {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise InvalidDataError(f"{name}{where} holds NaN or infinite angles")
    if theta.size and np.max(np.abs(theta)) > 2 * np.pi + 1e-6:
        raise AngleUnitError(
            f"{name}{where} spans up to {np.max(np.abs(theta)):.4g}, more than 2π: it looks like "
            "degrees where radians are due; convert with numpy.deg2rad"
        )
    return theta


def check_shape_equality(a_shape, b_shape, *, a_name, b_name, axes=None):
    """Raise :class:`ShapeMismatchError` unless two shapes agree (on `axes`, if given).

    Parameters
    ----------
    a_shape, b_shape : tuple of int
        The shapes to compare.
    a_name, b_name : str
        Names of the two arrays, used in the message.
    axes : sequence of int, optional
        Compare only these axes (negative indices allowed), e.g. ``(-2, -1)`` to compare
        the (row, col) frame size of flats and projections.
    """
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if axes is None:
        ok = a_shape == b_shape
    else:
        try:
            ok = all(a_shape[ax] == b_shape[ax] for ax in axes)
        except IndexError:
            ok = False
    if not ok:
        what = "shape" if axes is None else f"shape along axes {tuple(axes)}"
        raise ShapeMismatchError(
            f"{a_name} {what} {a_shape} does not match {b_name} {b_shape}"
        )


def check_ndim(arr, ndim, *, name):
    """Raise ``ValueError`` naming `name` unless ``arr.ndim`` is in `ndim` (an int or tuple)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if np.ndim(arr) not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {np.shape(arr)}"
        )
