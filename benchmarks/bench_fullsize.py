"""A CuS-size scan, raw → volume, stage by stage: time, CPU use, RAM, disk and compression.

The in-situ CuS study's scans are 2256 projections of 2004 × 1336 pixels. This script writes
a synthetic scan of that width and angle count with fewer rows (default 64; uint16 counts of
a cylinder holding spheres, Poisson-level noise, 20 flats, 10 darks — the generator of
``bench_memory.py``) as Data Exchange HDF5, and runs a workflow shaped like the CuS one
(0.88 µm pixels, automatic centre, dezinger, Paganin at 35 keV / 10 cm, stripe removal by
sorting, FBP with the default filter, 3 pyramid levels, preview) **through the public
pipeline API only**: ``workflow_from_dict`` and ``run_workflow(wf, store, progress=False,
log=callback)``. Each pipeline log line that starts with ``[<stage>]`` marks the start of
that stage; a sampler thread records this process's RSS, CPU time and I/O every 0.1 s, so
each stage gets its wall time, cores busy (CPU s / wall s), peak RSS and bytes read/written.

Afterwards, from the finished store: the automatic centre is timed apart on the same 8
rows (it runs inside the sinogram span and does not grow with the rows), and each stage's
zstd (zarr's default codec) encode and decode throughput is measured on one of its chunks,
which says how many of the stage's CPU seconds compression takes. The disk's sequential
write rate (1 GiB with fsync) says how long the bytes would take to reach the disk once they
no longer fit in the page cache. Stage times are scaled to 1336 rows (every stage but the
centre is linear in the rows) and to a 6-state series.

Usage::

    python benchmarks/bench_fullsize.py [--rows 64] [--tmpdir DIR] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_info, write_section  # noqa: E402

SECTION = "## Full-size scan, raw → volume"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
N_ANGLES, N_COLS, FULL_ROWS, N_STATES = 2256, 2004, 1336, 6
SAMPLE_S = 0.1
STAGE_RE = re.compile(r"^\[([A-Za-z_][\w-]*)\]")
WORKFLOW = {
    "name": "fullsize-cus",
    "geometry": {"pixel_size": "0.88 um", "center": "auto", "center_method": "vo"},
    "normalize": {"flats": "auto", "dezinger": {"size": 3, "threshold": 500}},
    "phase": {"energy": "35 keV", "distance": "10 cm", "delta_beta": 1000},
    "stripes": {"method": "sorting"},
    "recon": {"filter_name": "shepp"},
    "output": {"pyramid_levels": 3, "preview": True},
}


class Sampler:
    """Samples RSS, CPU seconds and I/O of this process; splits them at stage marks."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.stage = "setup"
        self.order = ["setup"]
        self.t0 = time.perf_counter()
        self.marks = {"setup": self._now()}
        self.peak = {"setup": self.proc.memory_info().rss}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _now(self):
        cpu = self.proc.cpu_times()
        io = self.proc.io_counters()
        return {"t": time.perf_counter(), "cpu": cpu.user + cpu.system,
                "read": io.read_bytes, "write": io.write_bytes,
                "rchar": getattr(io, "read_chars", 0), "wchar": getattr(io, "write_chars", 0)}

    def _run(self):
        while not self._stop.wait(SAMPLE_S):
            rss = self.proc.memory_info().rss
            st = self.stage
            self.peak[st] = max(self.peak.get(st, 0), rss)

    def start(self):
        self._thread.start()

    def mark(self, stage):
        """A new stage starts now (a repeated name continues under a numbered key)."""
        rss = self.proc.memory_info().rss
        self.peak[self.stage] = max(self.peak.get(self.stage, 0), rss)
        key = stage
        while key in self.marks:
            key += "+"
        self.marks[key] = self._now()
        self.order.append(key)
        self.peak[key] = rss
        self.stage = key

    def stop(self):
        self.mark("end")
        self._stop.set()
        self._thread.join()

    def spans(self):
        """{stage: wall_s, cpu_s, peak_mib, read/write bytes} between consecutive marks."""
        out = {}
        for a, b in zip(self.order[:-1], self.order[1:]):
            m0, m1 = self.marks[a], self.marks[b]
            out[a] = {"wall_s": m1["t"] - m0["t"], "cpu_s": m1["cpu"] - m0["cpu"],
                      "peak_mib": self.peak.get(a, 0) / 2**20,
                      "read": m1["read"] - m0["read"], "write": m1["write"] - m0["write"],
                      "rchar": m1["rchar"] - m0["rchar"], "wchar": m1["wchar"] - m0["wchar"]}
        return out


