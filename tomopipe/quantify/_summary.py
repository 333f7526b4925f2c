"""All metrics of one label volume at once: what the pipeline's ``metrics`` stage writes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._input import _as_array
from ._layers import layer_stats
from ._phases import crack_stats, inclusion_stats
from ._thickness import local_thickness, thickness_distribution

__all__ = ["Metrics", "quantify_labels", "UNITS"]

#: Units of the metric columns (written with the tables).
UNITS = {
    "z_start_um": "um", "z_stop_um": "um", "z_center_um": "um", "volume_um3": "um^3",
    "equivalent_diameter_um": "um", "aperture_um": "um", "angle_to_z_deg": "deg",
    "thickness_um": "um", "bin_lo_um": "um", "bin_hi_um": "um",
}


@dataclass
class Metrics:
    """Metrics of a label volume (see :func:`quantify_labels`).

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``layers`` (per-layer porosity and phase fractions), ``totals`` (one row),
        ``cracks``, ``crack_orientation``, ``crack_layers``, ``inclusions``,
        ``inclusion_hosts``, ``inclusion_sizes``, ``inclusion_orientation``,
        ``inclusion_layers`` and, if computed, ``pore_sizes`` (volume-weighted local-thickness
        distribution of the void, diameters in µm).
    summary : dict
        Scalars: porosity, crack volume (µm³) and dominant angle to z (°), inclusion count,
        volume (µm³), active fraction and dominant angle, pore-size d50 (µm).
    """

    tables: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def quantify_labels(labels, voxel_size_um, *, schema=None, n_layers=10, layer_thickness_um=None,
                    pore_sizes=True, max_pore_diameter_um=20.0, crack_flatness_max=0.35):
    """Per-layer statistics, cracks, Cu-rich inclusions and pore sizes of a label volume.

    Parameters
    ----------
    labels : (z, y, x) ndarray, dask array or zarr array of uint8
        Label volume; z is the stack axis. Out of core for dask and zarr input.
    voxel_size_um : float
        Voxel size, µm.
    schema : mapping of str to int, optional
        Label schema (default :data:`tomopipe.simulate.LABELS`: 0 pore/crack — the void
        phase —, 1 electrolyte, 2 active, 3 Cu-rich inclusion, …, 255 outside the sample).
    n_layers : int, optional
        Equal slabs of constant z for the per-layer tables (ignored if `layer_thickness_um`).
    layer_thickness_um : float, optional
        Slab thickness in µm instead of `n_layers`.
    pore_sizes : bool
        Compute the local-thickness distribution of the void (the slowest metric).
    max_pore_diameter_um : float
        Cap of the local thickness (and the chunk overlap for out-of-core input), µm.
    crack_flatness_max : float
        Void components flatter than this (c/a of the equivalent ellipsoid) are cracks.

    Returns
    -------
    Metrics
    """
    from ..simulate import LABELS

    schema = dict(LABELS if schema is None else schema)
    slabs = {"thickness_um": layer_thickness_um} if layer_thickness_um else {"n_layers": n_layers}
    per_layer, totals = layer_stats(labels, voxel_size_um, schema=schema, **slabs)
    # the same slabs, as slice indices, for the crack and inclusion tables
    layer_edges = pd.DataFrame({
        "z_start": np.round(per_layer["z_start_um"].to_numpy() / voxel_size_um).astype(int),
        "z_stop": np.round(per_layer["z_stop_um"].to_numpy() / voxel_size_um).astype(int),
    })
    cracks = crack_stats(labels, voxel_size_um, schema=schema, layers=layer_edges,
                         flatness_max=crack_flatness_max)
    incl = inclusion_stats(labels, voxel_size_um, schema=schema, layers=layer_edges)
    tables = {
        "layers": per_layer,
        "totals": totals.to_frame().T.reset_index(drop=True),
        "cracks": cracks.cracks,
        "crack_orientation": cracks.orientation,
        "crack_layers": cracks.per_layer,
        "inclusions": incl.inclusions,
        "inclusion_hosts": incl.hosts,
        "inclusion_sizes": incl.size_distribution,
        "inclusion_orientation": incl.orientation,
        "inclusion_layers": incl.per_layer,
    }
    summary = {
        "voxel_size_um": float(voxel_size_um),
        "porosity": float(totals["porosity"]),
        "crack_volume_um3": float(cracks.total_volume_um3),
        "n_cracks": int(cracks.n_cracks),
        "crack_angle_to_z_deg": float(cracks.dominant_angle_to_z_deg),
        "crack_method": cracks.method,
        "inclusion_volume_um3": float(incl.total_volume_um3),
        "n_inclusions": int(incl.n_inclusions),
        "inclusion_active_fraction": float(incl.active_fraction),
        "inclusion_angle_to_z_deg": float(incl.dominant_angle_to_z_deg),
    }
    if pore_sizes:
        pore = _pore_mask(labels, schema)
        lt = local_thickness(pore, voxel_size_um, max_diameter_um=max_pore_diameter_um)
        dist = thickness_distribution(lt, pore, voxel_size_um=voxel_size_um)
        s = dict(dist.attrs.get("summary", {}))
        dist.attrs = {}
        tables["pore_sizes"] = dist
        summary.update({f"pore_diameter_{k}": float(v) for k, v in s.items() if k.endswith("_um")})
    return Metrics(tables=tables, summary=summary)


def _pore_mask(labels, schema):
    """Void mask (NumPy or lazy dask) of any label-array type."""
    return _as_array(labels, name="labels") == schema["pore"]
