"""The series report: tables, figures and one self-contained HTML page; and the truth stage.

The ``report`` stage (in ``<folder>/series.zarr``) gathers, for every state, the ``metrics``
of its own segmentation, its ``dvc`` against the reference state and, when the state has
ground truth, the ``truth`` stage, and writes to ``<folder>/report/``:

- tables (CSV, and Parquet when pyarrow is present; also as zarr tables in the stage group):
  ``states`` (one row per state), ``inclusion_sizes``, ``orientation``, ``porosity_profile``,
  ``phase_fractions``, ``dvc_layers``, ``strain_layers``, ``interfaces``, ``validation`` (when
  truth exists), ``trends``, ``provenance``;
- figures (PNG): Cu-rich inclusions per state, their size distribution, cracks per state,
  orientation histograms (angle to z) of cracks and inclusions, porosity profiles overlaid,
  phase fractions per layer, u_z against z per state (the CuS study's DVC figure), per-layer
  strain, interface motion, and each state's quiver plot;
- ``report.html``: all of it on one page, figures embedded (opens offline), with provenance
  (software versions, parameters, input checksums, model name and sha256).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from .stage import Stage

__all__ = ["truth_stage", "report_stage", "TOLERANCES"]

#: Validation tolerances of measured against true values (the series issue's acceptance).
TOLERANCES = {
    "inclusion_volume_um3": ("relative", 0.15, 1000.0),  # where truth > 1000 µm³
    "crack_volume_um3": ("relative", 0.25, 0.0),
    "porosity": ("absolute", 0.01, None),  # 1 percentage point
    "uz_cathode_voxels": ("absolute", 0.1, None),
}


# ------------------------------------------------------------------------------------------
# truth


def _folder_token(path):
    """Name, total size and newest modification time of a folder's files (not its location)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [path.name, sum(p.stat().st_size for p in files), max((p.stat().st_mtime_ns for p in files), default=0)]


def truth_stage(cfg, truth_path, *, voxel_size_um):
    """``truth/``: the metrics of a state's ground-truth labels, for validation only.

    The simulator's labels are mapped to the segmentation schema
    (:func:`tomopipe.segment.truth_to_labels`: carbon → pore, crack voxels → crack) and
    quantified by the same :func:`tomopipe.quantify.quantify_labels` call as the state's own
    segmentation (without pore sizes), so measured and true values are computed alike.
    The true displacement (µm, relative to OCV and to the previous state) is kept as the
    ``displacement`` table.

    Parameters
    ----------
    cfg : QuantifyConfig
    truth_path : Path
        A folder written by :func:`tomopipe.simulate.write_truth`.
    voxel_size_um : (3,) tuple of float

    Returns
    -------
    Stage
    """
    from ..quantify import METHODS_REVISION

    voxel = [float(v) for v in voxel_size_um]
    params = {**cfg.model_dump(mode="json"), "pore_sizes": False, "voxel_size_um": voxel,
              "methods_revision": METHODS_REVISION}

    def write(w):
        from ..quantify import UNITS, quantify_labels, write_tables
        from ..segment import DEFAULT_SCHEMA, truth_to_labels
        from ..simulate import read_truth

        t = read_truth(truth_path)
        labels = truth_to_labels(t["labels"], t["crack_ids"])
        m = quantify_labels(labels, tuple(voxel), schema=dict(DEFAULT_SCHEMA), n_layers=cfg.n_layers,
                            layer_thickness_um=cfg.layer_thickness_um, pore_sizes=False,
                            max_pore_diameter_um=cfg.max_pore_diameter_um,
                            crack_flatness_max=cfg.crack_flatness_max)
        n = len(t["cumulative_displacement_um"])
        disp = pd.DataFrame({"z_um": np.arange(n) * voxel[0], "u_z_from_ocv_um": t["cumulative_displacement_um"],
                             "u_z_from_previous_um": t["displacement_um"]})
        tables = {**m.tables, "displacement": disp, "truth_layers": t["layers"].reset_index()}
        write_tables(tables, w.group, units=UNITS)
        return {"summary": m.summary, "totals": t["attrs"].get("totals", {}), "state": t["attrs"].get("state")}

    return Stage("truth", params, {"truth": _folder_token(truth_path)}, write,
                 describe=f"metrics of the ground truth {Path(truth_path).name}")


