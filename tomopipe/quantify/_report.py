"""Metric tables into a zarr group, CSV (and Parquet when pyarrow is installed), and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_tables", "read_table", "plot_layer_profiles", "plot_orientation"]


def write_tables(tables, group, *, folder=None, units=None):
    """Write DataFrames as zarr sub-groups (one 1-D array per column) and as CSV files.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Table name → table (the index is written as a column named after it, or ``index``).
    group : zarr.Group
        Destination group; each table becomes ``group[name]`` with attributes ``columns``
        (order) and ``units`` (column → unit string, from `units`).
    folder : path-like, optional
        Also write ``<folder>/<name>.csv`` (and ``.parquet`` if pyarrow is importable).
    units : mapping of str to str, optional
        Column name → unit, stored with every table that has the column.

    Returns
    -------
    list of Path
        Files written to `folder`.
    """
    units = dict(units or {})
    written = []
    if folder is not None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        flat = df.reset_index() if df.index.name is not None or not isinstance(df.index, pd.RangeIndex) else df
        sub = group.create_group(name)
        cols = [str(c) for c in flat.columns]
        sub.attrs.update({"columns": cols, "units": {c: units[c] for c in cols if c in units},
                          "n_rows": int(len(flat))})
        for c in flat.columns:
            values = flat[c].to_numpy()
            if values.dtype == object or values.dtype.kind in "USb":
                values = values.astype(str)
                arr = sub.create_array(str(c), shape=(len(values),), dtype=str, chunks=(max(1, len(values)),))
                if len(values):
                    arr[:] = values
            else:
                values = values.astype(np.float64 if values.dtype.kind == "f" else values.dtype)
                arr = sub.create_array(str(c), shape=values.shape, dtype=values.dtype,
                                       chunks=(max(1, len(values)),))
                if len(values):
                    arr[:] = values
        if folder is not None:
            path = folder / f"{name}.csv"
            flat.to_csv(path, index=False)
            written.append(path)
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                pass
            else:
                ppath = folder / f"{name}.parquet"
                flat.to_parquet(ppath, index=False)
                written.append(ppath)
    return written


def read_table(group, name):
    """Read a table written by :func:`write_tables` back into a DataFrame (column order kept)."""
    sub = group[name]
    cols = sub.attrs["columns"]
    return pd.DataFrame({c: np.asarray(sub[c][:]) for c in cols}, columns=cols)


def plot_layer_profiles(per_layer, path, *, title=""):
    """PNG of porosity and phase fractions against z (µm), one line per quantity.

    Parameters
    ----------
    per_layer : pandas.DataFrame
        From :func:`tomopipe.quantify.layer_stats`: ``z_center_um``, ``porosity`` and
        ``fraction_<phase>`` columns.
    path : path-like
        Output PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    z = per_layer["z_center_um"].to_numpy()
    for col in per_layer.columns:
        if col == "porosity" or col.startswith("fraction_"):
            y = per_layer[col].to_numpy(dtype=float)
            if np.nanmax(np.abs(y)) > 0:
                ax.plot(100 * y, z, marker="o", ms=3, label=col.removeprefix("fraction_"))
    ax.invert_yaxis()
    ax.set_xlabel("volume fraction (%)")
    ax.set_ylabel("z (µm)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title(title or "per-layer fractions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_orientation(tables, path, *, bins=18):
    """PNG of volume-weighted histograms of the angle between objects' thinnest axis and z.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Object tables with ``angle_to_z_deg`` and ``volume_um3`` columns (e.g. cracks, inclusions).
    path : path-like
        Output PNG.
    bins : int
        Bins over 0–90°.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    edges = np.linspace(0, 90, bins + 1)
    for name, df in tables.items():
        if len(df) and "angle_to_z_deg" in df:
            h, _ = np.histogram(df["angle_to_z_deg"], bins=edges, weights=df["volume_um3"])
            if h.sum() > 0:
                ax.step(edges[:-1], h / h.sum(), where="post", label=f"{name} ({len(df)})")
    ax.set_xlabel("angle between thinnest axis and z (°); 0° = flat, perpendicular to z")
    ax.set_ylabel("volume fraction")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no objects", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
