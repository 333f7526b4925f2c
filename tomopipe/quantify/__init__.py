"""Quantification of label volumes in physical units, out of core.

Every function takes a ``(z, y, x)`` label volume as a NumPy, dask or zarr array (z the stack
axis), the voxel size ``(dz, dy, dx)`` in µm (one number for cubic voxels) and a label schema
(:class:`tomopipe.schema.LabelSchema`, or a mapping class name → value; by default the one
stored with a zarr array, else the simulator's :data:`tomopipe.schema.SIMULATOR_TRUTH`). A
function needs only the classes its metric uses and names the missing ones
(:class:`tomopipe.schema.MissingClassError`): porosity counts the schema's void classes, the
sample is everything but its outside class (if it has one).

*Layers* are slabs of constant z, given the same way to every per-layer table: ``layers``
(explicit slabs in µm: a DataFrame with ``z_start_um``/``z_stop_um``, a mapping name →
(start, stop), or edges), or ``n_layers``, or ``thickness_um`` (over the volume or
``z_range_um``); none of them means one slab per slice. Angles: ``angle_to_z_deg`` is the
angle between an object's thinnest principal axis and z (0° = flat ⟂ z: a crack's tilt).

- per-layer statistics and porosity profiles: :func:`layer_stats`, :func:`porosity_profile`,
  :func:`slice_counts`;
- interfaces from phase fractions (labels) or grey histograms, with a confidence each:
  :func:`find_interfaces`, :func:`grey_profile`, :func:`grey_quantiles`;
- objects across chunk boundaries: :func:`label_objects`, :func:`object_table`,
  :func:`connected_to`;
- cracks told from pores, with their tilt: :func:`crack_stats`; Cu-rich inclusions:
  :func:`inclusion_stats`;
- particles split by a watershed, with sizes and sphericity per layer:
  :func:`separate_particles`, :func:`particle_table`, :func:`particle_stats`,
  :func:`surface_area`;
- pore sizes: :func:`local_thickness` (diameter, µm), :func:`thickness_distribution`;
- everything at once, as the pipeline's ``metrics`` stage does: :func:`quantify_labels`.

Length parameters in µm that fall below one voxel give a :class:`ResolutionWarning`; their
defaults are set in voxels, so they scale with the data.
"""

from ._cracks import CrackStats, crack_stats
from ._input import ResolutionWarning, VoxelSize
from ._interfaces import Interfaces, find_interfaces, grey_profile, grey_quantiles
from ._layers import LayerStats, layer_stats, porosity_profile, slice_counts
from ._objects import Connection, connected_to, label_objects, object_table
from ._particles import (
    ParticleStats,
    particle_stats,
    particle_table,
    separate_particles,
    surface_area,
)
from ._phases import InclusionStats, inclusion_stats
from ._report import plot_layer_profiles, plot_orientation, read_table, write_tables
from ._summary import UNITS, Metrics, quantify_labels
from ._thickness import local_thickness, thickness_distribution

#: Revision of what the methods of this package compute: changed whenever one of them gives
#: other numbers for the same labels and parameters (the crack defaults of 2026-12-01, …).
#: Part of the fingerprint of the pipeline's ``metrics`` and ``truth`` stages, so a store's
#: earlier metrics are recomputed rather than reused after such a change.
METHODS_REVISION = "2026-12-01"

__all__ = [
    "METHODS_REVISION",
    "slice_counts", "layer_stats", "porosity_profile", "LayerStats",
    "grey_profile", "grey_quantiles", "find_interfaces", "Interfaces",
    "label_objects", "object_table", "connected_to", "Connection",
    "crack_stats", "inclusion_stats", "CrackStats", "InclusionStats",
    "separate_particles", "particle_table", "particle_stats", "surface_area", "ParticleStats",
    "local_thickness", "thickness_distribution",
    "quantify_labels", "Metrics", "UNITS",
    "ResolutionWarning", "VoxelSize",
    "write_tables", "read_table", "plot_layer_profiles", "plot_orientation",
]
