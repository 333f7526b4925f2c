"""A whole simulated in-situ series on disk: raw scans, ground truth and workflows per state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ._cell import LABEL_MATERIALS, LABELS, CellParams, generate_cell, insitu_sequence, summarize_sequence, write_truth
from ._forward import simulate_scan, write_scan
from ._materials import delta_beta_ratio, phase_properties

__all__ = ["InsituSeries", "simulate_insitu", "label_volumes_to_mu"]


@dataclass
class InsituSeries:
    """What :func:`simulate_insitu` wrote.

    Attributes
    ----------
    folder : Path
    states : list of str
        State names in acquisition order.
    scans, truths, workflows : list of Path
        Per state: the DXchange raw scan, the ground-truth folder, the workflow YAML.
    series_workflow : Path
        ``series.yaml``: every state, DVC against the first state, and the report.
    summary : pandas.DataFrame
        One row of ground-truth totals per state (also ``summary.csv``).
    """

    folder: Path
    states: list
    scans: list
    truths: list
    workflows: list
    summary: pd.DataFrame
    series_workflow: Path = None


def label_volumes_to_mu(labels, energy_keV):
    """μ (1/cm) and δ volumes of a label volume of the CuS cell schema.

    Parameters
    ----------
    labels : (z, y, x) ndarray of uint8
        Labels of :data:`tomopipe.simulate.LABELS`.
    energy_keV : float
        Photon energy.

    Returns
    -------
    mu_per_cm, delta : (z, y, x) ndarray of float32
    """
    schema = {LABELS[name]: LABEL_MATERIALS[name] for name in LABELS}
    props = phase_properties(schema, energy_keV)
    mu = np.asarray(props.mu_per_cm, dtype=np.float32)[labels]
    delta = np.asarray(props.delta, dtype=np.float32)[labels]
    return mu, delta


def simulate_insitu(out, *, size=256, seed=0, energy_keV=35.0, distance_mm=0.0, photons=2e4,
                    n_angles=None, states=None, overwrite=False, progress=None):
    """Simulate the CuS in-situ series: one raw scan, ground truth and workflow per state.

    The cell (:func:`generate_cell`, defaults of the CuS study, voxel 0.88 µm) is a cube of
    `size` voxels; each state of :func:`insitu_sequence` is turned into μ and δ (xraydb, at
    `energy_keV`), projected over 180° (:func:`simulate_scan`: Poisson noise, two flat series
    with a 2 % drift, darks) and written as Data Exchange HDF5. Layout of `out`::

        <state>.h5            raw scan (projections, flats, darks, theta, theta_white)
        <state>.truth/        ground truth (truth.zarr: labels, ids, displacement; CSV tables)
        <state>.yaml          workflow reconstructing <state>.h5 into <state>.zarr (Vo's
                              sorting filter against rings), segmenting it with the shipped
                              U-Net (segmentation/) and quantifying that segmentation (metrics/)
        series.yaml           the whole series: every state as above, DVC against the first
                              state and between consecutive states, the report (report/), whose
                              validation table compares with the ground truth
        summary.csv           ground-truth totals per state

    Parameters
    ----------
    out : path-like
        Output folder (created).
    size : int
        Voxels per side of the simulated cell (and detector columns).
    seed : int
        Seed of the microstructure, the sequence and the noise.
    energy_keV : float
        Photon energy (CuS study: 35 keV).
    distance_mm : float
        Sample–detector distance for Fresnel propagation (0: pure absorption contrast).
        With a distance, the workflows retrieve the phase with Paganin (δ/β of the electrolyte).
    photons : float
        Mean flat-field counts per pixel.
    n_angles : int, optional
        Projections over 180° (default ``ceil(1.5 · size)``).
    states : sequence of str, optional
        Subset of the state names to write (default all six).
    overwrite : bool
        Replace existing raw scans.
    progress : callable, optional
        Receives one line of text per state.

    Returns
    -------
    InsituSeries
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)
    cell = generate_cell(CellParams(shape=(size, size, size), seed=seed))
    seq = insitu_sequence(cell, seed=seed)
    if states is not None:
        unknown = set(states) - {s.name for s in seq}
        if unknown:
            raise ValueError(f"states: unknown {sorted(unknown)}; known {[s.name for s in seq]}")
        seq = [s for s in seq if s.name in set(states)]
    n_angles = int(n_angles or np.ceil(1.5 * size))
    theta = np.linspace(0.0, np.pi, n_angles, endpoint=False)
    voxel_um = cell.params.voxel_size_um
    scans, truths, wfs, entries = [], [], [], []
    shared = {
        "geometry": {"pixel_size": f"{voxel_um} um", "center": "auto"},
        "normalize": {"flats": "interpolate"},
        # a real scan's pipeline: rings (here: the noise of the flats) are removed before FBP
        "stripes": {"method": "sorting"},
        "recon": {"filter_name": "shepp", "rows_per_chunk": 16},
        # the shipped U-Net segments the volume; the metrics are those of that segmentation
        # (the ground truth serves only the series report's validation table)
        "segment": {"method": "unet"},
        "quantify": {"labels": "segmentation", "n_layers": 10},
    }
    if distance_mm > 0:
        shared["phase"] = {"energy": f"{energy_keV} keV", "distance": f"{distance_mm} mm",
                           "delta_beta": float(delta_beta_ratio("Li3PS4", energy_keV))}
    for k, state in enumerate(seq):
        name = state.name.replace(".", "p")
        h5 = out / f"{name}.h5"
        if overwrite or not h5.exists():
            mu, delta = label_volumes_to_mu(state.labels, energy_keV)
            scan = simulate_scan(mu, delta if distance_mm > 0 else None, theta=theta, pixel_size_um=voxel_um,
                                 energy_keV=energy_keV, distance_mm=distance_mm, photons=photons,
                                 seed=seed * 100 + k)
            write_scan(h5, scan, overwrite=overwrite)
        truth = out / f"{name}.truth"
        write_truth(state, truth)
        wf = {"name": name, "input": {"path": h5.name}, **shared,
              "output": {"store": f"{name}.zarr", "pyramid_levels": 3}}
        entries.append({"name": state.name, "input": {"path": h5.name}, "truth": truth.name})
        wf_path = out / f"{name}.yaml"
        wf_path.write_text(yaml.safe_dump(wf, sort_keys=False))
        scans.append(h5)
        truths.append(truth)
        wfs.append(wf_path)
        say(f"{state.name}: {h5.name}, truth in {truth.name}/, workflow {wf_path.name}")
    series = {"name": f"cus-cell-seed{seed}", "series": {"states": entries, "reference": seq[0].name},
              **shared,
              # the study's 50 µm cuboids (the default) would span a third of a 192³ simulated cell
              # (169 µm) and mix its layers; 21 µm subsets every 14 µm resolve the cathode's gradient
              "dvc": {"node_spacing": "14 um", "subset": "21 um", "search": 12},
              "output": {"pyramid_levels": 3}}
    series_path = out / "series.yaml"
    series_path.write_text(yaml.safe_dump(series, sort_keys=False))
    summary = summarize_sequence(seq)
    summary.to_csv(out / "summary.csv")
    return InsituSeries(folder=out, states=[s.name for s in seq], scans=scans, truths=truths,
                        workflows=wfs, summary=summary, series_workflow=series_path)
