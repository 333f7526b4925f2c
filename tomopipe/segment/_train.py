"""Training of the segmentation U-Net on simulated scans or on a store's corrected labels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ._schema import DEFAULT_CLASSES, DEFAULT_SCHEMA, UNLABELLED

__all__ = ["TrainConfig", "train_unet", "UNLABELLED", "TrainProgress", "TrainingCancelled"]


class TrainingCancelled(Exception):
    """Raised by :func:`train_unet` when its `cancel` callback returns True."""


@dataclass(frozen=True)
class TrainProgress:
    """One progress report of :func:`train_unet` (``str()`` gives a log line).

    Attributes
    ----------
    step, iterations : int
        Steps done and planned.
    loss : float
    seconds : float
        Wall time since the start of training.
    """

    step: int
    iterations: int
    loss: float
    seconds: float
    ce: float = float("nan")

    def __str__(self):
        return (f"step {self.step}/{self.iterations}: loss {self.loss:.4f} (ce {self.ce:.4f}), "
                f"{self.seconds:.0f} s")


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_unet` (defaults: the shipped 2.5-D CuS model).

    Attributes
    ----------
    ndim : {2, 3}
        2: the 2.5-D network on xz/yz planes with ``in_channels`` neighbouring planes as
        channels; 3: a 3-D network on cubes.
    in_channels : int
        Neighbouring planes of the 2.5-D network (odd).
    features : tuple of int
        Channels per U-Net level.
    patch : int
        Side of the training patches (voxels), a multiple of ``2**(len(features)-1)``.
    patch_min : int, optional
        If set, each step draws its patch side uniformly from the multiples of
        ``2**(len(features)-1)`` between `patch_min` and `patch` (all patches of a step share
        it): the network also learns fields of view smaller than `patch`, whose borders are
        those of the image (inference on small volumes or crops sees such borders). Default:
        every patch is `patch` (smaller volumes are padded to it and the padding ignored).
    batch : int
        Planes per step (2.5-D network).
    iterations : int
        Optimizer steps (AdamW, one-cycle learning rate with peak `lr`).
    lr : float
    weight_decay : float
    dice_weight : float
        Weight of the soft-Dice term added to the class-weighted cross entropy.
    normalization : {"percentile", "scale"}
        ``"percentile"``: each volume is mapped by its own `percentiles`
        (:mod:`tomopipe.segment._normalize`), from the whole volume or — for a third of the
        patches each — from one of two random sub-boxes (≥ 60 % per axis: other fields of
        view give other statistics); ``"scale"``: μ (1/cm) divided by `scale`.
    percentiles : tuple of 2 float
    scale : float
    intensity_jitter : float
        Standard deviation of a random log-gain and (× 0.3) of a random offset applied to
        each normalized patch (robustness to what the normalization leaves).
    memory_format : {"channels_last", "contiguous"}
        Memory layout of the 2.5-D network (channels-last is faster on CPUs).
    seed : int
    threads : int, optional
        PyTorch CPU threads (default: PyTorch's choice).
    cubes : int
        Cubes per step of the 3-D network.
    time_limit_s : float, optional
        Stop after this wall time (benchmarks comparing networks at equal cost; the result
        is then not reproducible).
    """

    ndim: int = 2
    in_channels: int = 5
    features: tuple = (8, 16, 32, 64, 128)
    patch: int = 128
    patch_min: int | None = None
    batch: int = 12
    iterations: int = 5000
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dice_weight: float = 0.5
    normalization: str = "percentile"
    percentiles: tuple = (1.0, 99.0)
    scale: float = 25.0
    intensity_jitter: float = 0.08
    memory_format: str = "channels_last"
    seed: int = 0
    threads: int | None = None
    cubes: int = 2
    time_limit_s: float | None = None
    classes: tuple = DEFAULT_CLASSES
    schema: dict = field(default_factory=lambda: dict(DEFAULT_SCHEMA))

    def __post_init__(self):
        _patch_sides(self, 2 ** (len(self.features) - 1))


