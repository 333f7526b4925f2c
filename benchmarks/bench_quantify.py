"""Time and peak RAM of tomopipe.quantify on a 1024³ label volume (zarr, out of core).

The volume is the simulated D0.7V state of a 256³ CuS cell tiled 4 × 4 × 4 into a zarr array
(chunks 128 × 256 × 256), so it has cracks, inclusions and pores throughout. Each measurement
runs in a subprocess whose peak RSS is sampled (psutil, 0.05 s).

    python benchmarks/bench_quantify.py [--size 1024] [--write]
"""

from __future__ import annotations

from _results import write_section
import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import zarr


CHILD = r"""
import json, sys, time, zarr
from tomopipe.quantify import quantify_labels, local_thickness, thickness_distribution
import dask.array as da
arr = zarr.open_array(sys.argv[1], mode="r")
what = sys.argv[2]
t = time.perf_counter()
if what == "metrics":
    m = quantify_labels(arr, 0.88, pore_sizes=False)
    out = {k: v for k, v in m.summary.items()}
else:
    pore = da.from_zarr(arr) == 0
    lt = local_thickness(pore, 0.88, max_diameter_um=float(sys.argv[3]))
    dist = thickness_distribution(lt, pore, voxel_size_um=0.88)
    out = dict(dist.attrs["summary"])
out["seconds"] = time.perf_counter() - t
print(json.dumps(out, default=float))
"""


def _tiled(path, size, tile=256):
    from tomopipe.simulate import CellParams, generate_cell, insitu_sequence

    cell = generate_cell(CellParams(shape=(tile,) * 3, seed=0))
    lab = {s.name: s for s in insitu_sequence(cell, seed=0)}["D0.7V"].labels
    arr = zarr.create_array(str(path), shape=(size,) * 3, chunks=(128, 256, 256), dtype="uint8",
                            dimension_names=("z", "y", "x"), overwrite=True)
    n = size // tile
    for i in range(n):
        for j in range(n):
            for k in range(n):
                arr[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile, k * tile:(k + 1) * tile] = lab
    return arr


def _run(path, what, *extra):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), what, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(err[-2000:])
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_rss_mib"] = peak / 2**20
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--lt-size", type=int, default=256)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _tiled(Path(tmp) / "big.zarr", args.size)
        small = _tiled(Path(tmp) / "small.zarr", args.lt_size)
        m = _run(Path(tmp) / "big.zarr", "metrics")
        lt = _run(Path(tmp) / "small.zarr", "lt", "20")
    del small
    rows = [
        f"| per-layer stats, cracks, inclusions (`quantify_labels`, no pore sizes) | {args.size}³ | "
        f"{args.size**3 / 2**20:.0f} | {m['seconds']:.0f} | {m['peak_rss_mib']:.0f} |",
        f"| local thickness + distribution (max diameter 20 µm) | {args.lt_size}³ | "
        f"{args.lt_size**3 / 2**20:.0f} | {lt['seconds']:.0f} | {lt['peak_rss_mib']:.0f} |",
    ]
    text = "\n".join([
        "## Quantification",
        "",
        "`tomopipe.quantify` on zarr label volumes (chunks 128 × 256 × 256, uint8): the simulated D0.7V "
        "state of a 256³ CuS cell tiled to the size shown. Each run is a subprocess; peak RSS includes the "
        "interpreter and imports.",
        "",
        "| what | volume | labels (MiB) | time (s) | peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, Python {platform.python_version()}; "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Reproduce with "
        "`python benchmarks/bench_quantify.py --write`.",
        "",
    ])
    print(text)
    if args.write:
        write_section("## Quantification", text.split("\n", 1)[1])


if __name__ == "__main__":
    main()
