"""Shared fixtures of the quantification tests: simulated cells of the five seeds of issue
11, and of twenty seeds run only to confirm the crack defaults."""

import pytest

from tomopipe.simulate import CellParams, generate_cell, insitu_sequence

#: The seeds of the "five seeds" checks (cell seed = sequence seed).
SEEDS = (0, 1, 2, 3, 4)
#: Seeds run only to confirm the crack defaults chosen on seeds 5-34 (benchmarks/bench_cracks.py).
CONFIRM_SEEDS = tuple(range(35, 55))
#: States kept: crack-free (OCV, D1.7V), fully grown (D0.7V), partly healed (C3.0V).
STATES = ("OCV", "D1.7V", "D0.7V", "C3.0V")


def _cells(seeds, keep_cell=True):
    """``{seed: (cell, {state name: State})}`` for 96³ cells at 0.88 µm (cell None unless
    `keep_cell`)."""
    out = {}
    for seed in seeds:
        cell = generate_cell(CellParams(shape=(96, 96, 96), seed=seed))
        states = {s.name: s for s in insitu_sequence(cell, seed=seed) if s.name in STATES}
        for s in states.values():  # keep memory low: what the tests use
            s.inclusion_ids = s.particle_ids = None
        out[seed] = (cell if keep_cell else None, states)
    return out


@pytest.fixture(scope="session")
def five_cells():
    return _cells(SEEDS)


@pytest.fixture(scope="module")
def confirm_cells():
    return _cells(CONFIRM_SEEDS, keep_cell=False)
