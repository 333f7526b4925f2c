"""Dock widgets: Review (rank, jump, count, correct, save), Fine-tune (train, re-segment), Measure.

The widgets only wire napari to the Qt-free functions of :mod:`tomopipe.napari`; long work runs
in napari's thread workers so the viewer stays responsive.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ._finetune import finetune, parent_model_path
from ._measure import layer_profile, plot_profile, write_profile_csv
from ._review import class_counts, rank_tiles, tile_slices, view_region
from ._schema import NOT_REVIEWED, label_colours, label_schema
from ._store import SEGMENTATION, list_versions, open_store
from ._versions import CORRECTIONS, check_corrections, resegment, save_corrections

__all__ = ["ReviewWidget", "FinetuneWidget", "MeasureWidget"]


def _tomopipe_layers(viewer, kind=None):
    return [ly for ly in viewer.layers if ly.metadata.get("tomopipe_store")
            and (kind is None or ly.metadata.get("kind") == kind)]


def _store_of(viewer):
    """The store of the selected tomopipe layer, else of the first one; None without any."""
    active = viewer.layers.selection.active
    if active is not None and active.metadata.get("tomopipe_store"):
        return Path(active.metadata["tomopipe_store"])
    layers = _tomopipe_layers(viewer)
    return Path(layers[0].metadata["tomopipe_store"]) if layers else None


def _labels_layer(viewer, store, source=SEGMENTATION):
    for ly in _tomopipe_layers(viewer, "labels"):
        if Path(ly.metadata["tomopipe_store"]) == store and ly.metadata.get("source") == source:
            return ly
    return None


def _message(label, text, *, error=False):
    label.setText(text)
    label.setStyleSheet("color: #ff6b6b;" if error else "")
    if error:
        from napari.utils.notifications import show_error

        show_error(text)


def _worker(func, *args, **kwargs):
    """A napari thread worker whose errors go to our `errored` handler (not re-raised into Qt)."""
    from napari.qt.threading import create_worker

    return create_worker(func, *args, _ignore_errors=True, **kwargs)


def _run(owner, worker, status, on_done, *, busy=()):
    """Start a napari worker for widget `owner`: `on_done(result)` on success, the error in `status`
    otherwise; ``owner.busy`` is True until the worker has finished."""
    owner.busy = True
    for b in busy:
        b.setEnabled(False)

    def done(result):
        on_done(result)

    def failed(exc):
        _message(status, f"error: {exc}", error=True)

    def finished():
        for b in busy:
            b.setEnabled(True)
        owner.busy = False

    worker.returned.connect(done)
    worker.errored.connect(failed)
    worker.finished.connect(finished)
    worker.start()
    return worker


class ReviewWidget(QWidget):
    """Rank tiles by uncertainty, jump to them, count classes in view, paint and save corrections."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.tiles = None
        self.worker = None
        self.busy = False
        self.current_tile = None
        lay = QVBoxLayout(self)
        self.store_label = QLabel("")
        lay.addWidget(self.store_label)
        row = QHBoxLayout()
        self.prob_btn = QPushButton("Probabilities")
        self.unc_btn = QPushButton("Uncertainty")
        row.addWidget(self.prob_btn)
        row.addWidget(self.unc_btn)
        lay.addLayout(row)
        form = QFormLayout()
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(4, 4096)
        self.tile_spin.setValue(64)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(["least_confidence", "entropy"])
        form.addRow("tile (voxels)", self.tile_spin)
        form.addRow("uncertainty", self.kind_combo)
        lay.addLayout(form)
        self.rank_btn = QPushButton("Rank tiles by uncertainty")
        lay.addWidget(self.rank_btn)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["z", "y", "x", "mean", "max"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        lay.addWidget(self.table)
        lay.addWidget(QLabel("classes in view"))
        self.counts = QTableWidget(0, 2)
        self.counts.setHorizontalHeaderLabels(["voxels", "fraction"])
        self.counts.setEditTriggers(QAbstractItemView.NoEditTriggers)
        lay.addWidget(self.counts)
        row = QHBoxLayout()
        self.start_btn = QPushButton("Corrections layer")
        self.mark_btn = QPushButton("Mark tile reviewed")
        self.save_btn = QPushButton("Save corrections")
        for b in (self.start_btn, self.mark_btn, self.save_btn):
            row.addWidget(b)
        lay.addLayout(row)
        self.author = QLineEdit()
        self.author.setPlaceholderText("author (default: login name)")
        lay.addWidget(self.author)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.prob_btn.clicked.connect(lambda: self.show_probabilities())
        self.unc_btn.clicked.connect(lambda: self.show_uncertainty())
        self.rank_btn.clicked.connect(lambda: self.rank())
        self.table.itemSelectionChanged.connect(self._on_select)
        self.start_btn.clicked.connect(lambda: self.start_corrections())
        self.mark_btn.clicked.connect(lambda: self.mark_reviewed())
        self.save_btn.clicked.connect(lambda: self.save())
        self.viewer.dims.events.current_step.connect(self._refresh_counts)
        self.viewer.scene.camera.events.center.connect(self._refresh_counts)
        self.viewer.layers.events.inserted.connect(self._refresh_store)
        self._refresh_store()

    # --- helpers ---------------------------------------------------------------------
    def _refresh_store(self, *args):
        store = _store_of(self.viewer)
        self.store_label.setText(f"store: {store}" if store else "open a tomopipe store (File → Open Folder)")

    def _view(self):
        store = _store_of(self.viewer)
        if store is None:
            raise ValueError("no tomopipe store is open")
        return open_store(store)

    def show_probabilities(self):
        """Add the class probabilities (4-D, a slider over the classes) as an image layer."""
        try:
            self.viewer.add_layer(_to_layer(self._view().probabilities_layer()))
        except Exception as exc:  # shown, never raised into Qt
            _message(self.status, f"error: {exc}", error=True)

    def show_uncertainty(self):
        """Add the uncertainty map (computed lazily per displayed slice) as an image layer."""
        try:
            self.viewer.add_layer(_to_layer(self._view().uncertainty_layer(kind=self.kind_combo.currentText())))
        except Exception as exc:
            _message(self.status, f"error: {exc}", error=True)

    def rank(self):
        """Rank the tiles of the segmentation by mean uncertainty (in a worker)."""
        try:
            view = self._view()
            prob, _ = view.probabilities()
            labels = view.labels_group()["labels"]
        except Exception as exc:
            _message(self.status, f"error: {exc}", error=True)
            return None
        t = self.tile_spin.value()
        schema = label_schema(labels.attrs)
        outside = [schema.classes[c] for c in schema.outside] if schema else [255]
        self.scale = view.scale
        _message(self.status, f"ranking {t}³ tiles…")
        self.worker = _worker(rank_tiles, prob, tile=(t, t, t), labels=labels, outside=outside,
                                    kind=self.kind_combo.currentText())
        return _run(self, self.worker, self.status, self._show_tiles, busy=[self.rank_btn])

    def _show_tiles(self, tiles):
        self.tiles = tiles
        self.table.setRowCount(len(tiles))
        for i, r in tiles.iterrows():
            vals = [f"{int(r.z0)}–{int(r.z1)}", f"{int(r.y0)}–{int(r.y1)}", f"{int(r.x0)}–{int(r.x1)}",
                    f"{r.mean_uncertainty:.3f}",
                    f"{r.max_uncertainty:.3f}"]
            for j, v in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(v))
        _message(self.status, f"{len(tiles)} tiles ranked; most uncertain first")

    def _on_select(self):
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.jump(rows[0].row())

    def jump(self, rank):
        """Show tile `rank` of the ranking: its middle slice, centred and zoomed to it."""
        r = self.tiles.iloc[int(rank)]
        sl = tile_slices(r)
        self.current_tile = sl
        scale = np.asarray(self.scale)
        centre = np.array([(s.start + s.stop - 1) / 2 for s in sl]) * scale
        z_axis = [a for a in range(3) if a not in self.viewer.dims.displayed]
        for a in z_axis:
            self.viewer.dims.set_point(a, centre[a])
        disp = list(self.viewer.dims.displayed)
        camera = self.viewer.scene.camera
        camera.center = tuple(centre[disp])
        extent = max((sl[a].stop - sl[a].start) * scale[a] for a in disp)
        camera.zoom = 0.8 * max(min(self.viewer.canvas.size), 100) / extent
        for ly in _tomopipe_layers(self.viewer, "labels"):
            ly.metadata["current_tile"] = [[s.start, s.stop] for s in sl]
        self._refresh_counts()
        _message(self.status, f"tile {rank}: z {sl[0].start}–{sl[0].stop}, y {sl[1].start}–{sl[1].stop}, "
                              f"x {sl[2].start}–{sl[2].stop}, mean uncertainty {r.mean_uncertainty:.3f}")

    def counts_in_view(self):
        """Per-class voxel counts of the segmentation in the current view (a DataFrame)."""
        store = _store_of(self.viewer)
        layer = _labels_layer(self.viewer, store) if store else None
        if layer is None:
            return None
        schema = label_schema({"labels": layer.metadata.get("schema")})
        if schema is None:
            return None
        step = np.round(layer.world_to_data(self.viewer.dims.point)).astype(int)
        corners = layer.corner_pixels if np.any(layer.corner_pixels[1]) else None
        region = view_region(layer.data.shape, current_step=step, displayed=self.viewer.dims.displayed,
                             corners=corners)
        return class_counts(layer.data, region, schema)

    def _refresh_counts(self, *args):
        try:
            table = self.counts_in_view()
        except Exception:  # a view being set up: counts come with the next event
            return
        if table is None:
            return
        self.counts.setRowCount(len(table))
        self.counts.setVerticalHeaderLabels([str(i) for i in table.index])
        for i, (_, r) in enumerate(table.iterrows()):
            self.counts.setItem(i, 0, QTableWidgetItem(str(int(r.voxels))))
            self.counts.setItem(i, 1, QTableWidgetItem(f"{r.fraction:.3f}"))

    # --- corrections -----------------------------------------------------------------
    def corrections_layer(self):
        store = _store_of(self.viewer)
        for ly in _tomopipe_layers(self.viewer, "corrections"):
            if Path(ly.metadata["tomopipe_store"]) == store:
                return ly
        return None

    def start_corrections(self, source=SEGMENTATION):
        """Add an empty corrections layer (254 = not reviewed) over the segmentation `source`."""
        from napari.utils.colormaps import DirectLabelColormap

        existing = self.corrections_layer()
        if existing is not None:
            return existing
        try:
            view = self._view()
            labels = view.labels_group(source)["labels"]
        except Exception as exc:
            _message(self.status, f"error: {exc}", error=True)
            return None
        schema = label_schema(labels.attrs)
        cmap = DirectLabelColormap(color_dict=label_colours(schema), background_value=NOT_REVIEWED)
        layer = self.viewer.add_labels(
            np.full(view.shape, NOT_REVIEWED, dtype=np.uint8), name=f"{view.path.stem} corrections", scale=view.scale,
            colormap=cmap, opacity=0.8, units=view._units(), axis_labels=("z", "y", "x"),
            metadata={"tomopipe_store": str(view.path), "kind": "corrections", "source": source,
                      "schema": schema.classes, "reviewed_regions": []})
        layer.selected_label = next(iter(schema.classes.values()))
        layer.mode = "paint"
        _message(self.status, "paint corrections (classes: " + ", ".join(f"{k}={v}" for k, v in schema.classes.items())
                 + f"); the eraser sets {NOT_REVIEWED} = not reviewed")
        return layer

    def mark_reviewed(self, region=None):
        """Mark `region` (default: the current tile) reviewed: its unpainted voxels keep the segmentation."""
        layer = self.corrections_layer() or self.start_corrections()
        region = region or self.current_tile
        if layer is None or region is None:
            _message(self.status, "select a tile first", error=True)
            return
        layer.metadata["reviewed_regions"].append(tuple(region))
        n = len(layer.metadata["reviewed_regions"])
        _message(self.status, f"{n} region(s) marked reviewed (saved with the corrections)")

    def save(self):
        """Save the corrections layer as a new version corrections/vNNN (in a worker)."""
        layer = self.corrections_layer()
        store = _store_of(self.viewer)
        if layer is None or store is None:
            _message(self.status, "no corrections layer to save", error=True)
            return None
        meta = layer.metadata
        schema = label_schema({"labels": meta.get("schema")})
        try:  # refuse wrong shapes / dtypes at once, before a worker starts
            shape = open_store(store).shape
            check_corrections(layer.data, shape=shape, schema=schema, name=layer.name)
        except Exception as exc:
            _message(self.status, f"error: {exc}", error=True)
            return None
        self.worker = _worker(save_corrections, store, np.array(layer.data),  # a copy: painting may go on
                                    source=meta.get("source", SEGMENTATION),
                                    reviewed_regions=list(meta.get("reviewed_regions", [])),
                                    author=self.author.text().strip() or None, layer_name=layer.name)
        _message(self.status, "saving corrections…")
        return _run(self, self.worker, self.status, self._saved, busy=[self.save_btn])

    def _saved(self, version):
        self.last_saved = version
        _message(self.status, f"saved {version}")


