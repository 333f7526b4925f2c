"""Where a run computes: dask's threads, a running dask.distributed scheduler, or a cluster the
run starts itself (SLURM / PBS batch jobs through dask-jobqueue, or local processes).

Every network endpoint tomopipe opens binds to loopback unless the workflow names an
interface (``cluster.interface``); the dashboard always listens on loopback only, on a free
port.
"""

from __future__ import annotations

import contextlib
import re

from ..errors import ConfigError, SchedulerError

__all__ = ["compute_context", "make_cluster", "check_scheduler", "check_cluster"]

_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+(:\d+)?$")
_LOOPBACK_DASHBOARD = "127.0.0.1:0"


def check_scheduler(address, *, timeout=5.0):
    """Connect to a dask.distributed scheduler and disconnect (a plan-time reachability check).

    Raises
    ------
    SchedulerError
        A malformed address, or no scheduler answering within `timeout` seconds.
    """
    if not _ADDRESS.match(str(address)):
        raise SchedulerError(f"--scheduler: {address!r} is not a scheduler address (e.g. tcp://host:8786)")
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"--scheduler: no dask scheduler answers at {address} within {timeout:g} s "
                             f"({type(exc).__name__})") from None
    client.close()


def check_cluster(cfg):
    """Rules a ``cluster:`` section must meet before anything starts.

    Raises
    ------
    ConfigError
        ``slurm``/``pbs`` without ``interface`` (workers on other nodes cannot reach a
        scheduler listening on loopback) or without ``memory``.
    """
    if cfg.kind in ("slurm", "pbs"):
        if not cfg.interface:
            raise ConfigError(f"cluster.interface: {cfg.kind} workers run on other nodes and must reach the "
                              "scheduler; name the network interface to use (e.g. ib0 or eth0) — without it "
                              "the scheduler listens on loopback only")
        if cfg.memory is None:
            raise ConfigError(f"cluster.memory: a {cfg.kind} job needs its memory, e.g. '64 GiB'")


def make_cluster(cfg):
    """Create (not yet scale) the cluster a ``cluster:`` section describes.

    Parameters
    ----------
    cfg : tomopipe.pipeline.config.ClusterConfig

    Returns
    -------
    dask_jobqueue.SLURMCluster, dask_jobqueue.PBSCluster or distributed.LocalCluster
        For batch clusters ``cluster.job_script()`` is the script each job runs.

    Raises
    ------
    ConfigError
        See :func:`check_cluster`.
    """
    check_cluster(cfg)
    if cfg.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(n_workers=cfg.jobs, threads_per_worker=cfg.cores, processes=True, host="127.0.0.1",
                            dashboard_address=_LOOPBACK_DASHBOARD,
                            **({"local_directory": cfg.local_directory} if cfg.local_directory else {}))
    import dask_jobqueue

    cls = dask_jobqueue.SLURMCluster if cfg.kind == "slurm" else dask_jobqueue.PBSCluster
    kw = dict(cores=cfg.cores, processes=cfg.processes, memory=f"{cfg.memory_bytes() / 2**30:.6g}GiB",
              walltime=cfg.walltime, interface=cfg.interface, job_extra_directives=list(cfg.job_extra_directives),
              job_script_prologue=list(cfg.job_script_prologue),
              scheduler_options={"dashboard_address": _LOOPBACK_DASHBOARD})
    if cfg.queue:
        kw["queue"] = cfg.queue
    if cfg.account:
        kw["account"] = cfg.account
    if cfg.local_directory:
        kw["local_directory"] = cfg.local_directory
    return cls(**kw)


@contextlib.contextmanager
def compute_context(*, scheduler=None, cluster=None, log=None):
    """Run the enclosed dask computations on threads, a scheduler, or a started cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running dask.distributed scheduler.
    cluster : ClusterConfig, optional
        A cluster to start (and stop on exit); its jobs are requested at once.
    log : callable, optional

    Yields
    ------
    distributed.Client or None
        None for dask's threaded scheduler on this machine.

    Raises
    ------
    SchedulerError
        The scheduler cannot be reached, or the cluster cannot be started.
    """
    import dask

    log = log or (lambda m: None)
    if scheduler is None and cluster is None:
        with dask.config.set(scheduler="threads"):
            yield None
        return
    from distributed import Client

    if cluster is not None:
        try:
            c = make_cluster(cluster)
        except ConfigError:
            raise
        except Exception as exc:  # batch systems fail in many ways (no sbatch, bad queue, …)
            raise SchedulerError(f"cluster: cannot start the {cluster.kind} cluster ({exc})") from None
        with c, Client(c) as client:
            if cluster.kind != "local":
                c.scale(jobs=cluster.jobs)
                log(f"cluster: {cluster.jobs} {cluster.kind} job(s) requested; scheduler {c.scheduler_address}")
            else:
                log(f"cluster: {cluster.jobs} local worker process(es)")
            yield client
        return
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"--scheduler: cannot connect to {scheduler} ({type(exc).__name__})") from None
    log(f"connected to dask scheduler {scheduler}")
    try:
        yield client
    finally:
        client.close()