def _patch_sides(cfg, multiple):
    """The patch sides a step draws from (multiples of `multiple` from ``cfg.patch_min`` to
    ``cfg.patch``), or None without ``patch_min``; ValueError if ``patch_min`` is out of range."""
    if cfg.patch_min is None:
        return None
    if not multiple <= cfg.patch_min <= cfg.patch:
        raise ValueError(f"patch_min {cfg.patch_min} must lie between {multiple} and patch {cfg.patch}")
    return np.arange(-(-cfg.patch_min // multiple), cfg.patch // multiple + 1) * multiple


class _Sampler:
    """Random training patches from (volume, labels) pairs (NumPy or zarr arrays)."""

    def __init__(self, pairs, cfg, rng):
        from ._schema import _lut

        refs = [p[2] if len(p) > 2 and p[2] is not None else p[0] for p in pairs]
        pairs = [(p[0], p[1]) for p in pairs]
        self.pairs = pairs
        self.cfg = cfg
        self.rng = rng
        lut = _lut(cfg.schema, cfg.classes).astype(np.int64)
        known = np.zeros(256, dtype=bool)
        known[[cfg.schema[c] for c in cfg.classes]] = True
        lut[~known] = -100  # ignored by the loss (UNLABELLED and anything else)
        self.lut = lut
        sizes = np.array([np.prod(v.shape) for v, _ in pairs], dtype=float)
        self.p = sizes / sizes.sum()
        self.stats = [self._stats(r) for r in refs]
        self.planes = [self._annotated_planes(lab) for _, lab in pairs]

    @staticmethod
    def _annotated_planes(lab):
        """Indices along y and along x of the planes holding annotated voxels, or None if all do."""
        ny, nx = lab.shape[1], lab.shape[2]
        ys, xs = np.zeros(ny, bool), np.zeros(nx, bool)
        for z in range(0, lab.shape[0], 64):
            a = np.asarray(lab[z:z + 64]) != UNLABELLED
            ys |= a.any(axis=(0, 2))
            xs |= a.any(axis=(0, 1))
        if ys.all() and xs.all():
            return None
        return np.flatnonzero(ys), np.flatnonzero(xs)
    def _stats(self, vol):
        """Normalization (offset, width) of a volume: whole, and two random sub-boxes."""
        from ._normalize import input_sample, input_stats

        cfg = self.cfg
        card = {"normalization": {"method": cfg.normalization, "percentiles": list(cfg.percentiles),
                                  "scale": cfg.scale}}
        if cfg.normalization != "percentile":
            return [input_stats(card)]
        out = [input_stats(card, sample=input_sample(vol, n_sample=200_000))]
        for _ in range(2):
            box = []
            for n in vol.shape:
                m = max(1, int(round(n * self.rng.uniform(0.6, 1.0))))
                a = int(self.rng.integers(0, n - m + 1))
                box.append(slice(a, a + m))
            out.append(input_stats(card, sample=input_sample(vol[tuple(box)], n_sample=200_000)))
        return out

    def _normalized(self, v, i):
        from ._normalize import normalize_block

        cfg, rng = self.cfg, self.rng
        stats = self.stats[i][int(rng.integers(0, len(self.stats[i])))]
        x = normalize_block(v, stats)
        if cfg.intensity_jitter:
            x = x * np.float32(np.exp(cfg.intensity_jitter * rng.standard_normal())) \
                + np.float32(0.3 * cfg.intensity_jitter * rng.standard_normal())
        return x

    def _window(self, n, p):
        if n <= p:
            return 0, n
        s = int(self.rng.integers(0, n - p + 1))
        return s, s + p

    def sample_2d(self, batch, patch=None):
        cfg, rng = self.cfg, self.rng
        p = int(patch or cfg.patch)
        c = (cfg.in_channels - 1) // 2
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.choice(len(self.pairs), p=self.p))
            vol, lab = self.pairs[i]
            nz, ny, nx = vol.shape
            across = int(rng.integers(0, 2))  # 0: xz planes (neighbours along y); 1: yz planes
            n_plane, n_other = (ny, nx) if across == 0 else (nx, ny)
            sparse = self.planes[i]
            if sparse is None or not len(sparse[across]):
                j = int(rng.integers(0, n_plane))
            else:  # sparse corrections: planes through annotated voxels only
                j = int(sparse[across][int(rng.integers(0, len(sparse[across])))])
            z0, z1 = self._window(nz, p)
            if sparse is not None and len(sparse[1 - across]) and n_other > p:
                anchor = int(sparse[1 - across][int(rng.integers(0, len(sparse[1 - across])))])
                o0 = int(rng.integers(max(0, anchor - p + 1), min(anchor, n_other - p) + 1))
                o1 = o0 + p
            else:
                o0, o1 = self._window(n_other, p)
            lo, hi = max(j - c, 0), min(j + c + 1, n_plane)
            if across == 0:
                v = np.asarray(vol[z0:z1, lo:hi, o0:o1], dtype=np.float32)  # (z, planes, x)
                lb = np.asarray(lab[z0:z1, j, o0:o1])
            else:
                v = np.asarray(vol[z0:z1, o0:o1, lo:hi], dtype=np.float32).transpose(0, 2, 1)
                lb = np.asarray(lab[z0:z1, o0:o1, j])
            idx = np.clip(np.arange(j - c, j + c + 1), 0, n_plane - 1) - lo
            v = v[:, idx, :].transpose(1, 0, 2)  # (channels, z, other)
            if rng.random() < 0.5:
                v, lb = v[:, ::-1], lb[::-1]
            if rng.random() < 0.5:
                v, lb = v[:, :, ::-1], lb[:, ::-1]
            if rng.random() < 0.5:
                v = v[::-1]
            xs.append(self._pad(self._normalized(v, i), 0.0, p))
            ys.append(self._pad(self.lut[np.asarray(lb)], -100, p))
        return np.stack(xs), np.stack(ys)

    def sample_3d(self, batch, patch=None):
        cfg, rng = self.cfg, self.rng
        p = int(patch or cfg.patch)
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.choice(len(self.pairs), p=self.p))
            vol, lab = self.pairs[i]
            sl = tuple(slice(*self._window(n, p)) for n in vol.shape)
            v = np.asarray(vol[sl], dtype=np.float32)
            lb = self.lut[np.asarray(lab[sl])]
            for ax in range(3):
                if rng.random() < 0.5:
                    v, lb = np.flip(v, ax), np.flip(lb, ax)
            if rng.random() < 0.5:
                v, lb = v.transpose(0, 2, 1), lb.transpose(0, 2, 1)
            xs.append(self._pad(self._normalized(v, i), 0.0, p)[None])
            ys.append(self._pad(lb, -100, p))
        return np.stack(xs), np.stack(ys)

    def _pad(self, a, value, p):
        nd = 3 if self.cfg.ndim == 3 else 2
        spatial = a.shape[-nd:]
        widths = [(0, 0)] * (a.ndim - nd) + [(0, p - s) for s in spatial]
        return np.pad(np.ascontiguousarray(a), widths, constant_values=value)


