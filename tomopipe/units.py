"""Physical quantities written with their unit ("0.88 um", "35 keV", "10 cm"), via pint."""

from __future__ import annotations

import functools

from .errors import ConfigError

__all__ = ["parse_quantity", "ureg"]


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
    name : str
        Parameter name, used in error messages (e.g. ``"geometry.pixel_size"``).

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
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ConfigError(
            f"{name}: {value!r} has no unit; write it with one, e.g. '{value} {unit}'"
        )
    try:
        q = reg.Quantity(value) if isinstance(value, str) else value
        if not isinstance(q, reg.Quantity):
            raise ConfigError(f"{name}: {value!r} is not a quantity with a unit")
        if q.dimensionless and not reg.Quantity(1, unit).dimensionless:
            raise ConfigError(f"{name}: {value!r} has no unit; write it with one, e.g. '1 {unit}'")
        return float(q.to(unit).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise ConfigError(f"{name}: {value!r} cannot be converted to {unit}") from exc
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError,
            AttributeError, TypeError) as exc:
        raise ConfigError(f"{name}: cannot read {value!r} as a quantity in {unit} ({exc})") from exc
