"""Whole training recipes behind ``tomopipe train``: from simulated series, from corrected labels."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from ..errors import StageError
from ..units import voxel_size_um
from ._heldout import HELDOUT_SCANS, TRAINING_SERIES, heldout_volumes
from ._metrics import dice_scores, mean_scores

__all__ = ["train_from_simulation", "train_from_store", "evaluate_model"]


def evaluate_model(model, volumes):
    """Mean per-class Dice/IoU of `model` over simulated volumes (:class:`SimVolume`).

    Returns
    -------
    pandas.DataFrame
        Indexed by class: ``dice``, ``iou`` (means over the volumes; classes absent from a
        volume's truth and prediction do not count for it).
    """
    from ._infer import segment

    return mean_scores([dice_scores(segment(v.mu, model)[0], v.labels, model.schema)[["dice", "iou"]]
                        for v in volumes])


def _card(net, cfg, *, name, training, metrics, voxel_range):
    return {
        "name": name,
        "architecture": {"type": "U-Net", "ndim": cfg.ndim, "in_channels": net.in_channels,
                         "features": list(net.features),
                         "plane": "xz and yz planes, neighbours as channels" if cfg.ndim == 2 else "3-D"},
        "classes": list(cfg.classes),
        "schema": {c: int(cfg.schema[c]) for c in cfg.classes},
        "voxel_size_um": [float(voxel_range[0]), float(voxel_range[1])],
        "normalization": {"quantity": "mu", "units": "1/cm", "energy_keV": 35.0, "scale": float(cfg.scale),
                          "description": "the network sees μ / scale; μ from tomopipe.recon with pixel_size"},
        "inference": {"tile": [128, 8, 128] if cfg.ndim == 2 else [64, 64, 64],
                      "overlap": [32, 0, 32] if cfg.ndim == 2 else [16, 16, 16]},
        "training": training,
        "metrics": metrics,
    }


def _prose(card, table):
    lines = [f"# {card['name']}", "",
             "U-Net segmentation model of tomopipe for composite-cathode solid-state cells "
             "(Li | β-Li3PS4 | CuS); load with `tomopipe.segment.load_model` (safetensors, no pickle).", "",
             "## Classes", "", "| class | label value |", "|---|---|"]
    lines += [f"| {c} | {card['schema'][c]} |" for c in card["classes"]]
    lines += ["", "Carbon black is part of `pore` (not resolved at ~1 µm voxels); `outside` is the air "
              "around the sample; `crack` separates crack voids from pores.", "",
              "## Input", "", f"μ in 1/cm at {card['normalization']['energy_keV']} keV (tomopipe's volume stage with "
              f"geometry.pixel_size), divided by {card['normalization']['scale']}; voxel sizes "
              f"{card['voxel_size_um'][0]}–{card['voxel_size_um'][1]} µm.", "",
              "## Training data", ""]
    lines += [f"- {k}: {v}" for k, v in card["training"].items()] + [""]
    if table is not None:
        lines += ["## Held-out metrics", "", "| class | Dice | IoU |", "|---|---|---|"]
        lines += [f"| {c} | {r.dice:.3f} | {r.iou:.3f} |" for c, r in table.iterrows()]
        lines += [f"| **mean** | {table['dice'].mean():.3f} | {table['iou'].mean():.3f} |"]
    lines += ["", "## Limits", "", "Trained on simulated absorption-contrast scans only (no phase contrast, no "
              "detector blur); fine-tune on corrected labels of real scans with `tomopipe train --store`."]
    return "\n".join(lines)


def train_from_simulation(out, *, config=None, series=None, progress=None):
    """Simulate a training series, train the U-Net, score it on held-out scans, write the model.

    Parameters
    ----------
    out : path-like
        Model stem: writes ``<out>.safetensors`` and the card ``<out>.md``.
    config : TrainConfig, optional
    series : dict, optional
        Arguments of :func:`simulated_series` (default :data:`TRAINING_SERIES`).
    progress : callable, optional

    Returns
    -------
    path : Path
        The weights file.
    metrics : pandas.DataFrame
        Held-out Dice/IoU per class.
    """
    from ._data import simulated_series
    from ._model import SegmentationModel, save_model
    from ._train import TrainConfig, train_unet

    say = progress or (lambda m: None)
    cfg = config or TrainConfig()
    series = dict(TRAINING_SERIES if series is None else series)
    t0 = time.perf_counter()
    vols = simulated_series(**series, progress=say)
    say(f"simulated {len(vols)} training volumes in {time.perf_counter() - t0:.0f} s")
    net, hist = train_unet([(v.mu, v.labels) for v in vols], cfg, progress=say)
    train_s = float(hist["seconds"].iloc[-1])
    training = {"source": "tomopipe.segment.simulated_series (tomopipe.simulate CuS cell, absorption contrast, "
                          "35 keV, Poisson noise, tomopipe.recon)",
                "series": {k: list(v) if isinstance(v, tuple) else v for k, v in series.items()},
                "volumes": len(vols), "iterations": int(hist["step"].iloc[-1]), "batch": cfg.batch,
                "patch": cfg.patch, "lr": cfg.lr, "seed": cfg.seed, "seconds": round(train_s),
                "machine": f"{platform.processor() or platform.machine()}, torch threads "
                           f"{__import__('torch').get_num_threads()}",
                "final_loss": round(float(hist["loss"].iloc[-1]), 4)}
    card = _card(net, cfg, name=Path(out).name, training=training, metrics={},
                 voxel_range=series["voxel_size_um"])
    model = SegmentationModel(net=net.to("cpu").eval(), card=card, path=Path(out), device="cpu")
    say("scoring on held-out scans")
    table = evaluate_model(model, heldout_volumes())
    card["metrics"] = {"heldout_scans": [dict(s, states=list(s["states"])) for s in HELDOUT_SCANS],
                       "dice": {c: round(float(v), 4) for c, v in table["dice"].items()},
                       "iou": {c: round(float(v), 4) for c, v in table["iou"].items()},
                       "mean_dice": round(float(table["dice"].mean()), 4)}
    path = save_model(net, card, out, prose=_prose(card, table))
    return path, table


def train_from_store(out, store, labels, *, init="default", config=None, progress=None):
    """Fine-tune a model on a store's volume and corrected labels.

    Parameters
    ----------
    out : path-like
        Model stem for the new weights and card.
    store : path-like
        A tomopipe zarr store with a complete ``volume`` stage (μ in 1/cm).
    labels : path-like
        Zarr array (or group holding ``labels``) of the same shape as the volume, in the model's
        schema values; :data:`UNLABELLED` (254) marks voxels not reviewed (ignored).
    init : path-like or "default"
        The model to start from (its architecture, classes and normalization are kept).
    config : TrainConfig, optional
        Steps, learning rate, … (default: 300 steps at lr 5e-4).

    Returns
    -------
    Path
        The new weights file.

    Raises
    ------
    InputFileError
        If the labels cannot be opened.
    StageError
        If the store has no volume, shapes differ or no voxel is annotated.
    """
    from ..pipeline.store import Store, open_label_array
    from ._model import load_model, save_model
    from ._train import UNLABELLED, TrainConfig, train_unet

    st = Store(store)
    vol = st.group("volume")["0"]
    lab = open_label_array(labels, name="labels")
    if tuple(lab.shape) != tuple(vol.shape):
        raise StageError(f"labels: {labels} has shape {lab.shape}, the volume of {store} {vol.shape}")
    if vol.attrs.get("units") != "1/cm":
        raise StageError(f"{store}: the volume is in {vol.attrs.get('units')!r}, training needs μ in 1/cm")
    model = load_model(init, device="cpu")
    annotated = int(sum(np.count_nonzero(np.asarray(lab[i:i + 64]) != UNLABELLED) for i in range(0, lab.shape[0], 64)))
    if annotated == 0:
        raise StageError(f"labels: {labels} has no annotated voxel (all {UNLABELLED})")
    cfg = config or TrainConfig(iterations=300, lr=5e-4)
    net, hist = train_unet([(vol, lab)], cfg, init=model, progress=progress)
    lo, hi = model.card["voxel_size_um"]
    voxel = vol.attrs.get("voxel_size_um")  # (dz, dy, dx) µm
    vs = voxel_size_um(voxel) if voxel is not None else (lo, hi)
    card = {k: v for k, v in model.card.items() if k not in ("weights", "format")}
    card["name"] = Path(out).name
    card["voxel_size_um"] = [min(lo, *vs), max(hi, *vs)]
    card["training"] = {"source": "fine-tuned on corrected labels", "base_model": model.card["name"],
                        "base_sha256": model.card["weights"]["sha256"], "store": str(store), "labels": str(labels),
                        "annotated_voxels": annotated, "iterations": int(hist["step"].iloc[-1]), "lr": cfg.lr,
                        "seed": cfg.seed, "seconds": round(float(hist["seconds"].iloc[-1]))}
    card["metrics"] = {"note": "not re-scored: the base model's held-out metrics do not apply", "base": model.card.get("metrics")}
    return save_model(net, card, out, prose=_prose(card, None))