def _class_weights(pairs, cfg, lut):
    counts = np.zeros(len(cfg.classes))
    for _, lab in pairs:
        step = max(1, int(round((np.prod(lab.shape) / 4e6) ** (1 / 3))))
        sub = np.asarray(lab[::step, ::step, ::step])
        cls = lut[sub]
        counts += np.bincount(cls[cls >= 0].ravel(), minlength=len(cfg.classes))
    freq = counts / max(counts.sum(), 1)
    w = 1.0 / np.sqrt(np.maximum(freq, 1e-4))
    return w / w[counts > 0].mean() if (counts > 0).any() else np.ones_like(w)


def train_unet(pairs, config=None, *, init=None, progress=None, cancel=None):
    """Train the segmentation U-Net on (volume, labels) pairs.

    Parameters
    ----------
    pairs : sequence of (volume, labels) or (volume, labels, reference)
        ``(z, y, x)`` reconstructed volumes (NumPy or zarr, read patch by patch; μ in 1/cm
        for ``scale`` normalization, any units for ``percentile``) and label volumes of the
        same shape in `config.schema` values; :data:`UNLABELLED` (254) and other values
        outside the schema are ignored by the loss (sparse corrections). `reference`, when
        `volume` is a crop, is the whole volume it was cut from: percentile normalization
        takes its statistics there, as inference on that volume does.
    config : TrainConfig, optional
    init : SegmentationModel, optional
        Start from these weights (fine-tuning on corrections) instead of a random
        initialization; its architecture, classes and normalization are kept.
    progress : callable, optional
        Receives a :class:`TrainProgress` (``str()`` of it is a log line) every 50 steps
        (every 10 when fine-tuning) and at the last step.
    cancel : callable, optional
        Called before every step without arguments; when it returns True training stops
        with :class:`TrainingCancelled` (nothing is returned or written).

    Returns
    -------
    net : tomopipe.segment.UNet
        In ``eval()`` mode, on the CPU.
    history : pandas.DataFrame
        Step, loss and learning rate every 50 steps, and the wall time.

    Raises
    ------
    ValueError
        If `pairs` is empty or a volume and its labels differ in shape.
    TrainingCancelled
        If `cancel` returned True.

    Notes
    -----
    Reproducible: NumPy's and PyTorch's generators are seeded with ``config.seed`` and the
    number of steps is fixed, so the same data and configuration give the same weights on the
    same machine and thread count. Loss: class-weighted cross entropy (weights ∝ 1/√frequency)
    plus `dice_weight` × soft Dice [1]_ averaged over the classes.

    References
    ----------
    .. [1] F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: fully convolutional neural networks for
       volumetric medical image segmentation", 3DV 2016. https://doi.org/10.1109/3DV.2016.79
    """
    import pandas as pd
    import torch
    import torch.nn.functional as F

    from ._unet import UNet

    cfg = config or TrainConfig()
    if not pairs:
        raise ValueError("pairs: no training volumes")
    for i, pair in enumerate(pairs):
        v, lab = pair[0], pair[1]
        if tuple(v.shape) != tuple(lab.shape) or len(v.shape) != 3:
            raise ValueError(f"pairs[{i}]: volume {tuple(v.shape)} and labels {tuple(lab.shape)} must be "
                             "3-D of the same shape")
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if init is not None:
        net = init.net.to("cpu")
        a = init.card["architecture"]
        cfg.ndim, cfg.in_channels, cfg.features = int(a["ndim"]), int(a["in_channels"]), tuple(a["features"])
        cfg.classes, cfg.schema = tuple(init.classes), dict(init.schema)
        norm = init.card["normalization"]
        cfg.normalization = norm.get("method", "scale")
        if cfg.normalization == "percentile":
            cfg.percentiles = tuple(float(p) for p in norm["percentiles"])
        else:
            cfg.scale = float(norm["scale"])
        cfg.memory_format = init.card.get("inference", {}).get("memory_format", "contiguous")
    else:
        net = UNet(cfg.in_channels if cfg.ndim == 2 else 1, len(cfg.classes), cfg.features, ndim=cfg.ndim)
    if cfg.patch % net.multiple:
        raise ValueError(f"patch {cfg.patch} must be a multiple of {net.multiple}")
    sides = _patch_sides(cfg, net.multiple)  # again: a parent model's features may have changed the multiple
    channels_last = cfg.ndim == 2 and cfg.memory_format == "channels_last"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    sampler = _Sampler(pairs, cfg, rng)
    weights = torch.tensor(_class_weights(sampler.pairs, cfg, sampler.lut), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    pct = 0.1 if init is None else 0.02
    if cfg.iterations * pct >= 2:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.iterations, pct_start=pct)
    else:  # too few steps for a warm-up phase: constant learning rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    k = len(cfg.classes)
    rows, t0 = [], time.perf_counter()
    net.train()
    if init is not None:
        # fine-tuning: keep the batch-norm statistics of the parent model (a few small batches
        # from one reviewed region would replace them and shift every other region's output)
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    every = 50 if init is None else 10
    for step in range(1, cfg.iterations + 1):
        if cancel is not None and cancel():
            net.eval()
            raise TrainingCancelled(f"training cancelled at step {step - 1}/{cfg.iterations}")
        side = None if sides is None else int(sides[int(rng.integers(0, len(sides)))])
        if cfg.ndim == 2:
            x, y = sampler.sample_2d(cfg.batch, side)
        else:
            x, y = sampler.sample_3d(cfg.cubes, side)
        x = torch.from_numpy(x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(y)
        if not (y >= 0).any():  # no annotated voxel in this batch (sparse labels): nothing to learn
            continue
        logits = net(x)
        ce = F.cross_entropy(logits, y, weight=weights, ignore_index=-100)
        valid = (y >= 0).unsqueeze(1)
        prob = torch.softmax(logits, 1) * valid
        onehot = F.one_hot(y.clamp(min=0), k).movedim(-1, 1) * valid
        dims = tuple([0] + list(range(2, prob.ndim)))
        inter = (prob * onehot).sum(dims)
        denom = prob.sum(dims) + onehot.sum(dims)
        present = onehot.sum(dims) > 0
        dice = (2 * inter + 1.0) / (denom + 1.0)
        loss = ce + cfg.dice_weight * (1 - dice[present].mean() if present.any() else 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        out_of_time = cfg.time_limit_s is not None and time.perf_counter() - t0 > cfg.time_limit_s
        if step % every == 0 or step == cfg.iterations or out_of_time:
            row = {"step": step, "loss": float(loss.detach()), "ce": float(ce.detach()), "lr": float(sched.get_last_lr()[0]),
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            if progress:
                progress(TrainProgress(step, cfg.iterations, row["loss"], row["seconds"], row["ce"]))
        if out_of_time:
            break
    net.eval()
    return net, pd.DataFrame(rows)
