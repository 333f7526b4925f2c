"""Regular grids of correlation nodes laid out from physical sizes (µm).

A *node* is the centre voxel of a cubic (or cuboid) *subset*: the block of the reference
volume whose motion digital volume correlation measures. Node spacing and subset size are
given in µm and converted with the voxel size; "50 µm cuboids" means node spacing = subset
size = 50 µm, so the subsets tile the volume without overlap.

Conventions
-----------
Axes
    Volumes are ``(z, y, x)`` with z the stack (pressure) axis of the cell.
Coordinates
    Node centres are integer voxel indices; the centre of voxel ``i`` lies at
    ``i * voxel_size_um`` µm. A subset of half-width ``h`` spans voxels ``c - h .. c + h``
    (``2 h + 1`` voxels) along each axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["node_grid", "NodeGrid"]


def _per_axis(value, *, name, positive=True, allow_none=False):
    """Return `value` (scalar or length-3) as a float64 ``(3,)`` array, validated."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,):
        raise ValueError(f"{name} must be a number or a (z, y, x) triple, got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return arr


@dataclass(frozen=True)
class NodeGrid:
    """A regular grid of correlation nodes in a ``(z, y, x)`` volume.

    Attributes
    ----------
    centers : (n, 3) ndarray of int64
        Node centres, voxel indices ``(z, y, x)``, in C order of the node grid (x fastest).
    index : (n, 3) ndarray of int64
        Position ``(iz, iy, ix)`` of each node in the node grid.
    grid_shape : tuple of 3 int
        Number of nodes along ``(z, y, x)``.
    half_width : (3,) ndarray of int64
        Subset half-width in voxels; a subset is ``2 * half_width + 1`` voxels along each axis.
    spacing_voxels : (3,) ndarray of int64
        Node spacing in voxels.
    voxel_size_um : (3,) ndarray of float64
        Voxel size along ``(z, y, x)`` in µm.
    shape : tuple of 3 int
        Shape of the volume the grid was laid out on.
    """

    centers: np.ndarray
    index: np.ndarray
    grid_shape: tuple
    half_width: np.ndarray
    spacing_voxels: np.ndarray
    voxel_size_um: np.ndarray
    shape: tuple

    @property
    def n_nodes(self):
        """Number of nodes."""
        return int(self.centers.shape[0])

    @property
    def subset_shape(self):
        """Subset shape in voxels, ``(z, y, x)``."""
        return tuple(int(v) for v in 2 * self.half_width + 1)

    @property
    def subset_size_um(self):
        """Subset edge lengths in µm, ``(z, y, x)``."""
        return (2 * self.half_width + 1) * self.voxel_size_um

    @property
    def spacing_um(self):
        """Node spacing in µm, ``(z, y, x)``."""
        return self.spacing_voxels * self.voxel_size_um

    def to_frame(self):
        """One row per node: grid index, centre in voxels and in µm.

        Returns
        -------
        pandas.DataFrame
            Columns ``node, iz, iy, ix, node_z, node_y, node_x, node_z_um, node_y_um, node_x_um``; ``attrs`` holds the
            subset shape, spacing and voxel size.
        """
        import pandas as pd

        c = self.centers
        um = c * self.voxel_size_um
        df = pd.DataFrame({
            "node": np.arange(self.n_nodes, dtype=np.int64),
            "iz": self.index[:, 0], "iy": self.index[:, 1], "ix": self.index[:, 2],
            "node_z": c[:, 0], "node_y": c[:, 1], "node_x": c[:, 2],
            "node_z_um": um[:, 0], "node_y_um": um[:, 1], "node_x_um": um[:, 2],
        })
        df.attrs.update(self.describe())
        return df

    def describe(self):
        """Plain-Python summary of the grid (JSON- and DataFrame-attrs-friendly)."""
        return {
            "grid_shape": [int(v) for v in self.grid_shape],
            "subset_shape_voxels": list(self.subset_shape),
            "subset_size_um": [float(v) for v in self.subset_size_um],
            "node_spacing_voxels": [int(v) for v in self.spacing_voxels],
            "node_spacing_um": [float(v) for v in self.spacing_um],
            "voxel_size_um": [float(v) for v in self.voxel_size_um],
            "volume_shape": [int(v) for v in self.shape],
        }


def node_grid(shape, voxel_size_um, *, node_spacing_um=None, subset_size_um=None,
              cuboid_um=None, margin_voxels=0):
    """Lay out a regular grid of correlation nodes from physical sizes.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape ``(z, y, x)`` in voxels.
    voxel_size_um : float or (3,) sequence of float
        Voxel size in µm (one value, or one per axis ``(z, y, x)``).
    node_spacing_um : float or (3,) sequence of float, optional
        Distance between neighbouring nodes, in µm. Rounded to whole voxels (at least 1).
    subset_size_um : float or (3,) sequence of float, optional
        Edge length of the subset around each node, in µm; the subset is the odd number of
        voxels ``2 h + 1`` closest to it (at least 3). Defaults to `node_spacing_um`.
    cuboid_um : float or (3,) sequence of float, optional
        Shorthand for ``node_spacing_um = subset_size_um = cuboid_um``: the volume is cut
        into cuboids of this size (e.g. 50 µm), one node at the centre of each. Give either
        `cuboid_um` or `node_spacing_um`, not both.
    margin_voxels : int or (3,) sequence of int, default 0
        Voxels left free between every subset and the volume's faces (room for the search
        around each subset). Nodes are placed so that ``c - h - margin >= 0`` and
        ``c + h + margin <= n - 1``; the grid is centred in what remains.

    Returns
    -------
    NodeGrid
        Node centres ``(n, 3)`` (int64 voxel indices, x fastest), their grid indices,
        half-widths, spacing and voxel size; ``.to_frame()`` gives a DataFrame.

    Raises
    ------
    ValueError
        If a size is not positive, if both or neither of `cuboid_um` and `node_spacing_um`
        are given, or if the volume (less the margins) is smaller than one subset along an
        axis (the message names the axis and the sizes).

    Examples
    --------
    >>> g = node_grid((128, 128, 128), 0.88, cuboid_um=15)
    >>> g.subset_shape, g.grid_shape
    ((17, 17, 17), (7, 7, 7))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"shape must be (z, y, x), got {shape!r}")
    vs = _per_axis(voxel_size_um, name="voxel_size_um")
    if (cuboid_um is None) == (node_spacing_um is None):
        raise ValueError("give exactly one of cuboid_um or node_spacing_um")
    if cuboid_um is not None:
        if subset_size_um is not None:
            raise ValueError("subset_size_um cannot be combined with cuboid_um (it sets both)")
        spacing = _per_axis(cuboid_um, name="cuboid_um")
        subset = spacing
    else:
        spacing = _per_axis(node_spacing_um, name="node_spacing_um")
        subset = _per_axis(subset_size_um, name="subset_size_um", allow_none=True)
        if subset is None:
            subset = spacing
    margin = np.asarray(margin_voxels, dtype=np.int64)
    if margin.ndim == 0:
        margin = np.repeat(margin, 3)
    if margin.shape != (3,) or np.any(margin < 0):
        raise ValueError(f"margin_voxels must be a non-negative int or triple, got {margin_voxels!r}")

    spacing_vox = np.maximum(1, np.rint(spacing / vs)).astype(np.int64)
    half = np.maximum(1, np.rint((subset / vs - 1.0) / 2.0)).astype(np.int64)

    axes = []
    for ax, name in enumerate("zyx"):
        lo = int(margin[ax] + half[ax])
        hi = int(shape[ax] - 1 - margin[ax] - half[ax])
        if hi < lo:
            raise ValueError(
                f"axis {name}: a subset of {2 * half[ax] + 1} voxels with margin "
                f"{margin[ax]} does not fit in {shape[ax]} voxels (subset_size_um/cuboid_um "
                f"too large or margin_voxels too wide)"
            )
        n = (hi - lo) // spacing_vox[ax] + 1
        start = lo + ((hi - lo) - (n - 1) * spacing_vox[ax]) // 2
        axes.append(start + spacing_vox[ax] * np.arange(n, dtype=np.int64))
    grid_shape = tuple(len(a) for a in axes)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in grid_shape], indexing="ij"), -1)
    idx = idx.reshape(-1, 3).astype(np.int64)
    centers = np.stack([axes[a][idx[:, a]] for a in range(3)], axis=1)
    return NodeGrid(centers=centers, index=idx, grid_shape=grid_shape, half_width=half,
                    spacing_voxels=spacing_vox, voxel_size_um=vs, shape=shape)
