"""Physical quantities written with their unit ("0.88 um", "35 keV", "10 cm"), via pint."""

from __future__ import annotations

import functools

import numpy as np

from .errors import ConfigError

__all__ = ["parse_quantity", "ureg", "voxel_size_um"]


@functools.lru_cache(maxsize=1)
def _registry():
    import pint

    return pint.UnitRegistry()


def ureg():
    """The shared :class:`pint.UnitRegistry`."""
    return _registry()


def parse_quantity(value, unit, *, name):
    """Convert a quantity written with its unit to a float in `unit`.

    Parameters
    ----------
    value : str or pint.Quantity
        E.g. ``"0.88 um"``, ``"35 keV"``, ``"180 deg"``. A bare number is refused: in a
        workflow every physical quantity carries its unit.
    unit : str
        Target unit, e.g. ``"cm"``.
    name : str or None
        Parameter name, used in error messages (e.g. ``"geometry.pixel_size"``); None leaves
        it out (when the caller names the parameter itself).

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        If `value` has no unit, an unknown unit, or a unit of the wrong dimension.
    """
    import pint

    reg = _registry()
    pre = f"{name}: " if name else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ConfigError(f"{pre}{value!r} has no unit; write it with one, e.g. '{value} {unit}'")
    try:
        q = reg.Quantity(value) if isinstance(value, str) else value
        if not isinstance(q, reg.Quantity):
            raise ConfigError(f"{pre}{value!r} is not a quantity with a unit")
        if q.dimensionless and not reg.Quantity(1, unit).dimensionless:
            raise ConfigError(f"{pre}{value!r} has no unit; write it with one, e.g. '1 {unit}'")
        out = float(q.to(unit).magnitude)
    except ConfigError:
        raise
    except pint.errors.DimensionalityError as exc:
        raise ConfigError(f"{pre}{value!r} cannot be converted to {unit}") from exc
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError,
            AttributeError, TypeError) as exc:
        raise ConfigError(f"{pre}cannot read {value!r} as a quantity in {unit} ({exc})") from exc
    if not np.isfinite(out):
        raise ConfigError(f"{pre}{value!r} is not a finite quantity")
    return out


def voxel_size_um(value, *, name="voxel_size"):
    """A voxel size as ``(dz, dy, dx)`` in µm, from a scalar (isotropic) or three values.

    Parameters
    ----------
    value : float or (3,) sequence of float
        µm. A scalar means the same size along z, y and x.
    name : str
        Parameter name for the error message.

    Returns
    -------
    tuple of 3 float

    Raises
    ------
    ConfigError
        Not one or three positive finite numbers.

    Examples
    --------
    >>> voxel_size_um(0.88)
    (0.88, 0.88, 0.88)
    >>> voxel_size_um([2, 1, 1])
    (2.0, 1.0, 1.0)
    """
    try:
        v = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a number or three numbers (µm)") from None
    if v.size == 1:
        v = np.repeat(v, 3)
    if v.size != 3 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ConfigError(f"{name}: {value!r} must be one or three positive numbers (dz, dy, dx) in µm")
    return tuple(float(x) for x in v)
