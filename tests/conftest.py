import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("TOMOPIPE_SHARED")
    if env:
        return Path(env)
    return REPO.parent / "shared"


SHARED = _shared_dir()
CONFORMANCE = SHARED / "conformance" / "tomopy"
TOOTH = SHARED / "data" / "tooth.h5"


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED} (set TOMOPIPE_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def tomopy_ref():
    """Load a tomopy reference array by stem name: ``tomopy_ref('normalize')``."""

    def load(name):
        return np.load(CONFORMANCE / f"{name}.npy")

    return load


@pytest.fixture(scope="session")
def tooth_path():
    if not TOOTH.is_file():
        pytest.fail(f"tooth.h5 not found at {TOOTH} (set TOMOPIPE_SHARED)")
    return TOOTH
