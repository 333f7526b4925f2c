"""One writer per store: concurrent runs, a killed run's lock, folders a kill leaves behind."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tomopipe.cli import app
from tomopipe.errors import StoreLockedError
from tomopipe.pipeline import Store, StoreLock, load_workflow, run_workflow

runner = CliRunner()

# a run whose raw stage takes a moment, so that two runs started together overlap
_SLOW_RUN = (
    "import sys, time, tomopipe.pipeline.stages as s\n"
    "real = s.raw_stage\n"
    "def slow(*a, **k):\n"
    "    st = real(*a, **k)\n"
    "    w = st.write\n"
    "    def write(wr):\n        time.sleep(0.5)\n        return w(wr)\n"
    "    st.write = write\n    return st\n"
    "s.raw_stage = slow\n"
    "import tomopipe.pipeline.plan as p\np.raw_stage = slow\n"
    "from tomopipe.cli import app\n"
    "app(sys.argv[1:])\n"
)


def _volume(store):
    return np.asarray(zarr.open_group(str(store / "volume"), mode="r")["0"][:])


def _tree(store):
    out = {}
    for root, _, files in os.walk(store):
        for f in files:
            p = os.path.join(root, f)
            if "/.tomopipe" in p:
                continue
            out[os.path.relpath(p, store)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def concurrent_trials(tmp_path, wf, n_trials):
    """Start two ``tomopipe run`` on one store together, `n_trials` times; check each trial.

    Returns the list of (trial, exit codes, seconds). Used by this test (a few trials) and by
    ``benchmarks/bench_concurrent.py`` (20 trials).
    """
    import time

    ref = run_workflow(load_workflow(wf), tmp_path / "ref.zarr", progress=False, log=lambda m: None)
    clean = _volume(ref.store)
    stages = ["raw", "normalized", "sinograms", "volume"]
    results = []
    for trial in range(n_trials):
        t0 = time.perf_counter()
        store = tmp_path / f"s{trial}.zarr"
        argv = [sys.executable, "-c", _SLOW_RUN, "run", str(wf), "--out", str(store), "--quiet"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], (trial, codes, outs)
        loser = outs[[p.returncode for p in procs].index(2)]
        errors = [ln for ln in loser.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "being written by pid" in errors[0] and "since" in errors[0], loser
        assert "Traceback" not in loser
        st = Store(store)
        assert st.stages() == stages and st.leftovers() == [], trial
        np.testing.assert_array_equal(_volume(store), clean)
        # a third run afterwards finds everything up to date
        res = runner.invoke(app, ["run", str(wf), "--out", str(store), "--quiet"])
        assert res.exit_code == 0 and "ran: -" in res.output, res.output
        results.append((trial, codes, time.perf_counter() - t0))
    return results


def test_two_runs_on_one_store(tmp_path, write_workflow, scan_file):
    """The second run always exits 2 with the lock message; the store equals a clean run's.
    (20 trials: benchmarks/bench_concurrent.py, results in RESULTS.md.)"""
    wf = write_workflow(tmp_path / "wf.yaml", scan_file, output={"preview": False})
    assert len(concurrent_trials(tmp_path, wf, 3)) == 3


def test_lock_in_process(tmp_path):
    with StoreLock(tmp_path / "a.zarr") as lock:
        assert lock.holder()["pid"] == os.getpid()
        # another holder in this process is refused at once, naming the holder
        with pytest.raises(StoreLockedError, match=rf"pid {os.getpid()} on .* since"):
            StoreLock(tmp_path / "a.zarr").acquire()
    assert StoreLock(tmp_path / "a.zarr").holder() is None  # released: no record left


def test_killed_holder_is_taken_over(tmp_path, write_workflow, scan_file):
    store = tmp_path / "k.zarr"
    code = ("import os, signal, sys\nfrom tomopipe.pipeline import StoreLock\n"
            f"StoreLock({str(store)!r}).acquire()\nos.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code])
    assert p.returncode == -9
    dead = StoreLock(store).holder()
    assert dead is not None  # the record of the dead run is still there
    wf = write_workflow(tmp_path / "wf.yaml", scan_file)
    lines = []
    run_workflow(load_workflow(wf), store, progress=False, log=lines.append)
    assert any("took over the store from a run that died" in ln and str(dead["pid"]) in ln for ln in lines), lines


def test_old_folder_left_by_a_kill_is_recovered(tmp_path, write_workflow, scan_file):
    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file))
    store = tmp_path / "o.zarr"
    run_workflow(wf, store, progress=False, log=lambda m: None)
    before = _volume(store)
    # a kill between the two renames of a commit leaves <stage>.old and no <stage>
    os.replace(store / "volume", store / "volume.old")
    (store / "sinograms.old").mkdir()  # and one next to a complete stage
    res = runner.invoke(app, ["info", str(store)])
    assert "sinograms.old" in res.output and "volume.old" in res.output
    lines = []
    res = run_workflow(wf, store, progress=False, log=lines.append)
    assert res.ran == [] and "volume" in res.skipped  # restored, not recomputed
    assert any("restored volume from volume.old" in ln for ln in lines)
    assert not (store / "sinograms.old").exists() and Store(store).leftovers() == []
    np.testing.assert_array_equal(_volume(store), before)
