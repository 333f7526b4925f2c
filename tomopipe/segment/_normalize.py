"""What the network sees: input normalization from the volume itself, and the input-domain guard.

A model card's ``normalization`` says how reconstructed values become network input:

``method: percentile`` (models from tomopipe 0.2 on)
    ``(v − p_lo) / (p_hi − p_lo)`` with ``p_lo, p_hi`` the card's ``percentiles`` (e.g. 1 and
    99) of the *whole volume*, taken once from a strided subsample
    (:func:`input_sample`) before any tiling or chunking. Any affine change of the values —
    μ in 1/cm or in 1/pixel, another software's arbitrary units, an offset — gives the same
    network input, and the energy only changes the relative contrast of the phases, which
    training varied (20–80 keV).
``scale`` only (``tomopipe-unet25d-cus-v1``)
    ``v / scale``: μ in 1/cm at the card's energy.

Every chunk of a chunked run gets the same two numbers, so the chunked result equals the
single-pass result.

:func:`check_input_domain` compares a volume with the card's ``input_domain`` (voxel size,
the units and value range of μ the model was trained on, the shape of the normalized
histogram) and returns one warning per quantity out of range.
"""

from __future__ import annotations

import numpy as np

__all__ = ["input_sample", "input_stats", "normalize_block", "histogram_features", "check_input_domain",
           "N_SAMPLE"]

#: Voxels of the strided subsample that normalization statistics and the guard are taken from.
N_SAMPLE = 1_000_000


def input_sample(volume, *, n_sample=N_SAMPLE):
    """A strided subsample of a volume's finite values (at most `n_sample` voxels).

    Every ``s``-th voxel along z, y and x from fixed offsets (seed 0), the smallest ``s``
    that gives at most `n_sample` voxels (:func:`tomopipe.segment.multiotsu_thresholds` uses
    the same sampling). Only these voxels of a dask or zarr volume are read.

    Parameters
    ----------
    volume : (z, y, x) array_like
        NumPy, dask or zarr.
    n_sample : int

    Returns
    -------
    (n,) ndarray of float32
    """
    from ._baselines import _strided_sample

    if not hasattr(volume, "shape") or len(volume.shape) != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {np.shape(volume)}")
    if not hasattr(volume, "compute") and not isinstance(volume, np.ndarray):
        import dask.array as da

        volume = da.from_array(volume, chunks=volume.chunks if hasattr(volume, "chunks") else "auto")
    return np.asarray(_strided_sample(volume, int(n_sample), 0), dtype=np.float32)


def input_stats(model_or_card, volume=None, *, sample=None):
    """``(offset, width)`` that map `volume` to the network input ``(v − offset) / width``.

    Parameters
    ----------
    model_or_card : SegmentationModel or dict
        The model or its card (``normalization``).
    volume : (z, y, x) array_like, optional
        Needed for percentile normalization unless `sample` is given.
    sample : (n,) ndarray, optional
        A subsample from :func:`input_sample` (to read the volume only once).

    Returns
    -------
    tuple of 2 float
        Python floats (width > 0).
    """
    card = getattr(model_or_card, "card", model_or_card)
    norm = card["normalization"]
    if norm.get("method", "scale") != "percentile":
        return 0.0, float(norm["scale"])
    if sample is None:
        sample = input_sample(volume, n_sample=int(norm.get("n_sample", N_SAMPLE)))
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [float(p) for p in norm["percentiles"]])
    width = float(hi - lo)
    if not np.isfinite(width) or width <= 0:
        width = 1.0
    return float(lo), width


def normalize_block(block, stats):
    """Network input of a block: ``(block − offset) / width`` in float32."""
    offset, width = stats
    x = np.asarray(block, dtype=np.float32) - np.float32(offset)
    x /= np.float32(width)
    return x


#: Quantiles of the normalized values recorded in a card's input domain.
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def histogram_features(sample, stats):
    """Shape of the normalized value histogram: quantiles and the fraction outside [−0.5, 1.5].

    Returns
    -------
    dict of str to float
    """
    x = normalize_block(sample, stats)
    if x.size == 0:
        return {}
    q = np.quantile(x, _QUANTILES)
    out = {f"q{int(round(p * 100)):02d}": float(v) for p, v in zip(_QUANTILES, q)}
    out["outlier_fraction"] = float(np.mean((x < -0.5) | (x > 1.5)))
    return out


def _fmt(v):
    return f"{v:.3g}"


