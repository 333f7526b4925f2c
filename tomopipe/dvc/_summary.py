"""Summaries of a digital-volume-correlation table: layers, interfaces and quiver plots.

The table is the one of :func:`tomopipe.dvc.dvc`: one row per node with ``node_*_um``
positions, displacements ``u_*_um`` in µm and a ``status``; only nodes of status ``"ok"``
with finite displacements enter any statistic. z is the stack (pressure) axis of the cell and
a "layer" is a slab of constant z, as in :func:`tomopipe.quantify.layer_stats`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ._strain import _check_table as _check_columns

__all__ = ["layer_displacement", "interface_motion", "quiver_plot"]

_AXES = ("z", "y", "x")
_REQUIRED = ("node_z_um", "node_y_um", "node_x_um", "u_z_um", "u_y_um", "u_x_um", "status")
#: Relative tolerance on slab edges, so that nodes lying on an edge computed in floating
#: point fall in the slab above it.
_EDGE_TOL = 1e-9


def _check_table(table, *, name="table"):
    _check_columns(table, name=name, required=_REQUIRED)
    pos = table[["node_z_um", "node_y_um", "node_x_um"]].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{name} holds NaN or infinite node positions (node_*_um)")


def _ok(table):
    """Boolean mask of rows with status "ok" and finite u_z_um, u_y_um, u_x_um."""
    u = table[["u_z_um", "u_y_um", "u_x_um"]].to_numpy(dtype=np.float64)
    return (table["status"].astype(str).to_numpy() == "ok") & np.all(np.isfinite(u), axis=1)


def _positive(value, *, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number (µm), got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0 (µm), got {value!r}")
    return v


def _stats(values):
    """n, mean, median, std (ddof=1), MAD of a 1-D array; NaN where undefined."""
    n = values.size
    if n == 0:
        return 0, np.nan, np.nan, np.nan, np.nan
    med = float(np.median(values))
    std = float(np.std(values, ddof=1)) if n > 1 else np.nan
    return n, float(np.mean(values)), med, std, float(np.median(np.abs(values - med)))


def _node_planes(z):
    """Distinct node z positions (µm) and the half spacing to use beyond the outer ones."""
    planes = np.unique(z)
    half = 0.5 * float(np.min(np.diff(planes))) if planes.size > 1 else 0.5
    return planes, half


def _slab_edges(z, thickness_um, n_layers, z_range_um):
    """Increasing slab edges (µm) for :func:`layer_displacement`."""
    if thickness_um is not None and n_layers is not None:
        raise ValueError("give at most one of thickness_um and n_layers")
    planes, half = _node_planes(z)
    if z_range_um is None:
        lo, hi = float(planes[0] - half), float(planes[-1] + half)
    else:
        try:
            lo, hi = (float(v) for v in z_range_um)
        except (TypeError, ValueError):
            raise TypeError(
                f"z_range_um must be a pair (start_um, stop_um), got {z_range_um!r}"
            ) from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            raise ValueError(
                f"z_range_um must be finite with start < stop (µm), got {z_range_um!r}"
            )
    if thickness_um is not None:
        t = _positive(thickness_um, name="thickness_um")
        n = max(1, math.ceil((hi - lo) / t - _EDGE_TOL))
        edges = lo + t * np.arange(n + 1)
        edges[-1] = hi
        return edges
    if n_layers is not None:
        if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)):
            raise TypeError(f"n_layers must be an int, got {n_layers!r}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        return np.linspace(lo, hi, int(n_layers) + 1)
    # One slab per node plane, bounded halfway between planes, clipped to the range.
    mids = 0.5 * (planes[1:] + planes[:-1])
    edges = np.concatenate([[planes[0] - half], mids, [planes[-1] + half]])
    edges = np.clip(edges, lo, hi)
    keep = np.concatenate([[True], np.diff(edges) > 0])
    return edges[keep]


def layer_displacement(table, *, thickness_um=None, n_layers=None, z_range_um=None):
    """Statistics of the displacement of the DVC nodes in each layer (slab of constant z).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per node, from :func:`tomopipe.dvc.dvc`; columns used: ``node_z_um``,
        ``node_y_um``, ``node_x_um``, ``u_z_um``, ``u_y_um``, ``u_x_um`` (µm) and
        ``status``. Only nodes of status ``"ok"`` with finite displacements are used.
    thickness_um : float, optional
        Slab thickness, µm: consecutive slabs from the start of the range (the last one may
        be thinner).
    n_layers : int, optional
        Number of slabs of equal thickness spanning the range.
    z_range_um : (2,) tuple of float, optional
        ``(start, stop)`` of the range along z, µm, e.g. two interface positions from
        :func:`tomopipe.quantify.find_interfaces`. Default: the z extent the nodes stand for,
        from half a node spacing below the first node plane to half a spacing above the last.

    Returns
    -------
    per_layer : pandas.DataFrame
        Index ``layer`` (0, 1, … in order of increasing z). Columns:

        - ``z_start_um``, ``z_stop_um``, ``z_center_um``: the slab ``[start, stop)`` and its
          midpoint, µm;
        - ``n_nodes``: "ok" nodes used; ``n_rejected``: nodes of the slab with another status;
        - for ``c`` in ``u_z``, ``u_y``, ``u_x``: ``<c>_mean_um``, ``<c>_median_um``,
          ``<c>_std_um`` (sample standard deviation, ``ddof=1``; NaN for fewer than two
          nodes) and ``<c>_mad_um`` (median absolute deviation from the median, unscaled:
          multiply by 1.4826 for a Gaussian σ), µm; NaN where the slab has no "ok" node.

    Raises
    ------
    TypeError
        If `table` is not a DataFrame, or `thickness_um`, `n_layers`, `z_range_um` are of
        the wrong type.
    ValueError
        If `table` is empty or lacks a column, both `thickness_um` and `n_layers` are given,
        or a value is out of range (each message names the parameter).

    See Also
    --------
    interface_motion : displacement of the nodes near given z positions.
    tomopipe.quantify.layer_stats : porosity and phase fractions on the same kind of slabs.

    Notes
    -----
    A slab ``[a, b)`` holds the nodes whose centre :math:`z` satisfies :math:`a \\le z < b`
    (nodes are not weighted by the part of their subvolume inside the slab). With neither
    `thickness_um` nor `n_layers`, every plane of nodes is its own slab, bounded halfway to
    the next plane. The median and MAD are robust to the few wrong matches that survive the
    DVC outlier test; a mean far from the median flags them.

    The per-layer median of :math:`u_z` against :math:`z` is the profile of electrode
    compression or swelling along the stack axis of an in situ cell [1]_.

    References
    ----------
    .. [1] W. Zhang et al., "Correlating Electrochemical Behavior and Microstructure of
       CuS-Based All-Solid-State Batteries by In Situ X-Ray Tomography", Adv. Energy Mater.
       (2022): displacement of the composite cathode along z between states of charge by
       digital volume correlation.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> z = np.repeat([0.0, 50.0, 100.0, 150.0], 4)
    >>> t = pd.DataFrame({"node_z_um": z, "node_y_um": 0.0, "node_x_um": np.tile(
    ...     [0.0, 50.0, 100.0, 150.0], 4), "u_z_um": -0.01 * z, "u_y_um": 0.0,
    ...     "u_x_um": 0.0, "status": "ok"})
    >>> per = layer_displacement(t, n_layers=2)
    >>> per[["z_center_um", "n_nodes", "u_z_mean_um"]].to_numpy().tolist()
    [[25.0, 8.0, -0.25], [125.0, 8.0, -1.25]]
    """
    _check_table(table)
    if len(table) == 0:
        raise ValueError("table holds no node")
    z = table["node_z_um"].to_numpy(dtype=np.float64)
    edges = _slab_edges(z, thickness_um, n_layers, z_range_um)
    ok = _ok(table)
    u = {a: table[f"u_{a}_um"].to_numpy(dtype=np.float64) for a in _AXES}
    tol = _EDGE_TOL * max(1.0, float(np.max(np.abs(edges))))
    rows = []
    for a, b in zip(edges[:-1], edges[1:]):
        inside = (z >= a - tol) & (z < b - tol)
        use = inside & ok
        row = {"z_start_um": float(a), "z_stop_um": float(b), "z_center_um": 0.5 * (a + b),
               "n_nodes": int(use.sum()), "n_rejected": int((inside & ~ok).sum())}
        for c in _AXES:
            _, mean, med, std, mad = _stats(u[c][use])
            row.update({f"u_{c}_mean_um": mean, f"u_{c}_median_um": med,
                        f"u_{c}_std_um": std, f"u_{c}_mad_um": mad})
        rows.append(row)
    per = pd.DataFrame(rows)
    per.index = pd.RangeIndex(len(per), name="layer")
    return per


def interface_motion(table, z_interface_um, *, window_um):
    """Displacement of the DVC nodes near one or more interface positions along z.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per node, from :func:`tomopipe.dvc.dvc` (columns as for
        :func:`layer_displacement`); only nodes of status ``"ok"`` are used.
    z_interface_um : float or (n,) array_like of float
        Interface positions along z in the reference state, µm (e.g.
        ``tomopipe.quantify.find_interfaces(...).positions_um``: cathode | separator,
        separator | Li).
    window_um : float
        Full width of the window, µm: the nodes with
        :math:`|z - z_\\mathrm{interface}| \\le` ``window_um / 2`` are used. Take at least
        one node spacing so that a plane of nodes falls in it.

    Returns
    -------
    motion : pandas.DataFrame
        One row per interface, in the order given. Columns ``z_interface_um``,
        ``window_um``, ``n_nodes`` ("ok" nodes in the window), ``u_z_median_um`` (the
        interface's displacement along z, µm), ``u_z_mad_um`` (its median absolute
        deviation, µm), ``u_y_median_um``, ``u_x_median_um`` (µm) and ``z_deformed_um``
        (``z_interface_um + u_z_median_um``: the interface position in the deformed state).
        NaN where the window holds no "ok" node.

    Raises
    ------
    TypeError
        If `table` is not a DataFrame or `window_um` is not a number.
    ValueError
        If `table` lacks a column, `window_um` is not > 0, or `z_interface_um` holds NaN
        or is not 0-D or 1-D.

    See Also
    --------
    layer_displacement : statistics on slabs spanning the whole range.

    Notes
    -----
    The median over the window is robust to outlier nodes; the difference of the motions of
    two interfaces is the change of thickness of the layer between them (e.g. the
    separator's compression, or the cathode's swelling on lithiation [1]_).

    References
    ----------
    .. [1] W. Zhang et al., "Correlating Electrochemical Behavior and Microstructure of
       CuS-Based All-Solid-State Batteries by In Situ X-Ray Tomography", Adv. Energy Mater.
       (2022): motion of the electrode along the stack axis by digital volume correlation.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> z = np.arange(5) * 50.0
    >>> t = pd.DataFrame({"node_z_um": z, "node_y_um": 0.0, "node_x_um": 0.0,
    ...                   "u_z_um": [0.0, 1.0, 2.0, 3.0, 4.0], "u_y_um": 0.0,
    ...                   "u_x_um": 0.0, "status": "ok"})
    >>> m = interface_motion(t, [50.0, 175.0], window_um=60.0)
    >>> m[["n_nodes", "u_z_median_um", "z_deformed_um"]].to_numpy().tolist()
    [[1.0, 1.0, 51.0], [2.0, 3.5, 178.5]]
    """
    _check_table(table)
    w = _positive(window_um, name="window_um")
    zi = np.asarray(z_interface_um, dtype=np.float64)
    if zi.ndim > 1:
        raise ValueError(f"z_interface_um must be a number or 1-D, got shape {zi.shape}")
    zi = np.atleast_1d(zi)
    if not np.all(np.isfinite(zi)):
        raise ValueError("z_interface_um holds NaN or infinite positions")
    z = table["node_z_um"].to_numpy(dtype=np.float64)
    ok = _ok(table)
    u = {a: table[f"u_{a}_um"].to_numpy(dtype=np.float64) for a in _AXES}
    rows = []
    for z0 in zi:
        use = ok & (np.abs(z - z0) <= 0.5 * w * (1 + _EDGE_TOL))
        n, _, med_z, _, mad_z = _stats(u["z"][use])
        row = {"z_interface_um": float(z0), "window_um": w, "n_nodes": n,
               "u_z_median_um": med_z, "u_z_mad_um": mad_z,
               "u_y_median_um": _stats(u["y"][use])[2],
               "u_x_median_um": _stats(u["x"][use])[2],
               "z_deformed_um": float(z0) + med_z}
        rows.append(row)
    return pd.DataFrame(rows)


#: plane -> (horizontal axis, vertical axis, normal axis)
_PLANES = {"xz": ("x", "z", "y"), "yz": ("y", "z", "x"), "xy": ("x", "y", "z")}


def quiver_plot(table, path, *, plane="xz", position_um=None, scale=None, title=None):
    """PNG quiver plot of the in-plane displacement of one plane of DVC nodes.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per node, from :func:`tomopipe.dvc.dvc` (``node_*_um``, ``u_*_um`` in µm,
        ``status``).
    path : path-like
        Output PNG file.
    plane : {"xz", "yz", "xy"}
        The plane: ``"xz"`` draws ``(u_x, u_z)`` on x (horizontal) and z (vertical) for the
        nodes of one y; ``"yz"`` draws ``(u_y, u_z)`` for one x; ``"xy"`` draws
        ``(u_x, u_y)`` for one z. z points down, as in a cell's stack drawn with its top
        electrode up.
    position_um : float, optional
        Position along the normal axis (y for ``"xz"``), µm; the plane of nodes nearest to it
        is drawn. Default: the plane nearest to the middle of the node range.
    scale : float, optional
        Arrow magnification: an arrow is ``scale * |u_in-plane|`` long in the plot's µm.
        Default: such that the longest arrow spans 0.9 node spacing (1 if every displacement
        is zero).
    title : str, optional
        Plot title; default names the plane, its position and the magnification.

    Returns
    -------
    path : pathlib.Path
        The PNG written.

    Raises
    ------
    TypeError
        If `table` is not a DataFrame or `scale`/`position_um` is not a number.
    ValueError
        If `table` is empty or lacks a column, `plane` is unknown, or `scale` is not > 0.

    See Also
    --------
    layer_displacement : per-layer statistics of the same displacements.

    Notes
    -----
    Arrows are coloured by the magnitude of the full 3-D displacement :math:`|u|` (µm,
    colour bar), and drawn in data coordinates (``angles="xy"``), so that an arrow with
    :math:`u_z > 0` points down the inverted z axis. Nodes whose status is not ``"ok"`` are
    drawn as grey crosses. Axes are in µm with equal aspect.

    References
    ----------
    .. [1] W. Zhang et al., "Correlating Electrochemical Behavior and Microstructure of
       CuS-Based All-Solid-State Batteries by In Situ X-Ray Tomography", Adv. Energy Mater.
       (2022): displacement vectors of the cathode in the x–z plane between states of charge.
    .. [2] The Matplotlib development team, ``matplotlib.axes.Axes.quiver``.
    """
    _check_table(table)
    if len(table) == 0:
        raise ValueError("table holds no node")
    if plane not in _PLANES:
        raise ValueError(f"plane must be one of {tuple(_PLANES)}, got {plane!r}")
    h_ax, v_ax, n_ax = _PLANES[plane]
    normal = table[f"node_{n_ax}_um"].to_numpy(dtype=np.float64)
    planes = np.unique(normal)
    if position_um is None:
        target = 0.5 * (planes[0] + planes[-1])
    else:
        try:
            target = float(position_um)
        except (TypeError, ValueError):
            raise TypeError(f"position_um must be a number (µm), got {position_um!r}") from None
        if not math.isfinite(target):
            raise ValueError(f"position_um must be finite, got {position_um!r}")
    at = planes[int(np.argmin(np.abs(planes - target)))]
    sel = table[normal == at]
    ok = _ok(sel)
    hpos = sel[f"node_{h_ax}_um"].to_numpy(dtype=np.float64)
    vpos = sel[f"node_{v_ax}_um"].to_numpy(dtype=np.float64)
    uh = sel[f"u_{h_ax}_um"].to_numpy(dtype=np.float64)
    uv = sel[f"u_{v_ax}_um"].to_numpy(dtype=np.float64)
    mag = np.sqrt(sum(sel[f"u_{a}_um"].to_numpy(dtype=np.float64) ** 2 for a in _AXES))

    spacings = [np.diff(np.unique(p)) for p in (hpos, vpos)]
    spacings = np.concatenate([s for s in spacings if s.size])
    spacing = float(np.min(spacings)) if spacings.size else 1.0
    if scale is None:
        longest = float(np.max(np.hypot(uh[ok], uv[ok]))) if ok.any() else 0.0
        scale = 0.9 * spacing / longest if longest > 0 else 1.0
    else:
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise TypeError(f"scale must be a number, got {scale!r}") from None
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    if ok.any():
        # scale_units="xy" with scale s draws u/s data units: pass 1/magnification.
        q = ax.quiver(hpos[ok], vpos[ok], uh[ok], uv[ok], mag[ok], angles="xy",
                      scale_units="xy", scale=1.0 / scale, cmap="viridis", pivot="tail",
                      width=0.004)
        cb = fig.colorbar(q, ax=ax)
        cb.set_label("|u| (µm)")
    if (~ok).any():
        ax.scatter(hpos[~ok], vpos[~ok], marker="x", s=12, c="0.6", linewidths=0.8,
                   label="rejected node")
        ax.legend(loc="upper right", fontsize=8)
    pad = spacing
    ax.set_xlim(hpos.min() - pad, hpos.max() + pad)
    ax.set_ylim(vpos.min() - pad, vpos.max() + pad)
    ax.set_aspect("equal")
    if v_ax == "z":
        ax.invert_yaxis()
    ax.set_xlabel(f"{h_ax} (µm)")
    ax.set_ylabel(f"{v_ax} (µm)")
    if title is None:
        title = (f"displacement ({h_ax}, {v_ax}) at {n_ax} = {at:.4g} µm, "
                 f"arrows ×{scale:.3g}")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
