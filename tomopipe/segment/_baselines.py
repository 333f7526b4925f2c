"""Classical segmentation baselines: global multi-Otsu thresholds and a random-forest pixel classifier.

Both map a reconstructed volume ``(z, y, x)`` of linear attenuation μ (1/cm) to label values
of a schema (:data:`~tomopipe.segment._schema.DEFAULT_SCHEMA`, uint8). They accept NumPy
or dask arrays and return the same kind; a dask result has the chunks of the input and is
equal, voxel for voxel, to the in-memory result.

* :func:`multiotsu_segment` — multi-Otsu thresholds [1]_ from a strided subsample of the
  volume, then :func:`numpy.digitize` voxel by voxel. The thresholds are global, so a
  chunked volume is labelled exactly as the whole one.
* :func:`fit_random_forest` / :func:`random_forest_segment` — the ilastik [2]_ pixel
  classifier: Gaussian-smoothed intensity, gradient magnitude and Hessian eigenvalues at
  several scales (:func:`skimage.feature.multiscale_basic_features`) feed a scikit-learn
  random forest trained on sparse annotations ("scribbles", :data:`UNLABELLED` elsewhere).
  A dask volume is classified chunk by chunk with a halo wide enough for the largest
  Gaussian (:func:`rf_feature_depth`), and without padding at the volume border, so each
  chunk sees exactly the neighbourhood a voxel has in the whole volume.

Nothing here is pickled; a :class:`RandomForestModel` lives in memory only.

References
----------
.. [1] P.-S. Liao, T.-S. Chen, P.-C. Chung, "A fast algorithm for multilevel thresholding",
       J. Inf. Sci. Eng. 17 (2001) 713–727.
.. [2] S. Berg et al., "ilastik: interactive machine learning for (bio)image analysis",
       Nat. Methods 16 (2019) 1226–1232. :doi:`10.1038/s41592-019-0582-9`
.. [3] M. Luessi, M. Eichmann, G. M. Schuster, A. K. Katsaggelos, "Framework for efficient
       optimal multilevel image thresholding", J. Electron. Imaging 18 (2009) 013004.
       :doi:`10.1117/1.3073891`
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dask.array as da
import numpy as np

from ..errors import ShapeMismatchError
from ._schema import DEFAULT_SCHEMA, UNLABELLED

__all__ = [
    "UNLABELLED",
    "MULTIOTSU_CLASSES",
    "multiotsu_thresholds",
    "multiotsu_segment",
    "RandomForestModel",
    "rf_features",
    "rf_feature_depth",
    "fit_random_forest",
    "random_forest_segment",
]


#: Default classes of :func:`multiotsu_segment`, in order of increasing μ at 35 keV.
MULTIOTSU_CLASSES = ("pore", "electrolyte", "active", "current_collector")

_PREDICT_ROWS = 1 << 16  # voxels per piece when the forest runs on threads


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _is_dask(a):
    return isinstance(a, da.Array)


def _check_volume(volume, name="volume"):
    if not _is_dask(volume):
        volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"{name}: expected a (z, y, x) volume, got shape {volume.shape}")
    if not (np.issubdtype(volume.dtype, np.floating) or np.issubdtype(volume.dtype, np.integer)):
        raise TypeError(f"{name}: expected a real-valued volume, got dtype {volume.dtype}")
    return volume


def _check_classes(classes, schema):
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema: expected a mapping name -> label value, got {type(schema).__name__}")
    classes = (classes,) if isinstance(classes, str) else tuple(classes)
    if len(classes) < 2:
        raise ValueError(f"classes: need at least 2 classes, got {classes}")
    unknown = [c for c in classes if c not in schema]
    if unknown:
        raise ValueError(f"classes: {unknown} not in the schema {dict(schema)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes: duplicate names in {classes}")
    return classes, np.asarray([schema[c] for c in classes], dtype=np.uint8)


# --------------------------------------------------------------------------------------------
# multi-Otsu
# --------------------------------------------------------------------------------------------

def _strided_sample(volume, n_sample, seed):
    """Every s-th voxel along each axis from seeded offsets, at most `n_sample` voxels."""
    shape = volume.shape
    size = int(np.prod(shape))
    if size <= n_sample:
        sample = volume
    else:
        s = max(1, int(np.floor((size / n_sample) ** (1.0 / 3.0))))
        while True:
            if int(np.prod([-(-n // s) for n in shape])) <= n_sample:
                break
            s += 1
        rng = np.random.default_rng(seed)
        # offsets < s keep each axis at ceil((n - o) / s) <= ceil(n / s) samples
        offsets = [int(rng.integers(0, min(s, n))) for n in shape]
        sample = volume[tuple(slice(o, None, s) for o in offsets)]
    if _is_dask(sample):
        sample = sample.compute()
    sample = np.asarray(sample).ravel()
    return sample[np.isfinite(sample)]


def _multiotsu_indices(prob, n_classes):
    """Last histogram bin of each of the lower ``n_classes - 1`` classes, maximizing the
    between-class variance exactly by dynamic programming in ``O(n_classes · nbins²)``.

    The between-class variance is ``Σ_k S_k² / W_k − const`` (``W_k``, ``S_k``: weight and
    first moment of class ``k``), a sum over contiguous bin ranges, so the best split of bins
    ``[0, j)`` into ``k`` classes extends the best split of ``[0, i)`` into ``k − 1`` [1]_.
    """
    n = prob.size
    idx = np.arange(n, dtype=np.float64)
    W = np.concatenate([[0.0], np.cumsum(prob)])
    S = np.concatenate([[0.0], np.cumsum(prob * idx)])

    def gain(i, j):  # class of bins [i, j): S² / W (0 for an empty or weightless class)
        w = W[j] - W[i]
        s = S[j] - S[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(w > 0, s * s / np.where(w > 0, w, 1.0), 0.0)
        return g

    neg = -np.inf
    best = np.full((n_classes + 1, n + 1), neg)
    arg = np.zeros((n_classes + 1, n + 1), dtype=np.int64)
    best[1, 1:] = gain(np.zeros(n, dtype=np.int64), np.arange(1, n + 1))
    for k in range(2, n_classes + 1):
        for j in range(k, n + 1):
            i = np.arange(k - 1, j)  # the last class is [i, j), non-empty
            cand = best[k - 1, i] + gain(i, np.full(i.size, j))
            t = int(np.argmax(cand))
            best[k, j] = cand[t]
            arg[k, j] = i[t]
    bounds, j = [], n
    for k in range(n_classes, 1, -1):
        j = arg[k, j]
        bounds.append(j)
    return np.asarray(bounds[::-1], dtype=np.int64) - 1  # last bin of each lower class


def multiotsu_thresholds(volume, n_classes=len(MULTIOTSU_CLASSES), *, n_sample=2_000_000, seed=0, nbins=256):
    """Multi-Otsu thresholds of a volume, from a subsample of at most `n_sample` voxels.

    The subsample is every ``s``-th voxel along z, y and x (the smallest ``s`` that gives
    at most `n_sample` voxels) from offsets drawn with ``numpy.random.default_rng(seed)``;
    a volume of at most `n_sample` voxels is used whole. Only the subsample of a dask
    volume is computed, so memory stays bounded and NumPy and dask inputs give the same
    thresholds. Non-finite voxels are left out.

    Parameters
    ----------
    volume : (z, y, x) ndarray or dask array of float
        Reconstructed μ (any unit; thresholds come in the same).
    n_classes : int
        Number of classes (≥ 2); ``n_classes - 1`` thresholds.
    n_sample : int
        Largest number of voxels the histogram is taken of.
    seed : int
        Seed of the sampling offsets.
    nbins : int
        Histogram bins (as :func:`skimage.filters.threshold_multiotsu`, whose histogram and
        threshold convention are used). scikit-image searches exhaustively,
        ``O(nbins ** (n_classes - 1))`` (six classes at 256 bins: minutes); here the same
        maximum of the between-class variance is found by dynamic programming [3]_ in
        ``O(n_classes · nbins²)`` (six classes at 256 bins: well under a second).

    Returns
    -------
    (n_classes - 1,) ndarray of float64
        Increasing thresholds.

    Raises
    ------
    ValueError
        If `n_classes` < 2, `n_sample` < 1, the volume has no finite voxel or too few grey
        values for `n_classes` classes.
    """
    volume = _check_volume(volume)
    n_classes = int(n_classes)
    if n_classes < 2:
        raise ValueError(f"n_classes: need at least 2, got {n_classes}")
    if int(n_sample) < 1:
        raise ValueError(f"n_sample: must be ≥ 1, got {n_sample}")
    from skimage.exposure import histogram

    sample = _strided_sample(volume, int(n_sample), seed)
    if sample.size == 0:
        raise ValueError("volume: no finite voxel to compute thresholds of")
    hist, centers = histogram(sample, int(nbins), source_range="image")
    if np.count_nonzero(hist) < n_classes:
        raise ValueError(f"volume: {np.count_nonzero(hist)} distinct grey values (of {int(nbins)} bins) cannot "
                         f"make {n_classes} classes")
    prob = hist.astype(np.float64) / hist.sum()
    return np.asarray(centers[_multiotsu_indices(prob, n_classes)], dtype=np.float64)


def _digitize_block(block, thresholds, values):
    return values[np.digitize(block, thresholds)]


def multiotsu_segment(volume, *, classes=MULTIOTSU_CLASSES, schema=DEFAULT_SCHEMA, thresholds=None,
                      n_sample=2_000_000, seed=0, nbins=256):
    """Label a volume by global multi-Otsu thresholds.

    Voxel ``v`` gets ``schema[classes[k]]`` with ``k = numpy.digitize(v, thresholds)``:
    class ``k`` spans ``thresholds[k-1] <= v < thresholds[k]``. Only grey values count —
    classes of similar μ (pore and electrolyte, σ of the noise ≈ their difference) are not
    told apart; this is the baseline the learned models are measured against.

    Parameters
    ----------
    volume : (z, y, x) ndarray or dask array of float
        Reconstructed μ, 1/cm.
    classes : sequence of str
        Names in `schema`, in order of increasing grey value.
    schema : mapping of str to int
        Label value of each class name.
    thresholds : sequence of float, optional
        ``len(classes) - 1`` increasing thresholds, in the unit of `volume`; by default
        :func:`multiotsu_thresholds` of `volume` (with `n_sample`, `seed`, `nbins`).
    n_sample, seed, nbins
        See :func:`multiotsu_thresholds`.

    Returns
    -------
    labels : (z, y, x) ndarray or dask array of uint8
        Label values of `schema`; a dask array (same chunks) for a dask `volume`, else NumPy.

    Raises
    ------
    ValueError
        If a class is not in `schema`, or `thresholds` are not ``len(classes) - 1``
        increasing finite numbers.

    Examples
    --------
    >>> t = multiotsu_thresholds(mu, 3)  # doctest: +SKIP
    >>> labels = multiotsu_segment(mu, classes=("pore", "active", "current_collector"), thresholds=t)  # doctest: +SKIP
    """
    volume = _check_volume(volume)
    classes, values = _check_classes(classes, schema)
    if thresholds is None:
        thresholds = multiotsu_thresholds(volume, len(classes), n_sample=n_sample, seed=seed, nbins=nbins)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (len(classes) - 1,):
        raise ValueError(f"thresholds: expected {len(classes) - 1} values for {len(classes)} classes, "
                         f"got shape {thresholds.shape}")
    if not np.all(np.isfinite(thresholds)) or np.any(np.diff(thresholds) <= 0):
        raise ValueError(f"thresholds: must be finite and increasing, got {thresholds.tolist()}")
    if _is_dask(volume):
        return volume.map_blocks(_digitize_block, thresholds=thresholds, values=values, dtype=np.uint8)
    return _digitize_block(volume, thresholds, values)


# --------------------------------------------------------------------------------------------
# random forest
# --------------------------------------------------------------------------------------------

@dataclass
class RandomForestModel:
    """A fitted random-forest pixel classifier (in memory; never pickled).

    Attributes
    ----------
    classifier : sklearn.ensemble.RandomForestClassifier
        Fitted on the features of :func:`rf_features`; its ``classes_`` are `label_values`.
    label_values : tuple of int
        Schema label values the forest predicts, increasing (probability channel order).
    sigma_min, sigma_max : float
        Smallest and largest Gaussian σ of the features, voxels.
    num_sigma : int or None
        Number of scales (None: powers of 2 from `sigma_min`).
    """

    classifier: object
    label_values: tuple
    sigma_min: float
    sigma_max: float
    num_sigma: int | None = None


#: Fewest voxels along an axis for the features' finite differences (:func:`numpy.gradient`).
_MIN_FEATURE_AXIS = 3


def _features(volume, sigma_min, sigma_max, num_sigma, workers=None):
    """Features of :func:`rf_features`; axes thinner than 3 voxels (a single slice, the two
    rows of a small scan) are repeated to 3 (edge padding) and cropped back, so derivatives
    across them are 0 — the features of a 2-D image — instead of failing in numpy."""
    from skimage.feature import multiscale_basic_features

    volume = np.asarray(volume, dtype=np.float32)
    pad = [(0, max(0, _MIN_FEATURE_AXIS - n)) for n in volume.shape]
    padded = np.pad(volume, pad, mode="edge") if any(p for _, p in pad) else volume
    f = multiscale_basic_features(padded, sigma_min=sigma_min, sigma_max=sigma_max,
                                  num_sigma=num_sigma, workers=workers)
    if padded is not volume:
        f = f[tuple(slice(0, n) for n in volume.shape)]
    return np.ascontiguousarray(f, dtype=np.float32)


def _check_sigmas(sigma_min, sigma_max, num_sigma):
    sigma_min, sigma_max = float(sigma_min), float(sigma_max)
    if not (0 < sigma_min <= sigma_max < np.inf):
        raise ValueError(f"sigma_min, sigma_max: need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    if num_sigma is not None:
        num_sigma = int(num_sigma)
        if num_sigma < 1:
            raise ValueError(f"num_sigma: must be ≥ 1, got {num_sigma}")
    elif int(np.log2(sigma_max) - np.log2(sigma_min) + 1) < 1:  # pragma: no cover - sigma_min <= sigma_max
        raise ValueError("sigma_min, sigma_max: no scale between them")
    return sigma_min, sigma_max, num_sigma


def rf_features(volume, *, sigma_min=1.0, sigma_max=8.0, num_sigma=None):
    """Pixel features of the random-forest classifier (ilastik's default set, in 3-D).

    For each σ of ``num_sigma`` scales, log-spaced from `sigma_min` to `sigma_max`
    (default: powers of 2, 1-2-4-8 voxels): Gaussian-smoothed intensity, its Sobel gradient
    magnitude and the three eigenvalues of its Hessian (decreasing) —
    :func:`skimage.feature.multiscale_basic_features`, ``5 * num_sigma`` features.

    Parameters
    ----------
    volume : (z, y, x) array_like of float
        Reconstructed μ; read into memory whole (use :func:`random_forest_segment` with a
        dask volume to work chunk by chunk).
    sigma_min, sigma_max : float
        Smallest and largest Gaussian σ, voxels.
    num_sigma : int, optional
        Number of scales.

    Returns
    -------
    (z, y, x, F) ndarray of float32
        ``F = 5 * num_sigma`` (20 with the defaults): 4·F bytes per voxel.
    """
    volume = _check_volume(np.asarray(volume))
    sigma_min, sigma_max, num_sigma = _check_sigmas(sigma_min, sigma_max, num_sigma)
    return _features(volume, sigma_min, sigma_max, num_sigma)


def rf_feature_depth(sigma_max):
    """Halo (voxels) beyond which the features of :func:`rf_features` do not reach.

    The Gaussian of σ has radius ``int(4 σ + 0.5)`` (``truncate=4``); the Hessian's nested
    central differences (:func:`numpy.gradient` twice) add 2 voxels, the Sobel filter 1.
    One more voxel covers the rounding of the log-spaced σ grid.

    Returns
    -------
    int
    """
    return int(4.0 * float(sigma_max) + 0.5) + 3


def _as_list(x):
    if isinstance(x, np.ndarray) or _is_dask(x) or (hasattr(x, "ndim") and hasattr(x, "shape")):
        return [x]
    return list(x)


def fit_random_forest(volumes, annotations, *, schema=DEFAULT_SCHEMA, sigma_min=1.0, sigma_max=8.0,
                      num_sigma=None, n_estimators=50, max_depth=None, max_samples_per_class=20_000,
                      seed=0, n_jobs=None):
    """Train a random-forest pixel classifier on sparse annotations.

    Annotated voxels (≠ :data:`UNLABELLED`) of all volumes are pooled per label value; at
    most `max_samples_per_class` of each value are drawn (``numpy.random.default_rng(seed)``)
    so that training stays fast, and a :class:`sklearn.ensemble.RandomForestClassifier`
    (``random_state=seed``) is fitted on their :func:`rf_features`.

    Parameters
    ----------
    volumes : (z, y, x) array_like or sequence of them
        Reconstructed μ, 1/cm; each is read into memory whole.
    annotations : (z, y, x) array_like of int or sequence of them
        One per volume, same shape: label values of `schema`, :data:`UNLABELLED` (254)
        where not annotated.
    schema : mapping of str to int
        The label schema the annotations are in.
    sigma_min, sigma_max, num_sigma
        Feature scales, see :func:`rf_features`.
    n_estimators, max_depth
        Of the forest.
    max_samples_per_class : int
        Largest number of training voxels per label value.
    seed : int
        Seed of the voxel sampling and the forest.
    n_jobs : int, optional
        Threads of the forest's fit (None: 1, -1: all cores).

    Returns
    -------
    RandomForestModel

    Raises
    ------
    ValueError
        If the numbers of volumes and annotations differ, a volume is not 3-D, an
        annotation holds a value not in `schema` (nor :data:`UNLABELLED`), or no voxel is
        annotated.
    tomopipe.errors.ShapeMismatchError
        If ``annotations[i]`` and ``volumes[i]`` differ in shape.
    """
    from sklearn.ensemble import RandomForestClassifier

    sigma_min, sigma_max, num_sigma = _check_sigmas(sigma_min, sigma_max, num_sigma)
    if int(max_samples_per_class) < 1:
        raise ValueError(f"max_samples_per_class: must be ≥ 1, got {max_samples_per_class}")
    vols, anns = _as_list(volumes), _as_list(annotations)
    if len(vols) != len(anns):
        raise ValueError(f"annotations: {len(anns)} annotation volumes for {len(vols)} volumes")
    if not vols:
        raise ValueError("volumes: no volume given")
    known = np.zeros(256, dtype=bool)
    known[[int(v) for v in schema.values()]] = True
    known[UNLABELLED] = True
    # per volume: flat indices of the annotated voxels and their values
    idx, val = [], []
    for i, (v, a) in enumerate(zip(vols, anns)):
        v_shape = np.shape(v)
        if len(v_shape) != 3:
            raise ValueError(f"volumes[{i}]: expected a (z, y, x) volume, got shape {v_shape}")
        a = np.asarray(a)
        if a.shape != v_shape:
            raise ShapeMismatchError(f"annotations[{i}] has shape {a.shape} but volumes[{i}] has {v_shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"annotations[{i}]: expected integer label values, got dtype {a.dtype}")
        a = a.ravel()
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"annotations[{i}]: values outside 0..255 are not in the schema {dict(schema)}")
        a = a.astype(np.uint8, copy=False)
        bad = ~known[a]
        if bad.any():
            raise ValueError(f"annotations[{i}]: values {sorted(np.unique(a[bad]).tolist())} are neither in "
                             f"the schema {dict(schema)} nor UNLABELLED ({UNLABELLED})")
        j = np.flatnonzero(a != UNLABELLED)
        idx.append(j)
        val.append(a[j])
    n_per_volume = [j.size for j in idx]
    if sum(n_per_volume) == 0:
        raise ValueError(f"annotations: no annotated voxel (all are UNLABELLED = {UNLABELLED})")
    # draw at most max_samples_per_class voxels per value over the pooled volumes
    all_val = np.concatenate(val)
    rng = np.random.default_rng(seed)
    keep = []
    for value in np.unique(all_val):
        where = np.flatnonzero(all_val == value)
        if where.size > max_samples_per_class:
            where = rng.choice(where, size=int(max_samples_per_class), replace=False)
        keep.append(where)
    keep = np.sort(np.concatenate(keep))
    starts = np.cumsum([0] + n_per_volume)
    X, y = [], []
    for i, v in enumerate(vols):
        sel = keep[(keep >= starts[i]) & (keep < starts[i + 1])] - starts[i]
        if sel.size == 0:
            continue
        f = _features(np.asarray(v), sigma_min, sigma_max, num_sigma)
        X.append(f.reshape(-1, f.shape[-1])[idx[i][sel]])
        y.append(val[i][sel])
        del f
    X, y = np.concatenate(X), np.concatenate(y)
    clf = RandomForestClassifier(n_estimators=int(n_estimators), max_depth=max_depth, n_jobs=n_jobs,
                                 random_state=seed)
    clf.fit(X, y)
    return RandomForestModel(classifier=clf, label_values=tuple(int(c) for c in clf.classes_),
                             sigma_min=sigma_min, sigma_max=sigma_max, num_sigma=num_sigma)


def _forest_proba(classifier, X):
    """Mean class probability of the trees, summed in tree order (deterministic, unlike
    ``predict_proba`` with ``n_jobs > 1``, which adds trees as threads finish)."""
    p = np.zeros((X.shape[0], len(classifier.classes_)), dtype=np.float64)
    for tree in classifier.estimators_:
        p += tree.predict_proba(X, check_input=False)
    p /= len(classifier.estimators_)
    return p.astype(np.float32)


def _proba_volume(volume, model, threads):
    f = _features(volume, model.sigma_min, model.sigma_max, model.num_sigma, workers=threads)
    n_feat = getattr(model.classifier, "n_features_in_", f.shape[-1])
    if f.shape[-1] != n_feat:
        raise ValueError(f"model: its forest takes {n_feat} features, its scales give {f.shape[-1]}")
    X = f.reshape(-1, f.shape[-1])
    if threads is None or threads > 1:
        pieces = [X[k:k + _PREDICT_ROWS] for k in range(0, X.shape[0], _PREDICT_ROWS)]
        with ThreadPoolExecutor(max_workers=threads or os.cpu_count()) as ex:
            p = np.concatenate(list(ex.map(lambda x: _forest_proba(model.classifier, x), pieces)))
    else:
        p = _forest_proba(model.classifier, X)
    return p.reshape(volume.shape + (p.shape[-1],))


def _labels_from_proba(proba, values):
    return values[np.argmax(proba, axis=-1)]


def _labels_from_proba_first(proba, values):
    return values[np.argmax(proba, axis=0)]


def _labels_block(block, model, values):
    return _labels_from_proba(_proba_volume(block, model, 1), values)


def _proba_block(block, model):
    return np.moveaxis(_proba_volume(block, model, 1), -1, 0)


def random_forest_segment(volume, model, *, return_proba=False):
    """Label a volume with a fitted random-forest pixel classifier.

    A NumPy volume is classified whole (features: ``4 * F`` bytes per voxel, see
    :func:`rf_features`; the trees run on threads over voxel blocks). A dask volume is
    classified chunk by chunk: each chunk is grown by :func:`rf_feature_depth` voxels from
    its neighbours, not padded at the volume border (the filters then treat the border as
    in the whole volume), and trimmed back — the result equals the in-memory one exactly.
    The halo is clipped to the array: along an axis no longer than the halo (e.g. the two
    rows of a small scan) the chunks are merged into one and need no halo. Chunks smaller
    than the halo are merged by dask; the result is rechunked to the input's chunks.

    Parameters
    ----------
    volume : (z, y, x) ndarray or dask array of float
        Reconstructed μ, 1/cm.
    model : RandomForestModel
        From :func:`fit_random_forest`.
    return_proba : bool
        Also return the class probabilities.

    Returns
    -------
    labels : (z, y, x) ndarray or dask array of uint8
        The most probable of ``model.label_values`` per voxel.
    proba : (C, z, y, x) ndarray or dask array of float32
        Only if `return_proba`: mean tree probability of each of the ``C`` values of
        ``model.label_values``, in that order (class axis first, as the U-Net's).
    """
    if not isinstance(model, RandomForestModel):
        raise TypeError(f"model: expected a RandomForestModel, got {type(model).__name__}")
    volume = _check_volume(volume)
    values = np.asarray(model.label_values, dtype=np.uint8)
    if not _is_dask(volume):
        proba = _proba_volume(volume, model, None)
        labels = _labels_from_proba(proba, values)
        return (labels, np.ascontiguousarray(np.moveaxis(proba, -1, 0))) if return_proba else labels

    d = rf_feature_depth(model.sigma_max)
    src = volume
    # an axis no longer than the halo is one chunk, without halo (the halo clipped to the array)
    thin = [ax for ax, n in enumerate(volume.shape) if n <= d]
    if any(len(volume.chunks[ax]) > 1 for ax in thin):
        src = volume.rechunk({ax: -1 for ax in thin})
    depth = {ax: (0 if ax in thin else d) for ax in range(3)}
    none = {0: "none", 1: "none", 2: "none"}
    g = da.overlap.overlap(src, depth=depth, boundary=none)
    if return_proba:
        c = len(values)
        p = g.map_blocks(_proba_block, model=model, new_axis=0, chunks=((c,),) + g.chunks, dtype=np.float32,
                         meta=np.empty((0, 0, 0, 0), dtype=np.float32))
        p = da.overlap.trim_internal(p, {0: 0, 1: depth[0], 2: depth[1], 3: depth[2]},
                                     boundary={0: "none", 1: "none", 2: "none", 3: "none"})
        if p.chunks[1:] != volume.chunks:
            p = p.rechunk(((c,),) + volume.chunks)
        labels = p.map_blocks(_labels_from_proba_first, values, drop_axis=0, dtype=np.uint8)
        return labels, p
    labels = g.map_blocks(_labels_block, model=model, values=values, dtype=np.uint8)
    labels = da.overlap.trim_internal(labels, depth, boundary=none)
    if labels.chunks != volume.chunks:
        labels = labels.rechunk(volume.chunks)
    return labels
