"""Run a workflow: plan (check everything, write nothing) → take the store's lock → run the
stages through the one stage pattern → preview.

The stages and their chunking are in :mod:`.stages` (raw … volume), :mod:`.segment_stage` and
:mod:`.metrics_stage`; the checks in :mod:`.plan`; the lock and atomic stage groups in
:mod:`.store`; where dask computes in :mod:`.cluster`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import compute_context
from .plan import Plan, plan_workflow
from .stage import Runner
from .store import Store, StoreLock, as_json

__all__ = ["run_workflow", "RunResult", "execute_plan"]


@dataclass
class RunResult:
    """What a run produced: the store, the stages run or skipped, and the centre used."""

    store: Path
    ran: list
    skipped: list
    center: float | None
    preview: Path | None
    plan: Plan | None = None
    seconds: dict = field(default_factory=dict)


def run_workflow(wf, store=None, *, scheduler=None, cluster=None, progress=True, log=None, dry_run=False):
    """Run a workflow, skipping stages whose output is complete and up to date.

    Parameters
    ----------
    wf : Workflow
        The validated workflow (:func:`tomopipe.pipeline.load_workflow`).
    store : path-like, optional
        The zarr store (default ``output.store`` or ``<name>.zarr`` in the current folder).
    scheduler : str, optional
        Address of a dask.distributed scheduler (``tcp://host:8786``); default: dask's
        threaded scheduler on this machine.
    cluster : ClusterConfig, optional
        A cluster to start for this run (default: the workflow's ``cluster:`` section).
    progress : bool
        Show progress bars (on stderr).
    log : callable, optional
        Receives one line of text per event (default: print to stderr). Each stage that
        runs logs a line starting with ``[<stage>]`` when it starts.
    dry_run : bool
        Only plan: check everything and log what would run; write nothing.

    Returns
    -------
    RunResult

    Raises
    ------
    TomopipeError
        Bad input (file, key, flats, angles, workflow), found before anything is written
        (data defects found while copying the raw data leave the store as it was);
        :class:`~tomopipe.errors.StoreLockedError` when another run writes the store.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    plan = plan_workflow(wf, store, scheduler=scheduler, cluster=cluster)
    for line in plan.lines():
        log(line)
    if dry_run:
        return RunResult(store=plan.store, ran=[], skipped=[], center=None, preview=None, plan=plan)
    return execute_plan(plan, progress=progress, log=log)


def execute_plan(plan, *, progress=True, log=None):
    """Run the stages of a :class:`~.plan.Plan` on its store, holding the store's lock.

    Returns
    -------
    RunResult
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    with StoreLock(plan.store) as lock:
        if lock.stale:
            h = lock.stale
            log(f"took over the store from a run that died (pid {h.get('pid')} on {h.get('host')}, "
                f"started {h.get('started')})")
        st = Store(plan.store, create=True)
        for line in st.recover():
            log(f"store: {line} (left by an interrupted run)")
        with compute_context(scheduler=plan.scheduler, cluster=plan.cluster, log=log) as client:
            runner = Runner(st, log=log, progress=progress and client is None)
            for stage in plan.stages:
                runner.run(stage)
        if plan.checksums and dict(st.root.attrs.get("checksums", {})) != plan.checksums:
            st.root.attrs["checksums"] = as_json(plan.checksums)  # only after every stage succeeded
        center = None
        if st.info("volume"):
            center = st.group("volume").attrs.get("center")
        preview = None
        if plan.workflow.output.preview and st.info("volume"):
            from .preview import write_preview

            preview = write_preview(st, st.path.with_name(st.path.name + ".preview.png"))
    return RunResult(store=st.path, ran=runner.ran, skipped=runner.skipped, center=center, preview=preview,
                     plan=plan, seconds=runner.seconds)