# ------------------------------------------------------------------------------------------
# reading what the stages wrote


def _group(store, name):
    from .store import Store

    st = Store(store)
    return st.group(name) if st.info(name) else None


def _tables(group, names):
    from ..quantify import read_table

    out = {}
    for n in names:
        try:
            out[n] = read_table(group, n)
        except KeyError:
            pass
    return out


def _gather(states):
    """Per state: metrics tables + summary, dvc tables, truth tables + summary, provenance."""
    data = {}
    for sp in states:
        store = sp.store
        d = {"store": store}
        g = _group(store, "metrics")
        d["metrics"] = _tables(g, ["layers", "totals", "cracks", "crack_orientation", "inclusions",
                                   "inclusion_sizes", "inclusion_orientation", "pore_sizes"]) if g else {}
        d["summary"] = dict(g.attrs.get("summary", {})) if g else {}
        for name in ("dvc", "dvc_previous"):
            g = _group(store, name)
            d[name] = _tables(g, ["nodes", "layers", "strain"]) if g else {}
        g = _group(store, "truth")
        d["truth"] = _tables(g, ["layers", "totals", "displacement", "truth_layers", "inclusion_sizes",
                                 "crack_orientation", "inclusion_orientation"]) if g else {}
        d["truth_summary"] = dict(g.attrs.get("summary", {})) if g else {}
        seg = _group(store, "segmentation")
        d["model"] = dict(seg.attrs.get("model") or {}) if seg is not None else {}
        d["segmentation_method"] = seg.attrs.get("method") if seg is not None else None
        for stage in ("raw", "volume"):
            g = _group(store, stage)
            if g is not None:
                d.setdefault("inputs", {})[stage] = g.attrs["tomopipe"].get("inputs", {})
        data[sp.name] = d
    return data


# ------------------------------------------------------------------------------------------
# tables


def _states_table(sw, data, voxel_um):
    rows = []
    for name, d in data.items():
        s = d["summary"]
        layers = d["dvc"].get("layers")
        cracks = d["metrics"].get("cracks")
        row = {
            "state": name,
            "inclusion_volume_um3": s.get("inclusion_volume_um3", np.nan),
            "inclusion_active_pct": 100 * s.get("inclusion_active_fraction", np.nan),
            "n_inclusions": s.get("n_inclusions", np.nan),
            "crack_volume_um3": s.get("crack_volume_um3", np.nan),
            "n_cracks": s.get("n_cracks", np.nan),
            "crack_aperture_mean_um": float(np.average(cracks["aperture_um"], weights=cracks["volume_um3"]))
            if cracks is not None and len(cracks) and "aperture_um" in cracks else np.nan,
            "porosity": s.get("porosity", np.nan),
            "pore_diameter_d50_um": s.get("pore_diameter_d50_um", np.nan),
            "u_z_max_um": float(np.nanmax(layers["u_z_median_um"])) if layers is not None and len(layers)
            and np.isfinite(layers["u_z_median_um"]).any() else np.nan,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _long(data, key, table, extra_cols=None):
    parts = []
    for name, d in data.items():
        t = d[key].get(table)
        if t is None or not len(t):
            continue
        t = t.copy()
        t.insert(0, "state", name)
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["state"])


def _orientation(data):
    parts = []
    for name, d in data.items():
        for kind, table in (("crack", "crack_orientation"), ("inclusion", "inclusion_orientation")):
            t = d["metrics"].get(table)
            if t is None or not len(t):
                continue
            t = t.copy()
            t.insert(0, "kind", kind)
            t.insert(0, "state", name)
            parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["state", "kind"])


def _phase_fractions(data):
    parts = []
    for name, d in data.items():
        t = d["metrics"].get("layers")
        if t is None:
            continue
        frac = [c for c in t.columns if c.startswith("fraction_")]
        keep = [c for c in ("z_start_um", "z_stop_um", "z_center_um") if c in t.columns]
        m = t[keep + frac].melt(id_vars=keep, var_name="phase", value_name="fraction")
        m["phase"] = m["phase"].str.removeprefix("fraction_")
        m.insert(0, "state", name)
        parts.append(m)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["state", "phase", "fraction"])


