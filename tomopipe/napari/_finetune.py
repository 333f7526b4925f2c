"""Fine-tuning a segmentation model on a saved corrections version, without Qt.

A thin driver over :func:`tomopipe.segment.train_unet`: it picks the reviewed part of the
volume, scores the model there before and after (Dice on the reviewed voxels), reports
progress per step and stops on request, and writes the new model with its card next to the
store (``<store>.models/``), never into the installed package.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError, ModelError, StageError
from ._schema import NOT_REVIEWED, label_schema
from ._versions import CORRECTIONS

__all__ = ["FinetuneCancelled", "FinetuneResult", "finetune", "models_folder", "reviewed_box", "parent_model_path"]

_LINE = re.compile(r"step (\d+)/(\d+): loss ([^\s(]+)")


class FinetuneCancelled(Exception):
    """Raised inside training when the caller asked to stop."""


@dataclass
class FinetuneResult:
    """What :func:`finetune` did.

    Attributes
    ----------
    path : Path or None
        The new weights (``.safetensors``; the card ``.md`` beside them); None if cancelled.
    cancelled : bool
    history : pandas.DataFrame or None
        Step, loss, learning rate (every 50 steps and the last).
    dice_before, dice_after : pandas.DataFrame or None
        Per-class Dice/IoU on the reviewed voxels (:func:`tomopipe.segment.dice_scores`).
    card : dict
        The new model's card (front matter, with the sha256 of the weights).
    """

    path: Path | None = None
    cancelled: bool = False
    history: object = None
    dice_before: object = None
    dice_after: object = None
    card: dict = field(default_factory=dict)


def models_folder(store):
    """Where fine-tuned models of a store go: ``<store>.models/`` beside it."""
    store = Path(store)
    return store.parent / f"{store.name}.models"


def reviewed_box(reviewed):
    """Bounding box of the True voxels of a ``(z, y, x)`` mask (read chunk by chunk).

    Returns
    -------
    tuple of 3 slice, or None when nothing is reviewed.
    """
    import dask
    import dask.array as da

    m = reviewed if isinstance(reviewed, da.Array) else \
        da.from_array(reviewed, chunks=getattr(reviewed, "chunks", "auto"))
    proj = dask.compute(*(m.any(axis=tuple(a for a in range(3) if a != ax)) for ax in range(3)))
    out = []
    for p in proj:
        idx = np.flatnonzero(np.asarray(p))
        if idx.size == 0:
            return None
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(out)


def _version_path(store, corrections):
    from ._store import list_versions

    versions = list_versions(store, CORRECTIONS)
    if not versions:
        raise StageError(f"{store}: no saved corrections (save a corrections version first)")
    name = versions[-1] if corrections in (None, "latest") else str(corrections).split("/")[-1]
    if name not in versions:
        raise StageError(f"{store}: no corrections version {corrections!r} (have {versions})")
    return f"{CORRECTIONS}/{name}"


def parent_model_path(store, parent):
    """A model file whose weights have the sha256 recorded as `parent` (``{"name", "sha256"}``).

    Looks at the bundled default model and the store's models folder.

    Returns
    -------
    Path or None
    """
    from ..segment import default_model_path, read_card

    want = (parent or {}).get("sha256")
    if not want:
        return None
    candidates = []
    try:
        candidates.append(default_model_path())
    except ModelError:
        pass
    folder = models_folder(store)
    if folder.is_dir():
        candidates += sorted(folder.glob("*.safetensors"))
    for c in candidates:
        try:
            if read_card(c)["weights"]["sha256"] == want:
                return c
        except ModelError:
            continue
    return None


def _check_out(out):
    import tomopipe

    out = Path(out).resolve()
    pkg = Path(tomopipe.__file__).resolve().parent
    places = [pkg]
    try:
        from ..segment import default_model_path

        places.append(default_model_path().resolve().parent)
    except ModelError:
        pass
    for p in places:
        if out == p or p in out.parents:
            raise InputFileError(f"{out}: fine-tuned models are written next to the store, never into the "
                                 f"installed package ({p})")
    return out


def _free_stem(folder, stem):
    n, cand = 1, stem
    while (folder / f"{cand}.safetensors").exists() or (folder / f"{cand}.md").exists():
        n += 1
        cand = f"{stem}-{n}"
    return folder / cand


def _score(model, volume, labels, box, schema):
    from ..segment import dice_scores, labels_from_probabilities, predict_probabilities

    region = tuple((s.start, s.stop) for s in box)
    prob = predict_probabilities(volume, model, region=region)
    pred = labels_from_probabilities(prob, model)
    return dice_scores(pred, labels, schema, ignore=(NOT_REVIEWED,))


def _mean_dice(table):
    present = table[(table["truth_voxels"] > 0)]
    return round(float(present["dice"].mean()), 4) if len(present) else None


def finetune(store, corrections="latest", *, model=None, out=None, iterations=300, lr=5e-4, batch=12, seed=0,
             threads=None, margin=(32, 8, 8), progress=None, cancel=None, device="cpu"):
    """Fine-tune a model on a store's volume and one corrections version.

    Parameters
    ----------
    store : path-like
        A store with a ``volume`` (μ in 1/cm for the shipped models) and a saved
        ``corrections/vNNN``.
    corrections : str
        ``vNNN`` (or ``corrections/vNNN``), or ``"latest"``.
    model : path-like, optional
        The model to start from; default: the corrections' parent model (the bundled model or
        one in ``<store>.models/`` with the recorded sha256).
    out : path-like, optional
        Model stem of the result; default ``<store>.models/<parent>-ft-<vNNN>`` (a free name).
    iterations, lr, batch, seed, threads
        Training settings (:class:`tomopipe.segment.TrainConfig`).
    margin : (3,) tuple of int
        Context (voxels) added around the reviewed box along (z, y, x) for training. Training
        samples xz and yz planes of the box; a thin margin along y and x keeps nearly every
        sampled plane through reviewed voxels.
    progress : callable, optional
        ``progress(step, iterations, loss)`` after every step (`loss` is the latest logged
        training loss, every 50 steps and the last; None before the first).
    cancel : callable, optional
        Returns True to stop; checked every step. Nothing is written then.
    device : str
        Where the before/after scoring runs (training runs on the CPU).

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ModelError, InputFileError
        The model fails its checks, or its schema is not the corrections' (before anything
        is trained or written).
    StageError
        No volume, no such corrections version, no reviewed voxel, μ units the model cannot
        take, or training produced non-finite weights (nothing is written).
    """
    import dask.array as da
    import torch
    import zarr

    from ..pipeline.store import Store
    from ..segment import SegmentationModel, TrainConfig, load_model, read_card, save_model, train_unet

    store = Path(store)
    st = Store(store)
    if st.info("volume") is None:
        raise StageError(f"{store}: no complete volume stage")
    version = _version_path(store, corrections)
    g = zarr.open_group(str(store / version), mode="r", zarr_format=3)
    schema = label_schema(g["labels"].attrs) or label_schema(g.attrs)
    if model is None:
        model = parent_model_path(store, g.attrs.get("parent_model"))
        if model is None:
            raise InputFileError(f"{store / version}: its parent model {g.attrs.get('parent_model')} was not found; "
                                 "choose the model file to fine-tune")
    mdl = load_model(model, device=device)
    if schema is not None and mdl.schema != schema.classes:
        raise ModelError(f"{mdl.path}: the model's classes {mdl.schema} differ from the corrections' schema "
                         f"{schema.classes} ({store / version})")
    vol = st.group("volume")["0"]
    units = st.group("volume").attrs.get("units")
    if mdl.card.get("normalization", {}).get("units") == "1/cm" and units != "1/cm":
        raise StageError(f"{store}: the volume is in {units!r}; {mdl.card['name']} takes μ in 1/cm")
    out_path = _check_out(out) if out is not None else _free_stem(
        models_folder(store), f"{mdl.card['name']}-ft-{version.split('/')[-1]}")
    labels = g["labels"]
    box = reviewed_box(g["reviewed"])
    if box is None:
        raise StageError(f"{store / version}: no reviewed voxel")
    train_box = tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, vol.shape))
    n_box = int(np.prod([s.stop - s.start for s in train_box]))
    # the crop is normalized with the whole volume's statistics, as inference does
    if n_box * 5 < 512 * 2**20:
        pair = (np.asarray(vol[train_box], dtype=np.float32), np.asarray(labels[train_box]), vol)
    else:  # read patch by patch
        pair = (da.from_zarr(vol)[train_box], da.from_zarr(labels)[train_box], vol)
    truth = np.asarray(labels[box])
    before = _score(mdl, vol, truth, box, mdl.schema)
    # patches no larger than the box (rounded up to the network's multiple): no time spent on padding
    multiple = 2 ** (len(mdl.card["architecture"]["features"]) - 1)
    side = max(s.stop - s.start for s in (train_box[0], train_box[1], train_box[2]))
    patch = int(min(TrainConfig.patch, -(-side // multiple) * multiple))
    cfg = TrainConfig(iterations=int(iterations), lr=float(lr), batch=int(batch), seed=int(seed), threads=threads,
                      patch=patch)
    state = {"step": 0, "loss": None}

    def line(report):
        # train_unet reports a TrainProgress (its str() is the log line) every few steps
        loss = getattr(report, "loss", None)
        if loss is None:
            m = _LINE.search(str(report))
            loss = float(m.group(3)) if m else None
        if loss is not None and np.isfinite(loss):
            state["loss"] = float(loss)

    def hook(module, args):
        # called at the start of every training step's forward pass
        if cancel is not None and cancel():
            raise FinetuneCancelled()
        if state["step"] and progress is not None:
            progress(state["step"], cfg.iterations, state["loss"])
        state["step"] += 1

    train_net = mdl.net.to("cpu")
    handle = train_net.register_forward_pre_hook(hook)
    t0 = time.perf_counter()
    try:
        net, hist = train_unet([pair], cfg, init=SegmentationModel(net=train_net, card=mdl.card, path=mdl.path,
                                                                   device="cpu"), progress=line)
    except FinetuneCancelled:
        return FinetuneResult(cancelled=True)
    finally:
        handle.remove()
    if progress is not None:
        progress(cfg.iterations, cfg.iterations, state["loss"])
    if not all(torch.isfinite(p).all() for p in net.state_dict().values() if p.is_floating_point()):
        raise StageError(f"fine-tuning on {store / version} gave non-finite weights (lower the learning rate); "
                         "nothing written")
    tuned = SegmentationModel(net=net.to(device).eval(), card=mdl.card, path=mdl.path, device=device)
    after = _score(tuned, vol, truth, box, mdl.schema)
    card = _card(mdl, store, version, g, cfg, hist, before, after, box, time.perf_counter() - t0, vol)
    card["name"] = out_path.name
    path = save_model(net.to("cpu"), card, out_path, prose=_prose(card))
    return FinetuneResult(path=path, history=hist, dice_before=before, dice_after=after, card=read_card(path))


def _card(mdl, store, version, g, cfg, hist, before, after, box, seconds, vol):
    from ..units import voxel_size_um

    base = mdl.card
    card = {k: v for k, v in base.items() if k not in ("weights", "format")}
    lo, hi = base["voxel_size_um"]
    voxel = vol.attrs.get("voxel_size_um")
    if voxel is not None:
        vs = voxel_size_um(voxel)
        card["voxel_size_um"] = [min(lo, *vs), max(hi, *vs)]
    card["training"] = {
        "source": "fine-tuned on corrected labels (tomopipe napari plugin)",
        "parent_model": {"name": base["name"], "sha256": base["weights"]["sha256"]},
        "store": str(store), "corrections": version, "corrections_sha256": g.attrs.get("sha256"),
        "corrections_author": g.attrs.get("author"), "reviewed_voxels": int(g.attrs.get("reviewed_voxels", 0)),
        "reviewed_box": [[s.start, s.stop] for s in box],
        "iterations": int(hist["step"].iloc[-1]), "lr": cfg.lr, "batch": cfg.batch, "patch": cfg.patch,
        "seed": cfg.seed,
        "seconds": round(float(seconds), 1),
        "final_loss": None if not np.isfinite(hist["loss"].iloc[-1]) else round(float(hist["loss"].iloc[-1]), 4)}
    card["metrics"] = {
        "reviewed_dice": {
            "note": "Dice on the reviewed voxels of the corrections version (the fine-tuning data, not held out)",
            "before": {c: None if not np.isfinite(v) else round(float(v), 4) for c, v in before["dice"].items()},
            "after": {c: None if not np.isfinite(v) else round(float(v), 4) for c, v in after["dice"].items()},
            "mean_before": _mean_dice(before), "mean_after": _mean_dice(after)},
        "parent": base.get("metrics")}
    return card


def _prose(card):
    t, m = card["training"], card["metrics"]["reviewed_dice"]
    lines = [f"# {card['name']}", "",
             f"Fine-tuned from {t['parent_model']['name']} on `{t['corrections']}` of `{t['store']}` "
             f"({t['reviewed_voxels']} reviewed voxels, {t['iterations']} steps, lr {t['lr']}) with tomopipe's "
             "napari plugin. Load with `tomopipe.segment.load_model`.", "",
             "## Dice on the reviewed voxels (training data, not held out)", "", "| class | before | after |",
             "|---|---|---|"]
    lines += [f"| {c} | {m['before'][c]} | {m['after'][c]} |" for c in m["before"] if m["before"][c] is not None]
    lines += [f"| **mean** | {m['mean_before']} | {m['mean_after']} |"]
    return "\n".join(lines)
