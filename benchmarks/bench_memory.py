"""Peak-RAM benchmark of the whole pipeline (``tomopipe run``) at two data sizes.

The pipeline's chunk contract (:mod:`tomopipe.pipeline.stages`) says RAM is bounded by the size
of a few tasks' chunks, not by the size of the scan. This script checks it: it generates two
synthetic Data Exchange scans that differ 4× in size (the larger one's float32 projections,
≈1.5 GB, are far more than a bounded pipeline should hold), runs ``tomopipe run WF --out STORE
--quiet`` on each in a subprocess, samples the resident set size of that process and its
children every 0.05 s, and reports the peak, the peak per pipeline stage, and the wall time.

The scans are written without holding them in RAM: uint16 counts ``flat × exp(−line
integral) + dark + noise`` are computed per chunk of 16 angles by :func:`dask.array.map_blocks`
(an off-axis cylinder holding a few off-centre spheres, so the sinograms look like a real
sample's; Gaussian noise of Poisson variance, seeded per block) and streamed to HDF5 by
:func:`tomopipe.io.write_dxchange`.

Usage::

    python benchmarks/bench_memory.py            # prints a markdown table
    python benchmarks/bench_memory.py --quick    # two small scans (smoke test, ~30 s)
    python benchmarks/bench_memory.py --write    # also replace the section in RESULTS.md

The temporary scans and stores (≈4 GB for the full run) are deleted at the end.
"""

from __future__ import annotations

from _results import machine_info, write_section
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SECTION = "## Pipeline peak RAM"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: (name, angles, rows, cols): the large scan holds 4× the small one's voxels.
FULL_CASES = [("small", 720, 256, 512), ("large", 1440, 512, 512)]
QUICK_CASES = [("small", 180, 64, 128), ("large", 360, 128, 128)]
N_FLATS, N_DARKS = 20, 10
CHUNK_ANGLES = 16  # output.chunk_angles, also the generator's and the HDF5 writer's block
ROWS_PER_CHUNK = 8  # recon.rows_per_chunk
CHUNK_MB = 8  # output.chunk_mb: caps one task's input, so both sizes run with the same task size
PIXEL_UM = 0.88
FLAT_COUNTS = 20000.0
DARK_COUNTS = 100.0
SAMPLE_S = 0.05
#: pipeline log prefixes and the stage each starts (a stage logs as it starts, except the
#: centre, which logs its result: its work is counted with the sinograms)
STAGES = [("[raw]", "raw"), ("[normalized]", "normalized"), ("[phase]", "phase"),
          ("[sinograms]", "sinograms"), ("[centre]", "volume"), ("[volume]", "volume")]
STAGE_NAMES = ["setup", "raw", "normalized", "phase", "sinograms", "volume"]


# ---- synthetic scan ------------------------------------------------------------------------

def _phantom(n_rows, n_cols):
    """Line-integral model in pixel units: (μ per pixel, objects) of a cylinder and spheres.

    Objects are ``(x0, y0, z0, radius, mu_px)`` (pixels, relative to the rotation axis and
    the central row); ``z0 = None`` marks the cylinder (infinite along z). μ = 2 /cm for the
    cylinder and 25 /cm for the spheres, with 0.88 µm pixels, so the attenuation is smooth
    and moderate (transmission > 0.5 through the centre).
    """
    px_cm = PIXEL_UM * 1e-4
    radius = 0.4 * n_cols
    objs = [(0.0, 0.0, None, radius, 2.0 * px_cm)]
    rng = np.random.default_rng(1234)
    for _ in range(6):
        r = rng.uniform(0.05, 0.1) * n_cols
        rho = rng.uniform(0.0, radius - r - 2)
        phi = rng.uniform(0, 2 * np.pi)
        z = rng.uniform(-0.3, 0.3) * n_rows
        objs.append((rho * np.cos(phi), rho * np.sin(phi), z, r, 25.0 * px_cm))
    return objs


