"""Time and peak RAM of tomopipe.quantify on a 1024³ label volume (zarr, out of core), and
particle separation side by side with porespy's SNOW on the same phase.

The volume is the simulated D0.7V state of a 256³ CuS cell tiled 4 × 4 × 4 into a zarr array
(chunks 128 × 256 × 256, the simulator's label schema in its attributes), so it has cracks,
inclusions, particles and pores throughout. Each measurement runs in a subprocess whose peak
RSS (with its children) is sampled every 0.05 s with psutil.

    python benchmarks/bench_quantify.py [--size 1024] [--peer-size 192] [--write]

Rows:

- ``quantify_labels`` without pore sizes and particles: per-layer fractions, interfaces,
  cracks (shape method), inclusions;
- particle separation (``separate_particles`` on active ∪ inclusion, chunked, 32-voxel halo)
  and the particle table (volume, moments, surface area, sphericity);
- peer, in memory, same phase of a ``--peer-size``³ crop: tomopipe ``separate_particles`` and
  porespy ``filters.snow_partitioning`` (the partition ``networks.snow2`` builds its network
  on; the second call, after numba's compilation), run one after the other in one process, with
  their particle counts and d50.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import zarr

from _results import machine_info, write_section

CHILD = r"""
import json, sys, time, warnings
import numpy as np, zarr, dask.array as da
from tomopipe.quantify import quantify_labels, separate_particles, particle_table
arr = zarr.open_array(sys.argv[1], mode="r")
what = sys.argv[2]
out = {}
t = time.perf_counter()
if what == "metrics":
    m = quantify_labels(arr, 0.88, pore_sizes=False, particles=None)
    out = {k: v for k, v in m.summary.items() if isinstance(v, (int, float, str))}
elif what == "particles":
    mask = da.isin(da.from_zarr(arr), [2, 3])
    ids, n = separate_particles(mask, 0.88)
    tab = particle_table(ids, 0.88)
    out = {"n_particles": int(n), "d50_um": float(np.median(tab["equivalent_diameter_um"])),
           "sphericity_median": float(np.median(tab["sphericity"]))}
elif what == "peer":
    s = int(sys.argv[3])
    mask = np.isin(arr[:s, :s, :s], [2, 3])
    t0 = time.perf_counter()
    ids, n = separate_particles(mask, 1.0)
    t_ours = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import porespy as ps
        ps.filters.snow_partitioning(mask[:32, :32, :32])  # numba compilation
        t0 = time.perf_counter()
        reg = ps.filters.snow_partitioning(mask).regions * mask
        t_ps = time.perf_counter() - t0
    def d50(lab):
        c = np.bincount(lab.ravel())[1:]
        return float(np.median(np.cbrt(6 * c[c > 0] * 0.88**3 / np.pi)))
    out = {"tomopipe_s": t_ours, "porespy_s": t_ps, "n_tomopipe": int(n),
           "n_porespy": int(len(np.unique(reg)) - 1), "d50_tomopipe_um": d50(ids), "d50_porespy_um": d50(reg)}
out["seconds"] = time.perf_counter() - t
print(json.dumps(out, default=float))
"""


def _tiled(path, size, tile=256):
    from tomopipe.simulate import CellParams, generate_cell, insitu_sequence

    cell = generate_cell(CellParams(shape=(tile,) * 3, seed=0))
    state = {s.name: s for s in insitu_sequence(cell, seed=0)}["D0.7V"]
    arr = zarr.create_array(str(path), shape=(size,) * 3, chunks=(128, 256, 256), dtype="uint8",
                            dimension_names=("z", "y", "x"), overwrite=True)
    arr.attrs.update(state.schema.to_attrs())
    n = size // tile
    for i in range(n):
        for j in range(n):
            for k in range(n):
                arr[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile, k * tile:(k + 1) * tile] = state.labels
    return arr


def _run(path, what, *extra):
    load = os.getloadavg()[0]
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
    res["load_before"] = load
    res["load_after"] = os.getloadavg()[0]
    print(what, json.dumps(res, default=float), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--peer-size", type=int, default=192)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only", choices=("metrics", "particles"),
                    help="run one 1024³ row and replace it in the existing section")
    args = ap.parse_args()
    info = machine_info("numpy", "scipy", "skimage", "dask", "porespy")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.zarr"
        _tiled(big, args.size)
        m = _run(big, "metrics") if args.only in (None, "metrics") else None
        p = _run(big, "particles") if args.only in (None, "particles") else None
        peer = _run(big, "peer", str(args.peer_size)) if args.only is None else None
    mib = args.size**3 / 2**20
    rows = []
    if m is not None:
        rows.append(
            f"| `quantify_labels` (layers, interfaces, cracks, inclusions; no pore sizes, no particles) | "
            f"{args.size}³ | {mib:.0f} | {m['seconds']:.0f} | {m['peak_rss_mib']:.0f} | "
            f"{m['load_before']:.1f} / {m['load_after']:.1f} |")
    if p is not None:
        rows.append(
            f"| particle separation + particle table (active ∪ inclusion; {p['n_particles']} particles, "
            f"d50 {p['d50_um']:.2f} µm) | {args.size}³ | {mib:.0f} | {p['seconds']:.0f} | "
            f"{p['peak_rss_mib']:.0f} | {p['load_before']:.1f} / {p['load_after']:.1f} |")
    if args.only:
        _replace_row(rows[0], info, args.write)
        return
    ratio = peer["porespy_s"] / peer["tomopipe_s"]
    text = "\n".join([
        "`tomopipe.quantify` on zarr label volumes (chunks 128 × 256 × 256, uint8): the simulated D0.7V "
        "state of a 256³ CuS cell tiled to the size shown. Each run is a subprocess; peak RSS includes "
        "the interpreter and imports. Load: 1-minute load average before / after the run (the 2 cores "
        "are shared with other jobs).",
        "",
        "| what | volume | labels (MiB) | time (s) | peak RSS (MiB) | load |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Side by side, in memory, the same phase of a {args.peer_size}³ crop, one process, one after "
        f"the other: tomopipe `separate_particles` {peer['tomopipe_s']:.1f} s "
        f"({peer['n_tomopipe']} particles, d50 {peer['d50_tomopipe_um']:.2f} µm), porespy "
        f"`filters.snow_partitioning` {peer['porespy_s']:.1f} s ({peer['n_porespy']} regions, d50 "
        f"{peer['d50_porespy_um']:.2f} µm): porespy / tomopipe time ratio {ratio:.2f}.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ". Reproduce with "
        "`python benchmarks/bench_quantify.py --write`.",
        "",
    ])
    print(text)
    if args.write:
        write_section("## Quantification", text)


def _replace_row(row, info, write):
    """Replace the row with the same first cell in the existing section; note the date."""
    from _results import RESULTS

    text = RESULTS.read_text()
    start = text.index("## Quantification")
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end
    section = text[start:end]
    key = row.split(" | ")[0]
    name = key.strip("| ").replace("`", "").split(" (")[0]
    prefix = f"The {name} row re-run alone on "
    lines = [row if line.split(" | ")[0] == key else line for line in section.splitlines()
             if not line.startswith(prefix)]  # an older note on this row is replaced
    note = f"{prefix}{info['date']} (load {info['load']})."
    body = "\n".join(lines[2:]).rstrip() + "\n\n" + note + "\n"
    print(row)
    if write:
        write_section("## Quantification", body)


if __name__ == "__main__":
    main()