def _dvc_layers(data, voxel_um, reference):
    parts = []
    for name, d in data.items():
        t = d["dvc"].get("layers")
        if t is None:
            continue
        t = t[[c for c in ("z_center_um", "n_nodes", "n_rejected", "u_z_median_um", "u_z_mad_um") if c in t]].copy()
        disp = d["truth"].get("displacement")
        if disp is not None and len(disp):
            t["u_z_true_um"] = np.interp(t["z_center_um"], disp["z_um"], disp["u_z_from_ocv_um"])
            t["error_voxels"] = (t["u_z_median_um"] - t["u_z_true_um"]) / voxel_um
        t.insert(0, "state", name)
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["state", "z_center_um", "u_z_median_um"])
    return pd.concat(parts, ignore_index=True)


def _strain_layers(data):
    parts = []
    for name, d in data.items():
        t = d["dvc"].get("strain")
        if t is None or not len(t) or "eps_zz" not in t:
            continue
        ok = t[t["status"].astype(str) == "ok"] if "status" in t else t
        if not len(ok):
            continue
        g = ok.groupby("node_z_um")["eps_zz"].agg(["median", "count"]).reset_index()
        g.columns = ["z_um", "eps_zz_median", "n_nodes"]
        g.insert(0, "state", name)
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["state", "z_um", "eps_zz_median"])


def _interfaces(sw, data, states, reference, voxel_um):
    """Interface positions in the reference (from its segmentation) and their DVC motion."""
    from ..dvc import interface_motion

    ref = next(sp for sp in states if sp.name == reference)
    seg = _group(ref.store, "segmentation")
    if seg is None:
        return pd.DataFrame(columns=["state", "interface", "z_interface_um", "u_z_median_um"])
    z_if = _label_interfaces(seg["labels"], dict(seg.attrs.get("labels") or {}), voxel_um)
    rows = []
    for name, d in data.items():
        nodes = d["dvc"].get("nodes")
        for iface, z in z_if.items():
            if nodes is None or not len(nodes):
                u = 0.0 if name == reference else np.nan
                rows.append({"state": name, "interface": iface, "z_interface_um": z, "u_z_median_um": u,
                             "z_now_um": z + u if np.isfinite(u) else np.nan, "n_nodes": 0})
                continue
            m = interface_motion(nodes, [z], window_um=sw.dvc.node_spacing_um).iloc[0]
            rows.append({"state": name, "interface": iface, "z_interface_um": z, "u_z_median_um": m["u_z_median_um"],
                         "z_now_um": m["z_deformed_um"], "n_nodes": int(m["n_nodes"])})
    return pd.DataFrame(rows)


def _label_interfaces(labels, schema, voxel_um):
    """z (µm) where the majority phase of the sample changes between collector, cathode,
    separator and Li, from per-slice label counts (read slab by slab)."""
    nz = labels.shape[0]
    names = ("current_collector", "active", "electrolyte", "lithium")
    counts = {n: np.zeros(nz) for n in names if n in schema}
    step = max(1, int(labels.chunks[0]) if hasattr(labels, "chunks") else 16)
    for z0 in range(0, nz, step):
        block = np.asarray(labels[z0:z0 + step])
        for n in counts:
            counts[n][z0:z0 + block.shape[0]] = (block == schema[n]).sum(axis=(1, 2))
    out = {}
    if "current_collector" in counts and "active" in counts:
        cc = counts["current_collector"] / np.maximum(counts["current_collector"].max(), 1)
        z = np.flatnonzero(cc > 0.5)
        if z.size:
            out["collector | cathode"] = (z.max() + 1) * voxel_um
    if "active" in counts:
        act = counts["active"] / np.maximum(counts["active"].max(), 1)
        z = np.flatnonzero(act > 0.2)
        if z.size:
            out["cathode | separator"] = (z.max() + 1) * voxel_um
    if "lithium" in counts:
        li = counts["lithium"] / np.maximum(counts["lithium"].max(), 1)
        z = np.flatnonzero(li > 0.5)
        if z.size:
            out["separator | Li"] = z.min() * voxel_um
    return out


def _cathode_range(d, voxel_um):
    t = d["truth"].get("truth_layers")
    if t is None or "cathode" not in set(t.iloc[:, 0].astype(str)):
        return None
    row = t[t.iloc[:, 0].astype(str) == "cathode"].iloc[0]
    return float(row["z_start_um"]), float(row["z_stop_um"])


