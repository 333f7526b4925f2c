"""Digital volume correlation (DVC) between states of an in-situ series.

Local (subset) DVC on a node grid laid out in physical units: FFT cross-correlation for an
integer start (coarse-to-fine for large motions), inverse-compositional Gauss–Newton on ZNSSD
for the sub-voxel translation (and optionally the full affine map) with cubic B-spline
interpolation; strain from the displacement field; per-layer summaries and quiver plots.

Conventions: volumes and vectors ``(z, y, x)``, z the stack axis; the displacement ``u`` maps
the reference to the deformed volume, ``deformed(x + u(x)) ≈ reference(x)``; voxels and µm.
"""

from ._correlate import STATUS, ZNCC_MIN, NodeResult, correlate_node, dvc
from ._grid import NodeGrid, node_grid
from ._strain import DisplacementGrid, Strain, displacement_grid, strain
from ._summary import interface_motion, layer_displacement, quiver_plot

__all__ = [
    "dvc", "correlate_node", "NodeResult", "STATUS", "ZNCC_MIN", "node_grid", "NodeGrid",
    "displacement_grid", "strain", "DisplacementGrid", "Strain",
    "layer_displacement", "interface_motion", "quiver_plot",
]
