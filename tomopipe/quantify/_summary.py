"""All metrics of one label volume at once: what the pipeline's ``metrics`` stage writes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._cracks import crack_stats
from ._input import _as_array, _check_schema, _check_voxel_size
from ._interfaces import find_interfaces
from ._layers import layer_stats, slice_counts
from ._particles import particle_stats
from ._phases import inclusion_stats
from ._thickness import local_thickness, thickness_distribution

__all__ = ["Metrics", "quantify_labels", "UNITS"]

#: Units of the metric columns (written with the tables).
UNITS = {
    "z_start_um": "um", "z_stop_um": "um", "z_center_um": "um", "volume_um3": "um^3",
    "sample_volume_um3": "um^3", "equivalent_diameter_um": "um", "aperture_um": "um",
    "angle_to_z_deg": "deg", "azimuth_deg": "deg", "thickness_um": "um", "bin_lo_um": "um",
    "bin_hi_um": "um", "surface_area_um2": "um^2", "d10_um": "um", "d50_um": "um",
    "d90_um": "um", "d50_volume_um": "um", "diameter_lo_um": "um", "diameter_hi_um": "um",
    "position_um": "um", "centroid_z_um": "um", "centroid_y_um": "um", "centroid_x_um": "um",
    "semi_axis_a_um": "um", "semi_axis_b_um": "um", "semi_axis_c_um": "um",
}

#: Default cap of the pore local thickness, in voxels of the coarsest axis.
_MAX_PORE_DIAMETER_VOX = 24


@dataclass
class Metrics:
    """Metrics of a label volume (see :func:`quantify_labels`).

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``layers`` (per-layer porosity and phase fractions), ``totals`` (one row),
        ``interfaces`` (from the phase fractions, with a confidence each), and, when the
        schema has the classes they need: ``cracks``, ``crack_orientation``,
        ``crack_layers``; ``inclusions``, ``inclusion_hosts``, ``inclusion_sizes``,
        ``inclusion_orientation``, ``inclusion_layers``; ``particles``,
        ``particle_layers``, ``particle_sizes``; ``pore_sizes`` (volume-weighted
        local-thickness distribution of the void, diameters in µm).
    summary : dict
        Scalars: voxel size, porosity, crack volume (µm³), count, mean and volume-weighted
        tilt and dominant angle to z (°), inclusion count, volume (µm³), active fraction
        and dominant angle, particle count and d10/d50/d90 (µm), pore-size d10/d50/d90 (µm),
        and ``skipped``: the metrics left out and why (missing classes).
    """

    tables: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def quantify_labels(labels, voxel_size_um, *, schema=None, layers=None, n_layers=10,
                    thickness_um=None, z_range_um=None, layer_thickness_um=None,
                    pore_sizes=True, max_pore_diameter_um=None, crack_flatness_max=0.35,
                    particles="auto", interfaces=True):
    """Per-layer statistics, interfaces, cracks, inclusions, particles and pore sizes.

    Each metric runs when the schema has the classes it needs and is left out otherwise
    (listed in ``summary["skipped"]``): porosity and pore sizes need a void class, cracks a
    void or crack class, inclusions ``inclusion`` and ``active``, particles the classes of
    `particles`. No dummy class is ever needed.

    Parameters
    ----------
    labels : (z, y, x) ndarray, dask array or zarr array of uint8
        Label volume; z is the stack axis. Out of core for dask and zarr input.
    voxel_size_um : float or (3,) sequence of float
        Voxel size ``(dz, dy, dx)`` in µm, or one number for cubic voxels (e.g. a volume
        binned 2× along z: ``(2 v, v, v)``).
    schema : LabelSchema, mapping or None
        Label schema: a :class:`~tomopipe.schema.LabelSchema`, a mapping class name →
        value, or labels-array attributes (``{"label_schema": …}`` or ``{"labels": …}``).
        None: the schema stored with `labels` (zarr attributes), else
        :data:`tomopipe.schema.SIMULATOR_TRUTH`.
    layers, n_layers, thickness_um, z_range_um
        The slabs of every per-layer table, with the one meaning of
        :func:`layer_stats`; default 10 equal slabs (``n_layers=10``, at most one per slice
        over the whole volume; ignored when `layers` or `thickness_um` is given).
    layer_thickness_um : float, optional
        Former name of `thickness_um` (kept for callers of earlier versions).
    pore_sizes : bool
        Compute the local-thickness distribution of the void (the slowest metric).
    max_pore_diameter_um : float, optional
        Cap of the local thickness (and the chunk overlap for out-of-core input), µm.
        Default 24 voxels of the coarsest axis (21 µm at 0.88 µm, 816 µm at 34 µm); a cap
        below two voxels warns (:class:`~tomopipe.quantify.ResolutionWarning`).
    crack_flatness_max : float
        ``flatness_max`` of :func:`crack_stats`.
    particles : "auto", str, sequence of str or None
        Class(es) split into particles (:func:`particle_stats`). ``"auto"``: ``active``
        (with ``inclusion``, part of its particle) when the schema has it; None: none.
    interfaces : bool
        Find the layer interfaces from the per-slice phase fractions
        (:func:`find_interfaces`).

    Returns
    -------
    Metrics

    Raises
    ------
    tomopipe.schema.LabelSchemaError
        If `schema` is not a valid schema.
    tomopipe.schema.MissingClassError
        If `particles` names classes the schema lacks.
    ValueError, TypeError
        As the functions called (e.g. labels with values not in the schema).

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.ones((12, 8, 8), np.uint8); lab[2, 2:5, 2:5] = 0
    >>> m = quantify_labels(lab, (1.0, 0.5, 0.5), schema={"pore": 0, "NMC": 1}, n_layers=4,
    ...                     pore_sizes=False)
    >>> m.tables["layers"]["porosity"].round(4).tolist()
    [0.0469, 0.0, 0.0, 0.0]
    >>> sorted(m.summary["skipped"])
    ['inclusions', 'particles']
    """
    sch = _check_schema(schema, labels)
    vox = _check_voxel_size(voxel_size_um)
    if layer_thickness_um is not None:
        if thickness_um is not None:
            raise ValueError("give thickness_um or its former name layer_thickness_um, not both")
        thickness_um = layer_thickness_um
    arr = _as_array(labels, name="labels")
    if layers is None and thickness_um is None and z_range_um is None \
            and isinstance(n_layers, (int, np.integer)) and not isinstance(n_layers, bool):
        n_layers = max(1, min(int(n_layers), arr.shape[0]))  # no slab thinner than a slice
    slab_kw = {"layers": layers, "thickness_um": thickness_um, "z_range_um": z_range_um,
               "n_layers": None if (layers is not None or thickness_um is not None) else n_layers}
    counts = slice_counts(arr, schema=sch)
    tables, skipped = {}, {}
    per_layer, totals = layer_stats(counts, vox, schema=sch, **slab_kw) if sch.void else \
        layer_stats(counts, vox, schema=sch, pore_labels=(), **slab_kw)
    if not sch.void:
        per_layer = per_layer.drop(columns="porosity")
        totals = totals.drop("porosity")
        skipped["porosity"] = "the schema has no void class"
    tables["layers"] = per_layer
    tables["totals"] = totals.to_frame().T.reset_index(drop=True)
    summary = {
        "voxel_size_um": list(vox),
        "schema": dict(sch),
        "porosity": float(totals["porosity"]) if sch.void else float("nan"),
    }
    if interfaces and counts.shape[0] >= 3:
        keep = [c for c in counts.columns if c != sch.outside]
        sub = counts[keep].to_numpy(np.float64)
        tot = sub.sum(axis=1, keepdims=True)
        frac = pd.DataFrame(np.divide(sub, tot, out=np.full(sub.shape, np.nan), where=tot > 0),
                            columns=[f"fraction_{c}" for c in keep])
        if np.isfinite(frac.to_numpy()).any():
            found = find_interfaces(frac, vox, kind="labels")
            tables["interfaces"] = found.changes.assign(
                contrast=found.contrast, confidence=found.confidence)
    if sch.void or sch.crack:
        cracks = crack_stats(arr, vox, schema=sch, flatness_max=crack_flatness_max, **slab_kw)
        tables.update({"cracks": cracks.cracks, "crack_orientation": cracks.orientation,
                       "crack_layers": cracks.per_layer})
        summary.update({
            "crack_volume_um3": float(cracks.total_volume_um3),
            "n_cracks": int(cracks.n_cracks),
            "crack_mean_angle_to_z_deg": float(cracks.mean_angle_to_z_deg),
            "crack_volume_weighted_angle_to_z_deg": float(cracks.volume_weighted_angle_to_z_deg),
            "crack_angle_to_z_deg": float(cracks.dominant_angle_to_z_deg),
            "crack_method": cracks.method,
        })
    else:
        skipped["cracks"] = "the schema has no void or crack class"
    if "inclusion" in sch and "active" in sch:
        incl = inclusion_stats(arr, vox, schema=sch, **slab_kw)
        tables.update({"inclusions": incl.inclusions, "inclusion_hosts": incl.hosts,
                       "inclusion_sizes": incl.size_distribution,
                       "inclusion_orientation": incl.orientation,
                       "inclusion_layers": incl.per_layer})
        summary.update({
            "inclusion_volume_um3": float(incl.total_volume_um3),
            "n_inclusions": int(incl.n_inclusions),
            "inclusion_active_fraction": float(incl.active_fraction),
            "inclusion_angle_to_z_deg": float(incl.dominant_angle_to_z_deg),
        })
    else:
        skipped["inclusions"] = "the schema has no 'inclusion' and 'active' classes"
    phase = particles
    if isinstance(phase, str) and phase == "auto":
        phase = tuple(n for n in ("active", "inclusion") if n in sch) if "active" in sch else None
    if phase:
        ps = particle_stats(arr, vox, phase=phase, schema=sch, **slab_kw)
        tables.update({"particles": ps.particles, "particle_layers": ps.per_layer,
                       "particle_sizes": ps.size_distribution})
        summary.update({"n_particles": int(ps.n_particles)})
        summary.update({f"particle_{k}": float(ps.totals[k])
                        for k in ("d10_um", "d50_um", "d90_um", "sphericity_mean")})
    else:
        skipped["particles"] = ("no particle phase given (particles=…) and no 'active' class"
                                if particles == "auto" else "particles=None")
    if pore_sizes and sch.void:
        cap = _MAX_PORE_DIAMETER_VOX * vox.max if max_pore_diameter_um is None else float(max_pore_diameter_um)
        void = np.isin(arr, list(sch.values_of(sch.void))) if isinstance(arr, np.ndarray) else \
            arr.map_blocks(np.isin, list(sch.values_of(sch.void)), dtype=bool)
        lt = local_thickness(void, vox, max_diameter_um=cap)
        dist = thickness_distribution(lt, void, voxel_size_um=vox)
        s = dict(dist.attrs.get("summary", {}))
        dist.attrs = {}
        tables["pore_sizes"] = dist
        summary["max_pore_diameter_um"] = cap
        summary.update({f"pore_diameter_{k}": float(v) for k, v in s.items() if k.endswith("_um")})
    elif pore_sizes:
        skipped["pore_sizes"] = "the schema has no void class"
    summary["skipped"] = skipped
    return Metrics(tables=tables, summary=summary)
