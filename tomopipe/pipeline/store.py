"""The zarr (v3) store of a run: one group per stage, written atomically.

A stage writes into ``<store>/<stage>.partial/``; only when every array is written are its
completion attributes set and the folder renamed to ``<store>/<stage>/`` (a previous result
is moved aside first and deleted after the rename). So an interrupted stage is never marked
complete, and a failed run never destroys an earlier complete result. The store must be on a
local (or POSIX network) file system, where a folder rename is atomic.

Group attributes of a complete stage (``attrs["tomopipe"]``)::

    {"stage": ..., "complete": true, "fingerprint": sha256 of (stage, parameters,
     upstream fingerprints, tomopipe version), "parameters": {...}, "inputs": {...},
     "version": "0.1.0", "finished": ISO time}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from .. import __version__
from ..errors import StageError

__all__ = ["Store", "fingerprint", "file_checksum"]

_PARTIAL = ".partial"


def fingerprint(stage, parameters, inputs):
    """sha256 (hex) identifying a stage result: its name, parameters, inputs and version."""
    blob = json.dumps(
        {"stage": stage, "parameters": parameters, "inputs": inputs, "version": __version__},
        sort_keys=True,
        default=_json_default,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (np.ndarray, tuple)):
        return list(np.asarray(o).tolist())
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def open_label_array(path, *, name):
    """Open a zarr array, or the ``labels`` array of a zarr group, read-only.

    Parameters
    ----------
    path : path-like
    name : str
        The workflow key or option that gave `path` (for the error message).

    Raises
    ------
    InputFileError
        If no zarr array or group is found at `path`.
    """
    from ..errors import InputFileError

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputFileError(f"{name}: cannot open zarr at {path} ({exc})") from None
    if isinstance(node, zarr.Group):
        if "labels" not in node:
            raise InputFileError(f"{name}: the zarr group {path} holds no 'labels' array")
        return node["labels"]
    return node


def file_checksum(paths, *, cache=None):
    """sha256 over the bytes of one or more input files (streamed, 8 MiB at a time).

    Parameters
    ----------
    paths : sequence of path-like
        Files, hashed in the given order.
    cache : dict, optional
        ``{path: [size, mtime_ns, sha256]}`` from an earlier run; files whose size and mtime
        did not change are not read again. Updated in place.

    Returns
    -------
    str
        Hex digest (of the per-file digests when several files are given).
    """
    digests = []
    for p in paths:
        p = Path(p)
        st = p.stat()
        key = str(p.resolve())
        hit = None if cache is None else cache.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            digests.append(hit[2])
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(8 << 20), b""):
                h.update(block)
        digests.append(h.hexdigest())
        if cache is not None:
            cache[key] = [st.st_size, st.st_mtime_ns, digests[-1]]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


class Store:
    """A run's zarr store on the local file system.

    Parameters
    ----------
    path : str or Path
        Folder of the store (created if missing).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.root = zarr.open_group(str(self.path), mode="a", zarr_format=3)

    # --- state ----------------------------------------------------------------------------
    def info(self, stage):
        """The ``tomopipe`` attributes of a complete stage, or None."""
        p = self.path / stage
        if not (p / "zarr.json").is_file():
            return None
        try:
            g = zarr.open_group(str(p), mode="r", zarr_format=3)
        except Exception:  # unreadable metadata: treat as absent, it will be redone
            return None
        meta = dict(g.attrs).get("tomopipe")
        return meta if meta and meta.get("complete") else None

    def is_complete(self, stage, fp):
        """True if `stage` is complete with fingerprint `fp`."""
        meta = self.info(stage)
        return bool(meta) and meta.get("fingerprint") == fp

    def group(self, stage):
        """Open a complete stage's group read-only."""
        if self.info(stage) is None:
            raise StageError(f"{self.path}: stage '{stage}' is not complete")
        return zarr.open_group(str(self.path / stage), mode="r", zarr_format=3)

    def stages(self):
        """Names of the complete stages, in creation order."""
        found = []
        for p in sorted(self.path.iterdir(), key=lambda q: q.stat().st_mtime):
            if p.is_dir() and not p.name.endswith(_PARTIAL) and self.info(p.name):
                found.append(p.name)
        return found

    # --- writing ---------------------------------------------------------------------------
    def begin(self, stage):
        """Start (or restart) a stage: an empty ``<stage>.partial`` group, returned open."""
        part = self.path / (stage + _PARTIAL)
        if part.exists():
            shutil.rmtree(part)
        return zarr.open_group(str(part), mode="w", zarr_format=3)

    def create_array(self, group, name, *, shape, chunks, dtype, dims, attrs=None):
        """Create an array in a partial stage group, with dimension names and attributes."""
        return group.create_array(
            name,
            shape=tuple(int(s) for s in shape),
            chunks=tuple(int(c) for c in chunks),
            dtype=dtype,
            dimension_names=tuple(dims),
            attributes=json.loads(json.dumps(attrs or {}, default=_json_default)),
            overwrite=False,
        )

    def commit(self, stage, group, *, fp, parameters, inputs, attrs=None):
        """Mark the partial `stage` complete and move it into place atomically."""
        meta = {
            "stage": stage,
            "complete": True,
            "fingerprint": fp,
            "parameters": parameters,
            "inputs": inputs,
            "version": __version__,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        extra = json.loads(json.dumps(attrs or {}, default=_json_default))
        group.attrs.update({**extra, "tomopipe": json.loads(json.dumps(meta, default=_json_default))})
        part = self.path / (stage + _PARTIAL)
        final = self.path / stage
        old = self.path / (stage + ".old")
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(part, final)
        if old.exists():
            shutil.rmtree(old)

    def discard_partial(self, stage):
        part = self.path / (stage + _PARTIAL)
        if part.exists():
            shutil.rmtree(part)
