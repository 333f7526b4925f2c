"""tomopipe: chunked X-ray tomography for battery in-situ CT.

Axis order everywhere: projections ``(angle, row, col)``; volumes ``(z, y, x)`` with z the
stack (pressure) axis of the cell, which is the detector-row axis in a standard set-up.

The tomopy-compatible functions are available at the top level with tomopy's names,
argument order and units (cm, keV, radians)::

    import tomopipe as tp
    proj = tp.normalize(proj, flat, dark)
    proj = tp.minus_log(proj)
    rec = tp.recon(proj, theta, center=tp.find_center_vo(proj))
"""

__version__ = "0.2.0"

from .prep import (
    minus_log,
    normalize,
    normalize_interp,
    normalize_nf,
    remove_outlier,
    remove_stripe_based_sorting,
    remove_stripe_fw,
    remove_stripe_ti,
    retrieve_phase,
    retrieve_phase_paganin,
)
from .reconstruction import find_center_pc, find_center_vo, recon

__all__ = [
    "__version__",
    "normalize",
    "normalize_nf",
    "normalize_interp",
    "minus_log",
    "remove_outlier",
    "retrieve_phase",
    "retrieve_phase_paganin",
    "remove_stripe_fw",
    "remove_stripe_ti",
    "remove_stripe_based_sorting",
    "recon",
    "find_center_vo",
    "find_center_pc",
]
