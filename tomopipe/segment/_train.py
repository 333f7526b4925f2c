"""Training of the segmentation U-Net on simulated scans or on a store's corrected labels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ._schema import DEFAULT_CLASSES, DEFAULT_SCHEMA, UNLABELLED

__all__ = ["TrainConfig", "train_unet", "UNLABELLED"]


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
    batch : int
        Planes per step (2.5-D network).
    iterations : int
        Optimizer steps (AdamW, one-cycle learning rate with peak `lr`).
    lr : float
    weight_decay : float
    dice_weight : float
        Weight of the soft-Dice term added to the class-weighted cross entropy.
    scale : float
        μ (1/cm) is divided by this before entering the network (model card normalization).
    intensity_jitter : float
        Relative random gain applied to each patch (robustness to energy/calibration).
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
    features: tuple = (16, 32, 64, 128)
    patch: int = 128
    batch: int = 12
    iterations: int = 4500
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dice_weight: float = 0.5
    scale: float = 25.0
    intensity_jitter: float = 0.05
    seed: int = 0
    threads: int | None = None
    cubes: int = 2
    time_limit_s: float | None = None
    classes: tuple = DEFAULT_CLASSES
    schema: dict = field(default_factory=lambda: dict(DEFAULT_SCHEMA))


class _Sampler:
    """Random training patches from (volume, labels) pairs (NumPy or zarr arrays)."""

    def __init__(self, pairs, cfg, rng):
        from ._schema import _lut

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

    def _window(self, n, p):
        if n <= p:
            return 0, n
        s = int(self.rng.integers(0, n - p + 1))
        return s, s + p

    def sample_2d(self, batch):
        cfg, rng = self.cfg, self.rng
        c = (cfg.in_channels - 1) // 2
        xs, ys = [], []
        for _ in range(batch):
            vol, lab = self.pairs[int(rng.choice(len(self.pairs), p=self.p))]
            nz, ny, nx = vol.shape
            across = int(rng.integers(0, 2))  # 0: xz planes (neighbours along y); 1: yz planes
            n_plane, n_other = (ny, nx) if across == 0 else (nx, ny)
            j = int(rng.integers(0, n_plane))
            z0, z1 = self._window(nz, cfg.patch)
            o0, o1 = self._window(n_other, cfg.patch)
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
            xs.append(self._pad(v * (1 + cfg.intensity_jitter * rng.standard_normal()), 0.0))
            ys.append(self._pad(self.lut[np.asarray(lb)], -100))
        return np.stack(xs), np.stack(ys)

    def sample_3d(self, batch):
        cfg, rng = self.cfg, self.rng
        xs, ys = [], []
        for _ in range(batch):
            vol, lab = self.pairs[int(rng.choice(len(self.pairs), p=self.p))]
            sl = tuple(slice(*self._window(n, cfg.patch)) for n in vol.shape)
            v = np.asarray(vol[sl], dtype=np.float32)
            lb = self.lut[np.asarray(lab[sl])]
            for ax in range(3):
                if rng.random() < 0.5:
                    v, lb = np.flip(v, ax), np.flip(lb, ax)
            if rng.random() < 0.5:
                v, lb = v.transpose(0, 2, 1), lb.transpose(0, 2, 1)
            xs.append(self._pad(v * (1 + cfg.intensity_jitter * rng.standard_normal()), 0.0)[None])
            ys.append(self._pad(lb, -100))
        return np.stack(xs), np.stack(ys)

    def _pad(self, a, value):
        p = self.cfg.patch
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


def train_unet(pairs, config=None, *, init=None, progress=None):
    """Train the segmentation U-Net on (volume, labels) pairs.

    Parameters
    ----------
    pairs : sequence of (volume, labels)
        ``(z, y, x)`` μ volumes (1/cm; NumPy or zarr, read patch by patch) and label volumes
        of the same shape in `config.schema` values; :data:`UNLABELLED` (254) and other values
        outside the schema are ignored by the loss (sparse corrections).
    config : TrainConfig, optional
    init : SegmentationModel, optional
        Start from these weights (fine-tuning on corrections) instead of a random
        initialization; its architecture and classes are kept.
    progress : callable, optional
        Receives one line of text every 50 steps.

    Returns
    -------
    net : tomopipe.segment.UNet
        In ``eval()`` mode, on the CPU.
    history : pandas.DataFrame
        Step, loss and learning rate every 50 steps, and the wall time.

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
    for i, (v, lab) in enumerate(pairs):
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
        cfg.scale = init.scale
    else:
        net = UNet(cfg.in_channels if cfg.ndim == 2 else 1, len(cfg.classes), cfg.features, ndim=cfg.ndim)
    if cfg.patch % net.multiple:
        raise ValueError(f"patch {cfg.patch} must be a multiple of {net.multiple}")
    sampler = _Sampler(pairs, cfg, rng)
    weights = torch.tensor(_class_weights(pairs, cfg, sampler.lut), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.iterations,
                                                pct_start=0.1 if init is None else 0.02)
    k = len(cfg.classes)
    rows, t0 = [], time.perf_counter()
    net.train()
    for step in range(1, cfg.iterations + 1):
        if cfg.ndim == 2:
            x, y = sampler.sample_2d(cfg.batch)
        else:
            x, y = sampler.sample_3d(cfg.cubes)
        x = torch.from_numpy(x / np.float32(cfg.scale))
        y = torch.from_numpy(y)
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
        if step % 50 == 0 or step == cfg.iterations or out_of_time:
            row = {"step": step, "loss": float(loss.detach()), "ce": float(ce.detach()), "lr": float(sched.get_last_lr()[0]),
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            if progress:
                progress(f"step {step}/{cfg.iterations}: loss {row['loss']:.4f} (ce {row['ce']:.4f}), "
                         f"{row['seconds']:.0f} s")
        if out_of_time:
            break
    net.eval()
    return net, pd.DataFrame(rows)
