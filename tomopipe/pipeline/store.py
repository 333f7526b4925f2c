"""The zarr (v3) store of a run: one group per stage, written atomically, one writer at a time.

A stage writes into ``<store>/<stage>.partial/``; only when every array is written are its
completion attributes set and the folder renamed to ``<store>/<stage>/`` (a previous result
is moved to ``<stage>.old`` first and deleted after the rename). So an interrupted stage is
never marked complete, and a failed run never destroys an earlier complete result. The store
must be on a file system where a folder rename is atomic (local, or POSIX network/parallel).

One process writes a store at a time: :class:`StoreLock` holds an OS advisory lock
(``filelock``) on ``<store>/.tomopipe/lock`` for the whole run and records its holder (host,
pid, start time) in ``<store>/.tomopipe/holder.json``; a second writer is refused at once with
:class:`~tomopipe.errors.StoreLockedError` naming the holder. A run that was killed leaves no
lock (the OS drops it with the process); its ``holder.json`` and any ``<stage>.old`` are
recognised and cleaned by the next run (:meth:`Store.recover`).

Group attributes of a complete stage (``attrs["tomopipe"]``)::

    {"stage": ..., "complete": true, "fingerprint": sha256 of (stage, parameters,
     upstream fingerprints, tomopipe version), "parameters": {...}, "inputs": {...},
     "version": "0.2.0", "started": ISO time, "finished": ISO time, "seconds": wall time}

Do not list the root group's members with zarr (``.tomopipe/`` and ``*.partial`` folders are
not zarr nodes); :meth:`Store.stages` lists the complete stages.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import zarr

from .. import __version__
from ..errors import InputFileError, StageError, StoreLockedError

__all__ = ["Store", "StoreLock", "fingerprint", "file_checksum", "open_label_array", "check_store_path"]

_PARTIAL = ".partial"
_OLD = ".old"
_META = ".tomopipe"


def _now():
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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


def as_json(obj):
    """`obj` converted to plain JSON types (NumPy scalars and arrays, tuples, paths)."""
    return json.loads(json.dumps(obj, default=_json_default))


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
    if not Path(path).exists():
        raise InputFileError(f"{name}: {path} does not exist")
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


def _writable(folder):
    """True if a file can be created in `folder` (tried, and removed at once)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_store_path(path, *, name="--out"):
    """Refuse a store path that cannot become a writable zarr store, leaving no trace.

    Raises
    ------
    InputFileError
        `path` is an existing file, lies below a file, is a folder that is not a zarr store
        and not empty, or no file can be created in it (or in its nearest existing folder).
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise InputFileError(f"{name}: {path} is a file, not a store folder")
        if not (path / "zarr.json").is_file() and any(p.name != _META for p in path.iterdir()):
            raise InputFileError(f"{name}: {path} is a folder that is not a tomopipe store (no zarr.json) "
                                 "and not empty; choose a new path")
        if not _writable(path):
            raise InputFileError(f"{name}: {path} is not writable")
        return
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputFileError(f"{name}: {path} lies below {parent}, which is a file")
    if not _writable(parent):
        raise InputFileError(f"{name}: cannot create {path}: {parent} is not writable")


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


class StoreLock:
    """One writer per store: an OS advisory lock held for the whole run.

    Parameters
    ----------
    path : path-like
        The store folder (created if missing; the lock lives in ``<path>/.tomopipe/``).

    Notes
    -----
    The lock is ``filelock.FileLock`` (``flock`` where the file system has it: released by
    the OS when the holder dies; a plain lock file elsewhere, then a dead holder on this host
    is recognised by its pid). Use as a context manager, or :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.folder = self.path / _META
        self._lock = None
        self.stale = None

    @property
    def holder_file(self):
        return self.folder / "holder.json"

    def holder(self):
        """The recorded holder ``{"host", "pid", "started", "command"}``, or None."""
        try:
            return json.loads(self.holder_file.read_text())
        except (OSError, ValueError):
            return None

    def _describe(self, h):
        if not h:
            return "another process (it has not yet recorded itself)"
        return f"pid {h.get('pid')} on {h.get('host')} since {h.get('started')}"

    def acquire(self):
        """Take the lock at once or raise.

        Returns
        -------
        dict or None
            The holder record of a run that died holding the store (its lock was taken
            over), else None.

        Raises
        ------
        StoreLockedError
            Another live process holds the store (the message names host, pid, start time).
        """
        import filelock

        self.folder.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.folder / "lock"), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            h = None
            for _ in range(20):  # the winner of a race records itself right after locking
                h = self.holder()
                if h:
                    break
                time.sleep(0.05)
            if h and h.get("host") == socket.gethostname() and not _pid_alive(h.get("pid")):
                # a plain lock file left by a killed run on this host: take it over
                (self.folder / "lock").unlink(missing_ok=True)
                lock.acquire()
            else:
                raise StoreLockedError(
                    f"{self.path}: the store is being written by {self._describe(h)}; wait for that run "
                    f"to finish (if it is dead, delete {self.folder / 'lock'})") from None
        self._lock = lock
        previous = self.holder()
        self.stale = previous if previous and previous.get("pid") != os.getpid() else None
        record = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now(),
                  "command": " ".join(sys.argv[:4])}
        tmp = self.holder_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.holder_file)
        return self.stale

    def release(self):
        """Drop the lock and its holder record."""
        if self._lock is None:
            return
        self.holder_file.unlink(missing_ok=True)
        self._lock.release()
        self._lock = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class Store:
    """A run's zarr store on a file system.

    Parameters
    ----------
    path : str or Path
        Folder of the store.
    create : bool
        Create the folder and root group when missing (writers do this while holding the
        :class:`StoreLock`); otherwise a missing store raises.

    Raises
    ------
    StageError
        The store does not exist and `create` is False.
    """

    def __init__(self, path, *, create=False):
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
            self.root = zarr.open_group(str(self.path), mode="a", zarr_format=3)
        elif (self.path / "zarr.json").is_file():
            self.root = zarr.open_group(str(self.path), mode="r", zarr_format=3)
        else:
            raise StageError(f"{self.path}: not a tomopipe store (no zarr.json)")

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
        """Names of the complete stages, in the order they finished."""
        found = []
        for p in self.path.iterdir():
            if p.is_dir() and not p.name.endswith((_PARTIAL, _OLD)) and not p.name.startswith("."):
                meta = self.info(p.name)
                if meta:
                    found.append((meta.get("finished", ""), p.stat().st_mtime, p.name))
        return [name for *_, name in sorted(found)]

    def versions(self, kind):
        """Complete versions ``vNNN`` under ``<store>/<kind>/``, in order.

        `kind` is ``"corrections"`` (reviewed labels saved by the napari plugin) or
        ``"segmentations"`` (re-segmentations with a fine-tuned model); versions are written
        once and never edited.

        Parameters
        ----------
        kind : {"corrections", "segmentations"}

        Returns
        -------
        list of str
            ``["v001", "v002", …]``; versions still being written (not complete) are left out.
        """
        folder = self.path / kind
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if p.is_dir() and p.name.startswith("v") and p.name[1:].isdigit() and self.info(f"{kind}/{p.name}"))

    def leftovers(self):
        """Folders an interrupted run left behind: ``<stage>.partial`` and ``<stage>.old``."""
        return sorted(p.name for p in self.path.iterdir() if p.is_dir() and p.name.endswith((_PARTIAL, _OLD)))

    def recover(self):
        """Clean what a killed run left (call while holding the lock).

        A ``<stage>.old`` whose ``<stage>`` is missing (a kill between the two renames of
        :meth:`commit`) is the last complete result: it is moved back. Any other ``.old`` is
        deleted. ``.partial`` folders are kept until their stage runs again (:meth:`begin`).

        Returns
        -------
        list of str
            What was done, one line per folder.
        """
        done = []
        for p in sorted(self.path.glob("*" + _OLD)):
            final = self.path / p.name[: -len(_OLD)]
            if final.exists():
                shutil.rmtree(p)
                done.append(f"removed {p.name}")
            else:
                os.replace(p, final)
                done.append(f"restored {final.name} from {p.name}")
        return done

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
            attributes=as_json(attrs or {}),
            overwrite=False,
        )

    def commit(self, stage, group, *, fp, parameters, inputs, attrs=None, started=None, seconds=None):
        """Mark the partial `stage` complete and move it into place atomically."""
        meta = {
            "stage": stage,
            "complete": True,
            "fingerprint": fp,
            "parameters": parameters,
            "inputs": inputs,
            "version": __version__,
            "started": started,
            "finished": _now(),
            "seconds": seconds,
        }
        group.attrs.update({**as_json(attrs or {}), "tomopipe": as_json(meta)})
        part = self.path / (stage + _PARTIAL)
        final = self.path / stage
        old = self.path / (stage + _OLD)
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.replace(final, old)
        os.replace(part, final)
        if old.exists():
            shutil.rmtree(old)

    def discard_partial(self, stage):
        """Delete ``<stage>.partial`` if it exists."""
        part = self.path / (stage + _PARTIAL)
        if part.exists():
            shutil.rmtree(part)
