"""Reconstruction: filtered back-projection (tomopy's ``recon``) and centre finding.

Chunk contract: reconstruction needs every angle of a detector row, so the dask wrapper
:func:`recon_dask` takes projections chunked as ``(all angles, r rows, all cols)`` and returns
a volume chunked ``(r, N, N)``; rows are independent, so no overlap is needed.
"""

from ._auto import find_center
from ._center import find_center_pc, find_center_vo
from ._dask import recon_dask
from ._fbp import angle_weights, recon
from ._filters import FILTER_NAMES, fbp_filter, filter_window

__all__ = [
    "recon",
    "recon_dask",
    "angle_weights",
    "fbp_filter",
    "filter_window",
    "FILTER_NAMES",
    "find_center_vo",
    "find_center_pc",
    "find_center",
]
