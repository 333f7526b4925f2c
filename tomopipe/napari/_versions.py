"""Versioned writes into a store: corrections ``corrections/vNNN`` and segmentations ``segmentations/vNNN``.

Each version is a stage written through the store's one stage pattern (:class:`~tomopipe.pipeline.Stage`
+ :class:`~tomopipe.pipeline.stage.Runner`: partial folder, then an atomic rename) while this
process holds the store's :class:`~tomopipe.pipeline.store.StoreLock`. A new version takes the
next free number, so no version is ever written twice, and the pipeline's own ``segmentation/``
is never touched.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
from pathlib import Path

import numpy as np

from ..errors import InvalidDataError, ModelError, ShapeMismatchError, StageError
from ._schema import NOT_REVIEWED, label_schema
from ._store import SEGMENTATION

__all__ = ["CORRECTIONS", "SEGMENTATIONS", "check_corrections", "save_corrections", "resegment", "next_version"]

CORRECTIONS = "corrections"
SEGMENTATIONS = "segmentations"


def next_version(path, kind):
    """Name ``vNNN`` of the next version of `kind`: one more than the highest complete version.

    (A ``vNNN.partial`` left by a killed write is not complete: its number is used again and
    the stage pattern clears it.)
    """
    folder = Path(path) / kind
    taken = [int(p.name[1:]) for p in folder.iterdir()
             if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit()] if folder.is_dir() else []
    return f"v{max(taken, default=0) + 1:03d}"


def _parent_group(path, kind, description):
    import zarr

    g = zarr.open_group(str(Path(path) / kind), mode="a", zarr_format=3)
    if "description" not in g.attrs:
        g.attrs["description"] = description
    return g


def check_corrections(corrections, *, shape, schema, name="corrections"):
    """Check a corrections array before it is saved.

    Parameters
    ----------
    corrections : (z, y, x) array_like of uint8
        Label values of `schema` where reviewed, 254 (not reviewed) elsewhere.
    shape : (3,) tuple of int
        The volume's shape.
    schema : tomopipe.napari.Schema
    name : str
        What to call it in messages (e.g. the napari layer's name).

    Returns
    -------
    (z, y, x) ndarray of uint8

    Raises
    ------
    ShapeMismatchError
        Another shape than the volume's.
    InvalidDataError
        Not uint8, or values that are neither schema values nor 254.
    """
    arr = np.asarray(corrections)
    if arr.shape != tuple(shape):
        raise ShapeMismatchError(f"{name}: shape {arr.shape} differs from the volume's {tuple(shape)}; "
                                 "paint into the corrections layer made for this store")
    if arr.dtype != np.uint8:
        raise InvalidDataError(f"{name}: dtype {arr.dtype} is not uint8; corrections are uint8 label values of "
                               f"the schema ({NOT_REVIEWED} = not reviewed): paint into the corrections layer "
                               "made for this store")
    allowed = np.zeros(256, dtype=bool)
    allowed[list(schema.values) + [NOT_REVIEWED]] = True
    present = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))
    bad = [int(v) for v in present if not allowed[v]]
    if bad:
        raise InvalidDataError(f"{name}: values {bad} are not in the schema {schema.classes} "
                               f"(nor {NOT_REVIEWED} = not reviewed)")
    return arr


def _stage_attrs(path, name):
    from ..pipeline.store import Store

    info = Store(path).info(name)
    if info is None:
        raise StageError(f"{path}: '{name}' is not a complete stage")
    return info


def save_corrections(path, corrections, *, source=SEGMENTATION, reviewed_regions=(), author=None, note="",
                     layer_name="corrections"):
    """Write corrections as a new version ``corrections/vNNN`` of the store.

    Parameters
    ----------
    path : path-like
        The store.
    corrections : (z, y, x) array_like of uint8
        Painted labels (schema values), 254 where nothing was painted; the volume's shape.
    source : str
        The segmentation that was reviewed (``segmentation`` or ``segmentations/vNNN``): its
        schema applies, its model is recorded as the parent model, and inside
        `reviewed_regions` its labels are taken where nothing was painted (accepted as
        correct).
    reviewed_regions : sequence of (3,) tuple of slice
        Regions marked reviewed (index ranges of the volume).
    author : str, optional
        Default: the login name.
    note : str
    layer_name : str
        Name used in error messages.

    Returns
    -------
    str
        The version's group name, e.g. ``corrections/v001``. It holds ``labels`` (uint8,
        254 = not reviewed, the schema in ``labels``) and ``reviewed`` (bool), with author,
        time, parent model, source and counts in the group attributes.

    Raises
    ------
    ShapeMismatchError, InvalidDataError
        Bad corrections (:func:`check_corrections`); nothing is written.
    InvalidDataError
        Nothing is painted or marked reviewed.
    StoreLockedError
        Another process writes the store.
    """
    import zarr

    from ..pipeline.stage import Runner, Stage
    from ..pipeline.store import Store, StoreLock

    path = Path(path)
    src_info = _stage_attrs(path, source)
    src = zarr.open_group(str(path / source), mode="r", zarr_format=3)
    src_labels = src["labels"]
    schema = label_schema(src_labels.attrs) or label_schema(src.attrs)
    if schema is None:
        raise StageError(f"{path / source}: the labels carry no schema ('labels' attribute)")
    vol_shape = tuple(zarr.open_array(str(path / "volume" / "0"), mode="r").shape) \
        if (path / "volume" / "0").is_dir() else tuple(src_labels.shape)
    corr = check_corrections(corrections, shape=vol_shape, schema=schema, name=layer_name)
    painted = corr != NOT_REVIEWED
    reviewed = painted.copy()
    origin = [int(a) for a, _ in (src_labels.attrs.get("region") or [(0, 0)] * 3)]
    regions = []
    out = corr.copy()
    for reg in reviewed_regions:
        reg = tuple(slice(int(s.start), int(s.stop)) for s in reg)
        regions.append([[s.start, s.stop] for s in reg])
        # the part of the region the source covers
        inner = tuple(slice(max(s.start, o), min(s.stop, o + n)) for s, o, n in zip(reg, origin, src_labels.shape))
        if any(s.stop <= s.start for s in inner):
            continue
        local = tuple(slice(s.start - o, s.stop - o) for s, o in zip(inner, origin))
        accept = ~painted[inner]
        out[inner][accept] = np.asarray(src_labels[local])[accept]
        reviewed[inner] = True
    n_reviewed = int(reviewed.sum())
    if n_reviewed == 0:
        raise InvalidDataError(f"{layer_name}: nothing painted and no region marked reviewed; nothing to save")
    digest = hashlib.sha256(out.tobytes()).hexdigest()
    counts = {schema.name_of(v): int(c) for v, c in enumerate(np.bincount(out[reviewed].ravel(), minlength=256)) if c}
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    meta = {"author": author or _login(), "created": created, "note": note, "source": source,
            "source_fingerprint": src_info["fingerprint"], "parent_model": dict(src.attrs.get("model") or {}),
            "reviewed_regions": regions, "reviewed_voxels": n_reviewed, "painted_voxels": int(painted.sum()),
            "class_counts": counts, "sha256": digest}
    chunks = tuple(min(c, n) for c, n in zip(src_labels.chunks, out.shape)) if tuple(src_labels.shape) == out.shape \
        else tuple(min(64, n) for n in out.shape)

    def write(w):
        lab = w.create_array("labels", shape=out.shape, chunks=chunks, dtype="uint8", dims=("z", "y", "x"),
                             attrs={"labels": schema.classes, "not_reviewed": NOT_REVIEWED})
        lab[...] = out
        rev = w.create_array("reviewed", shape=out.shape, chunks=chunks, dtype="bool", dims=("z", "y", "x"))
        rev[...] = reviewed
        return {**meta, "labels": schema.classes}

    with StoreLock(path):
        _parent_group(path, CORRECTIONS, "reviewed labels from the napari plugin (254 = not reviewed); "
                      "each vNNN is written once and never changed")
        version = f"{CORRECTIONS}/{next_version(path, CORRECTIONS)}"
        stage = Stage(version, {k: meta[k] for k in ("author", "created", "note", "source", "reviewed_regions")},
                      {"source": src_info["fingerprint"], "corrections": digest}, write,
                      describe=f"corrections of {source} by {meta['author']}")
        Runner(Store(path)).run(stage)
    return version


def _login():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def resegment(path, model, *, region=None, device="cpu", chunks=None, log=None):
    """Segment the store again with another model, as a new version ``segmentations/vNNN``.

    Runs the pipeline's segmentation stage (:func:`tomopipe.pipeline.segment_stage.segmentation_stage`,
    the code ``tomopipe run`` uses) with the settings of the store's ``segmentation`` stage and
    `model`, over the whole volume or a region of it.

    Parameters
    ----------
    path : path-like
        The store (with a complete ``volume`` stage).
    model : path-like or SegmentationModel
        Model weights (``.safetensors`` with its card beside it), checked by
        :func:`tomopipe.segment.load_model` before anything is written.
    region : tuple of 3 slice, optional
        ``(z, y, x)`` index ranges of level 0 (a view, a tile); default: the whole volume.
    device : {"cpu", "cuda", None}
    chunks : (3,) tuple of int, optional
        Default: those of the store's segmentation stage, else the workflow default.
    log : callable, optional

    Returns
    -------
    str
        The version's group name, e.g. ``segmentations/v001``.

    Raises
    ------
    ModelError, InputFileError
        The model fails its checks (nothing is written).
    StageError
        No volume, or a model on μ in 1/cm for a volume in 1/pixel.
    StoreLockedError
        Another process writes the store.
    """
    from ..pipeline.config import SegmentConfig
    from ..pipeline.segment_stage import segmentation_stage
    from ..pipeline.stage import Runner, StageRef
    from ..pipeline.store import Store, StoreLock
    from ..segment import SegmentationModel, load_model

    path = Path(path)
    st = Store(path)
    vol_info = st.info("volume")
    if vol_info is None:
        raise StageError(f"{path}: no complete volume stage to segment")
    mdl = model if isinstance(model, SegmentationModel) else load_model(model, device=device)
    units = st.group("volume").attrs.get("units")
    if mdl.card.get("normalization", {}).get("units") == "1/cm" and units != "1/cm":
        raise ModelError(f"{mdl.path}: the model takes μ in 1/cm, the volume of {path} is in {units!r}")
    seg = st.info(SEGMENTATION)
    fields = set(SegmentConfig.model_fields)
    base = {k: v for k, v in (seg or {}).get("parameters", {}).items() if k in fields}
    base.update(method="unet", model=str(mdl.path), annotations=None)
    if chunks is not None:
        base["chunks"] = tuple(int(c) for c in chunks)
    cfg = SegmentConfig(**base)
    shape = tuple(st.group("volume")["0"].shape)
    reg = None if region is None else [[int(s.start), int(s.stop)] for s in region]
    with StoreLock(path):
        _parent_group(path, SEGMENTATIONS, "segmentations made from the napari plugin (a region version covers "
                      "its 'region' only); each vNNN is written once and never changed")
        version = f"{SEGMENTATIONS}/{next_version(path, SEGMENTATIONS)}"
        stage = segmentation_stage(cfg, StageRef(path, "volume", vol_info["fingerprint"]), volume_shape=shape,
                                   model=mdl, name=version, region=reg)
        Runner(Store(path), log=log).run(stage)
    return version
