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
The model (and its checks), the annotations and every path are resolved by the plan, before
any stage is written.
"""

from __future__ import annotations

import contextlib
import itertools

import dask
import dask.array as da
import numpy as np

from ..errors import StageError
from .stage import Stage, StageRef

__all__ = ["segmentation_stage", "annotated_blocks"]


def annotated_blocks(vol, ann, chunks, depth):
    """Volume blocks (with a feature halo) and annotations of the chunks that hold annotations.

    Features computed on a halo'd block equal the whole volume's inside the block's core
    (:func:`tomopipe.segment.rf_feature_depth`), so the forest is trained on exactly the
    features it will see, while RAM holds only annotated chunks. The halo is clipped to the
    volume, so thin volumes (fewer slices than the halo) work.

    Returns
    -------
    vols, anns : lists of ndarray
        float32 volume blocks and uint8 annotation blocks (254 outside the core).

    Raises
    ------
    StageError
        No voxel is annotated.
    """
    from ..segment import UNLABELLED

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


def segmentation_stage(cfg, volume: StageRef, *, volume_shape, model=None, annotations=None,
                       annotations_token=None, name="segmentation", region=None):
    """The ``segmentation`` stage of section `cfg` (``segment:``) on the volume `volume`.

    Parameters
    ----------
    cfg : SegmentConfig
    volume : StageRef
        The ``volume`` stage (level ``0``, ``(z, y, x)`` float32).
    volume_shape : tuple of int
        Its shape (known to the plan before it exists).
    model : tomopipe.segment.SegmentationModel, optional
        The loaded, checked network (``method: unet``).
    annotations : zarr.Array, optional
        Sparse labels (``method: random_forest``), same shape as the volume.
    annotations_token : list, optional
        What identifies the annotations' content (path and checksum), for the fingerprint.
    name : str
        Group name of the result (the napari plugin writes new versions, e.g.
        ``segmentations/v001``, through this same stage).
    region : tuple of 3 (start, stop), optional
        Write only this ``(z, y, x)`` sub-volume (index ranges of level ``0``); its labels and
        probabilities equal the same part of the whole-volume result (the tasks still read
        their halo from the whole volume). The arrays then have the region's shape and the
        attribute ``region``.

    Returns
    -------
    Stage
    """
    from ..segment import DEFAULT_SCHEMA

    chunks = tuple(min(c, n) for c, n in zip(cfg.chunks, volume_shape))
    params = cfg.model_dump(mode="json")
    if model is not None:
        params["model_sha256"] = model.card["weights"]["sha256"]
        # what of the card changes the output besides the weights (normalization, tiles,
        # orientations, decision weights): editing it recomputes the stage
        params["model_card"] = {k: model.card.get(k) for k in ("classes", "schema", "normalization", "inference")}
        schema = dict(model.schema)
    else:
        schema = dict(DEFAULT_SCHEMA)
    if annotations_token is not None:
        params["annotations_token"] = annotations_token
    if region is not None:
        region = [[int(a), int(b)] for a, b in region]
        if len(region) != 3 or any(not 0 <= a < b <= n for (a, b), n in zip(region, volume_shape)):
            raise StageError(f"region: {region} is not a non-empty (z, y, x) sub-volume of {tuple(volume_shape)}")
        params["region"] = region

    def write(w):
        vol = volume.group()["0"]
        voxel = vol.attrs.get("voxel_size_um")
        src = da.from_zarr(vol).rechunk(chunks)
        prob = None
        classes = list(schema)
        if cfg.method == "unet":
            import warnings

            from ..segment import InputDomainWarning, segment_dask

            with warnings.catch_warnings(record=True) as caught:  # the input guard: log, do not stop
                warnings.simplefilter("always", InputDomainWarning)
                labels, prob = segment_dask(src, model, tile=cfg.tile, overlap=cfg.overlap,
                                            orientations=cfg.orientations, voxel_size_um=voxel,
                                            units=vol.attrs.get("units"), probabilities=cfg.probabilities)
            for c in caught:
                if issubclass(c.category, InputDomainWarning):
                    w.log(f"warning: segmentation: {c.message}; check the labels or fine-tune with 'tomopipe train'")
                else:
                    warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
            classes = list(model.classes)
        elif cfg.method == "multiotsu":
            from ..segment import multiotsu_segment

            labels = multiotsu_segment(src, classes=tuple(cfg.classes), schema=schema)
        else:
            from ..segment import fit_random_forest, random_forest_segment, rf_feature_depth

            blocks = annotated_blocks(vol, annotations, chunks, rf_feature_depth(cfg.sigma_max))
            rf = fit_random_forest(*blocks, sigma_max=cfg.sigma_max, n_estimators=cfg.n_estimators)
            labels = random_forest_segment(src, rf)
        shape, out_chunks = vol.shape, chunks
        attrs = {"labels": schema, "voxel_size_um": voxel, "method": cfg.method}
        if region is not None:
            # the region's part of the whole-volume result: dask computes only the chunks touching it
            sl = tuple(slice(a, b) for a, b in region)
            shape = tuple(b - a for a, b in region)
            out_chunks = tuple(min(c, n) for c, n in zip(chunks, shape))
            labels = labels[sl].rechunk(out_chunks)
            prob = None if prob is None else prob[(slice(None),) + sl].rechunk((1,) + out_chunks)
            attrs["region"] = region
        targets = [w.create_array("labels", shape=shape, chunks=out_chunks, dtype="uint8", dims=("z", "y", "x"),
                                  attrs=attrs)]
        arrays = [labels.astype(np.uint8)]
        if prob is not None and cfg.probabilities:
            targets.append(w.create_array("probabilities", shape=prob.shape, chunks=(1,) + out_chunks, dtype="float16",
                                          dims=("class", "z", "y", "x"),
                                          attrs={"classes": classes, "voxel_size_um": voxel}))
            arrays.append(prob)
        # the network uses all cores inside a task: one task at a time on the local scheduler
        with dask.config.set(num_workers=1) if cfg.method == "unet" else contextlib.nullcontext():
            w.store_arrays(arrays, targets)
        card = None if model is None else {"name": model.card["name"], "sha256": model.card["weights"]["sha256"]}
        return {"labels": schema, "classes": classes, "method": cfg.method, "model": card, "voxel_size_um": voxel,
                **({"region": region} if region is not None else {})}

    if cfg.method == "unet":
        what = f"U-Net {model.card['name']} ({model.device}), chunks {chunks}"
    elif cfg.method == "multiotsu":
        what = f"multi-Otsu, {len(cfg.classes)} classes {cfg.classes}"
    else:
        what = f"random forest ({cfg.n_estimators} trees, σ ≤ {cfg.sigma_max:g}) on annotations"
    if region is not None:
        what += f", region {region}"
    return Stage(name, params, {"volume": volume.fingerprint}, write, describe=what)
