"""The training series and held-out scans of the shipped model (one definition for CLI,
benchmarks and model card)."""

from __future__ import annotations

__all__ = ["TRAINING_SERIES", "TRAINING_SERIES_V1", "HELDOUT_SCANS", "HELDOUT_RANDOMIZED", "heldout_volumes",
           "heldout_randomized"]

#: Arguments of :func:`tomopipe.segment._domain.randomized_series` for the shipped model
#: (one cell per scan; ``n_cells`` scans under randomized conditions).
TRAINING_SERIES = {"n_cells": 96, "seed": 0, "size": 128}

#: Arguments of :func:`tomopipe.segment.simulated_series` for ``tomopipe-unet25d-cus-v1``.
TRAINING_SERIES_V1 = {"n_cells": 12, "seed": 0, "size": 128, "voxel_size_um": (0.7, 1.1),
                      "photons": (1.5e4, 6e4), "states": ("OCV", "D1.2V", "D0.7V")}

#: Held-out randomized scans: conditions drawn like the training ones with another seed.
HELDOUT_RANDOMIZED = {"n_cells": 6, "seed": 99, "size": 128}

#: Held-out scans: seeds, voxel sizes and noise levels not used in training.
HELDOUT_SCANS = (
    {"seed": 9001, "size": 128, "voxel_size_um": 0.95, "photons": 2.5e4, "states": ("D0.7V",)},
    {"seed": 9002, "size": 128, "voxel_size_um": 0.78, "photons": 4.0e4, "states": ("D1.2V",)},
)


def heldout_randomized():
    """Simulate the held-out randomized scans (list of :class:`SimVolume`)."""
    from ._domain import randomized_series

    spec = dict(HELDOUT_RANDOMIZED)
    return randomized_series(spec.pop("n_cells"), **spec)


def heldout_volumes():
    """Simulate the held-out scans (list of :class:`SimVolume`)."""
    from ._data import simulate_volume

    vols = []
    for spec in HELDOUT_SCANS:
        spec = dict(spec)
        vols += simulate_volume(spec.pop("seed"), **spec)
    return vols
