"""Physics-based phantoms of in-situ solid-state-battery CT, with ground truth.

- :mod:`._cell`: the microstructure of a Li | β-Li3PS4 | CuS cell along z (the stack axis)
  and its in-situ state sequence (Cu-rich inclusions, cracks ⟂ z, z-displacement), with label
  volumes (schema :data:`LABELS`), displacement fields and per-object tables.
- :mod:`._materials`: μ (1/cm) and δ of the cell's materials at an energy, from xraydb.
- :mod:`._forward`: parallel-beam projection of voxel volumes (tomopy's geometry, as
  :func:`tomopipe.recon`), Fresnel propagation, detector model, streaming DXchange output.
- :mod:`._analytic`: exact line integrals of ellipsoids (test ground truth).
- :mod:`._phantom`: a second, independently written cell phantom (superellipsoid particles,
  Boolean pores, disc cracks, xraydb materials) for testing segmentation on microstructures
  the CuS simulator does not make.
- :mod:`._insitu`: a whole series on disk (``tomopipe simulate insitu``).

Units: lengths in µm unless a name says otherwise (``_cm``, ``_mm``), energies in keV, angles
in radians; volumes ``(z, y, x)``, projections ``(angle, row = z, col)``.
"""

from ._analytic import Ellipsoid, project_ellipsoids, rasterize_ellipsoids, shepp_logan_ellipsoids
from ._cell import (
    DEFAULT_STATES,
    LABEL_MATERIALS,
    LABELS,
    LAYER_NAMES,
    OUTSIDE,
    PORE,
    Cell,
    CellParams,
    SequenceParams,
    State,
    StateSpec,
    generate_cell,
    insitu_sequence,
    read_truth,
    summarize_sequence,
    write_truth,
)
from ._forward import fresnel_propagate, project_volume, simulate_scan, write_scan
from ._insitu import InsituSeries, label_volumes_to_mu, simulate_insitu
from ._phantom import PHANTOM_MATERIALS, PhantomParams, generate_phantom, phantom_mu, scan_phantom
from ._materials import (
    MATERIALS,
    Material,
    PhaseProperties,
    absorption_index,
    attenuation,
    delta_beta_ratio,
    get_material,
    phase_properties,
    refractive_decrement,
)

__all__ = [
    "Ellipsoid", "project_ellipsoids", "rasterize_ellipsoids", "shepp_logan_ellipsoids",
    "LABELS", "LABEL_MATERIALS", "LAYER_NAMES", "PORE", "OUTSIDE", "DEFAULT_STATES",
    "Cell", "CellParams", "SequenceParams", "State", "StateSpec",
    "generate_cell", "insitu_sequence", "summarize_sequence", "write_truth", "read_truth",
    "project_volume", "fresnel_propagate", "simulate_scan", "write_scan",
    "InsituSeries", "simulate_insitu", "label_volumes_to_mu",
    "Material", "MATERIALS", "PhaseProperties", "get_material", "attenuation",
    "refractive_decrement", "absorption_index", "delta_beta_ratio", "phase_properties",
    "PhantomParams", "PHANTOM_MATERIALS", "generate_phantom", "phantom_mu", "scan_phantom",
]
