"""Preprocessing of projections: normalization, dezinger, phase retrieval, stripe removal.

tomopy-compatible NumPy kernels: tomopy's function names, argument order and units (cm, keV),
plus keyword-only options.  Every function takes a block of projections ``(angle, row, col)``
and returns float32; none modifies its input unless given it as ``out``.  tomopy's ``ncore``
and ``nchunk`` arguments are accepted and ignored (parallelism comes from dask); ``out`` is
honoured where tomopy has it.

:func:`flat_field` averages a scan's flat series and darks out of core; :func:`normalize_dask`,
:func:`retrieve_phase_dask` and :func:`sinograms_dask` wrap the kernels for lazy stacks.

Chunking contract for the dask wrappers:

- ``normalize``, ``minus_log``, ``remove_outlier`` (``axis=0``): any chunks of angles (and,
  except ``remove_outlier``, of rows and columns).
- ``normalize_nf``, ``normalize_interp``: chunks of angles, passing each chunk's absolute
  projection indices as ``proj_index``.
- ``retrieve_phase``, ``retrieve_phase_paganin``: chunks of angles with whole projections.
- ``remove_stripe_*``: chunks of rows with all angles and all columns.
"""

from ._dask import normalize_dask, retrieve_phase_dask, sinograms_dask
from ._flats import FlatField, flat_field
from ._normalize import minus_log, normalize, normalize_interp, normalize_nf
from ._outlier import remove_outlier
from ._phase import paganin_alpha, retrieve_phase, retrieve_phase_paganin, wavelength_m
from ._stripe import remove_stripe_based_sorting, remove_stripe_fw, remove_stripe_ti

__all__ = [
    "normalize",
    "normalize_nf",
    "normalize_interp",
    "minus_log",
    "remove_outlier",
    "retrieve_phase",
    "retrieve_phase_paganin",
    "paganin_alpha",
    "wavelength_m",
    "remove_stripe_fw",
    "remove_stripe_ti",
    "remove_stripe_based_sorting",
    "FlatField",
    "flat_field",
    "normalize_dask",
    "retrieve_phase_dask",
    "sinograms_dask",
]
