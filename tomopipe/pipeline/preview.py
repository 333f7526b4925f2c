"""PNG preview of a run: central slices of the reconstructed volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..units import voxel_size_um

__all__ = ["write_preview"]


def write_preview(store, path, *, max_px=1024):
    """Write the central z, y and x slices of ``volume/`` as a PNG.

    Parameters
    ----------
    store : tomopipe.pipeline.Store
        A store with a complete ``volume`` stage.
    path : path-like
        Output PNG file.
    max_px : int
        Use the first pyramid level whose slices are at most this size (reads 3 slices only).

    Returns
    -------
    pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = store.group("volume")
    level = "0"
    for name in sorted((k for k in g.array_keys()), key=int):
        level = name
        if max(g[name].shape[1:]) <= max_px:
            break
    a = g[level]
    nz, ny, nx = a.shape
    unit = g.attrs.get("units", "")
    voxel = g.attrs.get("voxel_size_um")
    if voxel is not None:
        voxel = voxel_size_um(voxel)
    step = 2 ** int(level)
    # slice title -> (image, (row axis, column axis)) with axes 0 = z, 1 = y, 2 = x
    if nz >= 16:
        slices = {
            f"z = {nz // 2}": (np.asarray(a[nz // 2]), (1, 2)),
            f"y = {ny // 2}": (np.asarray(a[:, ny // 2, :]), (0, 2)),
            f"x = {nx // 2}": (np.asarray(a[:, :, nx // 2]), (0, 1)),
        }
    else:  # a thin stack: side views say nothing, show z slices instead
        zs = sorted({0, nz // 2, nz - 1})
        slices = {f"z = {z}": (np.asarray(a[z]), (1, 2)) for z in zs}
    allv = np.concatenate([s.ravel() for s, _ in slices.values()])
    lo, hi = np.percentile(allv, [0.5, 99.5])
    widths = [s.shape[1] for s, _ in slices.values()]
    fig, axes = plt.subplots(1, len(slices), figsize=(4 * len(slices) + 1, 4.5),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    axes = axes[0]
    for ax, (title, (img, (ra, ca))) in zip(axes, slices.items()):
        ext = None
        if voxel:
            h, w = img.shape
            ext = [0, w * voxel[ca] * step, h * voxel[ra] * step, 0]
        im = ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=ext, interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("µm" if voxel else "px")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"μ ({unit})")
    center = g.attrs.get("center")
    fig.suptitle(f"{store.path.name}: centre {center:.2f} px" if center is not None else store.path.name)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
