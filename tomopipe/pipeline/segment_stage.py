"""The ``segmentation`` stage: volume → labels (uint8 + schema) and class probabilities (float16).

========== ======================================= ==============================
array      axes, dtype                             zarr chunks
========== ======================================= ==============================
labels     (z, y, x) uint8, schema in attrs        ``segment.chunks``
probabilities (class, z, y, x) float16 (U-Net)     ``(1, *segment.chunks)``
========== ======================================= ==============================

One dask task per chunk of ``segment.chunks``; the U-Net tasks read their chunk plus the
halo of the tiles that touch it (:func:`tomopipe.segment.segment_dask`), so the result does
not depend on the chunking. RAM per task: the halo'd block and ``classes × chunk`` float32.
"""

from __future__ import annotations

import contextlib

import dask
import dask.array as da
import numpy as np

from ..errors import StageError
from .store import fingerprint, open_label_array

__all__ = ["segment_stage"]


def _annotated_blocks(vol, ann, chunks, sigma_max):
    """Volume blocks (with the feature halo) and annotations of the chunks that hold annotations.

    Features computed on a halo'd block equal the whole volume's inside the block's core
    (:func:`tomopipe.segment._baselines.rf_feature_depth`), so the forest is trained on exactly
    the features it will see, while RAM holds only annotated chunks.
    """
    import itertools

    from ..segment import UNLABELLED
    from ..segment._baselines import rf_feature_depth

    depth = rf_feature_depth(sigma_max)
    vols, anns = [], []
    grid = [range(0, n, c) for n, c in zip(vol.shape, chunks)]
    for start in itertools.product(*grid):
        core = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunks, vol.shape))
        a = np.asarray(ann[core])
        if not (a != UNLABELLED).any():
            continue
        outer = tuple(slice(max(c.start - depth, 0), min(c.stop + depth, n)) for c, n in zip(core, vol.shape))
        full = np.full(tuple(o.stop - o.start for o in outer), UNLABELLED, dtype=np.uint8)
        full[tuple(slice(c.start - o.start, c.stop - o.start) for c, o in zip(core, outer))] = a
        vols.append(np.asarray(vol[outer], dtype=np.float32))
        anns.append(full)
    if not vols:
        raise StageError(f"segment.annotations: no annotated voxel (all {UNLABELLED})")
    return vols, anns


def segment_stage(wf, st, fp_vol, log, ran, skipped, progress):
    """Run (or skip) the segmentation stage of workflow `wf` on store `st`.

    Returns
    -------
    str
        The stage's fingerprint.

    Raises
    ------
    StageError
        If the volume is not in 1/cm (U-Net), an input array is missing or misshapen.
    ModelError
        If the model file or its card is unusable (:func:`tomopipe.segment.load_model`).
    """
    from ..segment import DEFAULT_SCHEMA
    from .run import _store_array

    cfg = wf.segment
    vol_group = st.group("volume")
    vol = vol_group["0"]
    unit = vol.attrs.get("units")
    voxel_um = vol.attrs.get("voxel_size_um")
    chunks = tuple(min(c, n) for c, n in zip(cfg.chunks, vol.shape))
    params = cfg.model_dump(mode="json")
    model = None
    if cfg.method == "unet":
        from ..segment import load_model, segment_dask

        from ..segment import BUNDLED_MODELS

        model = load_model(cfg.model if cfg.model == "default" or cfg.model in BUNDLED_MODELS else wf.resolve(cfg.model),
                           device=None if cfg.device == "auto" else cfg.device)
        if unit != "1/cm":
            raise StageError(f"segmentation: the U-Net expects μ in 1/cm, the volume is in {unit!r} "
                             "(set geometry.pixel_size)")
        params["model_sha256"] = model.card["weights"]["sha256"]
        schema = model.schema
    else:
        schema = dict(DEFAULT_SCHEMA)
    ann = None
    if cfg.method == "random_forest":
        if cfg.annotations is None:
            raise StageError("segment.annotations: the random forest needs annotations (a zarr label array)")
        path = wf.resolve(cfg.annotations)
        ann = open_label_array(path, name="segment.annotations")
        if tuple(ann.shape) != tuple(vol.shape):
            raise StageError(f"segment.annotations: {path} has shape {ann.shape}, the volume {vol.shape}")
        params["annotations_token"] = [str(path), int(da.from_zarr(ann).sum(dtype=np.int64).compute())]
    fp = fingerprint("segmentation", params, {"volume": fp_vol})
    if st.is_complete("segmentation", fp):
        skipped.append("segmentation")
        return fp
    src = da.from_zarr(vol).rechunk(chunks)
    prob = None
    classes = list(schema)
    if cfg.method == "unet":
        import warnings

        from ..segment import InputDomainWarning

        log(f"[segmentation] U-Net {model.card['name']} ({model.device}) on {vol.shape}, chunks {chunks}")
        with warnings.catch_warnings(record=True) as caught:  # the input guard: log, do not stop
            warnings.simplefilter("always", InputDomainWarning)
            labels, prob = segment_dask(src, model, tile=cfg.tile, overlap=cfg.overlap, orientations=cfg.orientations,
                                        voxel_size_um=voxel_um, units=unit)
        for w in caught:
            if issubclass(w.category, InputDomainWarning):
                log(f"[segmentation] warning: {w.message}; check the result or fine-tune with 'tomopipe train'")
            else:
                warnings.warn(w.message, w.category, stacklevel=2)
        classes = list(model.classes)
    elif cfg.method == "multiotsu":
        from ..segment._baselines import multiotsu_segment

        unknown = [c for c in cfg.classes if c not in schema]
        if unknown:
            raise StageError(f"segment.classes: {unknown} not in the schema {list(schema)}")
        log(f"[segmentation] multi-Otsu, {len(cfg.classes)} classes {cfg.classes}")
        labels = multiotsu_segment(src, classes=tuple(cfg.classes), schema=schema)
    else:
        from ..segment._baselines import fit_random_forest, random_forest_segment

        log(f"[segmentation] random forest ({cfg.n_estimators} trees, σ ≤ {cfg.sigma_max:g}) on annotations")
        rf = fit_random_forest(*_annotated_blocks(vol, ann, chunks, cfg.sigma_max), sigma_max=cfg.sigma_max,
                               n_estimators=cfg.n_estimators)
        labels = random_forest_segment(src, rf)
    g = st.begin("segmentation")
    attrs = {"labels": schema, "voxel_size_um": voxel_um, "method": cfg.method}
    tl = st.create_array(g, "labels", shape=vol.shape, chunks=chunks, dtype="uint8", dims=("z", "y", "x"),
                         attrs=attrs)
    targets, arrays = [tl], [labels.astype(np.uint8)]
    if prob is not None and cfg.probabilities:
        tp = st.create_array(g, "probabilities", shape=prob.shape, chunks=(1,) + chunks, dtype="float16",
                             dims=("class", "z", "y", "x"), attrs={"classes": classes, "voxel_size_um": voxel_um})
        targets.append(tp)
        arrays.append(prob)
    # the network uses all cores inside a task: one task at a time on the local scheduler
    with dask.config.set(num_workers=1) if cfg.method == "unet" else contextlib.nullcontext():
        _store_array(arrays, targets, progress)
    card = None if model is None else {"name": model.card["name"], "sha256": model.card["weights"]["sha256"]}
    st.commit("segmentation", g, fp=fp, parameters=params, inputs={"volume": fp_vol},
              attrs={"labels": schema, "classes": classes, "method": cfg.method, "model": card,
                     "voxel_size_um": voxel_um})
    ran.append("segmentation")
    return fp