def _validation(data, voxel_um, subset_um):
    rows = []
    for name, d in data.items():
        ts = d["truth_summary"]
        if not ts:
            continue
        s = d["summary"]
        for q in ("inclusion_volume_um3", "crack_volume_um3", "porosity"):
            kind, tol, floor = TOLERANCES[q]
            meas, true = s.get(q, np.nan), ts.get(q, np.nan)
            if kind == "relative":
                err = (meas - true) / true if true else np.nan
                applies = bool(true and (floor is None or true > floor))
                ok = bool(abs(err) <= tol) if applies else None
                rows.append({"state": name, "quantity": q, "measured": meas, "truth": true, "error": err,
                             "error_unit": "relative", "tolerance": tol, "within": ok})
            else:
                err = meas - true
                rows.append({"state": name, "quantity": q, "measured": meas, "truth": true, "error": err,
                             "error_unit": "fraction (pp/100)", "tolerance": tol, "within": bool(abs(err) <= tol)})
        layers = d["dvc"].get("layers")
        cath = _cathode_range(d, voxel_um)
        if layers is not None and len(layers) and cath is not None and "u_z_median_um" in layers:
            disp = d["truth"]["displacement"]
            half = subset_um / 2
            inside = (layers["z_center_um"] - half >= cath[0]) & (layers["z_center_um"] + half <= cath[1]) & \
                np.isfinite(layers["u_z_median_um"])
            if inside.any():
                true = np.interp(layers.loc[inside, "z_center_um"], disp["z_um"], disp["u_z_from_ocv_um"])
                err = (layers.loc[inside, "u_z_median_um"].to_numpy() - true) / voxel_um
                worst = float(err[np.argmax(np.abs(err))])
                rows.append({"state": name, "quantity": "uz_cathode_voxels",
                             "measured": float(layers.loc[inside, "u_z_median_um"].iloc[np.argmax(np.abs(err))]),
                             "truth": float(true[np.argmax(np.abs(err))]), "error": worst,
                             "error_unit": "voxels (worst cathode layer)", "tolerance": TOLERANCES["uz_cathode_voxels"][1],
                             "within": bool(abs(worst) <= TOLERANCES["uz_cathode_voxels"][1])})
    return pd.DataFrame(rows, columns=["state", "quantity", "measured", "truth", "error", "error_unit", "tolerance",
                                       "within"])


def _trends(states_table, dvc_layers, names, reference):
    """The CuS study's answers, checked on the measured values."""
    t = states_table.set_index("state")
    rows = []
    discharge = [n for n in names if n.upper().startswith(("OCV", "D"))]
    charge = [n for n in names if n.upper().startswith("C")]
    incl = t["inclusion_volume_um3"]
    if len(discharge) >= 2:
        v = incl[discharge].to_numpy()
        rows.append({"trend": "Cu-rich inclusions grow on discharge", "states": " → ".join(discharge),
                     "values": ", ".join(f"{x:.0f}" for x in v), "holds": bool(np.all(np.diff(v) >= 0) and v[-1] > v[0])})
    if discharge and charge:
        peak = incl[discharge].max()
        last = incl[charge[-1]]
        rows.append({"trend": "> 90 % of the Cu-rich volume gone after charge",
                     "states": f"max of discharge → {charge[-1]}", "values": f"{peak:.0f} → {last:.0f} µm³",
                     "holds": bool(peak > 0 and last < 0.1 * peak)})
    cr = t["crack_volume_um3"]
    if len(discharge) >= 2:
        v = cr[discharge].to_numpy()
        rows.append({"trend": "crack volume grows on discharge", "states": " → ".join(discharge),
                     "values": ", ".join(f"{x:.0f}" for x in v), "holds": bool(v[-1] > v[0])})
    if discharge and charge:
        rows.append({"trend": "part of the crack volume remains after charge",
                     "states": f"{discharge[-1]} → {charge[-1]}",
                     "values": f"{cr[discharge[-1]]:.0f} → {cr[charge[-1]]:.0f} µm³",
                     "holds": bool(0 < cr[charge[-1]] < cr[discharge].max())})
    if len(dvc_layers):
        deepest = discharge[-1] if discharge else names[-1]
        lay = dvc_layers[dvc_layers["state"] == deepest].dropna(subset=["u_z_median_um"])
        if len(lay) >= 2:
            lay = lay.sort_values("z_center_um")
            top = lay["u_z_median_um"].to_numpy()
            rows.append({"trend": "u_z largest towards the separator, small at the current collector",
                         "states": deepest, "values": f"{top[0]:.2f} µm (lowest z) … max {top.max():.2f} µm at "
                         f"z = {lay['z_center_um'].iloc[int(np.argmax(top))]:.0f} µm",
                         "holds": bool(np.argmax(top) > 0 and abs(top[0]) < top.max())})
    return pd.DataFrame(rows, columns=["trend", "states", "values", "holds"])


