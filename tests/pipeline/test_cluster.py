"""Beyond one machine: a cluster section (dask-jobqueue / local processes), a scheduler address,
and a worker lost in the middle of a run."""

import os
import signal
import threading

import numpy as np
import pytest
import zarr

from tomopipe.errors import ConfigError
from tomopipe.pipeline import load_workflow, plan_workflow, run_workflow
from tomopipe.pipeline.cluster import make_cluster
from tomopipe.pipeline.config import ClusterConfig


def _volume(store):
    return np.asarray(zarr.open_group(str(store / "volume"), mode="r")["0"][:])


def test_slurm_job_script_without_slurm():
    """dask-jobqueue's own job_script(): what each SLURM job would run (no SLURM needed)."""
    cfg = ClusterConfig.model_validate({
        "kind": "slurm", "jobs": 4, "cores": 16, "processes": 2, "memory": "64 GiB", "walltime": "02:30:00",
        "queue": "tomo", "account": "bl-2026", "interface": "lo",
        "job_extra_directives": ["--exclusive"], "job_script_prologue": ["source /opt/tomopipe/bin/activate"]})
    cluster = make_cluster(cfg)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    assert lines[0].startswith("#!")
    for directive in ("#SBATCH -p tomo", "#SBATCH -A bl-2026", "#SBATCH --cpus-per-task=16",
                      "#SBATCH -t 02:30:00", "#SBATCH --exclusive", "#SBATCH --mem=64G"):
        assert directive in lines, (directive, script)
    assert "source /opt/tomopipe/bin/activate" in lines
    worker = lines[-1]
    assert "distributed.cli.dask_worker" in worker and "--nworkers 2" in worker and "--interface lo" in worker
    assert "tcp://127.0.0.1:" in worker  # the scheduler listened on the interface named (here loopback)


def test_pbs_job_script():
    cfg = ClusterConfig.model_validate({"kind": "pbs", "cores": 8, "memory": "32 GiB", "walltime": "01:00:00",
                                        "queue": "workq", "interface": "lo"})
    cluster = make_cluster(cfg)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#PBS -q workq" in script and "#PBS -l walltime=01:00:00" in script and "ncpus=8" in script


def test_batch_cluster_needs_interface_and_memory():
    with pytest.raises(ConfigError, match="cluster.interface"):
        make_cluster(ClusterConfig.model_validate({"kind": "slurm", "memory": "8 GiB"}))
    with pytest.raises(ConfigError, match="cluster.memory"):
        make_cluster(ClusterConfig.model_validate({"kind": "slurm", "interface": "lo"}))


def test_plan_says_the_store_must_be_shared(tmp_path, write_workflow, scan_file):
    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file))
    cl = ClusterConfig.model_validate({"kind": "slurm", "interface": "ib0", "memory": "8 GiB", "jobs": 3})
    plan = plan_workflow(wf, tmp_path / "s.zarr", cluster=cl)
    assert any("must be on a file system every slurm node shares" in w for w in plan.warnings)
    assert any("slurm cluster, 3 job(s)" in f for f in plan.facts)
    assert not (tmp_path / "s.zarr").exists()


def test_local_cluster_through_the_cluster_path_equals_threads(tmp_path, write_workflow, scan_file):
    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file))
    ref = run_workflow(wf, tmp_path / "threads.zarr", progress=False, log=lambda m: None)
    lines = []
    cl = ClusterConfig.model_validate({"kind": "local", "jobs": 2, "cores": 1})
    res = run_workflow(wf, tmp_path / "cluster.zarr", cluster=cl, progress=False, log=lines.append)
    assert any("2 local worker process(es)" in ln for ln in lines)
    np.testing.assert_array_equal(_volume(res.store), _volume(ref.store))


def test_worker_killed_mid_run(tmp_path, write_workflow, scan_file):
    """A dask worker process dies while the volume is reconstructed: the scheduler reruns its
    tasks elsewhere and the result equals the threaded run."""
    from distributed import Client, LocalCluster

    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file, recon={"rows_per_chunk": 1}))
    ref = run_workflow(wf, tmp_path / "threads.zarr", progress=False, log=lambda m: None)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed, armed = [], []

        def kill():
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

        def log(line):
            # several "[volume]" lines may come before the timer fires: arm it once
            if line.startswith("[volume]") and not armed:
                armed.append(True)
                timer = threading.Timer(0.05, kill)
                timer.start()
                timers.append(timer)

        timers = []

        res = run_workflow(wf, tmp_path / "dist.zarr", scheduler=cluster.scheduler_address, progress=False, log=log)
        for timer in timers:
            timer.join()
    assert killed, "no worker was killed"
    assert "volume" in res.ran
    np.testing.assert_array_equal(_volume(res.store), _volume(ref.store))
