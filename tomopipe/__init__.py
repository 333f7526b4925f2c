"""tomopipe: chunked X-ray tomography for battery in-situ CT.

Axis order everywhere: projections ``(angle, row, col)``; volumes ``(z, y, x)`` with z the
stack (pressure) axis of the cell, which is the detector-row axis in a standard set-up.
"""

__version__ = "0.1.0"
