"""Segmentation: accuracy in and out of the training domain, throughput, few-label fine-tuning.

Sections (``--sections``, default all), each written to benchmarks/RESULTS.md with ``--write``:

``accuracy``
    Held-out scans of tomopipe's simulator (seeds, voxel sizes, noise levels not trained on;
    ``tomopipe.segment._heldout``): per-class Dice of the default model, the previous one
    (``tomopipe-unet25d-cus-v1``), multi-Otsu and a random forest; and, on a held-out
    six-state 192³ series at the simulator's defaults (0.88 µm, 35 keV, 2·10⁴ photons), the
    errors of Cu-inclusion volume, crack volume and porosity computed from each model's labels.
``generalization``
    Scans outside the training set: the independent phantom (:mod:`tomopipe.simulate._phantom`,
    written apart from the CuS simulator) at 35, 25 and 50 keV, in arbitrary units (×0.37 +
    offset), with phase contrast and no Paganin, and larger than the field of view; and the
    same conditions on held-out cells of tomopipe's simulator. Mean Dice over the six
    non-void classes, pore and crack Dice apart; the random forest trained on 2000 labelled
    voxels per class of the same scan beside it.
``throughput``
    The old path (v1 model, its 128² tiles with 32-voxel overlap, fp32 contiguous) and the new
    one (default model, 256² tiles, channels-last) in the same run, on the same volumes and
    chunks: voxels/s and the ratio.
``finetune``
    Dice before and after fine-tuning (:func:`tomopipe.segment.fine_tune`) on 3 corrected xz
    slices of scans outside the training domain, scored on the other voxels; the time.

    python benchmarks/bench_segment.py [--write] [--sections accuracy,generalization,throughput,finetune]
    python benchmarks/bench_segment.py --compare MINUTES [--write]   # 2.5-D vs 3-D at equal training time
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from _results import machine_info, write_section

OLD = "tomopipe-unet25d-cus-v1"
#: Models compared with the default: the previous default (the default's ancestor) and the
#: first default.
COMPARED = ("tomopipe-unet25d-cus-v2", OLD)
VOID = ("pore", "crack")


def _scores(lab, truth, schema):
    from tomopipe.segment import dice_scores

    return dice_scores(lab, truth, schema)


def _in_fov(truth):
    """Truth with the voxels outside the inscribed cylinder (not measured from every angle) set to 254."""
    ny, nx = truth.shape[1:]
    yy, xx = np.mgrid[:ny, :nx]
    disc = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2) <= min(ny, nx) / 2
    return np.where(disc[None], truth, np.uint8(254))


def _summary(table):
    """Scores of one :func:`_scores` table.

    ``mean6``: mean Dice over the six non-void classes present in the truth (a class absent from
    the truth has no Dice: MONAI's ``ignore_empty`` convention); ``absent_voxels``: voxels
    labelled as such absent classes (they also count as misses of the classes they belong to);
    ``mean6_absent0``: the same mean with every absent class that was predicted scored 0 (the
    convention of this benchmark before 2026-11-30); ``mean8``: over all eight classes present
    in the truth."""
    present = table["truth_voxels"] > 0
    solid = table.drop(index=[c for c in VOID if c in table.index])
    sp = solid["truth_voxels"] > 0
    strict = solid["dice"].where(sp | (solid["pred_voxels"] > 0))
    return {"mean6": float(solid["dice"][sp].mean()), "pore": float(table.loc["pore", "dice"]),
            "crack": float(table.loc["crack", "dice"]), "mean8": float(table["dice"][present].mean()),
            "absent_voxels": int(table["pred_voxels"][~present].sum()), "mean6_absent0": float(strict.mean())}


def _models():
    """[(short name, model)]: the default, then :data:`COMPARED` named by their version ("v2", "v1")."""
    from tomopipe.segment import load_model

    return [("default", load_model("default", device="cpu"))] + [
        (name.rsplit("-", 1)[-1], load_model(name, device="cpu")) for name in COMPARED]


def _segment(vol, model):
    from tomopipe.segment import segment

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment(vol, model, probabilities=False)[0]


def _rf_same_scan(vol, truth, schema, n_per_class=2000, seed=0):
    """Random forest on `n_per_class` voxels per class of this scan's truth (the rest 254)."""
    from tomopipe.segment import UNLABELLED, fit_random_forest, random_forest_segment

    rng = np.random.default_rng(seed)
    ann = np.full(truth.shape, UNLABELLED, np.uint8)
    flat = truth.ravel()
    for v in np.unique(flat):
        idx = np.flatnonzero(flat == v)
        pick = rng.choice(idx, size=min(n_per_class, idx.size), replace=False)
        ann.ravel()[pick] = v
    rf = fit_random_forest(vol, ann, schema=schema, seed=seed)
    return random_forest_segment(vol, rf)


# ------------------------------------------------------------------------------------------
# accuracy in domain + volumes for quantification
# ------------------------------------------------------------------------------------------

def _void_volumes(lab, v, schema):
    sample = lab != schema["outside"]
    n = max(int(sample.sum()), 1)
    void = (lab == schema["pore"]) | (lab == schema["crack"])
    return {"inclusion_um3": float((lab == schema["inclusion"]).sum() * v**3),
            "crack_um3": float((lab == schema["crack"]).sum() * v**3),
            "porosity": float(void.sum() / n)}


def accuracy():
    from tomopipe.segment import (
        DEFAULT_SCHEMA,
        fit_random_forest,
        mean_scores,
        multiotsu_segment,
        random_forest_segment,
        simulate_volume,
    )
    from tomopipe.segment._heldout import TRAINING_SERIES_V1, heldout_randomized, heldout_volumes

    nets = _models()
    new, old = nets[0][1], dict(nets)["v1"]
    held = heldout_volumes()
    rand = heldout_randomized()
    train = simulate_volume(TRAINING_SERIES_V1["seed"] * 1000, size=128, voxel_size_um=0.9, photons=3e4,
                            states=("OCV", "D1.2V", "D0.7V"))
    t = time.perf_counter()
    rf = fit_random_forest([v.mu for v in train], [v.labels for v in train], max_samples_per_class=20000, seed=0)
    rf_fit_s = time.perf_counter() - t
    tables = {}
    for name, vols in (("nominal", held), ("randomized", rand)):
        sc = {**{k: [] for k, _ in nets}, "multi-Otsu": [], "random forest": []}
        for v in vols:
            for k, m in nets:
                sc[k].append(_scores(_segment(v.mu, m), v.labels, DEFAULT_SCHEMA)[["dice", "iou"]])
            sc["multi-Otsu"].append(_scores(multiotsu_segment(v.mu, schema=DEFAULT_SCHEMA), v.labels,
                                            DEFAULT_SCHEMA)[["dice", "iou"]])
            sc["random forest"].append(_scores(random_forest_segment(v.mu, rf), v.labels,
                                               DEFAULT_SCHEMA)[["dice", "iou"]])
        tables[name] = {k: mean_scores(x) for k, x in sc.items()}
    # six-state held-out series at the simulator's defaults: quantities from the labels
    series = simulate_volume(9003, size=192, voxel_size_um=0.88, photons=2e4,
                             states=("OCV", "D1.7V", "D1.2V", "D0.7V", "C2.5V", "C3.0V"))
    rows = []
    for v in series:
        truth = _void_volumes(v.labels, 0.88, DEFAULT_SCHEMA)
        for mname, m in nets:
            pred = _void_volumes(_segment(v.mu, m), 0.88, DEFAULT_SCHEMA)
            rows.append({"state": v.info["state"], "model": mname, **{f"truth_{k}": x for k, x in truth.items()},
                         **{f"pred_{k}": x for k, x in pred.items()}})
    return tables, rows, rf_fit_s, new, old


def accuracy_section(tables, rows, rf_fit_s, new, old):
    from tomopipe.segment._heldout import HELDOUT_RANDOMIZED, HELDOUT_SCANS

    classes = list(new.classes)
    lines = ["Held-out scans of tomopipe's simulator. **Nominal**: " + "; ".join(
        f"seed {s['seed']}, {s['voxel_size_um']} µm, {s['photons']:.0f} photons, {s['states'][0]}" for s in HELDOUT_SCANS)
        + " (35 keV, absorption, the CuS study's cell: v1's training domain). **Randomized**: "
        f"{HELDOUT_RANDOMIZED['n_cells']} scans drawn like the default model's training scans with seed "
        f"{HELDOUT_RANDOMIZED['seed']} (20–80 keV, phase contrast, blur, rings, cut field of view, …). Default "
        f"model `{new.card['name']}` (sha256 {new.card['weights']['sha256'][:12]}…), `v2` = `{COMPARED[0]}` (the previous "
        f"default), first `{old.card['name']}`; "
        f"random forest trained on three nominal training scans (20 000 voxels per class, fit {rf_fit_s:.0f} s).", ""]
    for name, t in tables.items():
        lines += [f"{name.capitalize()} held-out scans, Dice:", "",
                  "| method | " + " | ".join(classes) + " | mean |", "|---|" + "---|" * (len(classes) + 1)]
        for method, tab in t.items():
            vals = tab["dice"].reindex(classes)
            lines.append(f"| {method} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {vals.mean():.3f} |")
        lines.append("")
    lines += ["Quantities from the labels of a held-out six-state 192³ series (seed 9003, 0.88 µm, 35 keV, "
              "2·10⁴ photons: the simulator's defaults, as in issue 12's series): Cu-rich inclusion volume and crack "
              "volume (µm³) and porosity (pore + crack voxels / sample voxels), truth vs. prediction.", "",
              "| state | model | inclusion truth | inclusion pred | error | crack truth | crack pred | error | "
              "porosity truth | porosity pred | error (pp) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ie = (r["pred_inclusion_um3"] / r["truth_inclusion_um3"] - 1) * 100 if r["truth_inclusion_um3"] else float("nan")
        ce = (r["pred_crack_um3"] / r["truth_crack_um3"] - 1) * 100 if r["truth_crack_um3"] else float("nan")
        lines.append(f"| {r['state']} | {r['model']} | {r['truth_inclusion_um3']:.0f} | {r['pred_inclusion_um3']:.0f} | "
                     f"{ie:+.1f} % | {r['truth_crack_um3']:.0f} | {r['pred_crack_um3']:.0f} | {ce:+.1f} % | "
                     f"{100 * r['truth_porosity']:.2f} % | {100 * r['pred_porosity']:.2f} % | "
                     f"{100 * (r['pred_porosity'] - r['truth_porosity']):+.2f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# generalization
# ------------------------------------------------------------------------------------------

#: Conditions of the generalization scans (the first is the reference at the old model's energy).
CONDITIONS = {
    "35 keV (reference)": {"energy_keV": 35.0},
    "25 keV": {"energy_keV": 25.0},
    "50 keV": {"energy_keV": 50.0},
    "arbitrary units (×0.37 + 7)": {"energy_keV": 35.0, "scale": 0.37, "offset": 7.0},
    "phase contrast, 50 mm, no Paganin": {"energy_keV": 35.0, "distance_mm": 50.0},
    "sample larger than the field of view (1.3×)": {"energy_keV": 35.0, "cut": True},
    # not an issue condition: the 50 keV scan at twice the dose (same cell, other noise), to
    # tell a contrast-to-noise limit from a domain gap
    "50 keV, 2× photons (4·10⁴)": {"energy_keV": 50.0, "photons": 4e4, "cell_of": "50 keV"},
}


def phantom_scans(size=128):
    """Independent-phantom scans under :data:`CONDITIONS` (same microstructure except the cut one)."""
    from tomopipe.simulate import PhantomParams, generate_phantom, scan_phantom

    base = generate_phantom(PhantomParams(shape=(size,) * 3, voxel_size_um=0.9, fov="square", seed=11))
    cut = generate_phantom(PhantomParams(shape=(size,) * 3, voxel_size_um=0.9, fov="cut", sample_fraction=1.3,
                                         seed=12))
    out = {}
    for k, (name, c) in enumerate(CONDITIONS.items()):
        lab, info = cut if c.get("cut") else base
        kw = {"photons": 2e4, **{key: val for key, val in c.items() if key not in ("cut", "cell_of")}}
        out[name] = scan_phantom(lab, info, seed=100 + k, **kw)
    return out


def simulator_scans(size=128):
    """The same conditions on held-out cells of tomopipe's simulator (seeds 9101…)."""
    from tomopipe.segment._domain import ScanConditions, simulate_conditions

    base = dict(seed=9101, size=size, state="D0.7V", energy_keV=35.0, voxel_size_um=0.9, photons=2e4,
                distance_mm=0.0, paganin=False, psf_sigma_px=0.0, stripes=0.0, ring_removal=False, zingers=0.0,
                fov="inside", sample_fill=0.9, particle_radius_um=5.0, active_fraction=0.35, cathode_porosity=0.10,
                separator_porosity=0.05, crack_fraction=0.01, inclusion_fraction=0.06,
                layers_um=(20.0, 100.0, 80.0, 25.0), angles_per_column=1.5, nominal=False)
    out = {}
    for k, (name, c) in enumerate(CONDITIONS.items()):
        cell = list(CONDITIONS).index(c["cell_of"]) if "cell_of" in c else k
        spec = dict(base, seed=9101 + cell, photons=c.get("photons", base["photons"]))
        if c.get("cut"):
            spec.update(fov="cut", sample_fill=1.3)
        spec["energy_keV"] = c["energy_keV"]
        spec["distance_mm"] = c.get("distance_mm", 0.0)
        v = simulate_conditions(ScanConditions(**spec))
        mu = v.mu * np.float32(c.get("scale", 1.0)) + np.float32(c.get("offset", 0.0))
        out[name] = (mu, v.labels)
    return out


def generalization():
    from tomopipe.segment import DEFAULT_SCHEMA, check_input_domain

    models = _models()
    res = {}
    for source, scans in (("independent phantom", phantom_scans()), ("tomopipe simulator, held-out cells",
                                                                      simulator_scans())):
        for cond, (vol, full_truth) in scans.items():
            truth = _in_fov(full_truth)
            row = {}
            for mname, m in models:
                row[mname] = _summary(_scores(_segment(vol, m), truth, DEFAULT_SCHEMA))
            row["random forest"] = _summary(_scores(_rf_same_scan(vol, full_truth, DEFAULT_SCHEMA), truth,
                                                    DEFAULT_SCHEMA))
            row["guard"] = check_input_domain(vol, models[0][1], 0.9)
            res[(source, cond)] = row
            print(source, cond, {k: round(v["mean6"], 3) for k, v in row.items() if k != "guard"}, flush=True)
    return res


def generalization_section(res):
    from tomopipe.segment import default_model_path, read_card

    card = read_card(default_model_path())
    others = [k for k in next(iter(res.values())) if k not in ("default", "random forest", "guard")]
    lines = ["Scans outside the training set, 128³ voxels of 0.9 µm, 2·10⁴ photons (4·10⁴ in the last condition, "
             "not one of the issue's: the 50 keV scan at twice the dose), reconstructed by tomopipe. "
             "**Independent phantom**: `tomopipe.simulate.generate_phantom` — written apart from the CuS simulator "
             "(superellipsoid particles with gamma-distributed sizes, randomly oriented Cu inclusions, Boolean "
             "sphere pores, disc cracks, rough Li interface, μ and δ straight from xraydb), a square sample "
             "filling the field of view (seed 11), or a cylinder 1.3× wider than it (seed 12); never used in "
             "training. **Simulator**: held-out cells (seeds 9101–9106, D0.7V; the last condition on the 50 keV "
             "row's cell) of tomopipe's simulator under the same conditions. "
             f"Default model `{card['name']}` (sha256 {card['weights']['sha256'][:12]}…); `{COMPARED[0]}` = the previous "
             "default (the default's ancestor: the default is v2 trained further on scans with varied inclusion "
             f"shapes, then on cells of three sizes; its card); `{COMPARED[1]}` the first default (μ ÷ 25 at 35 keV). "
             "**mean**: mean Dice over the six non-void classes (electrolyte, active, inclusion, lithium, current "
             "collector, outside) present in the truth — a class absent from the truth has no Dice (MONAI's "
             "`ignore_empty` convention; here `outside` in every scan, the sample fills the field of view); "
             "**absent**: voxels labelled as a class absent from the truth (they also count against the Dice of "
             "the class they belong to); **mean, absent = 0**: the same mean with a predicted absent class scored "
             "0 (this table's convention before 2026-11-30: a handful of such voxels then costs 1/6 of the mean); "
             "pore and crack Dice apart. Scored inside the inscribed cylinder of the field of view (the voxels "
             "measured from every angle). The random forest is trained on 2000 labelled voxels per class of the "
             "same scan (the issue's baseline). `guard`: warnings of `check_input_domain` for the default model.",
             "", "| scan | conditions | default: **mean** | pore | crack | absent | mean, absent = 0 | "
             + " | ".join(f"{o}: mean | pore | crack | absent" for o in others)
             + " | random forest: mean | pore | crack | guard |",
             "|---|---|---|---|---|---|---|" + "---|---|---|---|" * len(others) + "---|---|---|---|"]
    for (source, cond), r in res.items():
        n, f = r["default"], r["random forest"]
        guard = "; ".join(w.split(":")[0] for w in r["guard"]) or "—"
        lines.append(f"| {source} | {cond} | **{n['mean6']:.3f}** | {n['pore']:.3f} | {n['crack']:.3f} | "
                     f"{n['absent_voxels']} | {n['mean6_absent0']:.3f} | "
                     + "".join(f"{r[o]['mean6']:.3f} | {r[o]['pore']:.3f} | {r[o]['crack']:.3f} | "
                               f"{r[o]['absent_voxels']} | " for o in others)
                     + f"{f['mean6']:.3f} | {f['pore']:.3f} | {f['crack']:.3f} | {guard} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# throughput
# ------------------------------------------------------------------------------------------

def _time_run(vol, model, chunks, probabilities=True, reps=1, engine=None):
    import dask
    import dask.array as da

    from tomopipe.segment import segment_dask

    engine = engine or segment_dask
    d = da.from_array(vol, chunks=chunks)
    with warnings.catch_warnings(), dask.config.set(scheduler="threads", num_workers=1):
        warnings.simplefilter("ignore")
        engine(d[:32, :8, :32], model)[0].compute()  # warm-up
        best = np.inf
        for _ in range(reps):
            t = time.perf_counter()
            labels, prob = engine(d, model, probabilities=probabilities)
            da.compute(labels, *([prob] if prob is not None else []))
            best = min(best, time.perf_counter() - t)
    return vol.size / best, best


def throughput():
    import torch

    from tomopipe.segment import load_model
    from tomopipe.segment._infer import _segment_dask_chunkwise

    rng = np.random.default_rng(0)
    cases = [("256³, chunks 256×16×256 (v1's benchmark)", (256, 256, 256), (256, 16, 256)),
             ("672×16×1008 (a 2004×1336 detector's proportions), chunks 256×16×256 (stage default)",
              (672, 16, 1008), (256, 16, 256))]
    rows = []
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        old, new = load_model(OLD, device=device), load_model("default", device=device)
        for name, shape, chunks in cases:
            vol = rng.normal(10, 8, size=shape).astype(np.float32)
            r = {"case": name, "device": device}
            # best of 2 for every path: the first pass over fresh memory pays the kernel's page
            # faults (and huge-page compaction), which a long run amortizes
            r["old"] = _time_run(vol, old, chunks, engine=_segment_dask_chunkwise, reps=2)
            r["new"] = _time_run(vol, new, chunks, reps=2)
            r["new_labels_only"] = _time_run(vol, new, chunks, probabilities=False, reps=2)
            rows.append(r)
            print(r, flush=True)
    rows.append({"options": options()})
    print(rows[-1], flush=True)
    return rows


def options(batch=8, side=256, reps=3):
    """Network-only forward speed (voxels/s) of inference options, one batch of 2.5-D planes."""
    import torch

    from tomopipe.segment import UNet

    torch.set_num_threads(2)
    x = torch.randn(batch, 5, side, side)
    out = []

    def timed(fn):
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        return batch * side * side * reps / (time.perf_counter() - t)

    for arch, feats in (("v1: 16–128, 4 levels", (16, 32, 64, 128)), ("v2: 8–128, 5 levels", (8, 16, 32, 64, 128))):
        torch.manual_seed(0)
        net = UNet(5, 8, feats).eval()
        with torch.inference_mode():
            out.append((arch, "fp32, contiguous", timed(lambda: net(x))))
            cl = net.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            out.append((arch, "fp32, channels-last", timed(lambda: cl(xc))))

            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return cl(xc)
            out.append((arch, "bf16 autocast, channels-last", timed(bf16)))
        try:
            import tempfile

            import onnxruntime as ort

            with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                path = f"{d}/u.onnx"
                torch.onnx.export(UNet(5, 8, feats).eval(), (x,), path, input_names=["x"], output_names=["y"],
                                  dynamo=False, opset_version=17)
                so = ort.SessionOptions()
                so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
                sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                xn = x.numpy()
                out.append((arch, f"ONNX Runtime {ort.__version__}, fp32", timed(lambda: sess.run(None, {"x": xn}))))
        except ImportError:
            out.append((arch, "ONNX Runtime (not installed: pip install .[bench])", float("nan")))
    return out


def throughput_section(rows):
    lines = ["`segment_dask` on random volumes, one task at a time on dask's threaded scheduler (the stage's "
             "setting: the network uses both cores inside a task), tiles with halos, blending, labels + float16 "
             "probabilities (and labels only). Old path: `tomopipe-unet25d-cus-v1` (features 16–128, 4 levels, "
             "128² tiles, 32-voxel overlap, fp32 contiguous) in the old engine (each chunk task recomputes every "
             "tile touching it). New path: the default model (features 8–128, 5 levels, 256² tiles, 32-voxel "
             "overlap, fp32 channels-last, batch norm folded into the convolutions) in the new engine (tile groups run "
             "once and shared by the chunks they overlap). Same run, same volumes and chunks; each path the faster "
             "of two runs.", "",
             "| device | volume, chunks | old voxels/s | new voxels/s | ratio | new, labels only | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "old" not in r:
            continue
        o, n, nl = r["old"][0], r["new"][0], r["new_labels_only"][0]
        lines.append(f"| {r['device']} | {r['case']} | {o / 1e6:.2f} M | **{n / 1e6:.2f} M** | {n / o:.2f}× | "
                     f"{nl / 1e6:.2f} M | {nl / o:.2f}× |")
    opts = [r for r in rows if "options" in r]
    if opts:
        lines += ["", "Options measured (network forward only, a batch of 8 planes of 5 × 256 × 256, 2 threads, "
                  "random weights; the same run):", "", "| network | option | voxels/s |", "|---|---|---|"]
        lines += [f"| {a} | {o} | {v / 1e6:.2f} M |" for a, o, v in opts[0]["options"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# few-label fine-tuning
# ------------------------------------------------------------------------------------------

def _three_slices(truth, ys):
    from tomopipe.segment import UNLABELLED

    lab = np.full(truth.shape, UNLABELLED, np.uint8)
    for y in ys:
        lab[:, y, :] = truth[:, y, :]
    return lab


def finetune(iterations=200):
    import torch

    from tomopipe.segment import DEFAULT_SCHEMA, fine_tune, load_model
    from tomopipe.simulate import PhantomParams, generate_phantom, scan_phantom

    torch.set_num_threads(2)
    cases = []
    # outside the default model's domain: 90 keV, 2 µm voxels, strong blur, large particles
    lab, info = generate_phantom(PhantomParams(shape=(128, 128, 128), voxel_size_um=2.0, particle_radius_um=8.0,
                                               pore_radius_um=2.5, crack_radius_um=(12.0, 30.0), seed=13))
    vol, truth = scan_phantom(lab, info, energy_keV=90.0, photons=1e4, psf_sigma_px=2.0, seed=7)
    cases.append(("independent phantom, 90 keV, 2 µm voxels, PSF σ 2 px", "default", vol, truth))
    # outside v1's domain: 50 keV
    lab, info = generate_phantom(PhantomParams(shape=(128, 128, 128), voxel_size_um=0.9, seed=14))
    vol, truth = scan_phantom(lab, info, energy_keV=50.0, photons=2e4, seed=8)
    cases.append(("independent phantom, 50 keV", OLD, vol, truth))
    ys = (32, 64, 96)
    rows = []
    for name, mname, vol, truth in cases:
        model = load_model(mname, device="cpu")
        keep = _in_fov(truth) != 254
        keep[:, list(ys), :] = False
        score = lambda m: _summary(_scores(np.where(keep, _segment(vol, m), 254), np.where(keep, truth, 254),  # noqa: E731
                                           DEFAULT_SCHEMA))
        before = score(model)
        t = time.perf_counter()
        tuned, hist = fine_tune(vol, _three_slices(truth, ys), init=model, iterations=iterations, lr=5e-4, seed=0,
                                threads=2)
        dt = time.perf_counter() - t
        after = score(tuned)
        rows.append({"scan": name, "model": model.card["name"], "before": before, "after": after, "seconds": dt,
                     "iterations": iterations})
        print(rows[-1], flush=True)
    return rows


def finetune_section(rows):
    lines = ["`tomopipe.segment.fine_tune` (what `tomopipe train --store --labels` and the napari plugin call) on "
             "3 corrected xz slices (y = 32, 64, 96; the truth of those slices plays the corrections, 254 "
             "elsewhere) of 128³ scans outside the model's training domain; Dice on all other voxels inside the "
             "inscribed cylinder of the field of view; 2 CPU "
             "threads, lr 5·10⁻⁴, seed 0. Mean Dice over the six non-void classes present in the truth (as in "
             "the generalization table).", "",
             "| scan | model | steps | time (s) | mean Dice (6) before → after | pore before → after | "
             "crack before → after | mean8 before → after |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(f"| {r['scan']} | {r['model']} | {r['iterations']} | {r['seconds']:.0f} | {b['mean6']:.3f} → "
                     f"**{a['mean6']:.3f}** | {b['pore']:.3f} → {a['pore']:.3f} | {b['crack']:.3f} → {a['crack']:.3f} "
                     f"| {b['mean8']:.3f} → {a['mean8']:.3f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# 2.5-D vs 3-D (the choice of architecture, v1's setting)
# ------------------------------------------------------------------------------------------

def compare(minutes):
    """Equal wall-time training of the 2.5-D and 3-D U-Nets on the same six cells; held-out Dice."""
    from tomopipe.segment import TrainConfig, load_model, save_model, simulated_series, train_unet
    from tomopipe.segment._heldout import TRAINING_SERIES_V1 as TRAINING_SERIES, heldout_volumes
    from tomopipe.segment._recipes import _card, evaluate_model

    vols = simulated_series(**{**TRAINING_SERIES, "n_cells": 6})
    pairs = [(v.mu, v.labels) for v in vols]
    held = heldout_volumes()
    res = {}
    for name, cfg in [("2.5-D", TrainConfig(ndim=2, features=(16, 32, 64, 128), normalization="scale", memory_format="contiguous")),
                      ("3-D", TrainConfig(ndim=3, patch=64, cubes=2, features=(16, 32, 64, 128), normalization="scale"))]:
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


def update_card(title, body):
    """Put a section (``## title``) into the default model card's Markdown body (not its front matter,
    not the weights: the sha256 stays valid)."""
    import re

    from tomopipe.segment import default_model_path

    card = default_model_path().with_suffix(".md")
    text = card.read_text(encoding="utf-8")
    _, front, prose = text.split("---", 2)
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(prose):
        prose = pattern.sub(lambda _: section + "\n", prose, count=1)
    else:
        limits = prose.find("\n## Limits")
        prose = prose[:limits] + "\n\n" + section + prose[limits:] if limits >= 0 else prose + "\n" + section
    card.write_text(f"---{front}---{prose.rstrip()}\n", encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the sections of benchmarks/RESULTS.md")
    ap.add_argument("--sections", default="accuracy,generalization,throughput,finetune")
    ap.add_argument("--json", default=None, help="also dump the raw results to this JSON file")
    ap.add_argument("--card", action="store_true",
                    help="also put the generalization, quantities and fine-tuning tables into the default model's card")
    ap.add_argument("--compare", type=float, default=None, metavar="MINUTES",
                    help="only train 2.5-D and 3-D networks for MINUTES each and compare (v1's setting)")
    ap.add_argument("--compare-json", default=None,
                    help="only write a comparison already run ({'minutes': m, 'results': compare(m)})")
    args = ap.parse_args()
    if args.compare or args.compare_json:
        info = machine_info("torch", "sklearn", "skimage")
        head = "\n".join(f"- {k}: {v}" for k, v in info.items())
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
        return
    sections = args.sections.split(",")
    dump = {}
    for sec in sections:
        info = machine_info("torch", "sklearn", "skimage")
        head = "\n".join(f"- {k}: {v}" for k, v in info.items())
        t0 = time.perf_counter()
        if sec == "accuracy":
            tables, rows, rf_fit_s, new, old = accuracy()
            body, title = accuracy_section(tables, rows, rf_fit_s, new, old), "## Segmentation"
            dump[sec] = rows
        elif sec == "generalization":
            res = generalization()
            body, title = generalization_section(res), "## Segmentation: generalization"
            dump[sec] = {f"{a} | {b}": v for (a, b), v in res.items()}
        elif sec == "throughput":
            rows = throughput()
            body, title = throughput_section(rows), "## Segmentation: throughput"
            dump[sec] = rows
        elif sec == "finetune":
            rows = finetune()
            body, title = finetune_section(rows), "## Segmentation: few-label fine-tuning"
            dump[sec] = rows
        else:
            raise SystemExit(f"unknown section {sec!r}")
        load_end = "{:.2f} {:.2f} {:.2f}".format(*__import__("os").getloadavg())
        body += f"\n\nLoad average at the end: {load_end}; section wall time {time.perf_counter() - t0:.0f} s. " \
                f"Reproduce with `python benchmarks/bench_segment.py --sections {sec} --write`."
        print(body, flush=True)
        if args.write:
            write_section(title, head + "\n\n" + body)
        if args.card and sec != "throughput":
            update_card({"accuracy": "Held-out scans and quantities (benchmarks/RESULTS.md)",
                         "generalization": "Held-out scans outside the training set (benchmarks/RESULTS.md)",
                         "finetune": "Few-label fine-tuning (benchmarks/RESULTS.md)"}[sec],
                        f"Measured {info['date']} on {info['cpu']} ({info['cores']}), load {info['load']}.\n\n" + body)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dump, f, indent=1, default=str)


if __name__ == "__main__":
    main()
