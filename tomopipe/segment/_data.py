"""Simulated training and evaluation volumes: reconstructed μ with ground-truth labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._schema import truth_to_labels

__all__ = ["SimVolume", "simulate_volume", "simulated_series"]


@dataclass
class SimVolume:
    """One simulated, reconstructed scan and its truth.

    Attributes
    ----------
    mu : (z, y, x) ndarray of float32
        Reconstructed linear attenuation coefficient, 1/cm.
    labels : (z, y, x) ndarray of uint8
        Truth in :data:`tomopipe.segment.DEFAULT_SCHEMA` values.
    voxel_size_um : float
    info : dict
        The simulation parameters (seed, state, photons, energy, …).
    """

    mu: np.ndarray
    labels: np.ndarray
    voxel_size_um: float
    info: dict


@dataclass(frozen=True)
class _Spec:
    seed: int
    size: int
    voxel_size_um: float
    photons: float
    energy_keV: float = 35.0
    states: tuple = ("OCV", "D1.2V", "D0.7V")


def _reconstruct(state_labels, spec, k):
    from .. import minus_log, normalize_interp, recon
    from ..simulate import label_volumes_to_mu, simulate_scan

    mu_true, _ = label_volumes_to_mu(state_labels, spec.energy_keV)
    n = spec.size
    theta = np.linspace(0.0, np.pi, int(np.ceil(1.5 * n)), endpoint=False)
    scan = simulate_scan(mu_true, theta=theta, pixel_size_um=spec.voxel_size_um, energy_keV=spec.energy_keV,
                         photons=spec.photons, seed=spec.seed * 100 + k)
    norm = normalize_interp(scan["projections"].compute(), scan["flats"].compute(), scan["darks"].compute(),
                            scan["flat_index"])
    rec = recon(minus_log(norm), theta, center=scan["center"], pixel_size=spec.voxel_size_um * 1e-4,
                circle=False)
    return np.asarray(rec, dtype=np.float32)


def simulate_volume(seed, *, size=128, voxel_size_um=0.88, photons=2e4, energy_keV=35.0, states=("D0.7V",)):
    """Simulate the CuS cell, scan and reconstruct it: the U-Net's training/evaluation data.

    The microstructure (:func:`tomopipe.simulate.generate_cell` with `seed` and
    `voxel_size_um`) runs through :func:`tomopipe.simulate.insitu_sequence`; each requested
    state is projected with Poisson noise at `photons` counts (:func:`simulate_scan`, 1.5·size
    angles over 180°, flat drift, beam profile), normalized (:func:`tomopipe.normalize_interp`,
    :func:`tomopipe.minus_log`) and reconstructed with :func:`tomopipe.recon` (Shepp–Logan).

    Parameters
    ----------
    seed : int
        Seed of the cell, the sequence and the noise.
    size : int
        Voxels per side.
    voxel_size_um : float
        Voxel size, µm.
    photons : float
        Flat-field counts per pixel (noise level).
    energy_keV : float
    states : sequence of str
        Names of the in-situ states to return (:data:`tomopipe.simulate.DEFAULT_STATES`).

    Returns
    -------
    list of SimVolume
        One per state, in the order of `states`.
    """
    from ..simulate import CellParams, generate_cell, insitu_sequence

    spec = _Spec(int(seed), int(size), float(voxel_size_um), float(photons), float(energy_keV), tuple(states))
    cell = generate_cell(CellParams(shape=(spec.size,) * 3, voxel_size_um=spec.voxel_size_um, seed=spec.seed))
    seq = {s.name: s for s in insitu_sequence(cell, seed=spec.seed)}
    unknown = [s for s in spec.states if s not in seq]
    if unknown:
        raise ValueError(f"states: unknown {unknown}; known {list(seq)}")
    out = []
    for k, name in enumerate(spec.states):
        st = seq[name]
        mu = _reconstruct(st.labels, spec, k)
        info = {**asdict(spec), "state": name}
        info["states"] = list(info["states"])
        out.append(SimVolume(mu=mu, labels=truth_to_labels(st.labels, st.crack_ids),
                             voxel_size_um=spec.voxel_size_um, info=info))
    return out


def simulated_series(n_cells, *, seed=0, size=128, voxel_size_um=(0.7, 1.1), photons=(5e3, 5e4),
                     states=("OCV", "D1.2V", "D0.7V"), progress=None):
    """Several simulated cells with random voxel size and noise level (seeded).

    Voxel sizes are drawn uniformly from the `voxel_size_um` range, photon counts
    log-uniformly from the `photons` range, with ``numpy.random.default_rng(seed)``; cell
    ``i`` has seed ``seed * 1000 + i``.

    Returns
    -------
    list of SimVolume
    """
    rng = np.random.default_rng(seed)
    vols = []
    for i in range(int(n_cells)):
        v = float(rng.uniform(*voxel_size_um))
        ph = float(np.exp(rng.uniform(np.log(photons[0]), np.log(photons[1]))))
        vols += simulate_volume(seed * 1000 + i, size=size, voxel_size_um=v, photons=ph, states=states)
        if progress:
            progress(f"cell {i + 1}/{n_cells}: voxel {v:.3f} µm, {ph:.0f} photons")
    return vols
