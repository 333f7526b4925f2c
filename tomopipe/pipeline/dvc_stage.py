"""The ``dvc`` stage: displacement of a state's volume relative to another state's volume."""

from __future__ import annotations

from pathlib import Path

from ..errors import StageError
from .stage import Runner, Stage, StageRef
from .store import Store, StoreLock

__all__ = ["dvc_stage", "run_dvc", "dvc_config"]


def dvc_stage(cfg, reference: StageRef, deformed: StageRef, *, voxel_size_um, name="dvc", quiver=None, title=""):
    """The stage `name` (``dvc``) of the deformed store: nodes, per-layer displacement, strain.

    Parameters
    ----------
    cfg : DvcConfig
        Node spacing, subset, search, affine, ZNCC threshold, summary layers.
    reference, deformed : StageRef
        The ``volume`` stages of the two states (level ``0`` is correlated).
    voxel_size_um : float
        The (isotropic) voxel size of both volumes, µm.
    name : str
        Group name in the deformed store.
    quiver : Path, optional
        Where the quiver plot (x–z plane) goes.

    Returns
    -------
    Stage
    """
    params = {**cfg.model_dump(mode="json"), "voxel_size_um": voxel_size_um}

    def write(w):
        from ..dvc import dvc, layer_displacement, quiver_plot, strain
        from ..quantify import write_tables

        nodes = dvc(reference.group()["0"], deformed.group()["0"], voxel_size_um,
                    node_spacing_um=cfg.node_spacing_um, subset_size_um=cfg.subset_size_um or cfg.node_spacing_um,
                    affine=cfg.affine, search_voxels=cfg.search_voxels, pyramid_levels=cfg.pyramid_levels,
                    zncc_min=cfg.zncc_min)
        attrs = dict(nodes.attrs)
        nodes.attrs = {}
        layers = layer_displacement(nodes, n_layers=cfg.n_layers)
        st = strain(nodes).table
        units = {c: "um" for c in nodes.columns if c.endswith("_um")}
        write_tables({"nodes": nodes.assign(status=nodes["status"].astype(str)), "layers": layers,
                      "strain": st.assign(status=st["status"].astype(str))}, w.group, units=units)
        if quiver is not None:
            quiver_plot(nodes, quiver, title=title)
        counts = nodes["status"].astype(str).value_counts().to_dict()
        return {"sign_convention": "deformed(x + u) = reference(x); (z, y, x)", "n_nodes": int(len(nodes)),
                "reference": str(Path(reference.path).resolve()),
                "n_ok": int(counts.get("ok", 0)), "status_counts": counts,
                "n_nan_nodes": attrs.get("n_nan_nodes", 0), "quiver": None if quiver is None else str(quiver)}

    return Stage(name, params, {"reference": reference.fingerprint, "deformed": deformed.fingerprint}, write,
                 describe=f"{Path(reference.path).name} → {Path(deformed.path).name}: nodes every "
                          f"{cfg.node_spacing_um:g} µm")


def _volume_ref(path):
    p = Path(path)
    if not (p / "zarr.json").is_file():
        raise StageError(f"{p}: not a tomopipe store (no complete volume stage to correlate)")
    st = Store(p)
    meta = st.info("volume")
    if meta is None:
        raise StageError(f"{p}: no complete volume stage to correlate")
    return StageRef(p, "volume", meta["fingerprint"]), st.group("volume").attrs.get("voxel_size_um")


def volume_voxel(v_ref, v_def, reference, deformed):
    """The common isotropic voxel size (µm) of two volumes, or StageError naming them."""
    from ..units import voxel_size_um

    try:
        a, b = voxel_size_um(v_ref), voxel_size_um(v_def)
    except Exception:
        a = b = None
    if a is None or a != b or len(set(a)) != 1:
        raise StageError(f"voxel sizes differ, are unknown or anisotropic: {reference}: {v_ref} µm, "
                         f"{deformed}: {v_def} µm (DVC needs the same isotropic voxels)")
    return a[0]


def dvc_config(*, node_spacing_um=50.0, subset_size_um=None, affine=False, search_voxels=8, pyramid_levels=0,
               zncc_min=0.8, n_layers=None):
    """A :class:`~.config.DvcConfig` from values in fixed units (µm, voxels), validated."""
    from .config import DvcConfig, validate_section

    data = {"node_spacing": f"{node_spacing_um} um", "affine": affine, "search": search_voxels,
            "pyramid_levels": pyramid_levels, "zncc_min": zncc_min, "n_layers": n_layers}
    if subset_size_um is not None:
        data["subset"] = f"{subset_size_um} um"
    return validate_section(DvcConfig, data, source="dvc", what="DVC settings")


def run_dvc(reference, deformed, cfg=None, *, log=None, **options):
    """Correlate the volumes of two stores and write ``dvc/`` into the deformed one.

    Parameters
    ----------
    reference, deformed : path-like
        tomopipe stores with a complete ``volume`` stage (same isotropic voxel size).
    cfg : DvcConfig, optional
        The settings; or give them as `options` (:func:`dvc_config`: ``node_spacing_um``,
        ``subset_size_um``, ``affine``, ``search_voxels``, ``pyramid_levels``, ``zncc_min``,
        ``n_layers``).
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    dict
        ``nodes`` (the node table), ``layers`` (per-layer displacement), ``strain`` (small
        strain per node), ``quiver`` (PNG path), ``skipped`` (True when up to date).

    Raises
    ------
    StageError
        If a store has no complete volume or the voxel sizes differ.
    StoreLockedError
        If another process writes the deformed store.

    Notes
    -----
    Sign convention: ``u`` maps the reference to the deformed volume,
    ``deformed(x + u) ≈ reference(x)``; components ``(z, y, x)`` in voxels and µm.
    """
    from ..quantify import read_table

    log = log or (lambda m: None)
    cfg = cfg if cfg is not None else dvc_config(**options)
    ref, v_ref = _volume_ref(reference)
    dfm, v_def = _volume_ref(deformed)
    voxel = volume_voxel(v_ref, v_def, reference, deformed)
    quiver = Path(deformed).with_name(Path(deformed).name + ".dvc.png")
    stage = dvc_stage(cfg, ref, dfm, voxel_size_um=voxel, quiver=quiver,
                      title=f"{Path(deformed).name} vs {Path(reference).name}")
    with StoreLock(deformed):
        st = Store(deformed, create=True)
        runner = Runner(st, log=log)
        runner.run(stage)
        g = st.group(stage.name)
        return {"nodes": read_table(g, "nodes"), "layers": read_table(g, "layers"),
                "strain": read_table(g, "strain"), "quiver": quiver, "skipped": not runner.ran}
