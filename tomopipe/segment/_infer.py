"""Tiled U-Net inference with overlap and blending, in memory or over dask chunks.

Tiles lie on one grid fixed in *volume* coordinates (starts ``0, s, 2s, …`` and a last tile
flush with the far edge, per axis), each tile's class probabilities are weighted by a
window that falls smoothly to (almost) zero at the tile edges, and the weighted sum is
divided by the sum of the weights. A chunk computes exactly the tiles that touch it, reading
the input they need (its halo), and adds them in the same order as a single pass over the
whole volume: the chunked result equals the single-pass result, so chunk borders leave no
seams, and tile borders are blended away.
"""

from __future__ import annotations

import copy
import itertools
import threading
import warnings
import weakref

import dask
import dask.array as da
import numpy as np

from ._normalize import check_input_domain, input_sample, input_stats, normalize_block
from ._schema import classes_to_labels

__all__ = ["predict_probabilities", "segment", "segment_dask", "tile_geometry", "InputDomainWarning"]


class InputDomainWarning(UserWarning):
    """A volume lies outside the input domain of the segmentation model (see
    :func:`tomopipe.segment.check_input_domain`)."""


def _prepare(volume, model, voxel_size_um, units, stats, guard):
    """Normalization statistics of the whole volume (once, before any tiling) and the guard."""
    percentile = model.card["normalization"].get("method", "scale") == "percentile"
    sample = input_sample(volume) if guard or (stats is None and percentile) else None
    if guard:
        for w in check_input_domain(volume, model, voxel_size_um, units=units, sample=sample):
            warnings.warn(f"{model.card.get('name', 'model')}: {w}", InputDomainWarning, stacklevel=3)
    if stats is None:
        stats = input_stats(model, sample=sample)
    return tuple(float(v) for v in stats)


def _starts(n, tile, step):
    if n <= tile:
        return [0]
    s = list(range(0, n - tile, step))
    s.append(n - tile)
    return s