def _provenance(sw, data):
    import importlib

    rows = []
    for mod in ("tomopipe", "numpy", "scipy", "dask", "zarr", "scikit-image", "torch", "finufft", "pandas"):
        try:
            m = importlib.import_module("skimage" if mod == "scikit-image" else mod)
            rows.append({"item": f"version {mod}", "value": getattr(m, "__version__", "?")})
        except ImportError:
            rows.append({"item": f"version {mod}", "value": "not installed"})
    for name, d in data.items():
        for stage, inp in d.get("inputs", {}).items():
            if "checksum" in inp:
                c = inp["checksum"]
                rows.append({"item": f"{name}: {stage} input sha256", "value": c if isinstance(c, str) else str(c)})
        if d["model"]:
            rows.append({"item": f"{name}: model", "value": f"{d['model'].get('name')} (sha256 {d['model'].get('sha256')})"})
        elif d["segmentation_method"]:
            rows.append({"item": f"{name}: segmentation", "value": d["segmentation_method"]})
    dump = sw.model_dump(mode="json", exclude={"series"})
    for section, values in dump.items():
        rows.append({"item": f"parameters {section}", "value": str(values)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# figures


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder, name):
    path = Path(folder) / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _fig().close(fig)
    return path


def _legend(ax, fontsize=8):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)


