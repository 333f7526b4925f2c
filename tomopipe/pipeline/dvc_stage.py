"""The ``dvc`` stage: displacement of a state's volume relative to a reference state's."""

from __future__ import annotations

from pathlib import Path

from ..errors import StageError
from .store import Store, fingerprint

__all__ = ["run_dvc"]


def run_dvc(reference, deformed, *, node_spacing_um=50.0, subset_size_um=None, affine=False,
            search_voxels=8, pyramid_levels=0, n_layers=None, log=None):
    """Correlate the volumes of two stores and write ``dvc/`` into the deformed one.

    Parameters
    ----------
    reference, deformed : path-like
        tomopipe stores with a complete ``volume`` stage (same voxel size).
    node_spacing_um, subset_size_um : float
        Node spacing and subset (cuboid) edge in µm; default subset = spacing (the 50 µm
        cuboids of the CuS study tile the volume).
    affine : bool
        Fit the full affine map per subset (slower; gives the displacement gradient).
    search_voxels, pyramid_levels : int
        Integer search range and coarse-to-fine levels of :func:`tomopipe.dvc.dvc`.
    n_layers : int, optional
        z-layers of the summary (default: one per node plane).
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

    Notes
    -----
    Sign convention: ``u`` maps the reference to the deformed volume,
    ``deformed(x + u) ≈ reference(x)``; components ``(z, y, x)`` in voxels and µm.
    """
    from ..dvc import dvc, layer_displacement, quiver_plot, strain
    from ..quantify import write_tables

    log = log or (lambda m: None)
    for p in (reference, deformed):
        if not (Path(p) / "zarr.json").is_file():
            raise StageError(f"{p}: not a tomopipe store (no complete volume stage to correlate)")
    ref_st, def_st = Store(reference), Store(deformed)
    ref_meta, def_meta = ref_st.info("volume"), def_st.info("volume")
    if ref_meta is None or def_meta is None:
        missing = reference if ref_meta is None else deformed
        raise StageError(f"{missing}: no complete volume stage to correlate")
    ref_g, def_g = ref_st.group("volume"), def_st.group("volume")
    v_ref, v_def = ref_g.attrs.get("voxel_size_um"), def_g.attrs.get("voxel_size_um")
    if not v_ref or v_ref != v_def:
        raise StageError(f"voxel sizes differ or are unknown: {reference}: {v_ref} µm, {deformed}: {v_def} µm")
    params = {"node_spacing_um": node_spacing_um, "subset_size_um": subset_size_um or node_spacing_um,
              "affine": affine, "search_voxels": search_voxels, "pyramid_levels": pyramid_levels,
              "n_layers": n_layers, "reference": str(Path(reference).resolve())}
    inputs = {"reference": ref_meta["fingerprint"], "deformed": def_meta["fingerprint"]}
    fp = fingerprint("dvc", params, inputs)
    quiver = def_st.path.with_name(def_st.path.name + ".dvc.png")
    if def_st.is_complete("dvc", fp):
        g = def_st.group("dvc")
        from ..quantify import read_table

        return {"nodes": read_table(g, "nodes"), "layers": read_table(g, "layers"),
                "strain": read_table(g, "strain"), "quiver": quiver, "skipped": True}
    log(f"[dvc] {Path(reference).name} → {Path(deformed).name}: nodes every {node_spacing_um} µm")
    nodes = dvc(ref_g["0"], def_g["0"], float(v_ref), node_spacing_um=node_spacing_um,
                subset_size_um=subset_size_um or node_spacing_um, affine=affine,
                search_voxels=search_voxels, pyramid_levels=pyramid_levels)
    nodes.attrs = {}
    layers = layer_displacement(nodes, n_layers=n_layers)
    st = strain(nodes).table
    g = def_st.begin("dvc")
    units = {c: "um" for c in nodes.columns if c.endswith("_um")}
    write_tables({"nodes": nodes.assign(status=nodes["status"].astype(str)), "layers": layers, "strain":
                  st.assign(status=st["status"].astype(str))}, g, units=units)
    quiver_plot(nodes, quiver, title=f"{Path(deformed).name} vs {Path(reference).name}")
    def_st.commit("dvc", g, fp=fp, parameters=params, inputs=inputs,
                  attrs={"sign_convention": "deformed(x + u) = reference(x); (z, y, x)",
                         "n_ok": int((nodes["status"] == "ok").sum()), "n_nodes": int(len(nodes))})
    return {"nodes": nodes, "layers": layers, "strain": st, "quiver": quiver, "skipped": False}
