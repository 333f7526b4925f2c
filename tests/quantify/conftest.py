"""Shared fixtures of the quantification tests: simulated cells of five seeds, and of ten
seeds held out from every choice of the crack method."""

import pytest

from tomopipe.simulate import CellParams, generate_cell, insitu_sequence

#: The seeds of the "five seeds" checks (cell seed = sequence seed).
SEEDS = (0, 1, 2, 3, 4)
#: Seeds never used to choose a method's steps or defaults.
HELD_OUT_SEEDS = tuple(range(5, 15))
#: States kept: crack-free (OCV, D1.7V), fully grown (D0.7V), partly healed (C3.0V).
STATES = ("OCV", "D1.7V", "D0.7V", "C3.0V")


def _cells(seeds):
    """``{seed: (cell, {state name: State})}`` for 96³ cells at 0.88 µm."""
    out = {}
    for seed in seeds:
        cell = generate_cell(CellParams(shape=(96, 96, 96), seed=seed))
        states = {s.name: s for s in insitu_sequence(cell, seed=seed) if s.name in STATES}
        for s in states.values():  # keep memory low: what the tests use
            s.inclusion_ids = s.particle_ids = None
        out[seed] = (cell, states)
    return out


@pytest.fixture(scope="session")
def five_cells():
    return _cells(SEEDS)


@pytest.fixture(scope="module")
def held_out_cells():
    return _cells(HELD_OUT_SEEDS)
