"""Whole training recipes behind ``tomopipe train``: from simulated series, from corrected labels."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from ..errors import StageError
from ..units import voxel_size_um
from ._heldout import HELDOUT_RANDOMIZED, HELDOUT_SCANS, TRAINING_SERIES, heldout_volumes
from ._metrics import dice_scores, mean_scores

__all__ = ["train_from_simulation", "train_from_store", "fine_tune", "evaluate_model", "input_domain"]


def evaluate_model(model, volumes):
    """Mean per-class Dice/IoU of `model` over simulated volumes (:class:`SimVolume`).

    Returns
    -------
    pandas.DataFrame
        Indexed by class: ``dice``, ``iou`` (means over the volumes; classes absent from a
        volume's truth and prediction do not count for it).
    """
    from ._infer import segment

    return mean_scores([dice_scores(segment(v.mu, model, guard=False, probabilities=False)[0], v.labels,
                                    model.schema)[["dice", "iou"]] for v in volumes])


def input_domain(volumes, cfg, *, what="μ in 1/cm of the training scans"):
    """The ``input_domain`` card entry: ranges over training volumes of what the guard checks.

    Parameters
    ----------
    volumes : sequence of (z, y, x) arrays
    cfg : TrainConfig

    Returns
    -------
    dict
        ``value_range`` (``p01``, ``p99``: [min, max] of each volume's 1st / 99th percentile)
        and ``histogram`` ([min, max] of each :func:`histogram_features` entry).
    """
    from ._normalize import histogram_features, input_sample, input_stats

    card = {"normalization": {"method": cfg.normalization, "percentiles": list(cfg.percentiles), "scale": cfg.scale}}
    p01, p99, feats = [], [], {}
    for v in volumes:
        sample = input_sample(v, n_sample=200_000)
        a, b = np.percentile(sample, [1, 99])
        p01.append(float(a))
        p99.append(float(b))
        for k, x in histogram_features(sample, input_stats(card, sample=sample)).items():
            feats.setdefault(k, []).append(x)
    rnd = lambda x: float(f"{x:.4g}")  # noqa: E731
    return {"value_range": {"p01": [rnd(min(p01)), rnd(max(p01))], "p99": [rnd(min(p99)), rnd(max(p99))],
                            "what": what},
            "histogram": {k: [rnd(min(x)), rnd(max(x))] for k, x in feats.items()}}


def _normalization_entry(cfg):
    if cfg.normalization == "percentile":
        return {"method": "percentile", "percentiles": [float(p) for p in cfg.percentiles], "units": "1/cm",
                "description": "the network sees (v - p_lo) / (p_hi - p_lo), p_lo and p_hi the percentiles of "
                               "the whole volume (strided subsample of 10^6 voxels, taken once before tiling); "
                               "any affine calibration of the values gives the same input"}
    return {"method": "scale", "quantity": "mu", "units": "1/cm", "energy_keV": 35.0, "scale": float(cfg.scale),
            "description": "the network sees μ / scale; μ from tomopipe.recon with pixel_size"}


def _card(net, cfg, *, name, training, metrics, voxel_range, domain=None):
    card = {
        "name": name,
        "architecture": {"type": "U-Net", "ndim": cfg.ndim, "in_channels": net.in_channels,
                         "features": list(net.features),
                         "plane": "xz and yz planes, neighbours as channels" if cfg.ndim == 2 else "3-D"},
        "classes": list(cfg.classes),
        "schema": {c: int(cfg.schema[c]) for c in cfg.classes},
        "voxel_size_um": [float(voxel_range[0]), float(voxel_range[1])],
        "normalization": _normalization_entry(cfg),
        "inference": {"tile": [256, 8, 256] if cfg.ndim == 2 else [64, 64, 64],
                      "overlap": [32, 0, 32] if cfg.ndim == 2 else [16, 16, 16]},
        "training": training,
        "metrics": metrics,
    }
    if cfg.ndim == 2 and cfg.memory_format == "channels_last":
        card["inference"]["memory_format"] = "channels_last"
    if domain is not None:
        card["input_domain"] = domain
    return card


def _prose(card, table, extra=()):
    norm = card["normalization"]
    if norm.get("method") == "percentile":
        inp = (f"Reconstructed values in any units (μ in 1/cm from tomopipe's volume stage, or another software's "
               f"calibration): the network sees the volume mapped by its own {norm['percentiles'][0]:g}th and "
               f"{norm['percentiles'][1]:g}th percentiles (taken once from a strided subsample of the whole volume), "
               f"so a global scale or offset of the values does not change the labels. Voxel sizes "
               f"{card['voxel_size_um'][0]}–{card['voxel_size_um'][1]} µm.")
    else:
        inp = (f"μ in 1/cm at {norm['energy_keV']} keV (tomopipe's volume stage with geometry.pixel_size), divided by "
               f"{norm['scale']}; voxel sizes {card['voxel_size_um'][0]}–{card['voxel_size_um'][1]} µm.")
    lines = [f"# {card['name']}", "",
             "U-Net segmentation model of tomopipe for composite-cathode solid-state cells "
             "(Li | β-Li3PS4 | CuS); load with `tomopipe.segment.load_model` (safetensors, no pickle).", "",
             "## Classes", "", "| class | label value |", "|---|---|"]
    lines += [f"| {c} | {card['schema'][c]} |" for c in card["classes"]]
    lines += ["", "Carbon black is part of `pore` (not resolved at ~1 µm voxels); `outside` is the air "
              "around the sample; `crack` separates crack voids from pores.", "",
              "## Input", "", inp, ""]
    dom = card.get("input_domain")
    if dom:
        vr = dom["value_range"]
        lines += ["## Input domain (checked by `tomopipe.segment.check_input_domain`)", "",
                  f"- voxel size {card['voxel_size_um'][0]}–{card['voxel_size_um'][1]} µm",
                  f"- 1st percentile of the values {vr['p01'][0]}…{vr['p01'][1]}, 99th {vr['p99'][0]}…{vr['p99'][1]} "
                  f"({vr['what']})",
                  "- normalized histogram: " + ", ".join(f"{k} {a}…{b}" for k, (a, b) in dom["histogram"].items()), ""]
    lines += ["## Training data", ""]
    lines += [f"- {k}: {v}" for k, v in card["training"].items()] + [""]
    if table is not None:
        lines += ["## Held-out metrics", "", "| class | Dice | IoU |", "|---|---|---|"]
        lines += [f"| {c} | {r.dice:.3f} | {r.iou:.3f} |" for c, r in table.iterrows()]
        lines += [f"| **mean** | {table['dice'].mean():.3f} | {table['iou'].mean():.3f} |"]
    lines += list(extra)
    lines += ["", "## Limits", "", "Trained on simulated scans only (tomopipe.simulate's CuS cell, monochromatic "
              "beam: no beam hardening); fine-tune on corrected labels of real scans with "
              "`tomopipe train --store` (`tomopipe.segment.train_from_store`)."]
    return "\n".join(lines)


def _cpu_copy(model):
    """A CPU copy of `model` (a name or path for :func:`load_model`, or a loaded model) whose
    network training may change in place: the given model's own network is left as it is."""
    from ._model import SegmentationModel, _build, load_model

    base = model if isinstance(model, SegmentationModel) else load_model(model, device="cpu")
    net = _build(base.card)
    net.load_state_dict({k: v.detach().cpu() for k, v in base.net.state_dict().items()})
    return SegmentationModel(net=net, card=base.card, path=base.path, device="cpu")


def train_from_simulation(out, *, config=None, series=None, init=None, progress=None):
    """Simulate a domain-randomized training series, train the U-Net, score it, write the model.

    Parameters
    ----------
    out : path-like
        Model stem: writes ``<out>.safetensors`` and the card ``<out>.md``.
    config : TrainConfig, optional
    series : dict, optional
        ``n_cells`` (scans, one cell each), ``seed``, ``size`` (an int or a list): arguments of
        :func:`tomopipe.segment._domain.randomized_series` (default :data:`TRAINING_SERIES`).
        A dict with ``voxel_size_um`` and ``photons`` ranges instead selects the fixed-condition
        series of :func:`simulated_series` (how ``tomopipe-unet25d-cus-v1`` was trained).
        ``shapes`` (``"cus"`` or ``"varied"``) is passed on to the randomized series.
    init : str or SegmentationModel, optional
        Continue training from this model (a name for :func:`load_model`, a path, or a loaded
        model) instead of random weights; its architecture and normalization are kept and
        the card records it as the parent.
    progress : callable, optional

    Returns
    -------
    path : Path
        The weights file.
    metrics : pandas.DataFrame
        Held-out Dice/IoU per class (nominal held-out scans).
    """
    from ._data import simulated_series
    from ._domain import DOMAIN, randomized_series
    from ._heldout import heldout_randomized
    from ._model import SegmentationModel, save_model
    from ._train import TrainConfig, train_unet

    say = progress or (lambda m: None)
    cfg = config or TrainConfig()
    series = dict(TRAINING_SERIES if series is None else series)
    randomized = "photons" not in series
    t0 = time.perf_counter()
    if randomized:
        vols = randomized_series(series["n_cells"], seed=series.get("seed", 0), size=series.get("size", 128),
                                 shapes=series.get("shapes", "cus"), progress=say)
        voxel_range = DOMAIN["voxel_size_um"]
        source = ("tomopipe.segment._domain.randomized_series: tomopipe.simulate CuS cells under randomized "
                  "conditions, tomopipe.recon")
    else:
        vols = simulated_series(**series, progress=say)
        voxel_range = series["voxel_size_um"]
        source = ("tomopipe.segment.simulated_series (tomopipe.simulate CuS cell, absorption contrast, 35 keV, "
                  "Poisson noise, tomopipe.recon)")
    sim_s = time.perf_counter() - t0
    say(f"simulated {len(vols)} training volumes in {sim_s:.0f} s")
    parent = None if init is None else _cpu_copy(init)
    net, hist = train_unet([(v.mu, v.labels) for v in vols], cfg, init=parent, progress=say)
    train_s = float(hist["seconds"].iloc[-1])
    training = {"source": source,
                "series": {k: list(v) if isinstance(v, tuple) else v for k, v in series.items()},
                "volumes": len(vols), "iterations": int(hist["step"].iloc[-1]), "batch": cfg.batch,
                "patch": cfg.patch, "lr": cfg.lr, "seed": cfg.seed, "intensity_jitter": cfg.intensity_jitter,
                "seconds": round(train_s), "simulation_seconds": round(sim_s),
                "machine": f"{platform.processor() or platform.machine()}, torch threads "
                           f"{__import__('torch').get_num_threads()}",
                "final_loss": round(float(hist["loss"].iloc[-1]), 4)}
    if cfg.patch_min is not None:
        training["patch_min"] = cfg.patch_min
    if parent is not None:
        training["base_model"] = parent.card.get("name", Path(parent.path).stem)
        training["base_sha256"] = parent.card.get("weights", {}).get("sha256")
    notes = []
    if randomized:
        training["domain"] = {k: list(v) for k, v in DOMAIN.items()}
        notes.append("30 % of the scans at the nominal conditions (35 keV, absorption, default cell); "
                     "the others: energy log-uniform, phase contrast in 40 % (half of them with "
                     "Paganin, δ/β of Li3PS4), PSF in 60 %, ring-causing column gains in 40 %, "
                     "zingers in 30 %, Vo's ring removal in 30 %, sample larger than the field of "
                     "view in 30 %, random state of charge, layer thicknesses, particle size, "
                     "active fraction, porosity, crack and inclusion fractions")
        if series.get("shapes", "cus") == "varied":
            from ._domain import SHAPE_DOMAIN

            training["domain"].update({k: list(v) for k, v in SHAPE_DOMAIN.items()})
            notes.append("in the non-nominal scans the Cu-rich inclusions' mean semi-axis, aspect and tilt of "
                         "the short axis from z are drawn too (random orientation at 90°)")
        if isinstance(series.get("size"), (list, tuple)):
            notes.append(f"cells of {', '.join(str(int(n)) for n in series['size'])} voxels per side in turn "
                         "(smaller samples and fields of view)")
    if cfg.patch_min is not None:
        notes.append(f"patch side drawn per step from {cfg.patch_min} to {cfg.patch} voxels")
    if notes:
        training["domain_notes"] = "; ".join(notes)
    domain = input_domain([v.mu for v in vols], cfg)
    card = _card(net, cfg, name=Path(out).name, training=training, metrics={}, voxel_range=voxel_range,
                 domain=domain)
    from ._model import _build

    net_eval = _build(card)
    net_eval.load_state_dict(net.state_dict())
    if card["inference"].get("memory_format") == "channels_last":
        net_eval = net_eval.to(memory_format=__import__("torch").channels_last)
    model = SegmentationModel(net=net_eval.eval(), card=card, path=Path(out), device="cpu")
    say("scoring on held-out scans")
    table = evaluate_model(model, heldout_volumes())
    card["metrics"] = {"heldout_scans": [dict(s, states=list(s["states"])) for s in HELDOUT_SCANS],
                       "dice": {c: round(float(v), 4) for c, v in table["dice"].items()},
                       "iou": {c: round(float(v), 4) for c, v in table["iou"].items()},
                       "mean_dice": round(float(table["dice"].mean()), 4)}
    extra = []
    if randomized:
        rtable = evaluate_model(model, heldout_randomized())
        card["metrics"]["heldout_randomized"] = {"series": dict(HELDOUT_RANDOMIZED),
                                                 "dice": {c: round(float(v), 4) for c, v in rtable["dice"].items()},
                                                 "mean_dice": round(float(rtable["dice"].mean()), 4)}
        extra = ["", "Held-out randomized scans (conditions drawn like the training ones, seed "
                 f"{HELDOUT_RANDOMIZED['seed']}): mean Dice {rtable['dice'].mean():.3f} ("
                 + ", ".join(f"{c} {v:.3f}" for c, v in rtable["dice"].items()) + ")."]
    path = save_model(net, card, out, prose=_prose(card, table, extra))
    return path, table


def fine_tune(volume, labels, *, init="default", iterations=300, lr=5e-4, seed=0, threads=None, batch=None,
              progress=None, cancel=None):
    """Fine-tune a segmentation model on a volume and its (sparse) corrected labels, in memory.

    What the napari plugin and ``tomopipe train --store`` call. Only voxels whose label is
    not :data:`UNLABELLED` (254) count, so a few corrected slices suffice: the 2.5-D network
    is trained on planes through them (xz and yz planes crossing a corrected xz slice carry
    one corrected line each; the corrected xz slices themselves whole).

    Parameters
    ----------
    volume : (z, y, x) array_like
        The reconstructed volume (NumPy, zarr or dask; read patch by patch), in the units
        `init` expects (any units for a percentile-normalized model).
    labels : (z, y, x) array_like of uint8
        Label values of `init`'s schema, :data:`UNLABELLED` where not reviewed.
    init : SegmentationModel, path-like or "default"
        The model to start from (its architecture, classes and normalization are kept; a
        loaded model is not modified).
    iterations : int
        Optimizer steps (AdamW, one-cycle learning rate peaking at `lr`).
    lr : float
    seed : int
        Seed of patch sampling (reproducible on one machine and thread count).
    threads : int, optional
        PyTorch CPU threads.
    batch : int, optional
        Planes per step (default: the training default, 12).
    progress : callable, optional
        Receives a :class:`tomopipe.segment.TrainProgress` every 10 steps (``str()``: a log line).
    cancel : callable, optional
        Polled before every step; True stops with :class:`tomopipe.segment.TrainingCancelled`.

    Returns
    -------
    model : SegmentationModel
        The fine-tuned network on the CPU, with a card (``training.source``: fine-tuned; the
        base model's metrics under ``metrics.base``); write it with :func:`save_model`.
    history : pandas.DataFrame

    Raises
    ------
    ValueError
        If shapes differ, `iterations` < 1, or no voxel is annotated.
    TrainingCancelled
        If `cancel` returned True.
    """
    import copy

    from ._model import SegmentationModel, _build
    from ._train import UNLABELLED, TrainConfig, train_unet

    if int(iterations) < 1:
        raise ValueError(f"iterations: must be ≥ 1, got {iterations}")
    if tuple(np.shape(labels)) != tuple(np.shape(volume)) or len(np.shape(volume)) != 3:
        raise ValueError(f"labels {tuple(np.shape(labels))} and volume {tuple(np.shape(volume))} must be 3-D of "
                         "the same shape")
    base = _cpu_copy(init)
    annotated = int(sum(np.count_nonzero(np.asarray(labels[i:i + 64]) != UNLABELLED)
                        for i in range(0, np.shape(labels)[0], 64)))
    if annotated == 0:
        raise ValueError(f"labels: no annotated voxel (all {UNLABELLED})")
    cfg = TrainConfig(iterations=int(iterations), lr=float(lr), seed=int(seed), threads=threads,
                      **({"batch": int(batch)} if batch else {}))
    net, hist = train_unet([(volume, labels)], cfg, init=base, progress=progress, cancel=cancel)
    card = copy.deepcopy({k: v for k, v in base.card.items() if k not in ("weights", "format")})
    card["training"] = {"source": "fine-tuned on corrected labels", "base_model": base.card["name"],
                        "base_sha256": base.card["weights"]["sha256"] if "weights" in base.card else None,
                        "annotated_voxels": annotated, "iterations": int(hist["step"].iloc[-1]), "lr": cfg.lr,
                        "seed": cfg.seed, "seconds": round(float(hist["seconds"].iloc[-1]))}
    card["metrics"] = {"note": "not re-scored: the base model's held-out metrics do not apply",
                       "base": base.card.get("metrics")}
    card["weights"] = {"sha256": "not saved"}
    out = _build(card)
    out.load_state_dict(net.state_dict())
    if card.get("inference", {}).get("memory_format") == "channels_last":
        import torch

        out = out.to(memory_format=torch.channels_last)
    return SegmentationModel(net=out.eval(), card=card, path=Path(card.get("name", "fine-tuned")), device="cpu"), hist


def train_from_store(out, store, labels, *, init="default", config=None, progress=None, cancel=None):
    """Fine-tune a model on a store's volume (or any volume) and corrected labels; write it.

    Parameters
    ----------
    out : path-like
        Model stem for the new weights and card.
    store : path-like or (z, y, x) array_like
        A tomopipe zarr store with a complete ``volume`` stage, or the volume itself (NumPy,
        zarr, dask).
    labels : path-like or (z, y, x) array_like
        Zarr array (or group holding ``labels``) or an array of the same shape as the volume,
        in the model's schema values; :data:`UNLABELLED` (254) marks voxels not reviewed.
    init : SegmentationModel, path-like or "default"
        The model to start from (its architecture, classes and normalization are kept).
    config : TrainConfig, optional
        ``iterations``, ``lr``, ``seed``, ``threads`` are used (default: 300 steps at lr 5e-4).
    progress : callable, optional
        Receives :class:`tomopipe.segment.TrainProgress` reports.
    cancel : callable, optional
        Polled before every step; True stops with :class:`tomopipe.segment.TrainingCancelled`
        and writes nothing.

    Returns
    -------
    Path
        The new weights file.

    Raises
    ------
    InputFileError
        If the labels cannot be opened.
    StageError
        If the store has no volume, a scale-normalized model gets a volume not in 1/cm, shapes
        differ or no voxel is annotated.
    """
    from ._model import load_model, save_model
    from ._train import TrainConfig

    voxel = None
    if isinstance(store, (str, Path)):
        from ..pipeline.store import Store

        st = Store(store)
        vol = st.group("volume")["0"]
        voxel = vol.attrs.get("voxel_size_um")
        units = vol.attrs.get("units")
    else:
        vol, units = store, None
    if isinstance(labels, (str, Path)):
        from ..pipeline.store import open_label_array

        lab = open_label_array(labels, name="labels")
    else:
        lab = labels
    if tuple(lab.shape) != tuple(vol.shape):
        raise StageError(f"labels: {labels if isinstance(labels, (str, Path)) else 'array'} has shape {lab.shape}, "
                         f"the volume {vol.shape}")
    model = init if not isinstance(init, (str, Path)) else load_model(init, device="cpu")
    if model.card["normalization"].get("method", "scale") != "percentile" and units is not None and units != "1/cm":
        raise StageError(f"{store}: the volume is in {units!r}, {model.card['name']} needs μ in 1/cm")
    cfg = config or TrainConfig(iterations=300, lr=5e-4)
    try:
        tuned, _ = fine_tune(vol, lab, init=model, iterations=cfg.iterations, lr=cfg.lr, seed=cfg.seed,
                             threads=cfg.threads, progress=progress, cancel=cancel)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    card = {k: v for k, v in tuned.card.items() if k not in ("weights", "format")}
    card["name"] = Path(out).name
    if voxel is not None:  # (dz, dy, dx) µm, or a scalar in older stores
        lo, hi = card["voxel_size_um"]
        vs = voxel_size_um(voxel)
        card["voxel_size_um"] = [min(lo, *vs), max(hi, *vs)]
    card["training"].update({"store": str(store) if isinstance(store, (str, Path)) else "array",
                             "labels": str(labels) if isinstance(labels, (str, Path)) else "array"})
    return save_model(tuned.net, card, out, prose=_prose(card, None))