class _Progress(QObject):
    step = Signal(int, int, object)


class FinetuneWidget(QWidget):
    """Fine-tune the model on saved corrections (progress, loss, cancel), then re-segment."""

    def __init__(self, napari_viewer):
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.worker = None
        self.busy = False
        self.result = None
        self.last_version = None
        self._cancel = threading.Event()
        self._losses = []
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.version_combo = QComboBox()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model (default: the corrections' parent model)")
        self.iter_spin = QSpinBox()
        self.iter_spin.setRange(1, 100000)
        self.iter_spin.setValue(300)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-6, 1.0)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(5e-4)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(12)
        form.addRow("corrections", self.version_combo)
        form.addRow("model", self.model_edit)
        form.addRow("iterations", self.iter_spin)
        form.addRow("learning rate", self.lr_spin)
        form.addRow("planes per step", self.batch_spin)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.refresh_btn = QPushButton("Refresh")
        self.train_btn = QPushButton("Fine-tune")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        for b in (self.refresh_btn, self.train_btn, self.cancel_btn):
            row.addWidget(b)
        lay.addLayout(row)
        self.progress = QProgressBar()
        lay.addWidget(self.progress)
        self.loss_label = QLabel("loss: –")
        lay.addWidget(self.loss_label)
        self.figure = Figure(figsize=(3, 1.6), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.ax = self.figure.add_subplot(111)
        lay.addWidget(self.canvas)
        form2 = QFormLayout()
        self.scope_combo = QComboBox()
        self.scope_combo.addItems(["current tile", "current view", "whole store"])
        form2.addRow("re-segment", self.scope_combo)
        lay.addLayout(form2)
        self.seg_btn = QPushButton("Re-segment with the new model")
        lay.addWidget(self.seg_btn)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self._signals = _Progress()
        self._signals.step.connect(self._on_step)
        self.refresh_btn.clicked.connect(lambda: self.refresh())
        self.train_btn.clicked.connect(lambda: self.start())
        self.cancel_btn.clicked.connect(lambda: self.cancel())
        self.seg_btn.clicked.connect(lambda: self.resegment())
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.refresh()

    def refresh(self, *args):
        """List the store's saved corrections versions and propose their parent model."""
        store = _store_of(self.viewer)
        self.version_combo.clear()
        if store is None:
            return
        versions = list_versions(store, CORRECTIONS)
        self.version_combo.addItems(versions[::-1])
        if versions and not self.model_edit.text():
            import zarr

            g = zarr.open_group(str(store / CORRECTIONS / versions[-1]), mode="r")
            p = parent_model_path(store, g.attrs.get("parent_model"))
            if p is not None:
                self.model_edit.setText(str(p))

    def start(self):
        """Fine-tune in a worker; progress, loss and cancel stay live."""
        store = _store_of(self.viewer)
        version = self.version_combo.currentText()
        if store is None or not version:
            _message(self.status, "save corrections first (Review widget)", error=True)
            return None
        self._cancel.clear()
        self._losses = []
        self.progress.setRange(0, self.iter_spin.value())
        self.progress.setValue(0)
        model = self.model_edit.text().strip() or None
        self.worker = _worker(finetune, store, version, model=model, iterations=self.iter_spin.value(),
                                    lr=self.lr_spin.value(), batch=self.batch_spin.value(),
                                    progress=lambda s, n, loss: self._signals.step.emit(s, n, loss),
                                    cancel=self._cancel.is_set)
        self.cancel_btn.setEnabled(True)
        self.worker.finished.connect(lambda: self.cancel_btn.setEnabled(False))
        _message(self.status, f"fine-tuning on {version}…")
        return _run(self, self.worker, self.status, self._trained, busy=[self.train_btn, self.seg_btn])

    def cancel(self):
        """Ask the running fine-tuning to stop (at the next step; nothing is written)."""
        self._cancel.set()
        _message(self.status, "cancelling…")

    def _on_step(self, step, total, loss):
        self.progress.setValue(step)
        if loss is not None and np.isfinite(loss) and (not self._losses or self._losses[-1] != (step, loss)):
            if not self._losses or self._losses[-1][1] != loss:
                self._losses.append((step, loss))
            self.loss_label.setText(f"loss: {loss:.4f} (step {step}/{total})")
            self.ax.clear()
            s, v = zip(*self._losses)
            self.ax.plot(s, v, "o-", ms=3)
            self.ax.set_xlabel("step")
            self.ax.set_ylabel("loss")
            self.canvas.draw_idle()
        else:
            self.loss_label.setText(f"step {step}/{total}")

    def _trained(self, result):
        self.result = result
        if result.cancelled:
            _message(self.status, "fine-tuning cancelled; nothing written")
            return
        m = result.card["metrics"]["reviewed_dice"]
        self.model_edit.setText(str(result.path))
        _message(self.status, f"model {result.path.name} written to {result.path.parent}; mean Dice on the reviewed "
                              f"voxels {m['mean_before']} → {m['mean_after']}")

    def region(self):
        """The region of the chosen scope (tuple of slices) or None for the whole store."""
        scope = self.scope_combo.currentText()
        store = _store_of(self.viewer)
        layer = _labels_layer(self.viewer, store)
        if scope == "whole store" or layer is None:
            return None
        if scope == "current tile":
            tile = layer.metadata.get("current_tile")
            if tile is None:
                raise ValueError("no current tile: rank and select one in the Review widget")
            return tuple(slice(a, b) for a, b in tile)
        step = np.round(layer.world_to_data(self.viewer.dims.point)).astype(int)
        corners = layer.corner_pixels if np.any(layer.corner_pixels[1]) else None
        return view_region(layer.data.shape, current_step=step, displayed=self.viewer.dims.displayed, corners=corners)

    def resegment(self):
        """Segment again with the model in the model field (a new version, added as a layer)."""
        store = _store_of(self.viewer)
        model = self.model_edit.text().strip()
        if store is None or not model:
            _message(self.status, "fine-tune first or choose a model file", error=True)
            return None
        try:
            region = self.region()
        except ValueError as exc:
            _message(self.status, f"error: {exc}", error=True)
            return None
        self.worker = _worker(resegment, store, model, region=region)
        _message(self.status, "segmenting…")
        return _run(self, self.worker, self.status, self._segmented, busy=[self.seg_btn, self.train_btn])

    def _segmented(self, version):
        self.last_version = version
        store = _store_of(self.viewer)
        self.viewer.add_layer(_to_layer(open_store(store).labels_layer(version)))
        _message(self.status, f"wrote {version}")


class MeasureWidget(QWidget):
    """Per-layer porosity and phase fractions of a Labels layer: a plot and a CSV export."""

    def __init__(self, napari_viewer):
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.table = None
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.layer_combo = QComboBox()
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, 10000)
        self.n_spin.setValue(10)
        form.addRow("labels", self.layer_combo)
        form.addRow("layers along z", self.n_spin)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.measure_btn = QPushButton("Measure")
        self.csv_btn = QPushButton("Export CSV…")
        row.addWidget(self.measure_btn)
        row.addWidget(self.csv_btn)
        lay.addLayout(row)
        self.figure = Figure(figsize=(4, 3), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.ax = self.figure.add_subplot(111)
        lay.addWidget(self.canvas)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.measure_btn.clicked.connect(lambda: self.measure())
        self.csv_btn.clicked.connect(lambda: self.export_csv())
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self._refresh_layers)
        self._refresh_layers()

    def _refresh_layers(self, *args):
        from napari.layers import Labels

        current = self.layer_combo.currentText()
        self.layer_combo.clear()
        names = [ly.name for ly in self.viewer.layers if isinstance(ly, Labels)
                 and ly.metadata.get("kind") != "corrections"]
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)

    def measure(self):
        """Per-layer table of the chosen Labels layer (its schema and voxel size)."""
        name = self.layer_combo.currentText()
        if not name:
            _message(self.status, "no Labels layer", error=True)
            return None
        layer = self.viewer.layers[name]
        schema = label_schema({"labels": layer.metadata.get("schema")})
        if schema is None:
            _message(self.status, f"error: {name} has no label schema (open it from a tomopipe store)", error=True)
            return None
        try:
            table = layer_profile(layer.data, schema, tuple(layer.scale), n_layers=self.n_spin.value())
        except Exception as exc:
            _message(self.status, f"error: {exc}", error=True)
            return None
        self.table = table
        self.ax.clear()
        plot_profile(table, self.ax, title=name)
        self.canvas.draw_idle()
        _message(self.status, f"{len(table)} layers; porosity {np.nanmin(table['porosity']):.3f}–"
                              f"{np.nanmax(table['porosity']):.3f}")
        return table

    def export_csv(self, path=None):
        """Write the last table as CSV (asks for a file when `path` is None)."""
        if self.table is None and self.measure() is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export per-layer table", "layers.csv", "CSV (*.csv)")
            if not path:
                return None
        out = write_profile_csv(self.table, path)
        _message(self.status, f"wrote {out}")
        return out


def _to_layer(layer_tuple):
    from napari.layers import Layer

    return Layer.create(*layer_tuple)


def view(store, *, viewer=None):
    """Open napari on a store with the three widgets docked (``tomopipe view``).

    Returns
    -------
    napari.Viewer
    """
    import napari

    viewer = viewer or napari.Viewer(title=f"tomopipe — {Path(store).name}")
    viewer.open(str(store), plugin="tomopipe")
    viewer.canvas.overlays.scale_bar.visible = True
    docks = [viewer.window.add_dock_widget(cls(viewer), name=name, area="right", tabify=i > 0)
             for i, (name, cls) in enumerate((("Review", ReviewWidget), ("Fine-tune", FinetuneWidget),
                                              ("Measure", MeasureWidget)))]
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, docks[0].raise_)  # the Review tab in front once the window shows
    return viewer