def _window(tile, overlap):
    w = np.ones(tile, dtype=np.float32)
    if overlap > 0 and tile > 1:
        o = min(overlap, tile // 2)
        ramp = np.sin(0.5 * np.pi * (np.arange(o) + 0.5) / o) ** 2
        w[:o] = np.minimum(w[:o], ramp)
        w[tile - o:] = np.minimum(w[tile - o:], ramp[::-1])
    return np.maximum(w, 1e-3).astype(np.float32)


def tile_geometry(model, shape, *, tile=None, overlap=None):
    """Tile, step, input context and window per axis for `model` on a volume of `shape`.

    Parameters
    ----------
    model : SegmentationModel
    shape : tuple of 3 int
        Volume shape ``(z, y, x)``.
    tile, overlap : tuple of 3 int, optional
        Default: the card's ``inference`` entries. For the 2.5-D network the y entry of `tile`
        is the number of planes run as one batch and its overlap is 0 (planes are independent).

    Returns
    -------
    dict with ``tile``, ``step``, ``context``, ``windows``, ``starts`` (per axis).
    """
    inf = model.card.get("inference", {})
    tile = tuple(int(t) for t in (tile or inf.get("tile", (128, 8, 128))))
    overlap = tuple(int(o) for o in (overlap or inf.get("overlap", (32, 0, 32))))
    if len(tile) != 3 or len(overlap) != 3 or min(tile) < 1 or min(overlap) < 0:
        raise ValueError(f"tile and overlap must be 3 positive (non-negative) ints, got {tile}, {overlap}")
    if model.ndim == 2:
        overlap = (overlap[0], 0, overlap[2])
        context = (0, (model.in_channels - 1) // 2, 0)
    else:
        context = (0, 0, 0)
    tile = tuple(min(t, n) for t, n in zip(tile, shape))
    overlap = tuple(min(o, t // 2) for o, t in zip(overlap, tile))
    step = tuple(max(1, t - o) for t, o in zip(tile, overlap))
    return {"tile": tile, "step": step, "context": context,
            "windows": [_window(t, o) for t, o in zip(tile, overlap)],
            "starts": [_starts(n, t, s) for n, t, s in zip(shape, tile, step)]}


_PERM = {"xz": (0, 1, 2), "yz": (0, 2, 1)}


def _plans(model, shape, tile, overlap, orientations):
    """(permutation, tile geometry) per plane orientation of the 2.5-D net (one plan in 3-D)."""
    if model.ndim == 3:
        return [((0, 1, 2), tile_geometry(model, shape, tile=tile, overlap=overlap))]
    orientations = tuple(orientations or model.card.get("inference", {}).get("orientations", ("xz",)))
    bad = [o for o in orientations if o not in _PERM]
    if bad or not orientations:
        raise ValueError(f"orientations must be a non-empty subset of {sorted(_PERM)}, got {orientations}")
    plans = []
    for o in orientations:
        perm = _PERM[o]
        plans.append((perm, tile_geometry(model, tuple(shape[i] for i in perm), tile=tile, overlap=overlap)))
    return plans


def _input_range_all(plans, shape, region):
    """Union over orientations of the input index ranges that `region` needs."""
    lo, hi = [None] * 3, [None] * 3
    for perm, geo in plans:
        plo, phi = _input_range(geo, tuple(shape[i] for i in perm), tuple(region[i] for i in perm))
        for k, axis in enumerate(perm):
            lo[axis] = plo[k] if lo[axis] is None else min(lo[axis], plo[k])
            hi[axis] = phi[k] if hi[axis] is None else max(hi[axis], phi[k])
    return lo, hi


def _predict_all(model, block, lo, shape, region, plans, stats):
    """Probabilities of `region`, averaged over the orientation plans."""
    out = None
    block = normalize_block(block, stats)
    for perm, geo in plans:
        prob = _predict_region(model, block.transpose(perm), [lo[i] for i in perm],
                               tuple(shape[i] for i in perm), tuple(region[i] for i in perm), geo)
        prob = prob.transpose((0,) + tuple(1 + i for i in perm))  # the permutations are involutions
        out = prob if out is None else out + prob
    if len(plans) > 1:
        out /= np.float32(len(plans))
    return out


_FUSED = weakref.WeakKeyDictionary()  # net -> (parameter versions, net with batch norm folded)
_FUSED_LOCK = threading.Lock()


def _inference_net(model):
    """`model.net` with every batch norm folded into the convolution before it (eval only).

    Batch norm at inference is a per-channel affine map, so it can be merged into the
    convolution's weights and bias (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`): the
    same logits up to float32 rounding (≈ 1e-5), one pass over every activation less.
    Rebuilt when any parameter or buffer of `model.net` has changed in place (fine-tuning).
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = model.net
    if not (hasattr(net, "down") and hasattr(net, "dec")):  # not tomopipe's UNet: run it as is
        return net
    version = tuple(_stamp(t) for t in list(net.parameters()) + list(net.buffers()))
    with _FUSED_LOCK:
        hit = _FUSED.get(net)
        if hit is not None and hit[0] == version:
            return hit[1]
    with torch.no_grad():
        fused = copy.deepcopy(net).eval()
        for block in list(fused.down) + list(fused.dec):
            for i in range(len(block) - 1):
                if isinstance(block[i], (nn.Conv2d, nn.Conv3d)) and isinstance(block[i + 1], nn.modules.batchnorm._BatchNorm):
                    block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                    block[i + 1] = nn.Identity()
        if fused.ndim == 2 and model.card.get("inference", {}).get("memory_format") == "channels_last":
            fused = fused.to(memory_format=torch.channels_last)
    with _FUSED_LOCK:
        _FUSED[net] = (version, fused)
    return fused


def _stamp(t):
    """Storage and in-place version counter of a tensor (tensors made under
    ``torch.inference_mode`` have no counter: their storage stands for them)."""
    try:
        return t.data_ptr(), t._version
    except RuntimeError:
        return t.data_ptr(), -1


def _run_net(model, block, layout="numpy"):
    """Class probabilities of one normalized input block (tile plus context).

    Returns (K, *tile) float32 NumPy (a view); with ``layout="torch"`` the contiguous
    softmax tensor instead: ``(ny, K, z, x)`` for the 2.5-D net (planes as the batch),
    ``(1, K, z, y, x)`` in 3-D.
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
    net = _inference_net(model)
    m = model.net.multiple
    if model.ndim == 2:
        c = model.in_channels
        ny = x.shape[1] - (c - 1)
        planes = torch.stack([x[:, j:j + c, :].permute(1, 0, 2) for j in range(ny)])  # (ny, c, z, x)
        spatial = planes.shape[2:]
    else:
        planes = x[None, None]
        spatial = planes.shape[2:]
    pad = [(-s) % m for s in spatial]
    if any(pad):
        widths = []
        for p in reversed(pad):
            widths += [0, p]
        planes = F.pad(planes, widths, mode="replicate")
    if model.ndim == 2 and model.card.get("inference", {}).get("memory_format") == "channels_last":
        planes = planes.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        logits = net(planes.to(model.device))
        if any(pad):
            logits = logits[(slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)]
        prob = torch.softmax(logits.float(), dim=1).cpu()
    if layout == "torch":
        return prob
    if model.ndim == 2:
        return prob.permute(1, 2, 0, 3).numpy()  # (K, z, ny, x)
    return prob[0].numpy()


def _predict_region(model, block, block_origin, shape, region, geo):
    """Blended probabilities (K, *region) float32 for `region` from an input `block`.

    `block` holds the volume (edge-clamped) on the index ranges starting at `block_origin`
    (may be negative: clamped indices were replicated).
    """
    tile, ctx = geo["tile"], geo["context"]
    k = len(model.classes)
    rshape = tuple(b - a for a, b in region)
    acc = np.zeros((k,) + rshape, dtype=np.float32)
    wsum = np.zeros(rshape, dtype=np.float32)
    per_axis = [[s for s in starts if s < b and s + t > a]
                for starts, (a, b), t in zip(geo["starts"], region, tile)]
    for combo in itertools.product(*per_axis):
        src = tuple(slice(s - c - o, s + t + c - o) for s, c, t, o in zip(combo, ctx, tile, block_origin))
        prob = _run_net(model, block[src])
        tsl, rsl = [], []
        for s, t, (a, b) in zip(combo, tile, region):
            lo, hi = max(s, a), min(s + t, b)
            tsl.append(slice(lo - s, hi - s))
            rsl.append(slice(lo - a, hi - a))
        w = geo["windows"][0][tsl[0]][:, None, None] * geo["windows"][1][tsl[1]][None, :, None] \
            * geo["windows"][2][tsl[2]][None, None, :]
        acc[(slice(None),) + tuple(rsl)] += prob[(slice(None),) + tuple(tsl)] * w
        wsum[tuple(rsl)] += w
    acc /= wsum
    return acc


def _input_range(geo, shape, region):
    lo, hi = [], []
    for starts, (a, b), t, c in zip(geo["starts"], region, geo["tile"], geo["context"]):
        used = [s for s in starts if s < b and s + t > a]
        lo.append(min(used) - c)
        hi.append(max(used) + t + c)
    return lo, hi


def _clamped(read, shape, lo, hi):
    """Volume values on index ranges [lo, hi) per axis, edge-replicated outside the volume."""
    inner = tuple(slice(max(l, 0), min(h, n)) for l, h, n in zip(lo, hi, shape))
    block = np.asarray(read(inner), dtype=np.float32)
    for ax, (l, h, n) in enumerate(zip(lo, hi, shape)):
        if l < 0 or h > n:
            idx = np.clip(np.arange(l, h), 0, n - 1) - max(l, 0)
            block = np.take(block, idx, axis=ax)
    return block


def predict_probabilities(volume, model, *, tile=None, overlap=None, region=None, orientations=None, stats=None):
    """Class probabilities of a volume (or of a region of it) by blended tiles, in memory.

    Parameters
    ----------
    volume : (z, y, x) array_like
        Reconstructed values (μ in 1/cm or any units for a percentile-normalized model, see
        the card's ``normalization``); NumPy, zarr or dask (only the needed part is read).
    model : SegmentationModel
    tile, overlap : tuple of 3 int, optional
        See :func:`tile_geometry`.
    region : tuple of 3 (start, stop), optional
        Sub-volume to predict (default: all); its result equals the same part of the
        whole-volume result.
    orientations : sequence of {"xz", "yz"}, optional
        2.5-D network: plane orientations whose probabilities are averaged (test-time
        augmentation; the cell is symmetric about z). Default: the card's
        ``inference.orientations``, else ``("xz",)``.
    stats : tuple of 2 float, optional
        ``(offset, width)`` of the input normalization
        (:func:`tomopipe.segment.input_stats`); default: computed from the whole `volume`
        (not from the region), so a region's result equals that part of the whole.

    Returns
    -------
    (n_classes, z, y, x) ndarray of float32
        Probabilities in the card's class order (sum 1 per voxel).
    """
    shape = tuple(int(n) for n in np.shape(volume))
    if len(shape) != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {shape}")
    plans = _plans(model, shape, tile, overlap, orientations)
    stats = _prepare(volume, model, None, None, stats, False)
    region = tuple((0, n) for n in shape) if region is None else tuple((int(a), int(b)) for a, b in region)

    def read(sl):
        part = volume[sl]
        return part.compute() if hasattr(part, "compute") else part

    parts = []
    for perm, geo in plans:
        groups = _groups(geo)
        preg = tuple(region[i] for i in perm)
        for gi in itertools.product(*_touching(groups, preg)):
            group = [groups[a][g] for a, g in enumerate(gi)]
            acc, wsum = _group_sum(model, _group_block(read, shape, perm, geo, group), geo, group, stats)
            parts.append((perm, [ab for _, ab in group], acc, wsum))
    return _combine(region, len(model.classes), parts)


def class_weights(model):
    """Per-class weights of the labels' decision (ones unless the card sets them).

    The labels are ``argmax_k w_k p_k`` over the blended probabilities ``p``. A card may set
    ``inference.class_weights`` (class name → weight): a prior correction fitted on held-out
    simulated scans so that argmax volumes match the true volumes of classes whose boundaries
    are mostly partial-volume voxels (the fit and its held-out check are in the card). The
    probabilities themselves are not changed.

    Parameters
    ----------
    model : SegmentationModel

    Returns
    -------
    (n_classes,) ndarray of float32
        In the model's class order.

    Raises
    ------
    ModelError
        If the card weights a class the model does not have.
    """
    w = model.card.get("inference", {}).get("class_weights") or {}
    unknown = set(w) - set(model.classes)
    if unknown:
        from ..errors import ModelError

        raise ModelError(f"{model.path}: inference.class_weights names classes {sorted(unknown)} the model lacks")
    return np.asarray([float(w.get(c, 1.0)) for c in model.classes], dtype=np.float32)


def _float16(prob):
    """float32 → float16, bit for bit NumPy's ``astype`` (round to nearest even), through
    PyTorch: NumPy converts every value that becomes a float16 subnormal (most small class
    probabilities) on a slow path, ~15× slower than PyTorch's vectorized conversion."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(prob, dtype=np.float32)).to(torch.float16).numpy()


def labels_from_probabilities(prob, model):
    """Labels of class probabilities: ``argmax_k w_k p_k`` (:func:`class_weights`).

    Parameters
    ----------
    prob : (n_classes, z, y, x) ndarray of float
        Probabilities in the model's class order (e.g. of :func:`predict_probabilities`).
    model : SegmentationModel

    Returns
    -------
    (z, y, x) ndarray of uint8
        Label values of the model's schema.

    Raises
    ------
    ModelError
        If the card weights a class the model does not have (:func:`class_weights`).
    """
    return _labels_of(prob, model)


def _labels_of(prob, model):
    w = class_weights(model)
    return classes_to_labels(_weighted_argmax(prob, w), model.classes, model.schema)


def _weighted_argmax(prob, w):
    """``argmax_k w_k · prob[k]`` over axis 0 (the first maximum on ties, as ``np.argmax``).

    A running maximum over the classes, each a contiguous pass: about twice as fast as
    NumPy's argmax along the (outer) class axis, and no (K, …) temporary.
    """
    prob = np.asarray(prob, dtype=np.float32)
    best = prob[0] * w[0]
    idx = np.zeros(best.shape, dtype=np.intp if len(w) > 255 else np.uint8)
    v = np.empty_like(best)
    better = np.empty(best.shape, dtype=bool)
    for k in range(1, len(w)):
        np.multiply(prob[k], w[k], out=v)
        np.greater(v, best, out=better)
        np.maximum(best, v, out=best)
        np.putmask(idx, better, k)
    return idx


def segment(volume, model, *, tile=None, overlap=None, orientations=None, voxel_size_um=None, units=None,
            probabilities=True, guard=True):
    """Segment a volume in one pass (in memory): labels and class probabilities.

    The input normalization is computed once from the whole volume
    (:func:`tomopipe.segment.input_stats`) and the volume is checked against the model's
    input domain (:func:`tomopipe.segment.check_input_domain`): each quantity out of range
    is an :class:`InputDomainWarning` naming it.

    Parameters
    ----------
    volume : (z, y, x) array_like
        Reconstructed values: μ in 1/cm, or any units for a percentile-normalized model
        (the card's ``normalization``).
    model : SegmentationModel
    tile, overlap, orientations
        See :func:`predict_probabilities`.
    voxel_size_um : float, optional
        Checked against the card's voxel-size range.
    units : str, optional
        Units of the values, checked against the card's.
    probabilities : bool
        Also return the probabilities (float16); False returns None in their place.
    guard : bool
        Check the input domain (default).

    Returns
    -------
    labels : (z, y, x) ndarray of uint8
        Label values of the card's schema (argmax of the probabilities).
    probabilities : (n_classes, z, y, x) ndarray of float16 or None

    Raises
    ------
    ValueError
        If `volume` is not 3-D, or a tile, overlap or orientation is invalid.

    Warns
    -----
    InputDomainWarning
        If the volume lies outside the model's input domain.
    """
    if len(np.shape(volume)) != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {np.shape(volume)}")
    stats = _prepare(volume, model, voxel_size_um, units, None, guard)
    prob = predict_probabilities(volume, model, tile=tile, overlap=overlap, orientations=orientations, stats=stats)
    return _labels_of(prob, model), (_float16(prob) if probabilities else None)


def _chunk_task(block, model, lo, shape, region, plans, stats, probabilities):  # the chunkwise engine
    prob = _predict_all(model, block, lo, shape, region, plans, stats)
    return _labels_of(prob, model), (_float16(prob) if probabilities else np.zeros((0,), np.float16))



#: Tiles per group along the (plan's) z, plane and x axes: a group of tiles is run once and its
#: blended sum is shared by every output chunk it overlaps (overlap-add), so no tile is computed
#: twice however small the chunks are.
_GROUP = (2, 2, 2)


def _groups(geo):
    """Per axis, the tile groups: (tile starts, (first voxel, end voxel)) each."""
    out = []
    for axis, (starts, t) in enumerate(zip(geo["starts"], geo["tile"])):
        g = _GROUP[axis]
        out.append([(tuple(starts[k:k + g]), (starts[k], starts[min(k + g, len(starts)) - 1] + t))
                    for k in range(0, len(starts), g)])
    return out


def _group_input_range(geo, group):
    """Input index ranges [lo, hi) per axis of a tile group (with the network's context)."""
    return ([ab[0] - c for (_, ab), c in zip(group, geo["context"])],
            [ab[1] + c for (_, ab), c in zip(group, geo["context"])])


def _group_sum(model, block, geo, group, stats):
    """Blended sums ``(acc (K, *extent), wsum (*extent))`` of the tiles of one group.

    `block`: the volume on the group's input range (edge-replicated outside the volume), in
    the plan's axis order; it is normalized here with `stats`.
    """
    import torch

    block = normalize_block(block, stats)
    tile, ctx = geo["tile"], geo["context"]
    ext = [ab for _, ab in group]
    shape_e = tuple(b - a for a, b in ext)
    acc = np.zeros((len(model.classes),) + shape_e, dtype=np.float32)
    wsum = np.zeros(shape_e, dtype=np.float32)
    w0, w1, w2 = geo["windows"]
    w = w0[:, None, None] * w1[None, :, None] * w2[None, None, :]
    # the weighting and the sum run in PyTorch (both cores, any strides) on the network's own
    # layout: the same float32 products and sums as acc += prob * w in NumPy
    if model.ndim == 2:
        w_net = torch.from_numpy(np.ascontiguousarray(w.transpose(1, 0, 2)))[:, None]  # (ny, 1, z, x)
        to_acc = (1, 2, 0, 3)  # (ny, K, z, x) -> (K, z, ny, x)
    else:
        w_net = torch.from_numpy(w)[None, None]
        to_acc = (0, 1, 2, 3, 4)
    acc_t = torch.from_numpy(acc)[None] if model.ndim == 3 else torch.from_numpy(acc)
    lead = (slice(None),) * (2 if model.ndim == 3 else 1)
    for combo in itertools.product(*[starts for starts, _ in group]):
        src = tuple(slice(s - a, s - a + t + 2 * c) for s, (a, _), t, c in zip(combo, ext, tile, ctx))
        prob = _run_net(model, block[src], layout="torch")
        dst = tuple(slice(s - a, s - a + t) for s, (a, _), t in zip(combo, ext, tile))
        acc_t[lead + dst].add_((prob * w_net).permute(to_acc))  # in place, no copy back
        wsum[dst] += w
    return acc, wsum


def _touching(groups, region):
    """Indices per axis of the groups whose extent meets `region` (plan axis order)."""
    return [[k for k, (_, (a, b)) in enumerate(g) if a < hi and b > lo] for g, (lo, hi) in zip(groups, region)]


def _combine(region, k, parts):
    """Probabilities (K, *region) from group sums ``[(plan perm, group extents, acc, wsum), …]``.

    Groups are added in a fixed order (plan, then group index), so any region gets exactly
    the numbers of the same voxels of the whole volume.
    """
    rshape = tuple(b - a for a, b in region)
    out, plans_seen = None, []
    by_plan = {}
    for perm, ext, acc, wsum in parts:
        by_plan.setdefault(perm, []).append((ext, acc, wsum))
    for perm, items in by_plan.items():
        preg = tuple(region[i] for i in perm)
        pshape = tuple(rshape[i] for i in perm)
        ext0 = items[0][0]
        if len(items) == 1 and all(a <= r0 and b >= r1 for (a, b), (r0, r1) in zip(ext0, preg)):
            # one group holds the region: 0 + x is x, skip the sums
            _, acc, wsum = items[0]
            src = tuple(slice(r0 - a, r1 - a) for (a, _), (r0, r1) in zip(ext0, preg))
            a_sum = np.divide(acc[(slice(None),) + src], wsum[src])
        else:
            a_sum = np.zeros((k,) + pshape, dtype=np.float32)
            w_sum = np.zeros(pshape, dtype=np.float32)
            for ext, acc, wsum in items:
                lo = [max(a, r0) for (a, _), (r0, _) in zip(ext, preg)]
                hi = [min(b, r1) for (_, b), (_, r1) in zip(ext, preg)]
                src = tuple(slice(l - a, h - a) for l, h, (a, _) in zip(lo, hi, ext))
                dst = tuple(slice(l - r0, h - r0) for l, h, (r0, _) in zip(lo, hi, preg))
                a_sum[(slice(None),) + dst] += acc[(slice(None),) + src]
                w_sum[dst] += wsum[src]
            a_sum /= w_sum
        prob = a_sum.transpose((0,) + tuple(1 + i for i in perm))  # the permutations are involutions
        out = prob if out is None else out + prob
        plans_seen.append(perm)
    if len(plans_seen) > 1:
        out /= np.float32(len(plans_seen))
    return out


def _group_block(read, shape, perm, geo, group):
    """The input of a group, read from the volume (original axes) and put in plan axis order."""
    lo, hi = _group_input_range(geo, group)
    olo, ohi = [0] * 3, [0] * 3
    for k, axis in enumerate(perm):
        olo[axis], ohi[axis] = lo[k], hi[k]
    return _clamped(read, shape, olo, ohi).transpose(perm)


def _group_task(block, model, geo, group, stats):
    return _group_sum(model, block, geo, group, stats)


def _combine_task(region, k, metas, results, model, probabilities):
    parts = [(perm, ext, acc, wsum) for (perm, ext), (acc, wsum) in zip(metas, results)]
    prob = _combine(region, k, parts)
    return _labels_of(prob, model), (_float16(prob) if probabilities else np.zeros((0,), np.float16))


def _dask_setup(volume, model, chunks, tile, overlap, orientations, voxel_size_um, units, stats, guard):
    """What both chunked engines start from: the dask volume (rechunked), the tile plans, the
    normalization statistics (and the input guard) and the model as one shared dask object."""
    vol = volume if isinstance(volume, da.Array) else da.from_array(volume, chunks=chunks or "auto")
    if vol.ndim != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {vol.shape}")
    if chunks is not None:
        vol = vol.rechunk(chunks)
    plans = _plans(model, vol.shape, tile, overlap, orientations)
    stats = _prepare(vol, model, voxel_size_um, units, stats, guard)
    mdl = dask.delayed(model, name=f"tomopipe-model-{model.card['weights']['sha256'][:16]}-{model.device}")
    return vol, plans, stats, mdl


def segment_dask(volume, model, *, chunks=None, tile=None, overlap=None, orientations=None, voxel_size_um=None,
                 units=None, probabilities=True, guard=True, stats=None):
    """Segment a (large) volume chunk by chunk: lazy labels and probabilities.

    The input normalization is computed here, once, from a strided subsample of the whole
    volume (:func:`tomopipe.segment.input_sample`, at most 10⁶ voxels read) and passed to
    every task; the input-domain guard runs on the same subsample
    (:class:`InputDomainWarning`). Tiles lie on a grid fixed in volume coordinates and are
    run in fixed groups (2 × 2 × 2 tiles), one task per group reading the input it needs
    (edge-replicated at the volume border); each output chunk adds the blended sums of the
    groups that overlap it in a fixed order (overlap-add), so no tile is computed twice and
    the result equals the single-pass result of :func:`segment`, bit for bit, for any chunks.
    RAM per task: a group's input and ``n_classes ×`` its extent in float32 (≈ 120 MB for
    the default model's 256 × 8 × 256 tiles), plus ``n_classes × chunk`` for a chunk.

    Parameters
    ----------
    volume : (z, y, x) dask array or array_like
        Reconstructed values (see :func:`segment`).
    model : SegmentationModel
    chunks : tuple of 3 int, optional
        Output chunks (default: the chunks of `volume`).
    tile, overlap : tuple of 3 int, optional
        See :func:`tile_geometry`.
    orientations : sequence of {"xz", "yz"}, optional
        See :func:`predict_probabilities`.
    voxel_size_um, units, guard
        See :func:`segment`.
    probabilities : bool
        Also return the probabilities; False returns None in their place (and the tasks
        skip their float16 copy).
    stats : tuple of 2 float, optional
        Input normalization ``(offset, width)``; default computed from `volume`.

    Returns
    -------
    labels : (z, y, x) dask array of uint8
    probabilities : (n_classes, z, y, x) dask array of float16 or None
        Chunked ``(n_classes, *chunks)``.

    Raises
    ------
    ValueError
        If `volume` is not 3-D, or a tile, overlap or orientation is invalid.

    Warns
    -----
    InputDomainWarning
        If the volume lies outside the model's input domain.
    """
    vol, plans, stats, mdl = _dask_setup(volume, model, chunks, tile, overlap, orientations, voxel_size_um,
                                         units, stats, guard)
    k = len(model.classes)
    tasks = {}  # (plan index, group indices) -> delayed (acc, wsum)

    def group_task(p, gi):
        if (p, gi) not in tasks:
            perm, geo = plans[p]
            groups = _groups(geo)
            group = [groups[a][g] for a, g in enumerate(gi)]
            lo, hi = _group_input_range(geo, group)
            olo, ohi = [0] * 3, [0] * 3
            for j, axis in enumerate(perm):
                olo[axis], ohi[axis] = lo[j], hi[j]
            src = _edge_padded(vol, olo, ohi).transpose(perm)
            tasks[(p, gi)] = (dask.delayed(_group_task, pure=True)(src, mdl, geo, group, stats),
                              (perm, [ab for _, ab in group]))
        return tasks[(p, gi)]

    def chunk_task(region):
        results, metas = [], []
        for p, (perm, geo) in enumerate(plans):
            preg = tuple(region[i] for i in perm)
            for gi in itertools.product(*_touching(_groups(geo), preg)):
                res, meta = group_task(p, tuple(gi))
                results.append(res)
                metas.append(meta)
        return dask.delayed(_combine_task, nout=2, pure=True)(region, k, metas, results, mdl, bool(probabilities))

    return _assemble(vol, k, probabilities, chunk_task)


def _edge_padded(vol, lo, hi):
    """The dask volume on index ranges [lo, hi) per axis, edge-replicated outside it (lazy)."""
    shape = vol.shape
    src = vol[tuple(slice(max(l, 0), min(h, n)) for l, h, n in zip(lo, hi, shape))]
    pad = tuple((max(0, -l), max(0, h - n)) for l, h, n in zip(lo, hi, shape))
    return da.pad(src, pad, mode="edge") if any(q != (0, 0) for q in pad) else src


def _assemble(vol, k, probabilities, chunk_task):
    """Lazy labels (uint8) and float16 probabilities (or None) in the chunks of `vol`, from
    ``chunk_task(region)``: one delayed ``(labels, probabilities)`` per chunk region."""
    bounds = [np.concatenate([[0], np.cumsum(c)]) for c in vol.chunks]
    grid_l = np.empty(tuple(len(c) for c in vol.chunks), dtype=object)
    grid_p = np.empty_like(grid_l)
    for idx in itertools.product(*(range(len(c)) for c in vol.chunks)):
        region = tuple((int(b[i]), int(b[i + 1])) for b, i in zip(bounds, idx))
        task = chunk_task(region)
        rshape = tuple(b - a for a, b in region)
        grid_l[idx] = da.from_delayed(task[0], shape=rshape, dtype=np.uint8)
        if probabilities:
            grid_p[idx] = da.from_delayed(task[1], shape=(k,) + rshape, dtype=np.float16)
    labels = da.block(grid_l.tolist())
    prob = da.block(grid_p.tolist()) if probabilities else None
    return labels, prob


def _segment_dask_chunkwise(volume, model, *, chunks=None, tile=None, overlap=None, orientations=None,
                            probabilities=True, stats=None):
    """The inference engine of tomopipe-unet25d-cus-v1's time: each chunk task recomputes every
    tile touching it. Kept for the benchmark's old path (``benchmarks/bench_segment.py``)."""
    guard, voxel_size_um, units = False, None, None
    vol, plans, stats, mdl = _dask_setup(volume, model, chunks, tile, overlap, orientations, voxel_size_um,
                                         units, stats, guard)
    shape, k = vol.shape, len(model.classes)

    def chunk_task(region):
        lo, hi = _input_range_all(plans, shape, region)
        return dask.delayed(_chunk_task, nout=2, pure=True)(_edge_padded(vol, lo, hi), mdl, lo, shape, region,
                                                            plans, stats, bool(probabilities))

    return _assemble(vol, k, probabilities, chunk_task)
