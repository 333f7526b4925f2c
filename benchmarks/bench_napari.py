"""napari plugin: time to open a 4 GiB store and to step through 20 slices, tomopipe's reader
side by side with napari's built-in zarr reader and with a single-scale dask view.

A store with a 1024³ float32 volume (4 GiB, written for real: a z gradient, spheres and noise,
zstd) and its 2× pyramid (4 levels) is made once in a scratch folder. Each method opens it in
a fresh napari window under Xvfb (Qt's xcb platform, Mesa llvmpipe OpenGL, so drawing is real):

- ``tomopipe``: the plugin's reader (multiscale, µm scale, display range from four planes of
  the coarsest level);
- ``napari builtin``: napari's own reader on the ``volume/`` group (multiscale, no scale; napari
  computes the display range itself);
- ``single-scale dask``: level 0 alone as one dask array (what a reader without the pyramid does).

*open* = reader + layer + first frame drawn (`processEvents` until the canvas painted; napari's
plugin discovery and the readers' imports happen before the clock starts, for every method);
*step* = `dims.set_point` to the next slice + the frame drawn, 20 consecutive slices from the
middle; the methods alternate, three rounds, medians reported. The page cache is warm after
the first round for every method alike.

    python benchmarks/bench_napari.py [--write] [--folder DIR] [--size 1024]

Runs itself under ``xvfb-run`` when no ``DISPLAY`` is set (Debian's xvfb).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _results import machine_info, write_section

METHODS = ("tomopipe", "napari builtin", "single-scale dask")


def make_store(path, n):
    """The benchmark store: volume/ with levels 0..3 written through the stage pattern."""
    import dask.array as da

    from tomopipe.io import write_pyramid
    from tomopipe.pipeline.stage import Runner, Stage
    from tomopipe.pipeline.store import Store, StoreLock

    def block(b, block_info=None):
        (z0, z1), (y0, y1), (x0, x1) = block_info[0]["array-location"]
        z, y, x = np.ogrid[z0:z1, y0:y1, x0:x1]
        rng = np.random.default_rng(z0 * 7 + y0 * 3 + x0)
        v = 10 + 20 * z / n + 15 * (np.sin(x / 23.0) * np.sin(y / 31.0) * np.sin(z / 17.0) > 0.3)
        return (v + rng.normal(0, 2, v.shape)).astype(np.float32)

    def write(w):
        vol = da.zeros((n, n, n), chunks=(16, 256, 256), dtype=np.float32).map_blocks(block, dtype=np.float32)
        a = w.create_array("0", shape=vol.shape, chunks=(16, 256, 256), dtype="float32", dims=("z", "y", "x"),
                           attrs={"units": "1/cm"})
        w.store_arrays(vol, a)
        voxel = [0.88, 0.88, 0.88]
        ms = write_pyramid(w.group, levels=4, voxel_size_um=voxel, tile=256, attrs={"units": "1/cm"})
        return {"multiscales": ms, "units": "1/cm", "voxel_size_um": voxel}

    with StoreLock(path):
        Runner(Store(path, create=True)).run(Stage("volume", {"bench": n}, {}, write))


CHILD = r"""
import json, sys, time
import numpy as np
from qtpy.QtWidgets import QApplication
import napari, dask.array as da, zarr

store, method = sys.argv[1], sys.argv[2]
viewer = napari.Viewer(show=True)
viewer.window._qt_window.resize(1280, 900)
app = QApplication.instance()
canvas = viewer.window._qt_viewer.canvas
painted = []
canvas.events.draw.connect(lambda e: painted.append(time.perf_counter()))
# plugin discovery and imports happen once per napari session: done before the clock starts
from napari.plugins import _initialize_plugins
_initialize_plugins()
import tomopipe.napari._reader, napari_builtins.io  # noqa: E401
for _ in range(20):
    app.processEvents()
time.sleep(0.2)
app.processEvents()

def frame(t0, timeout=60):
    # wait for the first draw after t0
    while not (painted and painted[-1] > t0):
        app.processEvents()
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("no frame drawn")
    return painted[-1]

