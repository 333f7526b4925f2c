"""The ``metrics`` stage: tables of :func:`tomopipe.quantify.quantify_labels` (+ CSV and PNG)."""

from __future__ import annotations

from pathlib import Path

from .stage import Stage

__all__ = ["metrics_stage", "LabelSource"]


class LabelSource:
    """Where a metrics stage takes its labels from: a stage of the store or a zarr array.

    Parameters
    ----------
    stage : StageRef, optional
        The store's ``segmentation`` stage (its ``labels`` array).
    path : Path, optional
        A zarr array, or a group holding ``labels`` (e.g. ground truth).
    token : str or list
        What identifies the labels' content (the stage fingerprint, or path + size + mtime).
    """

    def __init__(self, *, stage=None, path=None, token=None):
        self.stage, self.path, self.token = stage, path, token

    def describe(self):
        return f"{self.stage.name} stage" if self.stage is not None else str(self.path)

    def open(self):
        from .store import open_label_array

        if self.stage is not None:
            return self.stage.group()["labels"]
        return open_label_array(self.path, name="quantify.labels")

    @classmethod
    def from_path(cls, path):
        """A zarr label array on disk, identified by its path, total size and newest mtime."""
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file())
        token = [str(path.resolve()), sum(p.stat().st_size for p in files),
                 max((p.stat().st_mtime_ns for p in files), default=0)]
        return cls(path=path, token=token)


def metrics_stage(cfg, labels: LabelSource, *, voxel_size_um, schema=None, title="", csv_folder=None):
    """The ``metrics`` stage of section `cfg` (``quantify:``).

    Parameters
    ----------
    cfg : QuantifyConfig
    labels : LabelSource
    voxel_size_um : float or (3,) sequence of float
        ``(dz, dy, dx)`` in µm (resolved by the plan: ``quantify.voxel_size``, the labels'
        ``voxel_size_um`` attribute, or the geometry's pixel size).
    schema : mapping, optional
        Label schema (default: the labels' ``labels`` attribute).
    title : str
        Title of the plots.
    csv_folder : Path, optional
        Where CSV/Parquet tables and PNG plots go (``<store>.metrics/``).

    Returns
    -------
    Stage
    """
    from ..quantify import (METHODS_REVISION, UNITS, plot_layer_profiles, plot_orientation, quantify_labels,
                            write_tables)

    voxel = [float(v) for v in voxel_size_um]
    params = {**cfg.model_dump(mode="json"), "voxel_size_um": voxel, "schema": schema,
              "methods_revision": METHODS_REVISION}

    def write(w):
        arr = labels.open()
        attrs = dict(arr.attrs)
        sch = schema if schema is not None else (attrs.get("labels") if isinstance(attrs.get("labels"), dict) else None)
        m = quantify_labels(arr, tuple(voxel), schema=sch, n_layers=cfg.n_layers,
                            layer_thickness_um=cfg.layer_thickness_um, pore_sizes=cfg.pore_sizes,
                            max_pore_diameter_um=cfg.max_pore_diameter_um,
                            crack_flatness_max=cfg.crack_flatness_max)
        folder = Path(csv_folder)
        write_tables(m.tables, w.group, folder=folder, units=UNITS)
        plot_layer_profiles(m.tables["layers"], folder / "layers.png", title=f"{title}: per-layer fractions")
        plot_orientation({k: m.tables[k] for k in ("cracks", "inclusions") if k in m.tables},
                         folder / "orientation.png")
        return {"summary": m.summary, "csv_folder": str(folder)}

    return Stage("metrics", params, {"labels": labels.token}, write,
                 describe=f"labels from {labels.describe()}, voxel {voxel} µm")
