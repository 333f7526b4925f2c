"""Workflows and stages: YAML → validated config → zarr stages (see :mod:`.run`)."""

from .config import Workflow, load_workflow, workflow_from_dict
from .run import RunResult, run_workflow
from .store import Store

__all__ = ["Workflow", "load_workflow", "workflow_from_dict", "run_workflow", "RunResult", "Store"]