def _figures(folder, names, tabs, data, quivers):
    plt = _fig()
    figs = {}
    st = tabs["states"]
    x = np.arange(len(names))

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(x, st["inclusion_volume_um3"], color="#b5651d")
    ax.set_xticks(x, names)
    ax.set_ylabel("Cu-rich inclusions (µm³)")
    ax2 = ax.twinx()
    ax2.plot(x, st["inclusion_active_pct"], "ko-")
    ax2.set_ylabel("% of active material")
    for i, n in enumerate(st["n_inclusions"]):
        ax.annotate(f"n={int(n) if np.isfinite(n) else 0}", (i, 0), ha="center", va="bottom", fontsize=8)
    ax.set_title("Cu-rich inclusion volume per state")
    figs["inclusions"] = _save(fig, folder, "inclusions")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    sizes = tabs["inclusion_sizes"]
    for n in names:
        t = sizes[sizes["state"] == n]
        if len(t):
            xcol = next((c for c in t.columns if c.endswith("_um") and c != "state"), None)
            ycol = next((c for c in ("count", "n", "volume_um3", "fraction") if c in t.columns), None)
            if xcol and ycol:
                ax.plot(t[xcol], t[ycol], "o-", label=n)
    ax.set_xlabel("equivalent diameter (µm)")
    ax.set_ylabel("inclusions")
    ax.set_title("size distribution of Cu-rich inclusions")
    _legend(ax)
    figs["inclusion_sizes"] = _save(fig, folder, "inclusion_sizes")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(x, st["crack_volume_um3"], color="#555555")
    ax.set_xticks(x, names)
    ax.set_ylabel("crack volume (µm³)")
    ax2 = ax.twinx()
    ax2.plot(x, st["crack_aperture_mean_um"], "o-", color="#c00000")
    ax2.set_ylabel("mean aperture (µm)", color="#c00000")
    ax.set_title("cracks per state")
    figs["cracks"] = _save(fig, folder, "cracks")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=False)
    ori = tabs["orientation"]
    for ax, kind in zip(axes, ("crack", "inclusion")):
        for n in names:
            t = ori[(ori["state"] == n) & (ori["kind"] == kind)]
            if len(t):
                xc = next((c for c in t.columns if "angle" in c or "bin" in c), None)
                yc = next((c for c in ("volume_um3", "volume_fraction", "count", "n") if c in t.columns), None)
                if xc and yc:
                    ax.plot(t[xc], t[yc], "o-", label=n)
        ax.set_xlabel("angle to z (°)")
        ax.set_title(f"{kind}s: orientation")
        _legend(ax)
    figs["orientation"] = _save(fig, folder, "orientation")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    prof = tabs["porosity_profile"]
    for n in names:
        t = prof[prof["state"] == n]
        if len(t) and "porosity" in t:
            ax.plot(t["z_center_um"], 100 * t["porosity"], "o-", label=n)
    ax.set_xlabel("z (µm)")
    ax.set_ylabel("porosity (%)")
    ax.set_title("porosity profile through the cell")
    _legend(ax)
    figs["porosity_profile"] = _save(fig, folder, "porosity_profile")

    pf = tabs["phase_fractions"]
    phases = [p for p in pf["phase"].unique()] if len(pf) else []
    ncol = max(1, min(4, len(phases)))
    nrow = max(1, int(np.ceil(len(phases) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    for ax, ph in zip(axes.ravel(), phases):
        for n in names:
            t = pf[(pf["state"] == n) & (pf["phase"] == ph)]
            ax.plot(t["z_center_um"], 100 * t["fraction"], ".-", label=n)
        ax.set_title(ph, fontsize=9)
        ax.set_xlabel("z (µm)", fontsize=8)
    for ax in axes.ravel()[len(phases):]:
        ax.axis("off")
    if phases:
        axes.ravel()[0].set_ylabel("% of the layer")
        _legend(axes.ravel()[0], fontsize=7)
    fig.suptitle("phase fractions per layer")
    fig.tight_layout()
    figs["phase_fractions"] = _save(fig, folder, "phase_fractions")

    fig, ax = plt.subplots(figsize=(7, 4))
    dl = tabs["dvc_layers"]
    for n in names:
        t = dl[dl["state"] == n]
        if len(t):
            line, = ax.plot(t["u_z_median_um"], t["z_center_um"], "o-", label=n)
            if "u_z_true_um" in t:
                ax.plot(t["u_z_true_um"], t["z_center_um"], "--", color=line.get_color(), alpha=0.6)
    ax.set_xlabel("u_z (µm), relative to the reference")
    ax.set_ylabel("z (µm)")
    ax.set_title("displacement along z (DVC; dashed: truth)")
    _legend(ax)
    figs["uz_profile"] = _save(fig, folder, "uz_profile")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    sl = tabs["strain_layers"]
    for n in names:
        t = sl[sl["state"] == n]
        if len(t):
            ax.plot(t["z_um"], t["eps_zz_median"], "o-", label=n)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("z (µm)")
    ax.set_ylabel("ε_zz (median per layer)")
    ax.set_title("strain along z per layer")
    _legend(ax)
    figs["strain"] = _save(fig, folder, "strain")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    it = tabs["interfaces"]
    for iface in (it["interface"].unique() if len(it) else []):
        t = it[it["interface"] == iface].set_index("state").reindex(names)
        ax.plot(x, t["u_z_median_um"], "o-", label=iface)
    ax.set_xticks(x, names)
    ax.set_ylabel("interface motion u_z (µm)")
    ax.set_title("interface motion relative to the reference")
    _legend(ax)
    figs["interfaces"] = _save(fig, folder, "interfaces")

    for n, q in quivers.items():
        if q is not None and Path(q).is_file():
            figs[f"quiver_{n}"] = Path(q)
    return figs


# ------------------------------------------------------------------------------------------
# HTML


def _img(path):
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,' + \
        base64.b64encode(Path(path).read_bytes()).decode() + '">'


def _table_html(df, floatfmt="{:.4g}"):
    if df is None or not len(df):
        return "<p><em>none</em></p>"
    return df.to_html(index=False, border=0, classes="t", na_rep="–",
                      float_format=lambda v: floatfmt.format(v), escape=True)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%;display:block;margin:.6em 0}table.t{border-collapse:collapse;font-size:.85em}
table.t td,table.t th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right}
.ok{color:#070}.bad{color:#b00}.small{font-size:.8em;color:#555}"""


def _html(title, sw, names, tabs, figs):
    v = tabs["validation"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(names)} states ({html.escape(' → '.join(names))}), reference "
             f"{html.escape(sw.series.reference_name)}; every figure comes from tomopipe's own segmentation "
             "(ground truth, where it exists, appears only in the validation table and as dashed lines).</p>"]

    def section(head, *body):
        parts.append(f"<h2>{html.escape(head)}</h2>")
        parts.extend(body)

    section("Summary per state", _table_html(tabs["states"]))
    section("Cu-rich inclusions", _img(figs["inclusions"]), _img(figs["inclusion_sizes"]))
    section("Cracks", _img(figs["cracks"]), _img(figs["orientation"]))
    section("Porosity and phase fractions", _img(figs["porosity_profile"]), _img(figs["phase_fractions"]))
    quiv = [_img(p) for k, p in figs.items() if k.startswith("quiver_")]
    section("Displacement (DVC)", _img(figs["uz_profile"]), _img(figs["strain"]), _img(figs["interfaces"]),
            _table_html(tabs["interfaces"]), *quiv)
    section("The study's trends", _table_html(tabs["trends"]))
    if len(v):
        section("Validation against ground truth", _table_html(v),
                "<p class='small'>Relative error for volumes (inclusions: where truth &gt; 1000 µm³); porosity as "
                "a fraction (0.01 = 1 percentage point); u_z in voxels, worst layer inside the cathode.</p>")
    section("Provenance", _table_html(tabs["provenance"]))
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------
# the stage


def report_stage(sw, states, *, report_folder):
    """The ``report`` stage of a series (see the module docstring).

    Parameters
    ----------
    sw : SeriesWorkflow
    states : list of StatePlan
        The planned states (their stores and stages).
    report_folder : Path

    Returns
    -------
    Stage
    """
    names = [sp.name for sp in states]
    inputs = {}
    quivers = {}
    for sp in states:
        fps = {s.name: s.fingerprint for s in sp.plan.stages + sp.extra
               if s.name in ("segmentation", "metrics", "dvc", "dvc_previous", "truth", "volume")}
        inputs[sp.name] = fps
        quivers[sp.name] = sp.store.with_name(sp.store.name + ".dvc.png") if "dvc" in fps else None
    voxel = states[0].plan.volume_voxel_um[0]
    params = {"states": names, "reference": sw.series.reference_name, "title": sw.report.title or sw.name,
              "folder": sw.report.folder, "tolerances": TOLERANCES}

    def write(w):
        from ..quantify import write_tables

        report_folder.mkdir(parents=True, exist_ok=True)
        data = _gather(states)
        tabs = {"states": _states_table(sw, data, voxel)}
        tabs["inclusion_sizes"] = _long(data, "metrics", "inclusion_sizes")
        tabs["orientation"] = _orientation(data)
        prof = _long(data, "metrics", "layers")
        tabs["porosity_profile"] = prof[[c for c in ("state", "z_start_um", "z_stop_um", "z_center_um", "porosity")
                                         if c in prof]]
        tabs["phase_fractions"] = _phase_fractions(data)
        tabs["dvc_layers"] = _dvc_layers(data, voxel, sw.series.reference_name)
        tabs["strain_layers"] = _strain_layers(data)
        tabs["interfaces"] = _interfaces(sw, data, states, sw.series.reference_name, voxel)
        tabs["validation"] = _validation(data, voxel, sw.dvc.subset_size_um or sw.dvc.node_spacing_um)
        tabs["trends"] = _trends(tabs["states"], tabs["dvc_layers"], names, sw.series.reference_name)
        tabs["provenance"] = _provenance(sw, data)
        figs = _figures(report_folder, names, tabs, data, quivers)
        write_tables({k: v.reset_index(drop=True) for k, v in tabs.items()}, w.group, folder=report_folder)
        page = report_folder / "report.html"
        page.write_text(_html(params["title"], sw, names, tabs, figs), encoding="utf-8")
        v = tabs["validation"]
        return {"report": str(page), "figures": {k: str(p) for k, p in figs.items()},
                "validation_within": None if not len(v) else int(v["within"].fillna(True).astype(bool).sum()),
                "validation_rows": int(len(v))}

    return Stage("report", params, inputs, write, describe=f"{len(names)} states → {report_folder / 'report.html'}")

