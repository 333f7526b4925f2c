"""Segmentation accuracy and speed: U-Net vs multi-Otsu vs random forest on held-out scans.

Held-out scans (``tomopipe.segment._heldout.HELDOUT_SCANS``): simulated CuS cells with seeds,
voxel sizes and noise levels not used in training, reconstructed by tomopipe. Per-class Dice
and IoU of

- the shipped U-Net (``models/``),
- multi-Otsu on five grey classes (pore, electrolyte, CuS, collector, Cu) — it cannot tell Li
  metal, cracks or the outside from pores,
- a random forest on multiscale features (scikit-image, the ilastik way) trained on 20 000
  voxels per class sampled from three training scans (the truth plays the annotations).

Then U-Net throughput (voxels/s, labels + float16 probabilities, chunked with halos) on CPU and,
where PyTorch sees one, on CUDA. ``--compare MINUTES`` trains the 2.5-D and the 3-D network for
the same wall time on the same data and scores both (the choice of architecture).

    python benchmarks/bench_segment.py [--write] [--compare MINUTES]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _results import machine_info, write_section


def accuracy():
    from tomopipe.segment import DEFAULT_SCHEMA, dice_scores, load_model, mean_scores, segment
    from tomopipe.segment._baselines import fit_random_forest, multiotsu_segment, random_forest_segment
    from tomopipe.segment._data import simulate_volume
    from tomopipe.segment._heldout import TRAINING_SERIES, heldout_volumes

    held = heldout_volumes()
    model = load_model("default", device="cpu")
    scores = {"U-Net": [], "multi-Otsu": [], "random forest": []}
    # random forest: three training scans of the shipped model's series, truth as annotations
    train = simulate_volume(TRAINING_SERIES["seed"] * 1000, size=TRAINING_SERIES["size"], voxel_size_um=0.9,
                            photons=3e4, states=("OCV", "D1.2V", "D0.7V"))
    t = time.perf_counter()
    rf = fit_random_forest([v.mu for v in train], [v.labels for v in train], max_samples_per_class=20000, seed=0)
    rf_fit_s = time.perf_counter() - t
    for v in held:
        lab, _ = segment(v.mu, model)
        scores["U-Net"].append(dice_scores(lab, v.labels, DEFAULT_SCHEMA)[["dice", "iou"]])
        lab = multiotsu_segment(v.mu, schema=DEFAULT_SCHEMA)
        scores["multi-Otsu"].append(dice_scores(lab, v.labels, DEFAULT_SCHEMA)[["dice", "iou"]])
        lab = random_forest_segment(v.mu, rf)
        scores["random forest"].append(dice_scores(lab, v.labels, DEFAULT_SCHEMA)[["dice", "iou"]])
    return {k: mean_scores(v) for k, v in scores.items()}, model, rf_fit_s


def throughput(device, shape=(256, 256, 256), chunks=(256, 16, 256)):
    import dask
    import dask.array as da

    from tomopipe.segment import load_model, segment_dask

    model = load_model("default", device=device)
    rng = np.random.default_rng(0)
    vol = da.from_array(rng.normal(10, 8, size=shape).astype(np.float32), chunks=chunks)
    labels, prob = segment_dask(vol, model)
    with dask.config.set(scheduler="threads", num_workers=1):
        segment_dask(vol[:, :64, :64], model)[0].compute()  # warm-up
        t = time.perf_counter()
        da.compute(labels, prob)
        dt = time.perf_counter() - t
    return np.prod(shape) / dt, dt


def compare(minutes):
    """Equal wall-time training of the 2.5-D and 3-D U-Nets on the same six cells; held-out Dice."""
    from tomopipe.segment import TrainConfig, load_model, save_model, simulated_series, train_unet
    from tomopipe.segment._heldout import TRAINING_SERIES, heldout_volumes
    from tomopipe.segment._recipes import _card, evaluate_model

    vols = simulated_series(**{**TRAINING_SERIES, "n_cells": 6})
    pairs = [(v.mu, v.labels) for v in vols]
    held = heldout_volumes()
    res = {}
    for name, cfg in [("2.5-D", TrainConfig(ndim=2)), ("3-D", TrainConfig(ndim=3, patch=64, cubes=2))]:
        probe = TrainConfig(**{**cfg.__dict__, "iterations": 8})
        _, h = train_unet(pairs, probe)
        cfg.iterations = int(minutes * 60 / (h["seconds"].iloc[-1] / 8))
        net, hist = train_unet(pairs, cfg)
        card = _card(net, cfg, name="compare", training={}, metrics={}, voxel_range=(0.7, 1.1))
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as d:
            m = load_model(save_model(net, card, Path(d) / "c"), device="cpu")
            t = time.perf_counter()
            table = evaluate_model(m, held)
            dt = time.perf_counter() - t
        res[name] = {"iterations": cfg.iterations, "train_s": float(hist["seconds"].iloc[-1]),
                     "dice": table["dice"].round(4).to_dict(), "mean_dice": float(table["dice"].mean()),
                     "infer_vox_per_s": sum(v.mu.size for v in held) / dt}
    return res


def compare_section(res, minutes):
    classes = list(next(iter(res.values()))["dice"])
    lines = [f"Both networks trained for the same wall time (~{minutes:g} min each, 2 CPU cores) on six "
             "simulated cells (18 scans), scored on the held-out scans; inference includes tiling and blending.", "",
             "| network | steps | train s | " + " | ".join(classes) + " | mean Dice | inference voxels/s |",
             "|---|---|---|" + "---|" * len(classes) + "---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['iterations']} | {r['train_s']:.0f} | "
                     + " | ".join(f"{r['dice'][c]:.3f}" for c in classes)
                     + f" | {r['mean_dice']:.3f} | {r['infer_vox_per_s'] / 1e6:.2f} M |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the sections of benchmarks/RESULTS.md")
    ap.add_argument("--compare", type=float, default=None, metavar="MINUTES",
                    help="also train 2.5-D and 3-D networks for MINUTES each and compare")
    ap.add_argument("--compare-json", default=None,
                    help="only write a comparison already run ({'minutes': m, 'results': compare(m)})")
    args = ap.parse_args()
    info = machine_info("torch", "sklearn", "skimage")
    head = "\n".join(f"- {k}: {v}" for k, v in info.items())
    if args.compare or args.compare_json:
        if args.compare_json:
            with open(args.compare_json) as f:
                payload = json.load(f)
            res, minutes = payload["results"], payload["minutes"]
        else:
            minutes = args.compare
            res = compare(minutes)
            with open("compare_2p5d_3d.json", "w") as f:
                json.dump({"minutes": minutes, "results": res}, f, indent=1)
        body = compare_section(res, minutes)
        print(body)
        if args.write:
            write_section("## Segmentation: 2.5-D vs 3-D U-Net", head + "\n\n" + body)
        if args.compare_json:
            return
    tables, model, rf_fit_s = accuracy()
    classes = list(model.classes)
    lines = ["Held-out simulated scans: " + "; ".join(
        f"seed {s['seed']}, {s['voxel_size_um']} µm, {s['photons']:.0f} photons, {s['states'][0]}"
        for s in model.card["metrics"]["heldout_scans"]) + f". Model `{model.card['name']}` "
        f"(sha256 {model.card['weights']['sha256'][:12]}…). Random forest fit: {rf_fit_s:.0f} s.", "",
        "| method | " + " | ".join(classes) + " | mean |", "|---|" + "---|" * (len(classes) + 1)]
    for metric in ("dice", "iou"):
        for name, t in tables.items():
            vals = t[metric].reindex(classes)
            lines.append(f"| {name} ({metric}) | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {vals.mean():.3f} |")
    lines += ["", "Crack and Cu-inclusion classes on their own (Dice): " + "; ".join(
        f"{name}: crack {t.loc['crack', 'dice']:.3f}, inclusion {t.loc['inclusion', 'dice']:.3f}"
        for name, t in tables.items())]
    import torch

    thr = [("cpu", *throughput("cpu"))]
    if torch.cuda.is_available():
        thr.append(("cuda", *throughput("cuda")))
    lines += ["", "U-Net throughput, 256³ volume in 256×16×256 chunks (the stage default) (halo'd tiles, blending, "
              "labels + float16 probabilities), one task at a time:", "",
              "| device | voxels/s | seconds |", "|---|---|---|"]
    lines += [f"| {d} | {v / 1e6:.2f} M | {s:.1f} |" for d, v, s in thr]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("## Segmentation", head + "\n\n" + body)


if __name__ == "__main__":
    main()
