"""The plugin's widgets in a real napari viewer (offscreen Qt): the review → correct → fine-tune →
re-segment loop, cancelling, the reader, the Measure widget and ``tomopipe view``."""

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from tomopipe.napari import list_versions
from tomopipe.napari._widgets import FinetuneWidget, MeasureWidget, ReviewWidget


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
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], [(sl[a].start + sl[a].stop - 1) / 2 * 0.88 for a in (1, 2)])
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
    corr.data_setitem(idx, 0)
    review.mark_reviewed()  # the rest of the tile is accepted as segmented
    review.author.setText("tester")
    review.save()
    _wait(qtbot, review)
    assert getattr(review, "last_saved", None) == "corrections/v001", review.status.text()
    assert list_versions(store, "corrections") == ["v001"]
    assert _tree_digest(store / "segmentation") == before  # the stage output is unchanged
    v1 = zarr.open_group(str(store / "corrections" / "v001"), mode="r")
    assert v1.attrs["author"] == "tester" and v1.attrs["parent_model"]["name"] == "tomopipe-unet25d-cus-v1"
    saved = v1["labels"][:]
    np.testing.assert_array_equal(saved[sl][wrong], 0)
    np.testing.assert_array_equal(saved[sl][~wrong], labels[~wrong])  # accepted
    assert v1["reviewed"][:].sum() == wrong.size and (saved[~v1["reviewed"][:]] == 254).all()

    # fine-tune a few iterations in the worker
    ft = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(ft)
    ft.refresh()
    assert ft.version_combo.currentText() == "v001"
    assert Path(ft.model_edit.text()).name == "tomopipe-unet25d-cus-v1.safetensors"
    ft.iter_spin.setValue(10)
    ft.lr_spin.setValue(3e-3)
    ft.batch_spin.setValue(6)
    ft.start()
    _wait(qtbot, ft)
    res = ft.result
    assert res is not None and not res.cancelled, ft.status.text()
    assert ft.progress.value() == 10 and "loss" in ft.loss_label.text()
    assert res.path.parent == store.parent / f"{store.name}.models" and res.path.is_file()
    card = res.card
    assert card["training"]["parent_model"]["name"] == "tomopipe-unet25d-cus-v1"
    assert card["training"]["corrections"] == "corrections/v001"
    dice = card["metrics"]["reviewed_dice"]
    assert dice["mean_after"] > dice["mean_before"]
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
