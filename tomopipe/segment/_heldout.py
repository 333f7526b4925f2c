"""The training series and held-out scans of the shipped model (one definition for CLI,
benchmarks and model card)."""

from __future__ import annotations

__all__ = ["TRAINING_SERIES", "HELDOUT_SCANS", "heldout_volumes"]

#: Arguments of :func:`tomopipe.segment.simulated_series` for the shipped model.
TRAINING_SERIES = {"n_cells": 12, "seed": 0, "size": 128, "voxel_size_um": (0.7, 1.1),
                   "photons": (1.5e4, 6e4), "states": ("OCV", "D1.2V", "D0.7V")}

#: Held-out scans: seeds, voxel sizes and noise levels not used in training.
HELDOUT_SCANS = (
    {"seed": 9001, "size": 128, "voxel_size_um": 0.95, "photons": 2.5e4, "states": ("D0.7V",)},
    {"seed": 9002, "size": 128, "voxel_size_um": 0.78, "photons": 4.0e4, "states": ("D1.2V",)},
)


def heldout_volumes():
    """Simulate the held-out scans (list of :class:`SimVolume`)."""
    from ._data import simulate_volume

    vols = []
    for spec in HELDOUT_SCANS:
        spec = dict(spec)
        vols += simulate_volume(spec.pop("seed"), **spec)
    return vols