def _line_integrals(theta, n_rows, n_cols, objs, center):
    """(angle, row, col) float32 line integrals of the phantom for the angles `theta`."""
    rows = (np.arange(n_rows, dtype=np.float32) - (n_rows - 1) / 2)[None, :, None]
    cols = (np.arange(n_cols, dtype=np.float32) - center)[None, None, :]
    cos = np.cos(theta).astype(np.float32)[:, None, None]
    sin = np.sin(theta).astype(np.float32)[:, None, None]
    out = np.zeros((theta.size, n_rows, n_cols), dtype=np.float32)
    for x0, y0, z0, r, mu in objs:
        s = cols - (x0 * cos + y0 * sin)  # detector coordinate relative to the object
        d2 = r * r - s * s
        if z0 is not None:
            d2 = d2 - (rows - z0) ** 2
        out += np.float32(2 * mu) * np.sqrt(np.maximum(d2, 0.0))
    return out


def _noisy_counts(mean, rng):
    """uint16 counts: `mean` + Gaussian noise of Poisson variance, clipped to uint16."""
    noisy = mean + rng.standard_normal(mean.shape, dtype=np.float32) * np.sqrt(mean)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


def synthetic_scan(n_angles, n_rows, n_cols, *, seed=0):
    """Lazy uint16 projections, flats and darks (dask) and theta of a synthetic scan.

    Each block (``CHUNK_ANGLES`` frames) is computed on demand with its own seed, so the
    scan is never held in memory and is reproducible.

    Returns
    -------
    projections, flats, darks : (n, n_rows, n_cols) dask.array.Array of uint16
        Axis order (angle, row, col).
    theta : (n_angles,) ndarray of float64
        Radians over [0, π).
    center : float
        Rotation axis (column index).
    """
    import dask.array as da

    theta = np.linspace(0.0, np.pi, n_angles, endpoint=False)
    center = (n_cols - 1) / 2 + 1.3
    objs = _phantom(n_rows, n_cols)
    col = (np.arange(n_cols) - n_cols / 2) / n_cols
    beam = (FLAT_COUNTS * (1.0 - 0.15 * col**2)).astype(np.float32)[None, None, :]
    beam = np.broadcast_to(beam, (1, n_rows, n_cols))

    def _rng(kind, block_id):
        return np.random.default_rng([seed, kind, block_id[0]])

    def _proj(block_info=None):
        (a0, a1), _, _ = block_info[None]["array-location"]
        line = _line_integrals(theta[a0:a1], n_rows, n_cols, objs, center)
        mean = beam * np.exp(-line) + np.float32(DARK_COUNTS)
        return _noisy_counts(mean, _rng(0, block_info[None]["chunk-location"]))

    def _flat(block_info=None):
        (a0, a1), _, _ = block_info[None]["array-location"]
        mean = np.broadcast_to(beam + np.float32(DARK_COUNTS), (a1 - a0, n_rows, n_cols))
        return _noisy_counts(mean, _rng(1, block_info[None]["chunk-location"]))

    def _dark(block_info=None):
        (a0, a1), _, _ = block_info[None]["array-location"]
        mean = np.full((a1 - a0, n_rows, n_cols), DARK_COUNTS, dtype=np.float32)
        return _noisy_counts(mean, _rng(2, block_info[None]["chunk-location"]))

    def _lazy(fn, n):
        chunks = (CHUNK_ANGLES, n_rows, n_cols)
        return da.map_blocks(fn, chunks=da.core.normalize_chunks(chunks, (n, n_rows, n_cols)),
                             dtype=np.uint16, meta=np.empty((0, 0, 0), np.uint16))

    return _lazy(_proj, n_angles), _lazy(_flat, N_FLATS), _lazy(_dark, N_DARKS), theta, center


