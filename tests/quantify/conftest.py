"""Shared fixtures of the quantification tests: simulated cells of five seeds."""

import pytest

from tomopipe.simulate import CellParams, generate_cell, insitu_sequence

#: The seeds of the "five seeds" checks (cell seed = sequence seed).
SEEDS = (0, 1, 2, 3, 4)
#: States kept: crack-free (OCV, D1.7V), fully grown (D0.7V), partly healed (C3.0V).
STATES = ("OCV", "D1.7V", "D0.7V", "C3.0V")


@pytest.fixture(scope="session")
def five_cells():
    """``{seed: (cell, {state name: State})}`` for 96³ cells at 0.88 µm."""
    out = {}
    for seed in SEEDS:
        cell = generate_cell(CellParams(shape=(96, 96, 96), seed=seed))
        states = {s.name: s for s in insitu_sequence(cell, seed=seed) if s.name in STATES}
        for s in states.values():  # keep memory low: what the tests use
            s.inclusion_ids = s.particle_ids = None
        out[seed] = (cell, states)
    return out