t0 = time.perf_counter()
if method == "tomopipe":
    layers = viewer.open(store, plugin="tomopipe")
elif method == "napari builtin":
    layers = viewer.open(store + "/volume", plugin="napari")
else:
    layers = [viewer.add_image(da.from_zarr(zarr.open_array(store + "/volume/0", mode="r")))]
t_layer = time.perf_counter() - t0
canvas.native.update()
t_open = frame(t0) - t0
layer = layers[0]
axis0 = layer.scale[0]
z_mid = int(round(viewer.dims.point[0] / axis0))
steps = []
for z in range(z_mid + 1, z_mid + 21):
    t = time.perf_counter()
    viewer.dims.set_point(0, z * axis0)
    canvas.native.update()
    steps.append(frame(t) - t)
json.dump({"method": method, "open_s": t_open, "layer_s": t_layer, "steps_s": steps,
           "level": int(getattr(layer, "data_level", 0)), "contrast_limits": list(map(float, layer.contrast_limits))},
          sys.stdout)
viewer.close()
"""


def run_child(store, method, display_env):
    env = {**os.environ, **display_env, "QT_QPA_PLATFORM": "xcb"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(store), method], env=env, capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{method}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", default="/tmp/tomopipe-bench-napari")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="write the section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        exe = shutil.which("xvfb-run")
        if exe is None:
            sys.exit("no DISPLAY and no xvfb-run: apt-get install xvfb")
        os.execv(exe, [exe, "-a", "-s", "-screen 0 1600x1000x24", sys.executable, *sys.argv])
    store = Path(args.folder) / f"bench{args.size}.zarr"
    if not (store / "volume" / "zarr.json").is_file():
        t0 = time.perf_counter()
        make_store(store, args.size)
        print(f"wrote {store} in {time.perf_counter() - t0:.0f} s", flush=True)
    load_before = os.getloadavg()
    results = {m: [] for m in METHODS}
    for r in range(args.rounds):
        for m in METHODS:
            res = run_child(store, m, {"DISPLAY": os.environ["DISPLAY"]})
            results[m].append(res)
            print(f"round {r}: {m}: open {res['open_s']:.2f} s, step median {np.median(res['steps_s']) * 1e3:.0f} ms, "
                  f"max {max(res['steps_s']) * 1e3:.0f} ms, level {res['level']}", flush=True)
    info = machine_info("napari", "zarr", "dask")
    info["load before"] = "{:.2f} {:.2f} {:.2f}".format(*load_before)
    rows = []
    for m in METHODS:
        opens = [r["open_s"] for r in results[m]]
        steps = np.concatenate([r["steps_s"] for r in results[m]])
        rows.append((m, np.median(opens), np.median(steps), np.percentile(steps, 90), results[m][-1]["level"]))
    base = rows[0]
    body = [f"{args.size}³ float32 volume ({args.size**3 * 4 / 2**30:.1f} GiB, chunks 16×256×256, zstd, 4-level 2× "
            "pyramid) in a 1280×900 napari window under Xvfb (xcb, Mesa llvmpipe); open = reader + first frame "
            "(plugins already loaded), step = next slice + frame, 20 slices × "
            f"{args.rounds} rounds, medians (page cache warm after round 1). Goal: open < 2 s, step < 100 ms.", "",
            "| method | open (s) | step median (ms) | step p90 (ms) | level on screen | open vs tomopipe |",
            "|---|---|---|---|---|---|"]
    for m, o, s, p90, lev in rows:
        body.append(f"| {m} | {o:.2f} | {s * 1e3:.0f} | {p90 * 1e3:.0f} | {lev} | {o / base[1]:.1f}× |")
    body += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
             "", "`python benchmarks/bench_napari.py --write`"]
    text = "\n".join(body)
    print(text)
    if args.write:
        write_section("## napari plugin: opening a 4 GiB store", text)


if __name__ == "__main__":
    main()
