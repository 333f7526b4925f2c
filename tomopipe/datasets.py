"""Sample data: a local copy where one exists (checked by sha256), else downloaded with pooch.

Names are used in workflows as ``input.path: sample:NAME``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import InputFileError

__all__ = ["REGISTRY", "fetch", "resolve_input"]

#: name -> (download address, sha256)
REGISTRY = {
    "tooth.h5": (
        "https://raw.githubusercontent.com/tomopy/tomopy/master/source/tomopy/data/tooth.h5",
        "ab1d9bd073b7fb1beae4defa991c2a2626605c5cf1f4be0d0203656bc47b6489",
    ),
}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _local_dirs(base_dir=None):
    dirs = []
    if os.environ.get("TOMOPIPE_DATA"):
        dirs.append(Path(os.environ["TOMOPIPE_DATA"]))
    for start in filter(None, [base_dir, Path.cwd(), Path(__file__).resolve().parents[1]]):
        start = Path(start).resolve()
        for parent in [start, *start.parents][:4]:
            dirs.append(parent / "shared" / "data")
            dirs.append(parent / "sample_data")
    return dirs


def fetch(name, *, base_dir=None):
    """Path of sample dataset `name`, from a local copy or downloaded (and cached) by pooch.

    Local copies are looked for in ``$TOMOPIPE_DATA``, then ``shared/data`` and
    ``sample_data`` next to the current folder, the workflow's folder and their parents;
    each is used only if its sha256 matches the registry.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`, e.g. ``"tooth.h5"``.
    base_dir : path-like, optional
        Extra folder to search from (the workflow's).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputFileError
        Unknown name, or no local copy and the download failed.
    """
    if name not in REGISTRY:
        raise InputFileError(f"sample:{name}: unknown sample dataset; known: {', '.join(REGISTRY)}")
    url, sha = REGISTRY[name]
    for d in _local_dirs(base_dir):
        p = d / name
        if p.is_file() and _sha256(p) == sha:
            return p
    import pooch

    try:
        return Path(pooch.retrieve(url, known_hash=f"sha256:{sha}", fname=name,
                                   path=pooch.os_cache("tomopipe"), progressbar=False))
    except Exception as exc:  # network errors come in many classes
        raise InputFileError(f"sample:{name}: no local copy and download from {url} failed ({exc})") from exc


def resolve_input(path, *, base_dir="."):
    """Resolve a workflow's ``input.path``: ``sample:NAME`` or a path relative to `base_dir`."""
    if str(path).startswith("sample:"):
        return fetch(str(path)[len("sample:"):], base_dir=base_dir)
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(base_dir) / p