def write_case(folder, name, n_angles, n_rows, n_cols):
    """Write the scan ``<name>.h5`` and the workflow ``<name>.yaml`` into `folder`."""
    import yaml

    from tomopipe.io import write_dxchange

    proj, flats, darks, theta, _ = synthetic_scan(n_angles, n_rows, n_cols)
    h5 = folder / f"{name}.h5"
    write_dxchange(h5, proj, flats, darks, theta, chunk_angles=CHUNK_ANGLES)
    wf = folder / f"{name}.yaml"
    wf.write_text(yaml.safe_dump({
        "name": f"bench-memory-{name}",
        "input": {"path": str(h5)},
        "geometry": {"pixel_size": f"{PIXEL_UM} um", "center": "auto"},
        "stripes": {"method": "none"},
        "recon": {"filter_name": "shepp", "rows_per_chunk": ROWS_PER_CHUNK},
        "output": {"chunk_angles": CHUNK_ANGLES, "chunk_mb": CHUNK_MB, "preview": True},
    }, sort_keys=False))
    return h5, wf


# ---- measuring a subprocess ------------------------------------------------------------------

def _tree_rss(proc):
    """Resident set size in bytes of `proc` and all its children (0 once it has gone)."""
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd, *, stage_prefixes=()):
    """Run `cmd`, sampling its RSS (with children) every ``SAMPLE_S`` s.

    Lines on the command's stderr that start with one of `stage_prefixes` ((prefix, name)
    pairs) open a new stage, so the peak is also reported per stage (the part before the
    first such line is ``setup``).

    Returns
    -------
    dict
        ``wall_s``, ``peak_mib``, ``stage_peak_mib`` ({stage: MiB}), ``samples``, ``stdout``,
        ``stderr``, ``returncode``.
    """
    import psutil

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    proc = psutil.Process(popen.pid)
    state = {"stage": "setup"}
    stderr_lines, stdout_lines = [], []

    def _read_stderr():
        for line in popen.stderr:
            stderr_lines.append(line)
            for prefix, name in stage_prefixes:
                if line.startswith(prefix):
                    state["stage"] = name
                    break

    def _read_stdout():
        stdout_lines.extend(popen.stdout)

    readers = [threading.Thread(target=_read_stderr, daemon=True),
               threading.Thread(target=_read_stdout, daemon=True)]
    for t in readers:
        t.start()
    peak, stage_peak, n = 0, {}, 0
    while popen.poll() is None:
        rss = _tree_rss(proc)
        n += 1
        peak = max(peak, rss)
        st = state["stage"]
        stage_peak[st] = max(stage_peak.get(st, 0), rss)
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - t0
    for t in readers:
        t.join()
    return {
        "wall_s": wall,
        "peak_mib": peak / 2**20,
        "stage_peak_mib": {k: v / 2**20 for k, v in stage_peak.items()},
        "samples": n,
        "stdout": "".join(stdout_lines),
        "stderr": "".join(stderr_lines),
        "returncode": popen.returncode,
    }


def _tomopipe_cmd():
    exe = Path(sys.executable).with_name("tomopipe")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("tomopipe")
    if found:
        return [found]
    return [sys.executable, "-c", "from tomopipe.cli import main; main()"]


#: the modules a ``tomopipe run`` imports, for the baseline (interpreter + libraries, no data)
_IMPORTS = ("import time, dask.array, zarr, h5py, finufft, scipy.fft, matplotlib.pyplot, "
            "tomopipe.cli, tomopipe.pipeline, tomopipe.reconstruction; time.sleep(0.5)")


# ---- report --------------------------------------------------------------------------------

def _sizes(n_angles, n_rows, n_cols):
    from tomopipe.pipeline.stages import ProjectionChunks

    mib = 2**20
    ch = ProjectionChunks.for_scan((n_angles, n_rows, n_cols), chunk_angles=CHUNK_ANGLES, chunk_rows=16,
                                   recon_rows=ROWS_PER_CHUNK, chunk_mb=CHUNK_MB)  # what the pipeline uses
    c, r = ch.angles, ch.recon_rows
    return {
        "raw_mib": n_angles * n_rows * n_cols * 2 / mib,
        "f32_mib": n_angles * n_rows * n_cols * 4 / mib,
        "vol_mib": n_rows * n_cols * n_cols * 4 / mib,
        # one dask task's float32 input: a projection chunk and a sinogram chunk
        "proj_chunk_mib": c * n_rows * n_cols * 4 / mib,
        "sino_chunk_mib": n_angles * r * n_cols * 4 / mib,
    }


