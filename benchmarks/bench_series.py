"""The whole in-situ series at 192³ on this machine: wall time and peak RAM per stage.

    python benchmarks/bench_series.py [--size 192] [--folder DIR]

Simulates the six states of the CuS study (``tomopipe simulate insitu``), then runs the series
workflow it writes (``tomopipe run series.yaml``: reconstruction, the U-Net's segmentation,
metrics, DVC against OCV and between consecutive states, the report) in this process, timing
every stage from its ``[stage]`` log line and sampling the resident memory every 50 ms.
Writes the section "## Series: six states end to end" of benchmarks/RESULTS.md, with the
report's validation table and trends.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil


class _Sampler:
    """Peak RSS (MiB) per phase; the phase is switched by the log callback."""

    def __init__(self):
        self.phase = "setup"
        self.peak = {}
        self.seconds = {}
        self._t = time.perf_counter()
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            rss = self._proc.memory_info().rss / 2**20
            self.peak[self.phase] = max(self.peak.get(self.phase, 0.0), rss)
            time.sleep(0.05)

    def switch(self, phase):
        now = time.perf_counter()
        self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + now - self._t
        self._t = now
        self.phase = phase

    def stop(self):
        self.switch("done")
        self._stop.set()
        self._thread.join()


def main():
    from _results import machine_info, markdown_table, write_section

    from tomopipe.pipeline import load_workflow, run_series
    from tomopipe.simulate import simulate_insitu

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--folder", type=Path, default=None)
    args = ap.parse_args()
    info = machine_info("tomopipe", "torch")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="tomopipe-series-"))
    sampler = _Sampler()
    t0 = time.perf_counter()
    sampler.switch("simulate")
    series = simulate_insitu(folder, size=args.size)
    t_sim = time.perf_counter() - t0
    state = {"name": None}

    def log(line):
        if line.startswith("== state "):
            state["name"] = line.split()[2]
        elif line.startswith("[") and "]" in line and not line.startswith("[centre]"):
            stage = line[1:line.index("]")]
            if sampler.phase != stage:
                sampler.switch(stage)

    t1 = time.perf_counter()
    sw = load_workflow(series.series_workflow)
    dvc = sw.dvc
    dvc_text = (f"DVC (node spacing {dvc.node_spacing_um:g} µm, subset {dvc.subset_size_um or dvc.node_spacing_um:g} µm, "
                f"search ±{dvc.search_voxels} voxels)")
    res = run_series(sw, progress=False, log=log)
    t_run = time.perf_counter() - t1
    sampler.stop()
    rows = [f"| {k} | {sampler.seconds.get(k, 0):.0f} | {sampler.peak.get(k, 0):.0f} |"
            for k in ["simulate", "raw", "normalized", "sinograms", "volume", "segmentation", "metrics", "truth", "dvc",
                      "dvc_previous", "report"] if k in sampler.seconds]
    val = pd.read_csv(res.report.parent / "validation.csv")
    trends = pd.read_csv(res.report.parent / "trends.csv")
    states = pd.read_csv(res.report.parent / "states.csv")
    body = f"""`python benchmarks/bench_series.py --size {args.size}` — {info['date']}, {info['cpu']}, {info['cores']},
{info['ram']}, load {info['load']} (at the end), tomopipe {info['tomopipe']}, torch {info['torch']}.

The six states of the CuS study (OCV → D1.7V → D1.2V → D0.7V → C2.5V → C3.0V), {args.size}³ voxels of
0.88 µm, simulated (`tomopipe simulate insitu`, {t_sim:.0f} s) and run as one series
(`tomopipe run series.yaml`, {t_run:.0f} s): each state reconstructed (Vo's sorting filter),
segmented by the shipped U-Net, quantified from that segmentation; {dvc_text} against
OCV and between consecutive states; the report. Times summed over the six states; peak resident
memory of the whole process during each stage.

| stage | wall time (s) | peak RAM (MiB) |
|---|---|---|
{chr(10).join(rows)}

Per state, from tomopipe's own segmentation (report `states.csv`):

{markdown_table(states)}

Validation against the simulator's truth (report `validation.csv`; tolerances: inclusions 15 %
where truth > 1000 µm³, cracks 25 %, porosity 1 percentage point, u_z 0.1 voxel in the cathode):

{markdown_table(val)}

The study's trends, checked on the measured values (report `trends.csv`):

{markdown_table(trends)}
"""
    write_section("## Series: six states end to end", body)
    print(body)


if __name__ == "__main__":
    main()
