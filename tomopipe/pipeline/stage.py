"""The one stage pattern every stage goes through.

A :class:`Stage` says what a result is — its name, parameters and the fingerprints of what it
is made from — and how to write it (a function that fills a partial zarr group).
:meth:`Runner.run` is the only place that applies the pattern::

    fingerprint → complete and unchanged? skip → begin <stage>.partial → write → commit (rename)

so resume, provenance and atomic completion are the same for the scan stages (raw …
volume), segmentation, metrics, DVC and the series stages.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import dask.array as da

from ..errors import TomopipeError
from .store import Store, as_json, fingerprint

__all__ = ["Stage", "StageRef", "StageWriter", "Runner"]


@dataclass(frozen=True)
class StageRef:
    """A stage result in a store: where it is and which fingerprint it has (or will have).

    Plans make references to stages that do not exist yet; :meth:`group` opens the result
    when a later stage reads it.
    """

    path: Path
    name: str
    fingerprint: str

    def group(self):
        """The complete stage's zarr group, read-only."""
        return Store(self.path).group(self.name)

    def attrs(self):
        """The complete stage's group attributes."""
        return dict(self.group().attrs)


@dataclass
class Stage:
    """One stage of a run.

    Attributes
    ----------
    name : str
        Group name in the store (``raw``, ``volume``, ``segmentation``, …).
    parameters : dict
        Everything that changes the result (JSON types), recorded in the attributes.
    inputs : dict
        Fingerprints (or content tokens) of what the stage reads, by name.
    write : callable
        ``write(writer: StageWriter) -> dict or None``: fills ``writer.group`` and returns
        extra group attributes. Raises :class:`~tomopipe.errors.TomopipeError` for bad input
        (then the partial group is discarded).
    describe : str
        One line for the plan and the log.
    """

    name: str
    parameters: dict
    inputs: dict
    write: Callable
    describe: str = ""
    fingerprint: str = field(init=False)

    def __post_init__(self):
        self.parameters = as_json(self.parameters)
        self.inputs = as_json(self.inputs)
        self.fingerprint = fingerprint(self.name, self.parameters, self.inputs)


class StageWriter:
    """What a stage's write function works with: its partial group and how to fill it."""

    def __init__(self, store, group, *, progress=False, log=None):
        self.store = store
        self.group = group
        self.progress = progress
        self.log = log or (lambda msg: None)

    def create_array(self, name, *, shape, chunks, dtype, dims, attrs=None):
        """Create an array in the partial group (dimension names and attributes)."""
        return self.store.create_array(self.group, name, shape=shape, chunks=chunks, dtype=dtype, dims=dims,
                                       attrs=attrs)

    def store_arrays(self, sources, targets, *, extra=()):
        """Compute dask arrays into zarr arrays (dask chunks cover whole zarr chunks: no locks).

        `extra` lazy values are computed in the same pass (e.g. checks of the data being
        copied) and returned.
        """
        import dask

        with _progress(self.progress):
            stored = da.store(sources, targets, lock=False, compute=False)
            return dask.compute(stored, *extra)[1:]


def _progress(enabled):
    if not enabled:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0, out=sys.stderr)


class Runner:
    """Runs stages on one store, recording what ran and what was up to date.

    Parameters
    ----------
    store : Store
        A writable store (the caller holds its :class:`~tomopipe.pipeline.store.StoreLock`).
    log : callable, optional
        Receives one line per event; every stage that runs logs ``[<stage>] …`` as it starts.
    progress : bool
        Show dask progress bars on stderr.
    """

    def __init__(self, store, *, log=None, progress=False):
        self.store = store
        self.log = log or (lambda msg: None)
        self.progress = progress
        self.ran: list = []
        self.skipped: list = []
        self.seconds: dict = {}

    def run(self, stage: Stage) -> StageRef:
        """Run `stage` unless its result is complete with the same fingerprint."""
        ref = StageRef(self.store.path, stage.name, stage.fingerprint)
        if self.store.is_complete(stage.name, stage.fingerprint):
            self.skipped.append(stage.name)
            return ref
        self.log(f"[{stage.name}] {stage.describe}".rstrip())
        started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        t0 = time.perf_counter()
        group = self.store.begin(stage.name)
        writer = StageWriter(self.store, group, progress=self.progress, log=self.log)
        try:
            attrs = stage.write(writer) or {}
        except TomopipeError:
            self.store.discard_partial(stage.name)  # bad input: leave nothing behind
            raise
        seconds = round(time.perf_counter() - t0, 3)
        self.store.commit(stage.name, group, fp=stage.fingerprint, parameters=stage.parameters,
                          inputs=stage.inputs, attrs=attrs, started=started, seconds=seconds)
        self.ran.append(stage.name)
        self.seconds[stage.name] = seconds
        return ref
