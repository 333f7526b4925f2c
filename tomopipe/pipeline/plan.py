"""The plan of a run: the whole workflow checked, and every stage laid out, before any write.

:func:`plan_workflow` opens the input lazily and checks everything a run needs — paths
(input, model, labels, annotations, store), units and cross-section rules (phase retrieval
needs a pixel size; a U-Net trained on μ in 1/cm needs one too; quantify needs labels and a
voxel size; random-forest annotations must match the volume), plausibility (centre on the
detector, pixel size, energy), flat fields, and the scheduler or cluster — then builds the
list of :class:`~.stage.Stage` objects with their fingerprints and tells which are already
up to date in the store. It writes nothing. ``tomopipe run --dry-run`` prints it.
"""

from __future__ import annotations

import glob
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputFileError, ShapeMismatchError, TomopipeWarning
from .stage import StageRef
from .stages import (
    ProjectionChunks,
    normalized_stage,
    phase_stage,
    raw_stage,
    sinograms_stage,
    store_path,
    volume_stage,
)
from .store import Store, check_store_path, file_checksum

__all__ = ["Plan", "plan_workflow", "open_scan"]


@dataclass
class Plan:
    """What a run will do.

    Attributes
    ----------
    workflow : Workflow
    store : Path
    stages : list of Stage
        In execution order.
    up_to_date : set of str
        Stages complete with the same fingerprint in the store (skipped unless something
        changes before the run takes the store's lock).
    facts : list of str
        Input, chunking, compute: one line each.
    warnings : list of str
        Things to check (also logged as ``warning: …``).
    checksums : dict
        The input checksum cache to record in the store.
    scheduler : str or None
    cluster : ClusterConfig or None
    volume_ref : StageRef
        The ``volume`` stage (what DVC and segmentation read).
    volume_shape, volume_voxel_um, volume_units
        Its shape ``(z, y, x)``, voxel size ``(dz, dy, dx)`` µm (None without a pixel size) and
        the unit of its values.
    """

    workflow: object
    store: Path
    stages: list
    up_to_date: set
    facts: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    checksums: dict = field(default_factory=dict)
    scheduler: str | None = None
    cluster: object = None
    volume_ref: StageRef | None = None
    volume_shape: tuple | None = None
    volume_voxel_um: tuple | None = None
    volume_units: str | None = None

    def lines(self):
        """The plan as text, one line per item."""
        out = [f"plan: {self.workflow.name} → {self.store}"]
        out += [f"  {f}" for f in self.facts]
        for st in self.stages:
            state = "up to date" if st.name in self.up_to_date else "will run"
            out.append(f"  {st.name:<13} {state:<10} {st.describe}")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def open_scan(cfg, base_dir):
    """Open the raw scan an ``input:`` section names, lazily, with its files.

    Parameters
    ----------
    cfg : InputConfig
    base_dir : path-like
        Folder of the workflow (relative paths start there).

    Returns
    -------
    scan : tomopipe.io.RawScan
    files : list of Path
        Every file read (for the input checksum).

    Raises
    ------
    InputFileError, MissingKeyError, ShapeMismatchError, TruncatedFileError, InvalidDataError
        From the readers (naming the file and key).
    ConfigError
        A TIFF series without ``flats`` or ``theta``, ``flat_index`` of the wrong length or
        out of range, a folder given as a scan file.
    """
    from ..datasets import resolve_input
    from ..io import read_scan, read_tiff_series

    base_dir = Path(base_dir)

    def resolve(p):
        q = Path(p).expanduser()
        return q if q.is_absolute() else base_dir / q

    path = resolve_input(cfg.path, base_dir=base_dir)
    fmt = None if cfg.format == "auto" else cfg.format
    is_glob = any(ch in str(path) for ch in "*?[") and not Path(path).exists()
    tiff = fmt == "tiff" or is_glob or (Path(path).is_dir() and (cfg.flats or cfg.theta))
    if Path(path).is_dir() and not tiff:
        raise InputFileError(f"input.path: {path} is a folder; give a scan file (DXchange/NXtomo .h5) or, for a "
                             "TIFF series, a glob such as folder/proj_*.tif with input.flats and input.theta")
    if not tiff:
        return read_scan(str(path), format=fmt), [Path(path)]
    if not cfg.flats:
        raise ConfigError("input.flats: a TIFF series needs its flat fields (a glob such as flats/*.tif)")
    if cfg.theta is None:
        raise ConfigError("input.theta: a TIFF series needs its angles ({start, stop} with units, count)")
    if is_glob:
        files = sorted(glob.glob(str(path)))
    elif Path(path).is_dir():
        files = sorted(str(p) for p in Path(path).iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    else:
        files = [str(path)]
    if not files:
        raise InputFileError(f"input.path: no TIFF file matches {path}")
    flats = str(resolve(cfg.flats))
    darks = str(resolve(cfg.darks)) if cfg.darks else None
    flat_files = sorted(glob.glob(flats)) if any(ch in flats for ch in "*?[") else [flats]
    th = cfg.theta
    n = th.count or (len(files) if len(files) > 1 else _count_pages(files[0]))
    theta = np.linspace(th.start_rad, th.stop_rad, n, endpoint=th.endpoint)
    if cfg.flat_index is not None:
        fi = np.asarray(cfg.flat_index, dtype=np.float64)
        if not np.all(np.isfinite(fi)) or np.any((fi < -1) | (fi > n)):
            raise ConfigError(f"input.flat_index: values must lie in [-1, {n}] (projection indices of the "
                              f"{n} projections), got {fi.min():g}…{fi.max():g}")
    try:
        scan = read_tiff_series(str(path), flats, darks, theta=theta, flat_index=cfg.flat_index,
                                allow_missing_darks=darks is None)
    except ShapeMismatchError as exc:  # flat_index vs the flat frames, theta count vs the files
        if str(exc).startswith(("flat_index", "theta")):
            raise ConfigError(f"input.{exc}") from None
        raise
    extra = flat_files + (sorted(glob.glob(darks)) if darks and any(ch in darks for ch in "*?[") else
                          [darks] if darks else [])
    return scan, [Path(f) for f in files + extra]


def _count_pages(file):
    import tifffile

    try:
        with tifffile.TiffFile(file) as t:
            return len(t.pages)
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise InputFileError(f"input.path: {file} is not a readable TIFF file ({exc})") from None


def _voxel_of_labels(attrs):
    v = attrs.get("voxel_size_um")
    if v is None:
        return None
    from ..units import voxel_size_um

    return voxel_size_um(v, name="voxel_size_um attribute of quantify.labels")


def _model_reference(name, wf):
    """A model given in the workflow: 'default', a name of a bundled model, or a path."""
    from ..segment import BUNDLED_MODELS

    if name == "default" or name in BUNDLED_MODELS:
        return name
    return wf.resolve(name)


def plan_workflow(wf, store=None, *, scheduler=None, cluster=None, check_compute=True):
    """Check a workflow whole and lay out its stages, writing nothing.

    Parameters
    ----------
    wf : Workflow
    store : path-like, optional
        The zarr store (default ``output.store`` relative to the workflow, else
        ``<name>.zarr``).
    scheduler : str, optional
        A dask.distributed scheduler address (checked for reachability).
    cluster : ClusterConfig, optional
        A cluster to start (overrides ``wf.cluster``).
    check_compute : bool
        Connect to `scheduler` to check it answers.

    Returns
    -------
    Plan

    Raises
    ------
    TomopipeError
        Any bad input, with a message naming the file, key or parameter.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TomopipeWarning)
        plan = _plan(wf, store, scheduler, cluster, check_compute)
    for w in caught:
        if issubclass(w.category, TomopipeWarning):
            plan.warnings.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return plan


def _plan(wf, store, scheduler, cluster, check_compute):
    from .cluster import check_cluster, check_scheduler

    path = store_path(wf, store)
    check_store_path(path, name="--out" if store is not None else "output.store")
    existing = Store(path) if (path / "zarr.json").is_file() else None
    facts, notes = [], []

    # ---- compute ---------------------------------------------------------------------------
    cluster = cluster or wf.cluster
    if cluster is not None and scheduler is not None:
        raise ConfigError("--scheduler and a cluster section both given: use one")
    if cluster is not None:
        check_cluster(cluster)
        facts.append(f"compute: {cluster.kind} cluster, {cluster.jobs} job(s) × {cluster.cores} cores")
        if cluster.kind != "local":
            notes.append(f"the store {path} must be on a file system every {cluster.kind} node shares "
                         "(workers write its chunks)")
    elif scheduler is not None:
        if check_compute:
            check_scheduler(scheduler)
        facts.append(f"compute: dask scheduler {scheduler}")
        notes.append(f"the store {path} must be on a file system the scheduler's workers share")
    else:
        facts.append("compute: threads on this machine")

    cache = dict(existing.root.attrs.get("checksums", {})) if existing is not None else {}
    if wf.input.volume is not None:
        stages, volume_shape, voxel, units = _volume_input(wf, path, cache, facts, notes)
    else:
        stages, volume_shape, voxel, units = _scan_input(wf, path, cache, facts, notes)
    volume = StageRef(path, stages[-1].name, stages[-1].fingerprint)
    if wf.segment is not None:
        stages.append(_segmentation(wf, volume, volume_shape, voxel, units, notes))
    if wf.quantify is not None:
        stages.append(_metrics(wf, path, stages, voxel))

    up = set() if existing is None else {s.name for s in stages if existing.is_complete(s.name, s.fingerprint)}
    for n in notes:
        warnings.warn(n, TomopipeWarning, stacklevel=2)
    return Plan(workflow=wf, store=path, stages=stages, up_to_date=up, facts=facts, checksums=cache,
                scheduler=scheduler, cluster=cluster, volume_ref=volume, volume_shape=tuple(volume_shape),
                volume_voxel_um=voxel, volume_units=units)


def _scan_input(wf, path, cache, facts, notes):
    """The stages raw … volume of a raw scan, checked; the volume's shape, voxel size and unit."""
    from ..prep import flat_field

    scan, files = open_scan(wf.input, wf.base_dir)
    n_a, n_r, n_c = scan.projections.shape
    rows = wf.input.rows
    if rows is not None:
        if not 0 <= rows[0] < rows[1] <= n_r:
            raise ConfigError(f"input.rows: {list(rows)} is outside the detector's {n_r} rows ({scan.source})")
        n_r = rows[1] - rows[0]
    facts.append(f"input: {scan.source} ({scan.format}), {n_a} projections of {n_r} × {n_c} px, "
                 f"{scan.projections.dtype}")
    geo = wf.geometry
    if geo.center != "auto" and not 0 <= float(geo.center) <= n_c - 1:
        raise ConfigError(f"geometry.center: {geo.center:g} is not on the detector (columns 0 to {n_c - 1}); "
                          "give the rotation axis as a column index, or 'auto'")
    out = wf.output
    chunks = ProjectionChunks.for_scan((n_a, n_r, n_c), chunk_angles=out.chunk_angles, chunk_rows=out.chunk_rows,
                                       recon_rows=wf.recon.rows_per_chunk, chunk_mb=out.chunk_mb)
    facts.append(f"chunks: {chunks.angles} angles × {chunks.rows} rows (projections), "
                 f"{chunks.recon_rows} slices per reconstruction task")
    flats, darks = scan.flats, scan.darks
    if rows is not None:
        flats, darks = flats[:, rows[0]:rows[1]], darks[:, rows[0]:rows[1]]
    ff = flat_field(flats, darks, scan.flat_index, mode=wf.normalize.flats, rows_per_chunk=chunks.rows,
                    source=scan.source)
    px = geo.pixel_size_um
    if wf.phase is not None and px is None:
        raise ConfigError("phase: Paganin retrieval needs geometry.pixel_size (with phase.energy and phase.distance)")
    if px is None:
        notes.append("no geometry.pixel_size: the volume is μ in 1/pixel (tomopy's unit), not 1/cm")

    checksum = file_checksum(files, cache=cache)
    stages = [raw_stage(scan, checksum=checksum, rows=rows, chunks=chunks, files=files)]

    def ref(stage):
        return StageRef(path, stage.name, stage.fingerprint)

    raw = ref(stages[0])
    stages.append(normalized_stage(wf.normalize, raw, ff))
    source = ref(stages[-1])
    if wf.phase is not None:
        stages.append(phase_stage(wf.phase, source, pixel_size_um=px))
        source = ref(stages[-1])
    stages.append(sinograms_stage(wf.stripes, source))
    stages.append(volume_stage(wf.recon, geo, ref(stages[-1]), raw, chunks=chunks,
                               pyramid_levels=out.pyramid_levels))
    return stages, (n_r, n_c, n_c), None if px is None else (px,) * 3, "1/cm" if px else "1/pixel"


def _volume_input(wf, path, cache, facts, notes):
    """The ``volume`` stage of a reconstructed volume, checked; its shape, voxel size and unit."""
    from ..io import read_volume
    from .stages import volume_import_stage

    cfg = wf.input
    vpath = wf.resolve(cfg.volume)
    src = read_volume(vpath, key=cfg.key, format=None if cfg.format == "auto" else cfg.format)
    voxel = cfg.voxel_size_um or src.voxel_size_um
    if voxel is None:
        raise ConfigError(f"input.voxel_size: {src.source} does not record its voxel size; give it, e.g. "
                          "voxel_size: 0.88 um (or [dz, dy, dx] with units)")
    if cfg.voxel_size_um and src.voxel_size_um and any(
            abs(a - b) > 1e-6 * b for a, b in zip(cfg.voxel_size_um, src.voxel_size_um)):
        notes.append(f"input.voxel_size {list(cfg.voxel_size_um)} µm differs from the file's "
                     f"{list(src.voxel_size_um)} µm; using input.voxel_size")
    lo, hi = 0.01, 1000.0
    if not wf.geometry.force_pixel_size and not all(lo <= v <= hi for v in voxel):
        raise ConfigError(f"input.voxel_size: {list(voxel)} µm is outside the plausible 10 nm – 1 mm (a wrong "
                          "unit?); set geometry.force_pixel_size: true to use it anyway")
    unused = [k for k in ("phase",) if getattr(wf, k) is not None]
    if unused:
        notes.append(f"{', '.join(unused)}: not used for a reconstructed volume (input.volume)")
    shape = tuple(int(n) for n in src.data.shape)
    facts.append(f"input: reconstructed volume {src.source} ({src.format}), {shape} {src.data.dtype}, "
                 f"voxel {list(voxel)} µm, values in {cfg.units}")
    budget = wf.output.chunk_mb * 2**20
    r = max(1, min(wf.recon.rows_per_chunk, budget // (shape[1] * shape[2] * 4)))
    checksum = file_checksum(src.files, cache=cache) if len(src.files) < 5000 else \
        [str(vpath.resolve()), sum(f.stat().st_size for f in src.files), max(f.stat().st_mtime_ns for f in src.files)]
    stage = volume_import_stage(src, checksum=checksum, voxel_size_um=voxel, units=cfg.units, slices_per_chunk=r,
                                pyramid_levels=wf.output.pyramid_levels)
    return [stage], shape, tuple(voxel), cfg.units


def _segmentation(wf, volume, volume_shape, voxel, units, notes):
    from .segment_stage import segmentation_stage
    from .store import open_label_array

    cfg = wf.segment
    model = ann = token = None
    if cfg.method == "unet":
        from ..segment import load_model

        model = load_model(_model_reference(cfg.model, wf), device=None if cfg.device == "auto" else cfg.device)
        norm = model.card.get("normalization", {})
        if norm.get("units") == "1/cm" and units != "1/cm":
            how = ("without geometry.pixel_size the volume is in 1/pixel; set geometry.pixel_size"
                   if wf.input.volume is None else f"input.units is {units!r}")
            raise ConfigError(f"segment.model: {model.card['name']} takes μ in 1/cm, but {how}")
        lo, hi = model.card.get("voxel_size_um", (0, np.inf))
        if voxel is not None and not all(lo * 0.9 <= v <= hi * 1.1 for v in voxel):
            notes.append(f"segment: voxel size {list(voxel)} µm is outside {model.card['name']}'s training range "
                         f"{lo:g}–{hi:g} µm; check the labels or fine-tune with 'tomopipe train'")
    elif cfg.method == "multiotsu":
        from ..segment import DEFAULT_SCHEMA

        unknown = [c for c in cfg.classes if c not in DEFAULT_SCHEMA]
        if unknown:
            raise ConfigError(f"segment.classes: {unknown} not in the schema {list(DEFAULT_SCHEMA)}")
    else:
        if cfg.annotations is None:
            raise ConfigError("segment.annotations: the random forest needs annotations (a zarr label array)")
        apath = wf.resolve(cfg.annotations)
        ann = open_label_array(apath, name="segment.annotations")
        if tuple(ann.shape) != tuple(volume_shape):
            raise ConfigError(f"segment.annotations: {apath} has shape {tuple(ann.shape)}, the volume will be "
                              f"{tuple(volume_shape)}")
        import dask.array as da

        token = [str(apath), int(da.from_zarr(ann).astype(np.int64).sum().compute())]
    return segmentation_stage(cfg, volume, volume_shape=volume_shape, model=model, annotations=ann,
                              annotations_token=token)


def _metrics(wf, path, stages, volume_voxel):
    from .metrics_stage import LabelSource, metrics_stage
    from .store import open_label_array

    q = wf.quantify
    if q.labels == "segmentation":
        seg = next((s for s in stages if s.name == "segmentation"), None)
        if seg is None:
            raise ConfigError("quantify.labels: 'segmentation' needs a 'segment:' section (or give "
                              "quantify.labels a zarr label array)")
        source = LabelSource(stage=StageRef(path, seg.name, seg.fingerprint), token=seg.fingerprint)
        label_voxel = None
    else:
        lpath = wf.resolve(q.labels)
        arr = open_label_array(lpath, name="quantify.labels")
        if arr.ndim != 3:
            raise ConfigError(f"quantify.labels: {lpath} is not a (z, y, x) label volume (shape {arr.shape})")
        source = LabelSource.from_path(lpath)
        label_voxel = _voxel_of_labels(dict(arr.attrs))
    if q.voxel_size_um is not None:
        voxel = (q.voxel_size_um,) * 3
    elif label_voxel is not None:
        voxel = label_voxel
    elif volume_voxel is not None:
        voxel = volume_voxel
    else:
        raise ConfigError("quantify.voxel_size: no voxel size (give quantify.voxel_size, a voxel_size_um attribute "
                          "on the labels, or geometry.pixel_size)")
    return metrics_stage(q, source, voxel_size_um=voxel, title=wf.name,
                         csv_folder=path.with_name(path.name + ".metrics"))

