"""A run's store as napari layers, lazily: nothing here reads a whole array.

The volume is a multiscale image from its NGFF pyramid (levels ``0, 1, …`` as dask arrays over
the zarr chunks), scaled to µm; the segmentation is a Labels layer with the schema's class
names and fixed colours; probabilities and an uncertainty map are layers made on request. The
layer tuples are napari's ``(data, kwargs, layer_type)`` and need no napari import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np

from ..errors import InputFileError, StageError
from ..pipeline.store import Store
from ..units import voxel_size_um as _voxel
from ._schema import label_colours, label_schema

__all__ = ["StoreView", "open_store", "is_store", "uncertainty", "contrast_limits", "SEGMENTATION"]

SEGMENTATION = "segmentation"
_SAMPLE_PLANES = 4


def is_store(path):
    """True if `path` is a folder holding a zarr (v3) root group with at least one stage."""
    p = Path(path)
    if not (p.is_dir() and (p / "zarr.json").is_file()):
        return False
    try:
        return bool(Store(p).stages())
    except Exception:  # a reader must never raise on paths it does not handle
        return False


def contrast_limits(levels, *, percentiles=(0.5, 99.5)):
    """Display range of a pyramid from a few planes of its coarsest level.

    Parameters
    ----------
    levels : list of (z, y, x) dask arrays
        The pyramid, finest first.
    percentiles : (2,) tuple of float

    Returns
    -------
    (2,) list of float
        The percentiles of the finite values of up to four evenly spaced z planes of the
        coarsest level (so at most four chunk rows of it are read); ``[0, 1]`` if none is finite.
    """
    coarse = levels[-1]
    nz = coarse.shape[0]
    zs = sorted(set(np.linspace(0, nz - 1, min(_SAMPLE_PLANES, nz)).round().astype(int).tolist()))
    sample = np.asarray(da.stack([coarse[z] for z in zs]).compute(), dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return [0.0, 1.0]
    lo, hi = np.percentile(sample, percentiles)
    if hi <= lo:
        hi = lo + 1.0
    return [float(lo), float(hi)]


def uncertainty(probabilities, *, kind="least_confidence"):
    """Voxel-wise uncertainty of class probabilities, lazily (chunk by chunk).

    Parameters
    ----------
    probabilities : (class, z, y, x) array_like
        Class probabilities (zarr, dask or NumPy), e.g. ``segmentation/probabilities``.
    kind : {"least_confidence", "entropy"}
        ``least_confidence``: 1 − max_c p_c; ``entropy``: −Σ p_c ln p_c / ln K (K classes),
        both in [0, 1] (0 = certain).

    Returns
    -------
    (z, y, x) dask array of float32

    Raises
    ------
    ValueError
        If `kind` is unknown or `probabilities` is not 4-D.

    Examples
    --------
    >>> p = np.array([[[[1.0, 0.5]]], [[[0.0, 0.5]]]])
    >>> uncertainty(p).compute().ravel().tolist()
    [0.0, 0.5]
    >>> uncertainty(p, kind="entropy").compute().ravel().round(3).tolist()
    [0.0, 1.0]
    """
    prob = probabilities if isinstance(probabilities, da.Array) else da.from_array(
        probabilities, chunks=getattr(probabilities, "chunks", "auto"))
    if prob.ndim != 4:
        raise ValueError(f"probabilities must be (class, z, y, x), got shape {prob.shape}")
    k = prob.shape[0]
    prob = prob.rechunk({0: k})
    if kind == "least_confidence":
        fn = _least_confidence
    elif kind == "entropy":
        fn = _entropy
    else:
        raise ValueError(f"kind must be 'least_confidence' or 'entropy', got {kind!r}")
    return da.map_blocks(fn, prob, drop_axis=0, dtype=np.float32)


def _least_confidence(p):
    return (1.0 - np.asarray(p, dtype=np.float32).max(axis=0)).astype(np.float32)


def _entropy(p):
    p = np.clip(np.asarray(p, dtype=np.float32), 1e-12, 1.0)
    k = p.shape[0]
    return (-(p * np.log(p)).sum(axis=0) / np.float32(np.log(k)) if k > 1 else np.zeros(p.shape[1:])).astype(
        np.float32)


@dataclass
class StoreView:
    """What the plugin shows of one store.

    Attributes
    ----------
    path : Path
    levels : list of (z, y, x) dask arrays
        The volume pyramid, finest first (empty without a volume stage).
    voxel_size_um : tuple of 3 float or None
        ``(dz, dy, dx)`` of level 0, µm (None: the volume has no physical scale).
    units : str or None
        μ units of the volume (``1/cm`` or ``1/pixel``).
    contrast_limits : list of 2 float
    segmentations : list of str
        Complete segmentation results: ``segmentation`` (the pipeline's) and the plugin's
        versions ``segmentations/vNNN``.
    notes : list of str
        Why something is not shown (e.g. no segmentation stage).
    """

    path: Path
    levels: list = field(default_factory=list)
    voxel_size_um: tuple | None = None
    units: str | None = None
    contrast_limits: list = field(default_factory=lambda: [0.0, 1.0])
    segmentations: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def scale(self):
        """Layer scale (µm per voxel, or 1 per voxel without a voxel size)."""
        return tuple(self.voxel_size_um) if self.voxel_size_um else (1.0, 1.0, 1.0)

    @property
    def shape(self):
        """Shape ``(z, y, x)`` of level 0."""
        return tuple(self.levels[0].shape) if self.levels else None

    def _meta(self, **extra):
        return {"tomopipe_store": str(self.path), **extra}

    def _units(self):
        return "µm" if self.voxel_size_um else "pixel"

    def volume_layer(self):
        """The volume as a multiscale image layer tuple."""
        multi = len(self.levels) > 1
        return (self.levels if multi else self.levels[0], {"name": f"{self.path.stem} volume", "multiscale": multi,
                              "scale": self.scale, "units": self._units(), "axis_labels": ("z", "y", "x"),
                              "contrast_limits": self.contrast_limits, "colormap": "gray",
                              "metadata": self._meta(kind="volume", mu_units=self.units)}, "image")

    def labels_group(self, name=SEGMENTATION):
        """The zarr group of a segmentation result (read-only)."""
        import zarr

        if name not in self.segmentations:
            raise StageError(f"{self.path}: no complete segmentation {name!r} (have {self.segmentations})")
        return zarr.open_group(str(self.path / name), mode="r", zarr_format=3)

    def labels_layer(self, name=SEGMENTATION):
        """A segmentation's labels as a Labels layer tuple (schema names and fixed colours).

        A region version (``region`` attribute) is placed at its offset in the volume.
        """
        g = self.labels_group(name)
        arr = g["labels"]
        schema = label_schema(arr.attrs) or label_schema(g.attrs)
        offset = self._offset(arr.attrs)
        meta = self._meta(kind="labels", source=name, schema=None if schema is None else schema.classes,
                          region=arr.attrs.get("region"),
                          model=dict(g.attrs.get("model") or {}))
        kwargs = {"name": f"{self.path.stem} {name}", "scale": self.scale, "units": self._units(),
                  "translate": offset, "opacity": 0.5, "metadata": meta, "axis_labels": ("z", "y", "x")}
        if schema is not None:
            kwargs["colormap"] = label_colours(schema)
        return (da.from_zarr(arr), kwargs, "labels")

    def _offset(self, attrs):
        region = attrs.get("region")
        start = [0, 0, 0] if region is None else [int(a) for a, _ in region]
        return tuple(s * v for s, v in zip(start, self.scale))

    def probabilities(self, name=SEGMENTATION):
        """``(class, z, y, x)`` probabilities of a segmentation (dask) and its class names.

        Raises
        ------
        StageError
            The segmentation has no probabilities (not a U-Net, or written without them).
        """
        g = self.labels_group(name)
        if "probabilities" not in g:
            raise StageError(f"{self.path / name}: no probabilities (method {g.attrs.get('method')!r}; the U-Net "
                             "writes them unless segment.probabilities is false)")
        p = g["probabilities"]
        return da.from_zarr(p), list(p.attrs.get("classes") or g.attrs.get("classes") or [])

    def probabilities_layer(self, name=SEGMENTATION):
        """Class probabilities as a 4-D image layer tuple (a slider over the classes)."""
        prob, classes = self.probabilities(name)
        g = self.labels_group(name)
        offset = self._offset(g["labels"].attrs)
        return (prob, {"name": f"{self.path.stem} {name} probabilities", "scale": (1.0,) + self.scale,
                       "translate": (0.0,) + tuple(offset), "contrast_limits": [0.0, 1.0], "colormap": "magma",
                       "opacity": 0.6, "blending": "additive", "axis_labels": ("class", "z", "y", "x"),
                       "metadata": self._meta(kind="probabilities", source=name, classes=classes)}, "image")

    def uncertainty_layer(self, name=SEGMENTATION, *, kind="least_confidence"):
        """The uncertainty map (:func:`uncertainty`) as an image layer tuple, lazily."""
        prob, _ = self.probabilities(name)
        g = self.labels_group(name)
        return (uncertainty(prob, kind=kind), {
            "name": f"{self.path.stem} {name} uncertainty", "scale": self.scale,
            "translate": self._offset(g["labels"].attrs), "units": self._units(), "contrast_limits": [0.0, 1.0],
            "colormap": "inferno", "opacity": 0.6, "blending": "additive", "axis_labels": ("z", "y", "x"),
            "metadata": self._meta(kind="uncertainty", source=name, measure=kind)}, "image")

    def layers(self):
        """Layer tuples napari opens: the volume, and the segmentation when there is one."""
        out = [self.volume_layer()] if self.levels else []
        if SEGMENTATION in self.segmentations:
            out.append(self.labels_layer(SEGMENTATION))
        return out


def _volume_levels(group):
    ms = group.attrs.get("multiscales")
    paths = []
    if isinstance(ms, list) and ms and isinstance(ms[0], dict):
        paths = [d.get("path") for d in ms[0].get("datasets", []) if d.get("path") in group]
    if not paths:
        paths = [p for p in (str(k) for k in range(16)) if p in group]
    return [da.from_zarr(group[p]) for p in paths]


def list_versions(path, kind):
    """Complete versions ``vNNN`` under ``<store>/<kind>/`` in order (``corrections``, ``segmentations``)."""
    return Store(path).versions(kind)


def open_store(path):
    """Open a store for viewing; reads only metadata and a few planes of the coarsest level.

    Parameters
    ----------
    path : path-like
        A tomopipe zarr store (the folder holding ``zarr.json``).

    Returns
    -------
    StoreView

    Raises
    ------
    InputFileError
        `path` is not a tomopipe store, or it has neither a volume nor a segmentation.
    """
    path = Path(path)
    try:
        st = Store(path)
    except StageError as exc:
        raise InputFileError(str(exc)) from None
    stages = st.stages()
    view = StoreView(path=path)
    if "volume" in stages:
        g = st.group("volume")
        view.levels = _volume_levels(g)
        voxel = g.attrs.get("voxel_size_um", g["0"].attrs.get("voxel_size_um") if "0" in g else None)
        view.voxel_size_um = None if voxel is None else _voxel(voxel, name=f"{path}/volume voxel_size_um")
        view.units = g.attrs.get("units")
        if view.levels:
            view.contrast_limits = contrast_limits(view.levels)
    else:
        view.notes.append(f"{path}: no complete volume stage; run the workflow up to 'volume' first")
    view.segmentations = ([SEGMENTATION] if SEGMENTATION in stages else []) + \
        [f"segmentations/{v}" for v in list_versions(path, "segmentations")]
    if SEGMENTATION not in stages:
        view.notes.append(f"{path}: no segmentation stage, showing the volume only; add a 'segment:' section "
                          "to the workflow and run it again to get labels")
    if not view.levels and not view.segmentations:
        raise InputFileError(f"{path}: the store has neither a volume nor a segmentation (stages: {stages or 'none'})")
    if view.voxel_size_um is None and view.segmentations:
        voxel = view.labels_group(view.segmentations[0])["labels"].attrs.get("voxel_size_um")
        view.voxel_size_um = None if voxel is None else _voxel(voxel)
    return view