def disk_write_rate(folder, mib=1024):
    """Sequential write rate of `folder`'s disk in MiB/s (fsync'd)."""
    f = Path(folder) / "disk-rate.bin"
    block = np.random.default_rng(0).integers(0, 255, 16 * 2**20, dtype=np.uint8).tobytes()
    t0 = time.perf_counter()
    with open(f, "wb") as fh:
        for _ in range(mib // 16):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    rate = mib / (time.perf_counter() - t0)
    f.unlink()
    return rate


def _dir_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def codec_rates(store_path):
    """Per stage group: zstd encode/decode MB/s of one chunk of its largest array, ratio, bytes."""
    import numcodecs
    import zarr

    root = zarr.open_group(str(store_path), mode="r")
    zstd = numcodecs.Zstd(level=0)  # zarr's default ZstdCodec(level=0)
    out = {}
    for name, group in root.groups():
        arrays = []

        def walk(g, prefix):
            for an, arr in g.arrays():
                arrays.append((f"{prefix}{an}", arr))
            for gn, sub in g.groups():
                walk(sub, f"{prefix}{gn}/")

        walk(group, "")
        if not arrays:
            continue
        an, arr = max(arrays, key=lambda x: x[1].nbytes)
        sl = tuple(slice(0, min(c, s)) for c, s in zip(arr.chunks, arr.shape))
        chunk = np.ascontiguousarray(arr[sl])
        raw = chunk.tobytes()
        t_enc = t_dec = np.inf
        for _ in range(3):  # CPU time, best of 3: one timing on a busy machine misleads
            t0 = time.process_time()
            enc = zstd.encode(raw)
            t_enc = min(t_enc, time.process_time() - t0)
            t0 = time.process_time()
            zstd.decode(enc)
            t_dec = min(t_dec, time.process_time() - t0)
        out[name] = {"array": an, "chunk_mib": len(raw) / 2**20, "ratio": len(raw) / len(enc),
                     "enc_mbs": len(raw) / 2**20 / t_enc, "dec_mbs": len(raw) / 2**20 / t_dec,
                     "uncompressed": sum(a.nbytes for _, a in arrays),
                     "on_disk": _dir_bytes(Path(store_path) / name)}
    return out


def run(rows, folder, n_angles=N_ANGLES, n_cols=N_COLS):
    from bench_memory import synthetic_scan
    from tomopipe.io import write_dxchange
    from tomopipe.pipeline import run_workflow, workflow_from_dict

    h5 = folder / "cus-size.h5"
    proj, flats, darks, theta, true_center = synthetic_scan(n_angles, rows, n_cols)
    t0 = time.perf_counter()
    write_dxchange(h5, proj, flats, darks, theta, chunk_angles=16)
    t_write = time.perf_counter() - t0
    print(f"scan written in {t_write:.0f} s ({h5.stat().st_size / 2**20:.0f} MiB)",
          file=sys.stderr, flush=True)
    wf = workflow_from_dict({**WORKFLOW, "input": {"path": str(h5)}})
    store = folder / "cus-size.zarr"
    lines = []
    sampler = Sampler()

    def log(msg):
        msg = str(msg)
        lines.append((time.perf_counter() - sampler.t0, msg))
        m = STAGE_RE.match(msg)
        if m:
            sampler.mark(m.group(1))
        print(f"  {time.perf_counter() - sampler.t0:7.1f} s  {msg}", file=sys.stderr, flush=True)

    sampler.start()
    result = run_workflow(wf, store, progress=False, log=log)
    sampler.stop()
    spans = sampler.spans()

    # the centre, timed apart on the rows the pipeline uses (8 around the middle)
    import zarr

    from tomopipe import find_center_vo

    sino = None
    for name in ("sinograms",):
        g = zarr.open_group(str(store), mode="r")[name]
        sino = max(g.arrays(), key=lambda x: x[1].nbytes)[1]
    mid = rows // 2
    block = np.asarray(sino[:, max(0, mid - 4):min(rows, mid + 4), :])
    t0, c0 = time.perf_counter(), time.process_time()
    c = find_center_vo(block, ind=list(range(block.shape[1])))
    t_centre, cpu_centre = time.perf_counter() - t0, time.process_time() - c0
    codecs = codec_rates(store)
    rate = disk_write_rate(folder)
    return {"spans": spans, "lines": lines, "centre_s": t_centre, "centre_cpu_s": cpu_centre,
            "centre": float(c),
            "true_center": true_center, "pipeline_center": result.center, "codecs": codecs,
            "disk_mbs": rate, "rows": rows, "write_s": t_write, "n_angles": n_angles,
            "n_cols": n_cols, "tmp_bytes": _dir_bytes(folder)}


def _fmt_gb(b):
    return f"{b / 1e9:.2f}"


def _format(res, info):
    rows = res["rows"]
    scale = FULL_ROWS / rows
    spans, codecs = res["spans"], res["codecs"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    disk = res["disk_mbs"] * 2**20  # bytes/s
    table = [
        "| stage | wall (s) | CPU (s) | cores busy | peak RSS (MiB) | read / written (GB) "
        "| stored (GB, zstd ratio) | zstd enc / dec (MB/s) | compression (CPU s) "
        "| 1336 rows: CPU ÷ cores (s) | 1336 rows: disk writes (s) | 1336 rows: measured wall × "
        f"{scale:.1f} (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    est = []
    for s in spans:
        sp = spans[s]
        wall, cpu = sp["wall_s"], sp["cpu_s"]
        base = s.rstrip("+")
        codec = codecs.get(base)
        if codec:
            comp_s = codec["uncompressed"] / 2**20 / codec["enc_mbs"]
            comp = (f"{_fmt_gb(codec['on_disk'])} ({codec['ratio']:.2f}×) | "
                    f"{codec['enc_mbs']:.0f} / {codec['dec_mbs']:.0f} | {comp_s:.1f}")
        else:
            comp_s, comp = 0.0, "— | — | —"
        # the sinogram span holds the centre (fixed 8 rows); the centre's own span is a log line
        fixed_cpu = res["centre_cpu_s"] if base == "sinograms" else 0.0
        fixed_wall = res["centre_s"] if base == "sinograms" else 0.0
        k = 1.0 if base == "centre" else scale
        cpu_full = (cpu - fixed_cpu) * k + fixed_cpu
        wall_full = (wall - fixed_wall) * k + fixed_wall
        disk_full = sp["wchar"] * k / disk
        quiet = max(cpu_full / cores, disk_full)
        est.append({"stage": s, "cpu": cpu, "comp": comp_s, "cpu_full": cpu_full,
                    "disk_full": disk_full, "quiet": quiet, "wall_full": wall_full,
                    "busy": cpu / max(wall, 1e-9)})
        table.append(
            f"| {s} | {wall:.1f} | {cpu:.1f} | {cpu / max(wall, 1e-9):.2f} | {sp['peak_mib']:.0f} "
            f"| {_fmt_gb(sp['rchar'])} / {_fmt_gb(sp['wchar'])} | {comp} | {cpu_full / cores:.0f} "
            f"| {disk_full:.0f} | {wall_full:.0f} |")
    tot_quiet = sum(e["quiet"] for e in est)
    tot_wall = sum(e["wall_full"] for e in est)
    tot_meas = sum(spans[s]["wall_s"] for s in spans)
    table.append(f"| **total** | **{tot_meas:.0f}** | **{sum(e['cpu'] for e in est):.0f}** | | | "
                 f"| | | | **{sum(e['cpu_full'] for e in est) / cores:.0f}** "
                 f"| **{sum(e['disk_full'] for e in est):.0f}** | **{tot_wall:.0f}** |")
    slow = max((e for e in est if e["stage"] != "setup"), key=lambda e: e["quiet"])
    bound = "CPU" if slow["cpu_full"] / cores >= slow["disk_full"] else "disk writes"
    comp_share = slow["comp"] / slow["cpu"] if slow["cpu"] > 0 else 0.0
    written_full = sum(spans[s]["wchar"] for s in spans) * scale
    lines = [
        f"Synthetic scan of the CuS study's width and angle count with {rows} of its 1336 rows: "
        f"{res['n_angles']} projections × {rows} rows × {res['n_cols']} columns, uint16 "
        f"(`bench_memory.synthetic_scan`: cylinder with spheres, Poisson-level noise, 20 flats, "
        f"10 darks), written as Data Exchange HDF5 in {res['write_s']:.0f} s. Workflow "
        f"`{json.dumps(WORKFLOW)}`, run in this process through `workflow_from_dict` + "
        f"`run_workflow(wf, store, progress=False, log=callback)`; a stage starts at its "
        f"`[stage]` log line (`setup` = before the first: opening, checksum, flat/dark "
        f"averages); dask's threaded scheduler on {info['cores']}. CPU = process CPU seconds "
        f"in the stage; cores busy = CPU ÷ wall; read/written = bytes through read/write "
        f"calls (page cache included); stored = the stage's group on disk, with zstd's ratio "
        f"on one chunk; compression = the stage's uncompressed bytes ÷ zstd's encode rate on "
        f"that chunk (CPU seconds inside the stage's CPU). Scaled to 1336 rows "
        f"({scale:.2f}× the data; the centre's 8 rows not scaled): 'CPU ÷ cores' is the time "
        f"on {cores} otherwise idle cores, 'disk writes' the time the stage's bytes take at "
        f"this disk's sequential rate ({res['disk_mbs']:.0f} MiB/s, fsync'd), 'measured wall' "
        f"the wall time here scaled up (inflated by the other sessions on these cores: load "
        f"average {info['load']} at start).",
        "",
        *table,
        "",
        f"The automatic centre (Vo, 8 rows) took {res['centre_s']:.1f} s wall / "
        f"{res['centre_cpu_s']:.1f} CPU s inside the `sinograms` span (centre found "
        f"{res['pipeline_center']:.2f}, true {res['true_center']:.2f}).",
        "",
        f"**Full scan (2256 × 1336 × 2004) on 2 idle cores: ≈ {tot_quiet / 60:.0f} min** "
        f"(per stage the larger of CPU ÷ cores and disk writes); **6-state series: "
        f"≈ {6 * tot_quiet / 3600:.1f} h**. With the load measured here the same scaling gives "
        f"{tot_wall / 60:.0f} min per scan and {6 * tot_wall / 3600:.1f} h per series. A full "
        f"scan writes ≈ {written_full / 1e9:.0f} GB through all stages "
        f"({written_full / disk / 60:.0f} min at the disk's sequential rate).",
        "",
        f"**Slowest stage: `{slow['stage']}`**, ≈ {slow['quiet'] / 60:.1f} min per full scan "
        f"({100 * slow['quiet'] / tot_quiet:.0f} % of the total). It is bound by **{bound}**: "
        f"{slow['cpu_full'] / cores:.0f} s of CPU on {cores} cores against "
        f"{slow['disk_full']:.0f} s of disk writes; zstd compression is "
        f"{100 * comp_share:.0f} % of its CPU time.",
        "",
        "Pipeline log (time since start):",
        "",
        "```",
        *[f"{t:7.1f} s  {m}" for t, m in res["lines"]],
        "```",
        "",
        f"Machine: {info['cpu']}, {info['cores']}, {info['ram']}; {info['date']}. Reproduce "
        f"with `python benchmarks/bench_fullsize.py --write` (here about "
        f"{(tot_meas + res['write_s']) / 60:.0f} min and {res['tmp_bytes'] / 1e9:.0f} GB of "
        f"temporary disk; `--tmpdir` chooses where).",
    ]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=64, help="detector rows (default 64)")
    p.add_argument("--tmpdir", default=None, help="folder for the scan and the store")
    p.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in RESULTS.md")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 256 angles × 16 rows × 256 columns, nothing written")
    args = p.parse_args(argv)
    if args.quick and args.write:
        p.error("--quick writes nothing")
    info = machine_info("numpy", "dask", "zarr", "h5py", "finufft")
    with tempfile.TemporaryDirectory(prefix="tomopipe-fullsize-", dir=args.tmpdir) as tmp:
        res = (run(16, Path(tmp), 256, 256) if args.quick else run(args.rows, Path(tmp)))
    body = _format(res, info)
    print(f"{SECTION}\n\n{body}")
    if args.write:
        write_section(SECTION, body, path=RESULTS)
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