def _mib(x):
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def _verdict(results):
    """One paragraph: is peak RAM flat, bounded by the chunks, or growing with the data?"""
    small, large = results[0], results[-1]
    data_ratio = large["raw_mib"] / small["raw_mib"]
    ratio = large["peak_mib"] / small["peak_mib"]
    growth = large["peak_mib"] - small["peak_mib"]
    stages = [s for s in STAGE_NAMES if s in small["stage_peak_mib"] and s in large["stage_peak_mib"]]
    top = max(stages, key=lambda s: large["stage_peak_mib"][s])
    summary = (f"the {data_ratio:.0f}× larger scan peaked at {ratio:.2f}× the small one's RSS "
               f"(+{growth:.0f} MiB, against +{large['raw_mib'] - small['raw_mib']:.0f} MiB of raw "
               f"data and +{large['f32_mib'] - small['f32_mib']:.0f} MiB of float32 projections)")
    chunks = (f"one task's chunks span all rows (projection stages) or all angles (sinogram and "
              f"volume stages), so they grow too: projection chunk {_mib(small['proj_chunk_mib'])} → "
              f"{_mib(large['proj_chunk_mib'])} MiB, sinogram chunk {_mib(small['sino_chunk_mib'])} → "
              f"{_mib(large['sino_chunk_mib'])} MiB; the peak is in the `{top}` stage")
    if ratio <= 1.15:
        return f"RAM is **flat** as data grows: {summary}. Peak RAM is set by the chunk sizes ({chunks})."
    if ratio <= 1.0 + (data_ratio - 1.0) / 4 and large["peak_mib"] < large["f32_mib"]:
        return (f"RAM is **bounded, not flat**: {summary}, and peak RSS / raw size falls from "
                f"{small['peak_mib'] / small['raw_mib']:.2f} to "
                f"{large['peak_mib'] / large['raw_mib']:.2f}; the large scan's float32 "
                f"projections are {large['f32_mib'] / large['peak_mib']:.1f}× its peak RSS, so no "
                f"stage holds a whole array. What growth there is follows the chunks: {chunks}.")
    return (f"RAM **grows with the data**: {summary}; {chunks}. See the per-stage peaks for "
            f"where it grows.")