def check_input_domain(volume, model, voxel_size_um=None, *, units=None, sample=None):
    """Warnings where a volume lies outside the input domain its model was trained on.

    Compares, from a strided subsample (:func:`input_sample`, at most 10⁶ voxels read):

    - the voxel size with the card's ``voxel_size_um`` range (±10 %);
    - the units (when given, e.g. the volume's ``units`` attribute) with the card's;
    - the values with the range of μ the model was trained on (``input_domain.value_range``:
      the 1st and 99th percentiles of μ in 1/cm over the training scans). A percentile far
      outside it means other units (1/pixel, 1/m, arbitrary units) or a material or energy
      far from training; a percentile-normalized model still segments such a volume (its
      input is normalized from the volume itself) but quantities derived from μ, and the
      labels of a scale-normalized model, are not to be trusted;
    - the shape of the normalized histogram (``input_domain.histogram``: quantiles of the
      normalized values and the fraction of voxels outside [−0.5, 1.5], ranges over the
      training scans) — other materials, heavy artefacts, a volume that is mostly air;
    - a volume without finite voxels, or constant.

    Parameters
    ----------
    volume : (z, y, x) array_like
        NumPy, dask or zarr; only the subsample is read.
    model : SegmentationModel
    voxel_size_um : float, optional
        Voxel size of `volume` (µm); not checked when None.
    units : str, optional
        Units of `volume` (e.g. ``"1/cm"``); not checked when None.
    sample : (n,) ndarray, optional
        A subsample from :func:`input_sample` (to read the volume only once).

    Returns
    -------
    list of str
        One sentence per quantity out of range, naming it, the value and the range; empty
        when the volume is inside the domain.

    Examples
    --------
    >>> import numpy as np
    >>> from tomopipe.segment import load_model, check_input_domain
    >>> m = load_model("default", device="cpu")
    >>> vol = np.random.default_rng(0).normal(2.0, 3.0, (16, 16, 16)).astype(np.float32)
    >>> [w.split(":")[0] for w in check_input_domain(vol * 1e-4, m, 25.0)][:2]  # μ in 1/µm, 25 µm voxels
    ['voxel_size_um', 'values']
    """
    card = model.card
    name = card.get("name", "model")
    warn = []
    if voxel_size_um is not None:
        lo, hi = (float(v) for v in card["voxel_size_um"])
        v = float(np.max(voxel_size_um))
        if not lo * 0.9 <= v <= hi * 1.1:
            warn.append(f"voxel_size_um: {_fmt(v)} µm is outside the range {_fmt(lo)}–{_fmt(hi)} µm that "
                        f"{name} was trained on")
    want_units = card["normalization"].get("units")
    if units is not None and want_units and str(units) != str(want_units):
        warn.append(f"units: the volume is in {units!r}, {name} was trained on {want_units!r}")
    if sample is None:
        sample = input_sample(volume)
    if sample.size == 0:
        return warn + ["values: no finite voxel in the volume"]
    dom = card.get("input_domain") or {}
    p1, p99 = (float(v) for v in np.percentile(sample, [1, 99]))
    if p99 <= p1:
        warn.append(f"values: the volume is constant ({_fmt(p1)}) in its subsample")
        return warn
    vr = dom.get("value_range")
    if vr:
        (lo1, hi1), (lo99, hi99) = vr["p01"], vr["p99"]
        # a margin: half the trained span on either side of each percentile's range
        span = hi99 - lo1
        bad = not (lo1 - 0.5 * span <= p1 <= hi1 + 0.5 * span) or not (lo99 / 2 <= p99 <= hi99 * 2)
        if bad:
            warn.append(f"values: 1st/99th percentile {_fmt(p1)} / {_fmt(p99)} {want_units or ''} lie outside "
                        f"the training domain of {name} (1st in {_fmt(lo1)}…{_fmt(hi1)}, 99th in "
                        f"{_fmt(lo99)}…{_fmt(hi99)} {want_units or ''}, {vr.get('what', 'μ')}): other units or "
                        "a wrong pixel size? (geometry.pixel_size)")
    hist = dom.get("histogram")
    if hist:
        feats = histogram_features(sample, input_stats(model, sample=sample))
        out = []
        for key, (lo, hi) in hist.items():
            if key not in feats:
                continue
            margin = 0.25 * (hi - lo) + (0.02 if key == "outlier_fraction" else 0.05)
            if not lo - margin <= feats[key] <= hi + margin:
                out.append(f"{key} {_fmt(feats[key])} (trained {_fmt(lo)}…{_fmt(hi)})")
        if out:
            warn.append("value histogram: " + ", ".join(out) + f" — unlike the scans {name} was trained on "
                        "(other materials, strong artefacts, mostly air?)")
    return warn
