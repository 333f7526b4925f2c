"""Quantification of label volumes in physical units, out of core.

Every function takes a ``(z, y, x)`` label volume as a NumPy, dask or zarr array (z the stack
axis; a "layer" is a slab of constant z), the voxel size in µm and the label schema (default
:data:`tomopipe.simulate.LABELS`: 0 pore/crack — the void phase —, 1 electrolyte, 2 active
material, 3 Cu-rich inclusion, 4 carbon, 5 Li, 6 current collector, 255 outside the sample).
Angles: ``angle_to_z_deg`` is the angle between an object's thinnest principal axis and z
(0° = a flat object lying ⟂ z, like cracks under stack pressure).

- per-layer statistics and porosity profiles: :func:`layer_stats`, :func:`porosity_profile`,
  :func:`slice_counts`;
- interfaces from the median grey value per slice: :func:`grey_profile`,
  :func:`find_interfaces`;
- objects across chunk boundaries: :func:`label_objects`, :func:`object_table`,
  :func:`connected_to`;
- cracks and Cu-rich inclusions: :func:`crack_stats`, :func:`inclusion_stats`;
- pore sizes: :func:`local_thickness` (diameter, µm), :func:`thickness_distribution`;
- everything at once, as the pipeline's ``metrics`` stage does: :func:`quantify_labels`.
"""

from ._interfaces import Interfaces, find_interfaces, grey_profile
from ._layers import LayerStats, layer_stats, porosity_profile, slice_counts
from ._objects import Connection, connected_to, label_objects, object_table
from ._phases import CrackStats, InclusionStats, crack_stats, inclusion_stats
from ._report import plot_layer_profiles, plot_orientation, read_table, write_tables
from ._summary import UNITS, Metrics, quantify_labels
from ._thickness import local_thickness, thickness_distribution

__all__ = [
    "slice_counts", "layer_stats", "porosity_profile", "LayerStats",
    "grey_profile", "find_interfaces", "Interfaces",
    "label_objects", "object_table", "connected_to", "Connection",
    "crack_stats", "inclusion_stats", "CrackStats", "InclusionStats",
    "local_thickness", "thickness_distribution",
    "quantify_labels", "Metrics", "UNITS",
    "write_tables", "read_table", "plot_layer_profiles", "plot_orientation",
]
