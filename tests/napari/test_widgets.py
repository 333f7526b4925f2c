"""The plugin's widgets in a real napari viewer (offscreen Qt): the review → correct → fine-tune →
re-segment loop, cancelling, the reader, the Measure widget and ``tomopipe view``."""

import hashlib
import time
from pathlib import Path

import numpy as np
import zarr

from tomopipe.napari import list_versions
from tomopipe.napari._widgets import FinetuneWidget, MeasureWidget, ReviewWidget
from tomopipe.segment import default_model_path, read_card

# the model the test stores were segmented with (the bundled default)
DEFAULT_MODEL = read_card(default_model_path())["name"]


def _tree_digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _wait(qtbot, widget, timeout=300_000):
    """Wait for the widget's worker to finish (errors are shown in its status line)."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def test_review_correct_finetune_resegment(make_napari_viewer, qtbot, store):
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="tomopipe")
    volume, seg = viewer.layers[0], viewer.layers[1]
    assert volume.multiscale and len(volume.data) == 3
    np.testing.assert_allclose(volume.scale, [0.88] * 3)
    assert seg.metadata["schema"]["pore"] == 0 and seg.metadata["source"] == "segmentation"
    before = _tree_digest(store / "segmentation")

    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review)
    review.tile_spin.setValue(16)
    review.rank()
    _wait(qtbot, review)
    assert review.tiles is not None and review.table.rowCount() == len(review.tiles) > 1, review.status.text()
    assert review.tiles["mean_uncertainty"].is_monotonic_decreasing
    # selecting the first row jumps to the most uncertain tile
    review.table.selectRow(0)
    sl = review.current_tile
    top = review.tiles.iloc[0]
    assert (sl[0].start, sl[1].start, sl[2].start) == (top.z0, top.y0, top.x0)
    z_here = int(round(viewer.dims.point[0] / 0.88))
    assert sl[0].start <= z_here < sl[0].stop
    centre = [(sl[a].start + sl[a].stop - 1) / 2 * 0.88 for a in (1, 2)]
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre)
    # the correction below needs a tile with pore, electrolyte and active material inside the
    # sample (no outside voxels: next to the sample's surface, electrolyte painted as pore is
    # also read as the air it borders): the most uncertain such tile (which tile ranks first
    # depends on the model)
    for row in range(review.table.rowCount()):
        review.table.selectRow(row)
        sl = review.current_tile
        n = np.bincount(np.asarray(seg.data[sl]).ravel(), minlength=256)
        if n[0] > 20 and n[1] > 100 and n[2] > 100 and n[255] == 0:  # pore, electrolyte, active
            break
    counts = review.counts_in_view()
    assert counts["voxels"].sum() > 0 and review.counts.rowCount() == len(counts)
    assert {"pore", "electrolyte", "active"} <= set(counts.index)

    # paint: in this tile, what the model calls electrolyte (1) is pore (0)
    corr = review.start_corrections()
    assert corr.data.dtype == np.uint8 and (corr.data == 254).all() and corr.colormap.background_value == 254
    labels = np.asarray(seg.data[sl])
    wrong = labels == 1
    assert wrong.sum() > 100
    idx = tuple(ix + s.start for ix, s in zip(np.nonzero(wrong), sl))
    corr.brush_size = 1  # the brush on a few voxels, then the rest at once (the same Labels API)
    for k in range(3):
        corr.paint(tuple(int(i[k]) for i in idx), 0)
    assert (corr.data[tuple(i[:3] for i in idx)] == 0).all() and (corr.data != 254).sum() == 3
    corr.data_setitem(idx, 0)
    review.mark_reviewed()  # the rest of the tile is accepted as segmented
    review.author.setText("tester")
    review.save()
    _wait(qtbot, review)
    assert getattr(review, "last_saved", None) == "corrections/v001", review.status.text()
    assert list_versions(store, "corrections") == ["v001"]
    assert _tree_digest(store / "segmentation") == before  # the stage output is unchanged
    v1 = zarr.open_group(str(store / "corrections" / "v001"), mode="r")
    assert v1.attrs["author"] == "tester" and v1.attrs["parent_model"]["name"] == DEFAULT_MODEL
    saved = v1["labels"][:]
    np.testing.assert_array_equal(saved[sl][wrong], 0)
    np.testing.assert_array_equal(saved[sl][~wrong], labels[~wrong])  # accepted
    assert v1["reviewed"][:].sum() == wrong.size and (saved[~v1["reviewed"][:]] == 254).all()

    # fine-tune a few iterations in the worker
    ft = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(ft)
    ft.refresh()
    assert ft.version_combo.currentText() == "v001"
    assert Path(ft.model_edit.text()).name == default_model_path().name
    ft.iter_spin.setValue(20)
    ft.lr_spin.setValue(1e-3)
    ft.batch_spin.setValue(6)
    ft.start()
    _wait(qtbot, ft)
    res = ft.result
    assert res is not None and not res.cancelled, ft.status.text()
    assert ft.progress.value() == 20 and "loss" in ft.loss_label.text()
    assert res.path.parent == store.parent / f"{store.name}.models" and res.path.is_file()
    card = res.card
    assert card["training"]["parent_model"]["name"] == DEFAULT_MODEL
    assert card["training"]["corrections"] == "corrections/v001"
    dice = card["metrics"]["reviewed_dice"]
    # the painted class is learnt (a mean over classes is not the figure here: a class with a
    # handful of voxels in the tile, e.g. crack, swings it either way)
    assert dice["after"]["pore"] > dice["before"]["pore"] + 0.3, (dice["before"], dice["after"])
    assert dice["after"]["active"] > 0.9, (dice["before"], dice["after"])
    assert Path(ft.model_edit.text()) == res.path

    # re-segment the tile as a new segmentation version, through the pipeline's stage
    ft.scope_combo.setCurrentText("current tile")
    ft.resegment()
    _wait(qtbot, ft)
    assert ft.last_version == "segmentations/v001", ft.status.text()
    new = viewer.layers[-1]
    assert new.metadata["source"] == "segmentations/v001"
    np.testing.assert_allclose(new.translate, [s.start * 0.88 for s in sl])
    out = np.asarray(new.data)
    assert out.shape == tuple(s.stop - s.start for s in sl)
    # the corrected voxels now carry the corrected class
    assert (out[wrong] == 0).mean() > 0.8
    assert _tree_digest(store / "segmentation") == before
    info = zarr.open_group(str(store / "segmentations" / "v001"), mode="r").attrs
    assert info["tomopipe"]["stage"] == "segmentations/v001" and info["model"]["sha256"] == card["weights"]["sha256"]


def _saved_corrections(store):
    """A corrections version v001 (one tile reviewed, a few voxels painted), written by the logic."""
    from tomopipe.napari import save_corrections

    lab = zarr.open_array(str(store / "segmentation" / "labels"), mode="r")[:]
    corr = np.full(lab.shape, 254, np.uint8)
    tile = (slice(16, 32), slice(16, 32), slice(16, 32))
    corr[20:24, 20:24, 20:24] = 2
    return save_corrections(store, corr, reviewed_regions=[tile], author="fixture"), tile


def test_finetune_cancel_keeps_ui_responsive(make_napari_viewer, qtbot, store):
    from qtpy.QtCore import QTimer

    _saved_corrections(store)
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="tomopipe")
    ft = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(ft)
    ft.refresh()
    ft.iter_spin.setValue(5000)
    ft.batch_spin.setValue(2)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    ft.start()
    qtbot.waitUntil(lambda: ft.progress.value() >= 3, timeout=120_000)
    # the viewer answers while training runs: move through the slices
    for z in range(0, 48, 8):
        viewer.dims.set_point(0, z * 0.88)
        qtbot.wait(10)
    t_cancel = time.perf_counter()
    ft.cancel_btn.click()
    _wait(qtbot, ft)
    timer.stop()
    stopped_after = time.perf_counter() - t_cancel
    assert ft.result.cancelled and ft.result.path is None
    assert "cancelled" in ft.status.text()
    assert ft.progress.value() < 5000
    assert not (store.parent / f"{store.name}.models").exists()  # nothing written
    gaps = np.diff(ticks)
    assert len(ticks) > 10 and gaps.max() < 2.0, f"event loop blocked for {gaps.max():.2f} s"
    assert stopped_after < 30


def test_reader_opens_volume_only_and_says_why(make_napari_viewer, volume_only_store):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    seen = []
    notification_manager.notification_ready.connect(lambda n: seen.append(str(n.message)))
    layers = viewer.open(str(volume_only_store), plugin="tomopipe")
    assert [ly.__class__.__name__ for ly in layers] == ["Image"]
    notes = layers[0].metadata["notes"]
    assert any("no segmentation stage" in n for n in notes)
    assert any("no segmentation stage" in m for m in seen)
    # the Review widget says the same instead of failing
    review = ReviewWidget(viewer)
    assert review.rank() is None and "no complete segmentation" in review.status.text()
    assert review.start_corrections() is None


def test_reader_claims_stores_only(tmp_path, store):
    from napari.plugins import _npe2

    from tomopipe.napari._reader import get_reader

    assert get_reader(str(store)) is not None
    assert get_reader([str(store)]) is not None
    (tmp_path / "plain").mkdir()
    (tmp_path / "f.zarr").write_text("not a store")
    for p in (tmp_path / "plain", tmp_path / "f.zarr", tmp_path / "missing.zarr", str(store / "volume")):
        assert get_reader(str(p)) is None
    # dropping the folder: napari lists tomopipe among the readers of the store
    _npe2.pm.discover()
    assert "tomopipe" in _npe2.get_readers(str(store))


def test_corrections_of_wrong_dtype_or_shape_refused_in_widget(make_napari_viewer, qtbot, store):
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="tomopipe")
    review = ReviewWidget(viewer)
    corr = review.start_corrections()
    corr.data = np.zeros(corr.data.shape, dtype=np.int32)  # e.g. a Labels layer made by hand
    assert review.save() is None
    assert "dtype int32 is not uint8" in review.status.text()
    corr.data = np.full((8, 8, 8), 254, dtype=np.uint8)
    assert review.save() is None
    assert "shape (8, 8, 8)" in review.status.text()
    assert not (store / "corrections").exists()


def test_measure_widget_plot_and_csv(make_napari_viewer, store, tmp_path):
    import pandas as pd

    from tomopipe.quantify import layer_stats

    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="tomopipe")
    m = MeasureWidget(viewer)
    m.n_spin.setValue(6)
    m.layer_combo.setCurrentText(viewer.layers[1].name)
    table = m.measure()
    assert table is not None and len(table) == 6, m.status.text()
    assert m.ax.lines and m.ax.get_xlabel() == "z (µm)"
    out = m.export_csv(tmp_path / "layers.csv")
    back = pd.read_csv(out, index_col=0)
    lab = zarr.open_array(str(store / "segmentation" / "labels"), mode="r")
    schema = dict(lab.attrs["labels"])
    ref = layer_stats(lab[:], 0.88, schema=schema, n_layers=6, pore_labels=("pore", "crack"),
                      exclude=("outside",)).per_layer
    np.testing.assert_allclose(back["porosity"], ref["porosity"], rtol=1e-5)
    np.testing.assert_allclose(back["fraction_active"], ref["fraction_active"], rtol=1e-5)
    np.testing.assert_allclose(back["volume_um3"], ref["n_voxels"] * 0.88**3, rtol=1e-5)


def test_view_command_opens_store_with_widgets(monkeypatch, store, qtbot, x_display):
    import napari
    from typer.testing import CliRunner

    from tomopipe.cli import app

    opened = []
    monkeypatch.setattr(napari, "run", lambda *a, **k: opened.append(napari.current_viewer()))
    res = CliRunner().invoke(app, ["view", str(store)])
    assert res.exit_code == 0, res.output
    viewer = opened[0]
    try:
        assert [ly.name for ly in viewer.layers] == ["D0p7V volume", "D0p7V segmentation"]
        assert set(viewer.window.dock_widgets) >= {"Review", "Fine-tune", "Measure"}
        assert viewer.canvas.overlays.scale_bar.visible
    finally:
        viewer.close()
    bad = CliRunner().invoke(app, ["view", str(store / "volume")])
    assert bad.exit_code == 2 and "not a tomopipe store" in bad.output


def test_finetune_widget_refuses_a_bad_model_before_writing(make_napari_viewer, qtbot, store, bad_model):
    _saved_corrections(store)
    viewer = make_napari_viewer()
    viewer.open(str(store), plugin="tomopipe")
    ft = FinetuneWidget(viewer)
    ft.refresh()
    ft.model_edit.setText(str(bad_model))
    ft.iter_spin.setValue(2)
    ft.start()
    _wait(qtbot, ft)
    assert ft.result is None and "sha256" in ft.status.text()
    assert not (store.parent / f"{store.name}.models").exists()
    ft.scope_combo.setCurrentText("whole store")
    ft.resegment()
    _wait(qtbot, ft)
    assert "sha256" in ft.status.text() and not (store / "segmentations").exists()


def test_real_tooth_store(make_napari_viewer, tooth_path, tmp_path):
    """Real APS data (tooth.h5, μ in 1/pixel, no voxel size, 2 slices) with a multi-Otsu segmentation:
    the reader shows it in voxels, the Review widget says why it cannot rank (no probabilities)."""
    import yaml

    from tomopipe.pipeline import load_workflow, run_workflow

    wf_path = tmp_path / "tooth.yaml"
    wf_path.write_text(yaml.safe_dump({
        "name": "tooth", "input": {"path": str(tooth_path)}, "geometry": {"center": "auto"},
        "normalize": {"flats": "mean"}, "recon": {"rows_per_chunk": 2},
        "output": {"store": str(tmp_path / "tooth.zarr"), "pyramid_levels": 2, "preview": False},
        "segment": {"method": "multiotsu", "classes": ["pore", "electrolyte", "active"]}}))
    store = run_workflow(load_workflow(wf_path), progress=False).store
    viewer = make_napari_viewer()
    volume, seg = viewer.open(str(store), plugin="tomopipe")
    assert volume.multiscale and volume.data[0].shape == (2, 640, 640) and volume.data[1].shape == (1, 320, 320)
    np.testing.assert_allclose(volume.scale, [1, 1, 1])  # no voxel size: napari's pixels
    assert volume.metadata["mu_units"] == "1/pixel"
    mu = zarr.open_array(str(store / "volume" / "0"), mode="r")[:]
    lo, hi = volume.contrast_limits
    assert np.percentile(mu, 1) < hi and lo < np.percentile(mu, 99) and lo < hi
    assert set(np.unique(np.asarray(seg.data))) <= {0, 1, 2}
    review = ReviewWidget(viewer)
    assert review.rank() is None and "no probabilities (method 'multiotsu'" in review.status.text()
    counts = review.counts_in_view()
    assert counts["voxels"].sum() == 640 * 640
