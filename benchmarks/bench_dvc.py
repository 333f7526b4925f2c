"""Speed and bias of tomopipe's local DVC (`dvc`) on a speckle pair with a known shift.

125 nodes (5 × 5 × 5) with 17³-voxel subsets on a 96³ speckle volume (Gaussian-smoothed
random field, σ = 1.5 voxels, periodic) and its copy translated by a sub-voxel shift through
a Fourier phase ramp (exact ground truth). Translation-only subsets, cubic (order 3) and
trilinear (order 1) B-splines, with the default integer ZNCC search (±8 voxels) and without
it (Gauss–Newton from u = 0, as a local DIC code started from a guess does); dask's threaded
scheduler on all cores and the synchronous one. One warm-up run, then `--repeat` timed runs.

    python benchmarks/bench_dvc.py [--repeat 5] [--write]
"""

from __future__ import annotations

from _results import write_section
import argparse
import datetime as dt
import os
import platform
import statistics
import time

import numpy as np

SHIFT = np.array([0.4, -0.3, 0.25])


def _pair(n=96, sigma=1.5, seed=0):
    rng = np.random.default_rng(seed)
    spec = np.fft.fftn(rng.normal(size=(n, n, n)))
    k = np.fft.fftfreq(n) * 2 * np.pi
    kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
    spec *= np.exp(-(sigma**2) * (kz**2 + ky**2 + kx**2) / 2)
    ref = np.fft.ifftn(spec).real
    phase = np.exp(-1j * (kz * SHIFT[0] + ky * SHIFT[1] + kx * SHIFT[2]))
    deformed = np.fft.ifftn(spec * phase).real  # deformed(x + SHIFT) = ref(x)
    s = ref.std()
    return (ref / s).astype(np.float32), (deformed / s).astype(np.float32)


def main():
    from tomopipe.dvc._correlate import dvc
    from tomopipe.dvc._grid import node_grid

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()
    ref, deformed = _pair()
    grid = node_grid(ref.shape, 1.0, node_spacing_um=16, subset_size_um=17)
    assert grid.n_nodes == 125 and grid.subset_shape == (17, 17, 17)
    rows = []
    for order in (3, 1):
        for search in (8, 0):
            for sched in ("threads", "synchronous"):
                kw = dict(grid=grid, order=order, search_voxels=search, scheduler=sched)
                df = dvc(ref, deformed, 1.0, **kw)  # warm-up
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    df = dvc(ref, deformed, 1.0, **kw)
                    times.append(time.perf_counter() - t)
                ok = (df["status"] == "ok").to_numpy()
                err = df[["u_z", "u_y", "u_x"]].to_numpy()[ok] - SHIFT
                rows.append(dict(order=order, search=search, sched=sched, best=min(times),
                                 median=statistics.median(times), ok=int(ok.sum()),
                                 bias=np.abs(err.mean(0)).max(), rms=np.sqrt((err**2).mean()),
                                 iters=df["iterations"].mean()))
                print(rows[-1], flush=True)
    best3 = min(r["best"] for r in rows if r["order"] == 3 and r["search"] == 8)
    table = [
        "| interpolation | integer search | scheduler | best (s) | median (s) | ms / node | "
        "nodes ok | bias (voxel) | RMS error (voxel) | GN iterations |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        table.append(
            f"| {'cubic' if r['order'] == 3 else 'linear'} (order {r['order']}) | "
            f"{'±8 voxels (FFT ZNCC)' if r['search'] else 'none (GN from 0)'} | {r['sched']} | "
            f"{r['best']:.3f} | {r['median']:.3f} | {1e3 * r['median'] / 125:.1f} | "
            f"{r['ok']}/125 | {r['bias']:.4f} | {r['rms']:.4f} | {r['iters']:.1f} |")
    import dask
    import scipy

    text = "\n".join([
        "## DVC",
        "",
        "`tomopipe.dvc` local DVC (`dvc`, translation-only subsets): 125 nodes (5 × 5 × 5), "
        "17³-voxel subsets, on a 96³ float32 speckle pair (Gaussian-smoothed random field, "
        f"σ = 1.5 voxels) whose deformed copy is shifted by u = {tuple(SHIFT.tolist())} voxels "
        "with a Fourier phase ramp (exact ground truth). Bias = largest |mean error| over the "
        "three components; RMS over nodes and components. Times are whole `dvc` calls "
        f"(graph, reads, correlation, outlier test, DataFrame); one warm-up, then {args.repeat} "
        "timed runs.",
        "",
        *table,
        "",
        "Target (from the issue): spam's `ldic` on this kind of 2-core machine takes ~0.4 s "
        "for this job at ~0.01 voxel bias (linear interpolation) and ~5 s at ~0.001 voxel "
        "(cubic); the aim was at least 2× faster at the cubic accuracy, i.e. ≤ 2.5 s. "
        f"Measured: best cubic run with the ±8-voxel search {best3:.2f} s "
        f"({5.0 / best3:.0f}× faster than the quoted 5 s). (spam is not installed here; its "
        "figures are quoted from the issue, not re-measured.)",
        "",
        "Machine and versions:",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        f"- python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"dask {dask.__version__}",
        f"- load average (1, 5, 15 min) at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(other work on the machine inflates timings)",
        "",
        "Reproduce with `python benchmarks/bench_dvc.py --write`.",
        "",
    ])
    print(text)
    if args.write:
        write_section("## DVC", text.split("\n", 1)[1])


if __name__ == "__main__":
    main()
