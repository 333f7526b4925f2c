"""Per-layer porosity and phase fractions of a label volume, for the Measure widget (no Qt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidDataError
from ._schema import NOT_REVIEWED

__all__ = ["layer_profile", "write_profile_csv", "plot_profile"]


def layer_profile(labels, schema, voxel_size_um, *, n_layers=10):
    """Porosity and phase fractions per slab of constant z (:func:`tomopipe.quantify.layer_stats`).

    Parameters
    ----------
    labels : (z, y, x) array_like of integer
        NumPy, dask or zarr (read chunk by chunk).
    schema : tomopipe.napari.Schema
        Void classes give the porosity; outside classes are not the sample.
    voxel_size_um : float or (3,) sequence of float
        ``(dz, dy, dx)`` in µm (a scalar: isotropic). z positions use dz, volumes dz·dy·dx.
    n_layers : int
        Equal slabs along z (at most the number of slices).

    Returns
    -------
    pandas.DataFrame
        :func:`~tomopipe.quantify.layer_stats`' per-layer table (``z_start_um``,
        ``z_stop_um``, ``z_center_um``, ``n_slices``, ``n_voxels``, ``volume_um3``,
        ``porosity``, ``fraction_<class>``).

    Raises
    ------
    InvalidDataError
        The labels hold values outside the schema (e.g. 254 of a corrections layer).
    """
    from ..quantify import layer_stats
    from ..units import voxel_size_um as _voxel

    dz, dy, dx = _voxel(voxel_size_um, name="voxel_size_um")
    n = int(min(max(1, n_layers), labels.shape[0]))
    try:
        table = layer_stats(labels, dz, schema=schema.classes, n_layers=n, pore_labels=schema.void,
                            exclude=schema.outside).per_layer
    except ValueError as exc:
        hint = f"; a corrections layer holds {NOT_REVIEWED} = not reviewed: measure a segmentation" \
            if "not in schema" in str(exc) else ""
        raise InvalidDataError(f"labels: {exc}{hint}") from None
    table["volume_um3"] = table["n_voxels"] * dz * dy * dx
    return table


def write_profile_csv(table, path):
    """Write the per-layer table as CSV (units in the column names); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, float_format="%.6g")
    return path


def plot_profile(table, ax, *, title=""):
    """Draw porosity and phase fractions against z (µm) on a matplotlib axis."""
    z = table["z_center_um"].to_numpy()
    cols = [c for c in table.columns if c.startswith("fraction_")]
    for c in cols:
        v = table[c].to_numpy(dtype=float)
        if np.nanmax(np.nan_to_num(v, nan=0.0)) > 0:
            ax.plot(z, v, marker=".", label=c[len("fraction_"):])
    if "porosity" in table:
        ax.plot(z, table["porosity"].to_numpy(dtype=float), "k--", marker="o", label="porosity")
    ax.set_xlabel("z (µm)")
    ax.set_ylabel("fraction of the sample")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncol=2)
    return ax
