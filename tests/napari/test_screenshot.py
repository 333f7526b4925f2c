"""A real rendering under Xvfb (Qt's xcb platform, Mesa's OpenGL): the volume with the labels over it.

Qt's offscreen platform draws nothing, so the viewer runs in a subprocess on the X display of the
session (a private Xvfb when none is set). The PNGs stay in the test's folder; with
``TOMOPIPE_SCREENSHOT_DIR`` set they are also copied there (the README's picture comes from it).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from qtpy.QtWidgets import QApplication
    import napari
    from tomopipe.napari import view

    store, out = sys.argv[1], sys.argv[2]
    viewer = view(store)
    win = viewer.window._qt_window
    win.resize(1270, 860)
    viewer.window.show()
    review = viewer.window.dock_widgets["Review"]
    review.tile_spin.setValue(16)
    review.rank()
    t0 = time.time()
    while review.busy and time.time() - t0 < 120:
        QApplication.processEvents()
        time.sleep(0.02)
    # the most uncertain tile whose middle slice shows several classes (the ranking depends on
    # the model: a tile in the collector shows only electrolyte and collector)
    seg = viewer.layers[1]
    for row in range(review.table.rowCount()):
        review.table.selectRow(row)
        QApplication.processEvents()
        if len(np.unique(np.asarray(seg.data[review.current_tile[0].start + 8]))) >= 4:
            break
    viewer.dims.set_point(0, float(review.current_tile[0].start + 8) * 0.88)
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.02)
    canvas = viewer.screenshot(out + "/canvas.png", canvas_only=True, flash=False)
    window = viewer.screenshot(out + "/window.png", canvas_only=False, flash=False)
    z = int(round(viewer.dims.point[0] / 0.88))
    present = sorted(int(v) for v in np.unique(np.asarray(seg.data[z])))
    colours = {int(k): list(map(float, seg.colormap.map(np.array([k]))[0])) for k in present}
    json.dump({"z": z, "present": present, "colours": colours, "canvas": list(canvas.shape),
               "window": list(window.shape), "tiles": review.table.rowCount()}, open(out + "/info.json", "w"))
    viewer.close()
""")


def _hues(rgb):
    import colorsys

    flat = rgb.reshape(-1, 3).astype(float) / 255
    sat = flat.max(1) - flat.min(1)
    coloured = flat[sat > 0.12]
    return np.array([colorsys.rgb_to_hsv(*c)[0] for c in coloured]), len(flat)


def test_screenshot_volume_with_labels(demo_run, x_display, tmp_path):
    store, _ = demo_run
    # napari's settings in the test folder (dark theme: no "system theme needs Qt6" notice on the canvas)
    (tmp_path / "napari.yaml").write_text("appearance:\n  theme: dark\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": x_display, "NAPARI_CONFIG": str(tmp_path / "napari.yaml")}
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(store), str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["tiles"] > 1
    import matplotlib.image as mpimg

    png = (mpimg.imread(tmp_path / "canvas.png")[..., :3] * 255).astype(np.uint8)
    assert png.shape[0] > 200 and png.shape[1] > 200
    # not blank: the volume and the labels cover a good part of the canvas, with structure
    grey = png.mean(2)
    assert grey.std() > 10 and (grey > 20).mean() > 0.1 and len(np.unique(png.reshape(-1, 3), axis=0)) > 100
    # more than one label colour: the hues of the classes on this slice are all there
    hues, n = _hues(png)
    expected = []
    for v in info["present"]:
        r, g, b, a = info["colours"][str(v)]
        if a > 0 and max(r, g, b) - min(r, g, b) > 0.2:
            import colorsys

            expected.append(colorsys.rgb_to_hsv(r, g, b)[0])
    assert len(expected) >= 2
    found = [h for h in expected if (np.abs(((hues - h + 0.5) % 1.0) - 0.5) < 0.04).sum() > 0.002 * n]
    assert len(found) >= 2, (expected, found)
    out = os.environ.get("TOMOPIPE_SCREENSHOT_DIR")
    if out:
        for name in ("canvas.png", "window.png"):
            shutil.copy(tmp_path / name, os.path.join(out, f"napari-{name}"))
