"""Run a workflow: raw → normalized → [phase] → sinograms → volume → [segmentation] → [metrics],
each a zarr stage.

Chunk contract (``c`` = ``output.chunk_angles``, ``r`` = ``recon.rows_per_chunk``, both capped so
that one task's float32 input stays under ``output.chunk_mb``, see :func:`chunking`):

========== ================================ =========================== ==================
stage      array, axes                      dask chunks (one task)      zarr chunks
========== ================================ =========================== ==================
raw        projections (angle, row, col)    (c, all rows, all cols)     (c, r, all cols)
normalized projections (angle, row, col)    (c, all rows, all cols)     (c, r, all cols)
phase      projections (angle, row, col)    (c, all rows, all cols)     (c, r, all cols)
sinograms  sinograms (angle, row, col)      (all angles, r, all cols)   (c, r, all cols)
volume     0, 1, … (z, y, x) pyramid        (r, N, N)                   (r, ≤256, ≤256)
========== ================================ =========================== ==================

The ``segmentation`` stage (:mod:`.segment_stage`) reads ``segment.chunks`` of the volume plus the
halo of the network's tiles per task and writes ``labels (z, y, x)`` and ``probabilities (class,
z, y, x)`` in zarr chunks of ``segment.chunks`` (one class per probability chunk).

Projection stages read whole projections (Paganin and dezinger need them); the sinogram and
volume stages read all angles of ``r`` rows. The small zarr chunks let both read exactly what
they need, and every dask chunk covers whole zarr chunks, so writes need no locks. RAM per
worker is a few tasks' chunks, independent of the size of the scan.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from .._validate import check_shape_equality
from ..errors import InvalidFlatError, StageError
from ..io import read_scan
from ..prep import (
    minus_log,
    normalize_interp,
    remove_outlier,
    remove_stripe_based_sorting,
    remove_stripe_fw,
    retrieve_phase_paganin,
)
from ..reconstruction import find_center_pc, find_center_vo, recon_dask
from ..units import parse_quantity
from .config import Workflow
from .store import Store, file_checksum, fingerprint, open_label_array

__all__ = ["run_workflow", "RunResult", "open_input"]

_TILE = 256


@dataclass
class RunResult:
    """What a run produced: the store, the stages run or skipped, and the centre used."""

    store: Path
    ran: list
    skipped: list
    center: float
    preview: Path | None


def open_input(wf: Workflow):
    """Open the workflow's raw scan lazily (validating it) and list its files.

    Returns
    -------
    scan : tomopipe.io.RawScan
    files : list of Path
        The files read (for the input checksum).
    """
    from ..datasets import resolve_input

    spec = wf.input
    path = resolve_input(spec.path, base_dir=wf.base_dir)
    fmt = None if spec.format == "auto" else spec.format
    if fmt == "tiff" or (fmt is None and any(ch in str(path) for ch in "*?[")):
        from glob import glob

        from ..io import read_tiff_series

        files = sorted(glob(str(path)))
        th = spec.theta
        if th is None:
            raise StageError(f"input.theta is required for a TIFF series ({path})")
        n = th.count or len(files)
        start = parse_quantity(th.start, "rad", name="input.theta.start")
        stop = parse_quantity(th.stop, "rad", name="input.theta.stop")
        theta = np.linspace(start, stop, n, endpoint=th.endpoint)
        flats = str(wf.resolve(spec.flats)) if spec.flats else None
        darks = str(wf.resolve(spec.darks)) if spec.darks else None
        scan = read_tiff_series(str(path), flats, darks, theta=theta, flat_index=spec.flat_index)
        for pattern in (flats, darks):
            if pattern:
                files += sorted(glob(pattern))
        return scan, [Path(f) for f in files]
    scan = read_scan(str(path), format=fmt)
    return scan, [Path(path)]


def _progress(enabled):
    if not enabled:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0, out=sys.stderr)


def _store_array(arr, target, progress):
    with _progress(progress):
        da.store(arr, target, lock=False, compute=True)


def _projection_chunks(shape, c, r):
    return (min(c, shape[0]), min(r, shape[1]), shape[2])


def run_workflow(wf: Workflow, store=None, *, scheduler=None, progress=True, log=None):
    """Run a workflow, skipping stages whose output is complete and up to date.

    Parameters
    ----------
    wf : Workflow
        The validated workflow (:func:`tomopipe.pipeline.load_workflow`).
    store : path-like, optional
        The zarr store (default ``output.store`` or ``<name>.zarr`` in the current folder).
    scheduler : str, optional
        Address of a dask.distributed scheduler (``tcp://host:8786``); default: dask's
        threaded scheduler on this machine.
    progress : bool
        Show progress bars (on stderr).
    log : callable, optional
        Receives one line of text per event (default: print to stderr).

    Returns
    -------
    RunResult

    Raises
    ------
    TomopipeError
        Bad input (file, key, flats, angles, workflow). Nothing complete is overwritten.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    store_path = Path(store or wf.output.store or f"{wf.name}.zarr")
    if not store_path.is_absolute() and store is None and wf.output.store:
        store_path = wf.resolve(wf.output.store)
    scan, files = open_input(wf)  # validates the input before anything is written
    rows = wf.input.rows
    if rows is not None and not (0 <= rows[0] < rows[1] <= scan.projections.shape[1]):
        raise StageError(
            f"input.rows {list(rows)} outside the detector's {scan.projections.shape[1]} rows ({scan.source})"
        )
    flatfield = reference_fields(scan, wf)  # zero / NaN flats fail here, before any write
    client = None
    if scheduler:
        from distributed import Client

        client = Client(scheduler)
        log(f"connected to dask scheduler {scheduler}")
    try:
        cfg = dask.config.set(scheduler="threads") if client is None else contextlib.nullcontext()
        with cfg:
            return _run(wf, scan, files, flatfield, Store(store_path), progress and client is None, log)
    finally:
        if client is not None:
            client.close()


def chunking(wf, shape):
    """Angles per projection chunk and rows per sinogram chunk, capped by ``output.chunk_mb``.

    Parameters
    ----------
    wf : Workflow
    shape : (n_angles, n_rows, n_cols) tuple
        Shape of the raw projections (before ``input.rows``).

    Returns
    -------
    c, r : int
        ``min(output.chunk_angles, budget / (rows·cols·4 B))`` and
        ``min(recon.rows_per_chunk, budget / (angles·cols·4 B))``, at least 1: one task's
        float32 input never exceeds the budget (or one projection / one sinogram), so RAM per
        worker stays flat however many angles or rows a scan has.
    """
    n_a, n_r, n_c = shape
    if wf.input.rows is not None:
        n_r = wf.input.rows[1] - wf.input.rows[0]
    budget = wf.output.chunk_mb * 2**20
    c = max(1, min(wf.output.chunk_angles, budget // (n_r * n_c * 4)))
    r = max(1, min(wf.recon.rows_per_chunk, budget // (n_a * n_c * 4)))
    return int(c), int(r)


def reference_fields(scan, wf):
    """Flat series and dark averages of a scan, validated (streamed with dask).

    Flat frames are grouped into series by ``scan.flat_index`` and each series is reduced
    (median for ``normalize.flats`` = 'median' or 'interpolate', else mean) chunk by chunk
    of rows, so RAM stays bounded by ``(frames of one series) × rows_per_chunk × cols``.

    Returns
    -------
    dict
        ``flats`` (n_series, row, col) float32, ``darks`` (row, col) float32, ``index``
        (n_series,) projection index of each series, ``mode`` and ``averaging``.

    Raises
    ------
    InvalidFlatError
        No flats, NaN in flats or darks, or flat − dark ≤ 0 everywhere (names the file).
    """
    flats, darks = scan.flats, scan.darks
    if wf.input.rows is not None:
        r0, r1 = wf.input.rows
        flats, darks = flats[:, r0:r1], darks[:, r0:r1]
    if flats.shape[0] == 0:
        raise InvalidFlatError(f"{scan.source}: no flat fields")
    mode = wf.normalize.flats
    fi = scan.flat_index
    if mode == "auto":
        mode = "interpolate" if fi is not None and len(set(np.asarray(fi).tolist())) > 1 else "mean"
    if mode == "interpolate" and fi is None:
        raise StageError(f"normalize.flats: 'interpolate' needs flat positions, which {scan.source} lacks")
    averaging = "median" if mode in ("median", "interpolate") else "mean"
    r = chunking(wf, scan.projections.shape)[1]
    if mode == "interpolate":
        fi = np.asarray(fi, dtype=np.float64)
        index = np.unique(fi)
        groups = [np.flatnonzero(fi == v) for v in index]
    else:
        index = np.zeros(1)
        groups = [np.arange(flats.shape[0])]
    reduce = da.median if averaging == "median" else da.mean
    series = []
    for g in groups:
        f = flats[g].astype(np.float32).rechunk((-1, r, -1))
        series.append(reduce(f, axis=0))
    if darks.shape[0]:
        dark = reduce(darks.astype(np.float32).rechunk((-1, r, -1)), axis=0)
    else:
        dark = da.zeros(flats.shape[1:], dtype=np.float32)
    series, dark = dask.compute(da.stack(series), dark)
    series = series.astype(np.float32)
    dark = dark.astype(np.float32)
    check_shape_equality(series.shape[1:], scan.projections.shape[1:] if wf.input.rows is None
                         else (wf.input.rows[1] - wf.input.rows[0], scan.projections.shape[2]),
                         a_name=f"flats of {scan.source}", b_name="projections")
    try:  # the same checks as normalization itself, on the first projection
        first = np.asarray(scan.projections[:1].compute(), dtype=np.float32)
        if wf.input.rows is not None:
            first = first[:, wf.input.rows[0]:wf.input.rows[1]]
        normalize_interp(first, series, dark, index, proj_index=np.arange(1), averaging=averaging)
    except InvalidFlatError as exc:
        raise InvalidFlatError(f"{scan.source}: {exc}") from None
    return {"flats": series, "darks": dark, "index": index, "mode": mode, "averaging": averaging}


def _run(wf, scan, files, flatfield, st, progress, log):
    ran, skipped = [], []
    c, r = chunking(wf, scan.projections.shape)

    # ---- raw ---------------------------------------------------------------------------
    cache = dict(st.root.attrs.get("checksums", {}))
    checksum = file_checksum(files, cache=cache)
    st.root.attrs["checksums"] = cache
    rows = wf.input.rows
    proj = scan.projections
    flats, darks = scan.flats, scan.darks
    if rows is not None:
        r0, r1 = rows
        proj, flats, darks = proj[:, r0:r1], flats[:, r0:r1], darks[:, r0:r1]
    raw_params = {"input": wf.input.model_dump(mode="json"), "chunk_angles": c, "rows_per_chunk": r}
    fp_raw = fingerprint("raw", raw_params, {"checksum": checksum})
    if st.is_complete("raw", fp_raw):
        skipped.append("raw")
    else:
        log(f"[raw] copying {proj.shape} {proj.dtype} from {scan.source}")
        g = st.begin("raw")
        pshape = proj.shape
        chunks = _projection_chunks(pshape, c, r)
        dims = ("angle", "row", "col")
        targets = [
            st.create_array(g, "projections", shape=pshape, chunks=chunks, dtype=proj.dtype, dims=dims,
                            attrs={"units": "counts"}),
            st.create_array(g, "flats", shape=flats.shape, chunks=_projection_chunks(flats.shape, c, r),
                            dtype=flats.dtype, dims=dims, attrs={"units": "counts"}),
            st.create_array(g, "darks", shape=darks.shape,
                            chunks=_projection_chunks(darks.shape, c, r) if darks.shape[0] else (1,) + darks.shape[1:],
                            dtype=darks.dtype, dims=dims, attrs={"units": "counts"}),
        ]
        th = st.create_array(g, "theta", shape=scan.theta.shape, chunks=scan.theta.shape, dtype="float64",
                             dims=("angle",), attrs={"units": "rad"})
        th[:] = scan.theta
        sources = [proj.rechunk((chunks[0], -1, -1)), flats.rechunk((chunks[0], -1, -1)), darks]
        for src, tgt in zip(sources, targets):
            if src.shape[0]:
                _store_array(src, tgt, progress)
        fi = None if scan.flat_index is None else [float(v) for v in scan.flat_index]
        st.commit("raw", g, fp=fp_raw, parameters=raw_params, inputs={"checksum": checksum,
                  "files": [str(f) for f in files[:5]] + (["…"] if len(files) > 5 else [])},
                  attrs={"flat_index": fi, "source": scan.source, "format": scan.format})
        ran.append("raw")
    raw = st.group("raw")

    # ---- normalized ----------------------------------------------------------------------
    norm_params = {**wf.normalize.model_dump(mode="json")}
    fp_norm = fingerprint("normalized", norm_params, {"raw": fp_raw})
    if st.is_complete("normalized", fp_norm):
        skipped.append("normalized")
    else:
        dz = wf.normalize.dezinger
        f_arr, d_arr, fidx = flatfield["flats"], flatfield["darks"], flatfield["index"]
        mode, averaging = flatfield["mode"], flatfield["averaging"]
        log(f"[normalized] flats: {mode} ({f_arr.shape[0]} series), dezinger: {dz is not None}")
        src = da.from_zarr(raw["projections"]).rechunk((raw["projections"].chunks[0], -1, -1))

        def _norm(block, block_info=None):
            a0 = block_info[0]["array-location"][0][0]
            block = np.asarray(block, dtype=np.float32)
            if dz is not None:
                block = remove_outlier(block, dz.threshold, size=dz.size)
            return normalize_interp(block, f_arr, d_arr, fidx, proj_index=np.arange(a0, a0 + block.shape[0]),
                                    averaging=averaging)

        out = src.map_blocks(_norm, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32))
        g = st.begin("normalized")
        tgt = st.create_array(g, "projections", shape=out.shape, chunks=raw["projections"].chunks,
                              dtype="float32", dims=("angle", "row", "col"), attrs={"units": "transmission"})
        _store_array(out, tgt, progress)
        st.commit("normalized", g, fp=fp_norm, parameters={**norm_params, "flats_mode": mode},
                  inputs={"raw": fp_raw})
        ran.append("normalized")
    source_stage, fp_src = "normalized", fp_norm

    # ---- phase ---------------------------------------------------------------------------
    pixel_cm = wf.pixel_size_cm()
    if wf.phase is not None:
        if pixel_cm is None:
            raise StageError("phase retrieval needs geometry.pixel_size")
        ph = wf.phase
        ph_params = {**ph.model_dump(mode="json"), "pixel_size": wf.geometry.pixel_size}
        fp_ph = fingerprint("phase", ph_params, {"normalized": fp_norm})
        if st.is_complete("phase", fp_ph):
            skipped.append("phase")
        else:
            kw = dict(delta_beta=ph.delta_beta, energy_keV=parse_quantity(ph.energy, "keV", name="phase.energy"),
                      distance_mm=parse_quantity(ph.distance, "mm", name="phase.distance"),
                      pixel_size_um=pixel_cm * 1e4)
            log(f"[phase] Paganin δ/β={ph.delta_beta}, {ph.energy}, {ph.distance}")
            norm = st.group("normalized")["projections"]
            src = da.from_zarr(norm).rechunk((norm.chunks[0], -1, -1))
            out = src.map_blocks(lambda b: retrieve_phase_paganin(b, **kw), dtype=np.float32,
                                 meta=np.empty((0, 0, 0), np.float32))
            g = st.begin("phase")
            tgt = st.create_array(g, "projections", shape=out.shape, chunks=norm.chunks, dtype="float32",
                                  dims=("angle", "row", "col"), attrs={"units": "transmission (phase-filtered)"})
            _store_array(out, tgt, progress)
            st.commit("phase", g, fp=fp_ph, parameters=ph_params, inputs={"normalized": fp_norm})
            ran.append("phase")
        source_stage, fp_src = "phase", fp_ph

    # ---- sinograms -----------------------------------------------------------------------
    sino_params = wf.stripes.model_dump(mode="json")
    fp_sino = fingerprint("sinograms", sino_params, {source_stage: fp_src})
    if st.is_complete("sinograms", fp_sino):
        skipped.append("sinograms")
    else:
        srcz = st.group(source_stage)["projections"]
        n_a = srcz.shape[0]
        src = da.from_zarr(srcz).rechunk((n_a, srcz.chunks[1], -1))
        stripes = wf.stripes

        def _sino(block):
            block = minus_log(block)
            if stripes.method == "fw":
                block = remove_stripe_fw(block, level=stripes.level, wname=stripes.wname, sigma=stripes.sigma)
            elif stripes.method == "sorting":
                block = remove_stripe_based_sorting(block, size=stripes.size)
            return block

        log(f"[sinograms] minus_log, stripes: {stripes.method}")
        out = src.map_blocks(_sino, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32))
        g = st.begin("sinograms")
        tgt = st.create_array(g, "sinograms", shape=out.shape, chunks=srcz.chunks, dtype="float32",
                              dims=("angle", "row", "col"), attrs={"units": "line integral of mu (pixel units)"})
        _store_array(out, tgt, progress)
        st.commit("sinograms", g, fp=fp_sino, parameters=sino_params, inputs={source_stage: fp_src})
        ran.append("sinograms")
    sinoz = st.group("sinograms")["sinograms"]
    theta = np.asarray(st.group("raw")["theta"][:])

    # ---- centre --------------------------------------------------------------------------
    center = _find_center(wf, st, sinoz, theta, log)

    # ---- volume --------------------------------------------------------------------------
    vol_params = {**wf.recon.model_dump(mode="json"), "center": center,
                  "pixel_size": wf.geometry.pixel_size, "pyramid_levels": wf.output.pyramid_levels}
    fp_vol = fingerprint("volume", vol_params, {"sinograms": fp_sino})
    if st.is_complete("volume", fp_vol):
        skipped.append("volume")
    else:
        n_a, n_rows, n_cols = sinoz.shape
        src = da.from_zarr(sinoz).rechunk((n_a, sinoz.chunks[1], -1))
        vol = recon_dask(src, theta, center, rows_per_chunk=sinoz.chunks[1], filter_name=wf.recon.filter_name,
                         filter_par=wf.recon.filter_par, pixel_size=pixel_cm)
        unit = "1/cm" if pixel_cm else "1/pixel"
        log(f"[volume] FBP ({wf.recon.filter_name}) of {n_rows} slices {n_cols}², centre {center:.2f}, μ in {unit}")
        g = st.begin("volume")
        voxel_um = None if pixel_cm is None else pixel_cm * 1e4
        datasets = []
        level0 = st.create_array(g, "0", shape=vol.shape, chunks=(vol.chunks[0][0], min(_TILE, n_cols), min(_TILE, n_cols)),
                                 dtype="float32", dims=("z", "y", "x"), attrs={"units": unit, "voxel_size_um": voxel_um})
        _store_array(vol, level0, progress)
        datasets.append({"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [voxel_um or 1.0] * 3}]})
        prev = level0
        for lev in range(1, wf.output.pyramid_levels):
            if min(prev.shape) < 2:
                break
            down = da.coarsen(np.mean, da.from_zarr(prev), {0: 2, 1: 2, 2: 2}, trim_excess=True).astype(np.float32)
            ch = tuple(min(s, cs) for s, cs in zip(down.shape, (max(1, prev.chunks[0]), _TILE, _TILE)))
            down = down.rechunk(ch)
            tgt = st.create_array(g, str(lev), shape=down.shape, chunks=ch, dtype="float32", dims=("z", "y", "x"),
                                  attrs={"units": unit, "downsample": 2**lev})
            _store_array(down, tgt, False)
            scale = (voxel_um or 1.0) * 2**lev
            datasets.append({"path": str(lev), "coordinateTransformations": [{"type": "scale", "scale": [scale] * 3}]})
            prev = tgt
        multiscales = [{"version": "0.4", "name": "volume", "datasets": datasets,
                        "axes": [{"name": a, "type": "space", "unit": "micrometer" if voxel_um else None}
                                 for a in ("z", "y", "x")]}]
        st.commit("volume", g, fp=fp_vol, parameters=vol_params, inputs={"sinograms": fp_sino},
                  attrs={"multiscales": multiscales, "units": unit, "voxel_size_um": voxel_um,
                         "center": center, "dimension_names": ["z", "y", "x"]})
        ran.append("volume")

    fp_seg = None
    if wf.segment is not None:
        from .segment_stage import segment_stage

        fp_seg = segment_stage(wf, st, fp_vol, log, ran, skipped, progress)

    if wf.quantify is not None:
        _metrics_stage(wf, st, pixel_cm, log, ran, skipped, fp_seg)

    preview = None
    if wf.output.preview:
        from .preview import write_preview

        preview = write_preview(st, st.path.with_name(st.path.name + ".preview.png"))
    return RunResult(store=st.path, ran=ran, skipped=skipped, center=center, preview=preview)


def _find_center(wf, st, sinoz, theta, log):
    if wf.geometry.center != "auto":
        return float(wf.geometry.center)
    n_a, n_rows, _ = sinoz.shape
    mid = n_rows // 2
    rows = list(range(max(0, mid - 4), min(n_rows, mid + 4)))
    if wf.geometry.center_method == "vo":
        block = np.asarray(sinoz[:, rows[0] : rows[-1] + 1, :])
        center = float(find_center_vo(block, ind=list(range(len(rows)))))
    else:
        i0 = int(np.argmin(np.abs(theta - theta.min())))
        i1 = int(np.argmin(np.abs(theta - (theta[i0] + np.pi))))
        center = float(find_center_pc(np.asarray(sinoz[i0]), np.asarray(sinoz[i1])))
    log(f"[centre] {wf.geometry.center_method}: {center:.2f} px (column index)")
    return center


def _metrics_stage(wf, st, pixel_cm, log, ran, skipped, fp_seg=None):
    """``metrics/``: tables of :func:`tomopipe.quantify.quantify_labels` (+ CSV and PNG plots)."""
    from ..quantify import UNITS, plot_layer_profiles, plot_orientation, quantify_labels, write_tables

    q = wf.quantify
    if q.labels == "segmentation":
        if fp_seg is None:
            raise StageError("quantify.labels is 'segmentation' but the workflow has no 'segment:' section "
                             "(add one, or give quantify.labels a zarr label array)")
        path = st.path / "segmentation"
        arr = st.group("segmentation")["labels"]
    else:
        path = wf.resolve(q.labels)
        arr = open_label_array(path, name="quantify.labels")
    if arr.ndim != 3:
        raise StageError(f"quantify.labels: {path} is not a (z, y, x) label volume (shape {arr.shape})")
    attrs = dict(arr.attrs)
    if q.voxel_size is not None:
        voxel = parse_quantity(q.voxel_size, "um", name="quantify.voxel_size")
    elif attrs.get("voxel_size_um"):
        voxel = float(attrs["voxel_size_um"])
    elif pixel_cm is not None:
        voxel = pixel_cm * 1e4
    else:
        raise StageError("quantify: no voxel size (quantify.voxel_size, the labels' voxel_size_um, "
                         "or geometry.pixel_size)")
    schema = attrs.get("labels") if isinstance(attrs.get("labels"), dict) else None
    if q.labels == "segmentation":
        token = fp_seg
    else:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        token = [str(Path(path).resolve()), sum(p.stat().st_size for p in files),
                 max((p.stat().st_mtime_ns for p in files), default=0)]
    params = {**q.model_dump(mode="json"), "voxel_size_um": voxel, "schema": schema}
    fp = fingerprint("metrics", params, {"labels": token})
    if st.is_complete("metrics", fp):
        skipped.append("metrics")
        return
    log(f"[metrics] {arr.shape} labels from {path}, voxel {voxel:g} µm")
    m = quantify_labels(
        arr, voxel, schema=schema, n_layers=q.n_layers,
        layer_thickness_um=None if q.layer_thickness is None else parse_quantity(
            q.layer_thickness, "um", name="quantify.layer_thickness"),
        pore_sizes=q.pore_sizes,
        max_pore_diameter_um=parse_quantity(q.max_pore_diameter, "um", name="quantify.max_pore_diameter"),
        crack_flatness_max=q.crack_flatness_max,
    )
    g = st.begin("metrics")
    folder = st.path.with_name(st.path.name + ".metrics")
    write_tables(m.tables, g, folder=folder, units=UNITS)
    plot_layer_profiles(m.tables["layers"], folder / "layers.png", title=f"{wf.name}: per-layer fractions")
    plot_orientation({k: m.tables[k] for k in ("cracks", "inclusions") if k in m.tables},
                     folder / "orientation.png")
    st.commit("metrics", g, fp=fp, parameters=params, inputs={"labels": token},
              attrs={"summary": m.summary, "csv_folder": str(folder)})
    ran.append("metrics")
