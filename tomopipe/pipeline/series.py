"""An in-situ series end to end: every state's stages, DVC between states, then the report.

``tomopipe run series.yaml`` (a workflow with a ``series:`` section):

1. **plan** every state as a single-scan workflow (the shared sections + the state's input,
   raw scan or reconstructed volume) and the DVC and report stages — all checked before
   anything is written;
2. run each state's stages in its own store ``<folder>/<state>.zarr`` (resumable, locked);
3. ``dvc`` in each state's store against the reference state's volume, and ``dvc_previous``
   against the previous state's (when that is not the reference);
4. ``truth`` in a state's store when the state has ground truth (the same quantification of
   the truth labels, for the validation table only);
5. the ``report`` stage of ``<folder>/series.zarr``: tables and figures of every state and one
   self-contained ``report.html`` in ``<folder>/report/``.

Every stage goes through the one stage pattern, so re-running after a state was added computes
only that state, its DVC stages and the report.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, TomopipeWarning
from .plan import plan_workflow
from .stage import Runner
from .store import Store, StoreLock

__all__ = ["SeriesPlan", "SeriesResult", "plan_series", "run_series"]


@dataclass
class StatePlan:
    """One state of a series plan: its settings, its single-scan plan and its extra stages."""

    state: object
    plan: object
    extra: list = field(default_factory=list)  # dvc, dvc_previous, truth stages of this store

    @property
    def name(self):
        return self.state.name

    @property
    def store(self):
        return self.plan.store


@dataclass
class SeriesPlan:
    """What a series run will do (see :func:`plan_series`)."""

    workflow: object
    states: list
    report: object
    series_store: Path
    report_folder: Path
    warnings: list = field(default_factory=list)

    def lines(self):
        sw = self.workflow
        out = [f"series: {sw.name}, {len(self.states)} states, reference {sw.series.reference_name}, "
               f"folder {sw.folder}"]
        for sp in self.states:
            up = sp.plan.up_to_date
            todo = [s.name for s in sp.plan.stages + sp.extra if s.name not in up and not _complete(sp.store, s)]
            out.append(f"  {sp.name:<10} {sp.store.name}: " + (f"will run {', '.join(todo)}" if todo else "up to date"))
        done = _complete(self.series_store, self.report)
        out.append(f"  report     {self.report_folder}: {'up to date' if done else 'will run'}")
        out += [f"warning: {w}" for w in self.warnings]
        return out


@dataclass
class SeriesResult:
    """What a series run produced."""

    folder: Path
    stores: dict
    report: Path | None
    ran: dict
    plan: SeriesPlan | None = None


def _complete(store_path, stage):
    p = Path(store_path)
    return (p / "zarr.json").is_file() and Store(p).is_complete(stage.name, stage.fingerprint)


def plan_series(sw, *, scheduler=None, cluster=None):
    """Check a whole series workflow and lay out its stages, writing nothing.

    Parameters
    ----------
    sw : SeriesWorkflow
    scheduler : str, optional
    cluster : ClusterConfig, optional

    Returns
    -------
    SeriesPlan

    Raises
    ------
    TomopipeError
        Any bad input of any state (the message names the state), voxel sizes that differ
        between states (DVC needs one), a missing truth folder.
    """
    from .dvc_stage import dvc_stage
    from .report import report_stage, truth_stage

    warnings = []
    states = []
    for st in sw.series.states:
        wf = sw.state_workflow(st)
        try:
            plan = plan_workflow(wf, sw.state_store(st), scheduler=scheduler, cluster=cluster or sw.cluster,
                                 check_compute=not states)
        except Exception as exc:
            from ..errors import TomopipeError

            if isinstance(exc, TomopipeError):
                raise type(exc)(f"state {st.name}: {exc}") from None
            raise
        warnings += [f"state {st.name}: {w}" for w in plan.warnings]
        states.append(StatePlan(st, plan))

    # one voxel size for the whole series (DVC and comparable metrics)
    voxels = {sp.name: sp.plan.volume_voxel_um for sp in states}
    if any(v is None for v in voxels.values()):
        missing = [n for n, v in voxels.items() if v is None]
        raise ConfigError(f"series: states {missing} have no voxel size (set geometry.pixel_size or input.voxel_size)")
    ref_name = sw.series.reference_name
    v_ref = voxels[ref_name]
    differ = [n for n, v in voxels.items() if any(abs(a - b) > 1e-6 * b for a, b in zip(v, v_ref))]
    if differ:
        raise ConfigError(f"series: voxel sizes differ from the reference {ref_name}'s {list(v_ref)} µm in "
                          f"{differ}; DVC and the report compare states voxel by voxel")
    if len(set(v_ref)) != 1:
        raise ConfigError(f"series: the DVC needs isotropic voxels, the states have {list(v_ref)} µm")
    shapes = {sp.name: sp.plan.volume_shape for sp in states}
    if len(set(shapes.values())) > 1:
        raise ConfigError(f"series: the states' volumes differ in shape {shapes}; DVC needs one shape")

    by_name = {sp.name: sp for sp in states}
    ref = by_name[ref_name]
    ref_volume = ref.plan.volume_ref
    for i, sp in enumerate(states):
        cur = sp.plan.volume_ref
        if sp.name != ref_name:
            sp.extra.append(dvc_stage(sw.dvc, ref_volume, cur, voxel_size_um=v_ref[0], name="dvc",
                                      quiver=sp.store.with_name(sp.store.name + ".dvc.png"),
                                      title=f"{sp.name} vs {ref_name}"))
        if i > 0 and states[i - 1].name != ref_name:
            prev = states[i - 1]
            sp.extra.append(dvc_stage(sw.dvc, prev.plan.volume_ref, cur, voxel_size_um=v_ref[0], name="dvc_previous",
                                      title=f"{sp.name} vs {prev.name}"))
        if sp.state.truth is not None:
            truth = sw.resolve(sp.state.truth)
            if not truth.exists():
                raise ConfigError(f"state {sp.name}: truth: {truth} does not exist")
            sp.extra.append(truth_stage(sw.quantify, truth, voxel_size_um=v_ref))
    folder = sw.folder
    report_folder = folder / sw.report.folder
    series_store = folder / "series.zarr"
    report = report_stage(sw, states, report_folder=report_folder)
    return SeriesPlan(workflow=sw, states=states, report=report, series_store=series_store,
                      report_folder=report_folder, warnings=warnings)


def run_series(sw, *, scheduler=None, cluster=None, progress=True, log=None, dry_run=False):
    """Run a series workflow (see the module docstring).

    Parameters
    ----------
    sw : SeriesWorkflow
    scheduler, cluster
        As for :func:`tomopipe.pipeline.run_workflow`.
    progress : bool
    log : callable, optional
    dry_run : bool
        Only plan and log what would run.

    Returns
    -------
    SeriesResult
    """
    import warnings as _w

    from .run import execute_plan

    log = log or (lambda msg: print(msg, file=sys.stderr))
    plan = plan_series(sw, scheduler=scheduler, cluster=cluster)
    for line in plan.lines():
        log(line)
    if dry_run:
        return SeriesResult(folder=sw.folder, stores={sp.name: sp.store for sp in plan.states}, report=None,
                            ran={}, plan=plan)
    ran = {}
    for sp in plan.states:
        log(f"== state {sp.name} ==")
        res = execute_plan(sp.plan, progress=progress, log=log)
        ran[sp.name] = list(res.ran)
    for sp in plan.states:
        if not sp.extra:
            continue
        with StoreLock(sp.store):
            runner = Runner(Store(sp.store, create=True), log=log, progress=False)
            with _w.catch_warnings(record=True) as caught:
                _w.simplefilter("always", TomopipeWarning)
                for stage in sp.extra:
                    runner.run(stage)
            for w in caught:
                log(f"warning: state {sp.name}: {w.message}")
        ran[sp.name] += runner.ran
    with StoreLock(plan.series_store):
        runner = Runner(Store(plan.series_store, create=True), log=log, progress=False)
        runner.run(plan.report)
        ran["series"] = list(runner.ran)
    report = plan.report_folder / "report.html"
    log(f"report: {report}")
    return SeriesResult(folder=sw.folder, stores={sp.name: sp.store for sp in plan.states}, report=report,
                        ran=ran, plan=plan)

