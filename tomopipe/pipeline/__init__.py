"""Workflows and stages: YAML → validated config → a plan checked whole → zarr stages.

- :mod:`.config`: the workflow file (pydantic; quantities parsed once into fixed units).
- :mod:`.plan`: :func:`plan_workflow` checks every input, rule and path and lays out the
  stages, writing nothing.
- :mod:`.stage`: the one stage pattern (fingerprint → skip if complete → partial → commit).
- :mod:`.stages`, :mod:`.segment_stage`, :mod:`.metrics_stage`, :mod:`.dvc_stage`: the stages.
- :mod:`.store`: the zarr store, its lock (one writer at a time) and atomic stage groups.
- :mod:`.cluster`: threads, a dask scheduler, or a dask-jobqueue / local cluster.
- :mod:`.run`: :func:`run_workflow`.
- :mod:`.series`, :mod:`.report`: an in-situ series (every state, DVC between states, the
  report with its validation against ground truth).
"""

from .config import SeriesWorkflow, Workflow, load_workflow, workflow_from_dict
from .plan import Plan, plan_workflow
from .run import RunResult, run_workflow
from .series import SeriesPlan, SeriesResult, plan_series, run_series
from .stage import Runner, Stage, StageRef
from .store import Store, StoreLock

__all__ = ["Workflow", "SeriesWorkflow", "run_series", "plan_series", "SeriesPlan", "SeriesResult", "load_workflow", "workflow_from_dict", "run_workflow", "RunResult", "Store", "StoreLock",
           "plan_workflow", "Plan", "Stage", "StageRef", "Runner"]
