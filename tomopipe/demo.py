"""``tomopipe demo``: a small simulated scan reconstructed by the whole pipeline."""

from __future__ import annotations

import sys

import numpy as np

from .pipeline import load_workflow
from .simulate import Ellipsoid, project_ellipsoids

__all__ = ["demo_scan", "run_demo"]

# demo_scan: a tiny analytic pellet, used by the pipeline tests (seconds to make, exact geometry);
# run_demo: the CuS in-situ simulator through the whole pipeline.

PIXEL_UM = 0.88


def demo_scan(size=128, *, seed=0, photons=20000.0):
    """Simulate raw counts of a small composite-cathode pellet (analytic line integrals).

    A solid-electrolyte cylinder (μ = 2 /cm) holding active particles (μ = 25 /cm) and a few
    small, dense Cu-like inclusions (μ = 80 /cm), pixel 0.88 µm. Flats are taken in two
    series (before and after the projections) with a 3 % intensity drift; Poisson noise.

    Parameters
    ----------
    size : int
        Detector width in pixels; rows = size // 4, angles = 1.5 × size over 180°.
    seed : int
        Random seed (particle positions, noise).
    photons : float
        Mean flat-field counts per pixel.

    Returns
    -------
    dict
        ``projections, flats, darks`` (uint16, (angle, row, col)), ``theta`` (rad),
        ``flat_index``, ``center`` (column index of the axis), ``mu_per_cm`` (phantom values),
        ``ellipsoids`` (in pixels).
    """
    rng = np.random.default_rng(seed)
    n_rows, n_cols = max(8, size // 4), size
    n_angles = int(round(1.5 * size))
    theta = np.linspace(0, np.pi, n_angles, endpoint=False)
    px_cm = PIXEL_UM * 1e-4
    radius = 0.4 * size
    objs = [Ellipsoid((0.0, 0.0, 0.0), (10.0 * size, radius, radius), 2.0 * px_cm)]
    for _ in range(int(size / 8)):
        r = rng.uniform(0.04, 0.08) * size
        rho = rng.uniform(0, radius - r - 2)
        phi = rng.uniform(0, 2 * np.pi)
        z = rng.uniform(-n_rows / 2, n_rows / 2)
        objs.append(Ellipsoid((z, rho * np.sin(phi), rho * np.cos(phi)), (r, r, r), 23.0 * px_cm))
        if rng.random() < 0.5:  # a flat Cu-rich inclusion inside the particle, ⟂ z
            objs.append(Ellipsoid((z, rho * np.sin(phi), rho * np.cos(phi)), (0.25 * r, 0.5 * r, 0.5 * r),
                                  55.0 * px_cm, rng.uniform(0, np.pi)))
    center = (n_cols - 1) / 2 + 1.3  # an off-centre axis, as at a real beamline
    line = project_ellipsoids(objs, theta, n_rows, n_cols, center=center)
    profile = 1.0 - 0.15 * ((np.arange(n_cols) - n_cols / 2) / n_cols) ** 2  # beam profile
    beam = photons * np.broadcast_to(profile, (n_rows, n_cols))
    drift = 1.0 + 0.03 * np.arange(n_angles) / n_angles
    dark_level = 100.0
    proj = rng.poisson(beam[None] * drift[:, None, None] * np.exp(-line)) + dark_level
    flats_a = rng.poisson(np.broadcast_to(beam, (5, n_rows, n_cols))) + dark_level
    flats_b = rng.poisson(np.broadcast_to(beam * 1.03, (5, n_rows, n_cols))) + dark_level
    darks = rng.poisson(np.full((5, n_rows, n_cols), dark_level))
    return {
        "projections": proj.astype(np.uint16),
        "flats": np.concatenate([flats_a, flats_b]).astype(np.uint16),
        "darks": darks.astype(np.uint16),
        "theta": theta,
        "flat_index": np.r_[np.full(5, -0.5), np.full(5, n_angles - 0.5)],
        "center": center,
        "mu_per_cm": {"electrolyte": 2.0, "particles": 25.0, "inclusions": 80.0},
        "ellipsoids": objs,
    }


def run_demo(out, *, size=96, progress=True, states=("OCV", "D1.2V", "D0.7V", "C3.0V")):
    """Simulate a small CuS in-situ series and run it as a beamline series would be run.

    The simulated scans (:func:`tomopipe.simulate.simulate_insitu`) go through the series
    workflow it writes: each state is reconstructed, segmented by the shipped U-Net and
    quantified from that segmentation; DVC compares the states (21 µm subsets every 14 µm: the
    cell is small); the report (``<out>/report/report.html``) gathers it all and validates it
    against the simulator's ground truth.

    Parameters
    ----------
    out : path-like
        Folder for the raw scans, ground truth, workflows, stores and report.
    size : int
        Voxels per side of the simulated cell.
    progress : bool
        Show progress bars and log lines.
    states : sequence of str
        The states simulated and run.

    Returns
    -------
    tomopipe.pipeline.SeriesResult
    """
    from .pipeline import run_series
    from .simulate import simulate_insitu

    say = (lambda m: print(m, file=sys.stderr)) if progress else (lambda m: None)
    series = simulate_insitu(out, size=size, states=list(states), progress=say)
    return run_series(load_workflow(series.series_workflow), progress=progress, log=say)