def _format(results, baseline, info, args):
    lines = []
    lines.append(
        f"`tomopipe run WF --out STORE --quiet` in a subprocess on synthetic DXchange scans "
        f"(uint16 counts, {N_FLATS} flats, {N_DARKS} darks, angles over [0, π), generated "
        f"chunk by chunk with dask and never held in RAM); workflow: pixel size {PIXEL_UM} µm, "
        f"centre `auto` (Vo), flats `auto` (mean), stripes `none`, filter `shepp`, "
        f"`recon.rows_per_chunk: {ROWS_PER_CHUNK}`, `output.chunk_angles: {CHUNK_ANGLES}`, "
        f"`output.chunk_mb: {CHUNK_MB}`, "
        f"3 pyramid levels, preview PNG; dask's threaded scheduler "
        f"({info['cores'].split()[0]} threads). Peak RSS is sampled every {SAMPLE_S} s over "
        f"the process and its children (interpreter and imports included: importing what "
        f"`tomopipe run` imports takes {baseline:.0f} MiB on its own). Wall time includes "
        f"start-up, the input checksum and writing every stage."
    )
    lines.append("")
    lines.append("| scan (angle × row × col) | raw uint16 (MiB) | float32 projections (MiB) "
                 "| volume (MiB) | wall (s) | peak RSS (MiB) | peak RSS / raw size |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        lines.append(
            f"| {r['name']}: {r['n_angles']} × {r['n_rows']} × {r['n_cols']} | {r['raw_mib']:.0f} "
            f"| {r['f32_mib']:.0f} | {r['vol_mib']:.0f} | {r['wall_s']:.1f} | {r['peak_mib']:.0f} "
            f"| {r['peak_mib'] / r['raw_mib']:.2f} |"
        )
    lines.append("")
    lines.append("Peak RSS (MiB) per stage (sampled while the stage ran; `setup` = start-up, "
                 "flat/dark averaging and the input checksum; `sinograms` includes the automatic "
                 "centre; `volume` includes the pyramid and the preview), and one task's float32 input chunk:")
    lines.append("")
    stages = [s for s in STAGE_NAMES if any(s in r["stage_peak_mib"] for r in results)]
    lines.append("| scan | " + " | ".join(stages) + " | projection chunk (MiB) "
                 "| sinogram chunk (MiB) |")
    lines.append("|---|" + "---:|" * (len(stages) + 2))
    for r in results:
        cells = [f"{r['stage_peak_mib'][s]:.0f}" if s in r["stage_peak_mib"] else "–"
                 for s in stages]
        lines.append(f"| {r['name']} | " + " | ".join(cells)
                     + f" | {_mib(r['proj_chunk_mib'])} | {_mib(r['sino_chunk_mib'])} |")
    lines.append("")
    lines.append(_verdict(results))
    lines.append("")
    lines.append("Machine and versions:")
    lines.append("")
    for key in ("date", "cpu", "cores", "ram", "os", "python", "numpy", "dask", "zarr", "h5py",
                "finufft"):
        lines.append(f"- {key}: {info[key]}")
    lines.append(f"- load average (1, 5, 15 min) at start: {info['load']}")
    lines.append("")
    cmd = "python benchmarks/bench_memory.py" + (" --quick" if args.quick else " --write")
    lines.append(f"Reproduce with `{cmd}`.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small scans (smoke test)")
    parser.add_argument("--tmpdir", default=None,
                        help="folder for the temporary scans and stores (default: the system's)")
    parser.add_argument("--write", action="store_true",
                        help=f"replace the '{SECTION}' section of {RESULTS.name}")
    args = parser.parse_args(argv)
    if args.quick and args.write:
        parser.error("--write records the full run; drop --quick")

    info = machine_info("numpy", "dask", "zarr", "h5py", "finufft")
    cases = QUICK_CASES if args.quick else FULL_CASES
    t_start = time.perf_counter()
    base = measure([sys.executable, "-c", _IMPORTS])
    if base["returncode"] != 0:
        print(base["stderr"], file=sys.stderr)
        return 1
    results = []
    with tempfile.TemporaryDirectory(prefix="tomopipe-bench-memory-", dir=args.tmpdir) as tmp:
        folder = Path(tmp)
        for name, n_angles, n_rows, n_cols in cases:
            sizes = _sizes(n_angles, n_rows, n_cols)
            print(f"{name}: writing {n_angles} × {n_rows} × {n_cols} uint16 "
                  f"({sizes['raw_mib']:.0f} MiB) ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            h5, wf = write_case(folder, name, n_angles, n_rows, n_cols)
            print(f"  written in {time.perf_counter() - t0:.1f} s; running tomopipe ...",
                  file=sys.stderr, flush=True)
            store = folder / f"{name}.zarr"
            res = measure(_tomopipe_cmd() + ["run", str(wf), "--out", str(store), "--quiet"],
                          stage_prefixes=STAGES)
            if res["returncode"] != 0:
                print(res["stdout"] + res["stderr"], file=sys.stderr)
                print(f"tomopipe run failed on the {name} scan (exit {res['returncode']})",
                      file=sys.stderr)
                return 1
            print(f"  {res['wall_s']:.1f} s, peak RSS {res['peak_mib']:.0f} MiB "
                  f"({res['samples']} samples); stages: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in res["stage_peak_mib"].items()),
                  file=sys.stderr, flush=True)
            results.append({"name": name, "n_angles": n_angles, "n_rows": n_rows,
                            "n_cols": n_cols, **sizes, **res})
            # free the disk before the next case (the folder goes at the end in any case)
            h5.unlink()
            shutil.rmtree(store, ignore_errors=True)
            for extra in folder.glob(f"{name}.zarr*"):
                if extra.is_file():
                    extra.unlink()
                else:
                    shutil.rmtree(extra, ignore_errors=True)
    body = _format(results, base["peak_mib"], info, args)
    print(f"{SECTION}\n\n{body}")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s", file=sys.stderr)
    if args.write:
        write_section(SECTION, body, path=RESULTS)
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
