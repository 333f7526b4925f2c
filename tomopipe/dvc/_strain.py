"""Displacement grids and strain tensors from a digital-volume-correlation table.

:func:`tomopipe.dvc.dvc` returns one row per node of a regular grid (columns ``node_z``,
``node_y``, ``node_x`` — voxel indices of the node centre —, their positions ``node_*_um``,
the displacement ``u_*`` in voxels and ``u_*_um`` in µm, and a ``status``). Here that table is
put back on its grid (:func:`displacement_grid`) and differentiated node to node
(:func:`strain`).

Conventions
-----------
Volumes are ``(z, y, x)`` with z the stack (pressure) axis of the cell; every vector and
tensor index follows the same order, 0 = z, 1 = y, 2 = x. The displacement maps the reference
state onto the deformed one, :math:`x = X + u(X)`, so :math:`F = I + \\partial u / \\partial X`
with :math:`X` the reference (node) positions in µm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DisplacementGrid", "Strain", "displacement_grid", "strain"]

#: The three axes, in the order of every vector and tensor index.
_AXES = ("z", "y", "x")
#: Columns :func:`displacement_grid` needs in a DVC table.
_REQUIRED = (
    "node_z", "node_y", "node_x", "node_z_um", "node_y_um", "node_x_um",
    "u_z_um", "u_y_um", "u_x_um", "status",
)
#: Strain kinds accepted by :func:`strain`.
_KINDS = ("small", "green_lagrange")
#: Status given to grid positions that have no row in the table.
_MISSING = "missing"


def _check_table(table, *, name="table", required=_REQUIRED):
    """Raise unless `table` is a DataFrame holding the `required` columns of ``dvc``'s table."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"{name} must be a pandas.DataFrame from tomopipe.dvc.dvc, got {type(table).__name__}"
        )
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"{name} lacks the column(s) {missing}; expected the table of tomopipe.dvc.dvc"
        )


@dataclass(frozen=True)
class DisplacementGrid:
    """A DVC table put back on its regular node grid (result of :func:`displacement_grid`).

    Attributes
    ----------
    z_um, y_um, x_um : (nz,), (ny,), (nx,) ndarray of float64
        Node positions along each axis, µm, increasing.
    z_index, y_index, x_index : (nz,), (ny,), (nx,) ndarray of int64
        The same positions as voxel indices of the node centres (``node_z`` etc.).
    u_um : (3, nz, ny, nx) ndarray of float64
        Displacement ``(u_z, u_y, u_x)`` at every node, µm; NaN where `status` is not
        ``"ok"``.
    status : (nz, ny, nx) ndarray of object
        The DVC status of every node (``"ok"``, ``"masked"``, ``"featureless"``,
        ``"no_convergence"``, ``"outlier"``), or ``"missing"`` where the table has no row.
    """

    z_um: np.ndarray
    y_um: np.ndarray
    x_um: np.ndarray
    z_index: np.ndarray
    y_index: np.ndarray
    x_index: np.ndarray
    u_um: np.ndarray
    status: np.ndarray

    @property
    def shape(self):
        """``(nz, ny, nx)``: the number of nodes along each axis."""
        return self.u_um.shape[1:]

    @property
    def coords_um(self):
        """``(z_um, y_um, x_um)``: the node positions along each axis, µm."""
        return self.z_um, self.y_um, self.x_um

    @property
    def valid(self):
        """(nz, ny, nx) bool: nodes whose three displacement components are finite."""
        return np.all(np.isfinite(self.u_um), axis=0)

    def to_frame(self):
        """One row per grid node in C order (z slowest): indices, positions (µm), status."""
        iz, iy, ix = np.meshgrid(self.z_index, self.y_index, self.x_index, indexing="ij")
        zz, yy, xx = np.meshgrid(self.z_um, self.y_um, self.x_um, indexing="ij")
        return pd.DataFrame({
            "node_z": iz.ravel(), "node_y": iy.ravel(), "node_x": ix.ravel(),
            "node_z_um": zz.ravel(), "node_y_um": yy.ravel(), "node_x_um": xx.ravel(),
            "status": self.status.ravel(),
        })


def _axis_positions(table, axis):
    """Sorted distinct voxel indices of the nodes along `axis` and their positions in µm."""
    idx = table[f"node_{axis}"].to_numpy()
    um = table[f"node_{axis}_um"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(um)):
        raise ValueError(f"table column node_{axis}_um holds NaN or infinite positions")
    if idx.dtype.kind not in "iu":
        as_int = np.rint(np.asarray(idx, dtype=np.float64))
        if not np.all(np.isfinite(as_int)) or not np.allclose(as_int, idx):
            raise ValueError(f"table column node_{axis} must hold integer voxel indices")
        idx = as_int
    idx = idx.astype(np.int64)
    uniq, inverse = np.unique(idx, return_inverse=True)
    pos = np.zeros(uniq.size)
    np.add.at(pos, inverse, um)
    pos /= np.bincount(inverse, minlength=uniq.size)
    spread = np.abs(um - pos[inverse])
    if spread.size and spread.max() > 1e-6 * max(1.0, float(np.max(np.abs(pos)))):
        raise ValueError(
            f"table columns node_{axis} and node_{axis}_um disagree: one voxel index has "
            "several positions in µm"
        )
    return uniq, pos, inverse


def displacement_grid(table):
    """Put a DVC table back on its regular grid of nodes.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per node, as returned by :func:`tomopipe.dvc.dvc`; the columns used are
        ``node_z``, ``node_y``, ``node_x`` (voxel indices of the node centres), ``node_z_um``,
        ``node_y_um``, ``node_x_um`` (µm), ``u_z_um``, ``u_y_um``, ``u_x_um`` (µm) and
        ``status``. Row order does not matter.

    Returns
    -------
    grid : DisplacementGrid
        Node positions along z, y and x (µm, increasing), and ``u_um`` of shape
        ``(3, nz, ny, nx)`` (components ``u_z, u_y, u_x``, µm) with NaN where the status is
        not ``"ok"`` or where the grid has no row in `table` (status ``"missing"``).

    Raises
    ------
    TypeError
        If `table` is not a DataFrame.
    ValueError
        If `table` is empty, lacks one of the columns above, holds two rows for one node,
        non-integer node indices, or node indices whose µm positions disagree (each message
        names the column).

    See Also
    --------
    strain : strain tensors on this grid.

    Notes
    -----
    The grid is the outer product of the distinct ``node_z``, ``node_y`` and ``node_x``
    values; a node of that product that the table lacks is reported as ``"missing"``. The
    node spacing need not be uniform.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"node_z": [10, 10, 30, 30], "node_y": [5, 5, 5, 5],
    ...                   "node_x": [0, 20, 0, 20]})
    >>> for a in "zyx":
    ...     t[f"node_{a}_um"] = 0.5 * t[f"node_{a}"]
    >>> t["u_z_um"], t["u_y_um"], t["u_x_um"] = [0.1, 0.2, 0.3, 0.4], 0.0, 0.0
    >>> t["status"] = ["ok", "ok", "ok", "masked"]
    >>> g = displacement_grid(t)
    >>> g.shape, g.z_um.tolist(), g.x_um.tolist()
    ((2, 1, 2), [5.0, 15.0], [0.0, 10.0])
    >>> g.u_um[0, :, 0, :].tolist()
    [[0.1, 0.2], [0.3, nan]]
    """
    _check_table(table)
    if len(table) == 0:
        raise ValueError("table holds no node")
    idx, pos, inv = zip(*(_axis_positions(table, a) for a in _AXES))
    shape = tuple(p.size for p in pos)
    flat = np.ravel_multi_index(inv, shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape)))
    if counts.max() > 1:
        k = int(np.argmax(counts))
        node = tuple(int(i[j]) for i, j in zip(idx, np.unravel_index(k, shape)))
        raise ValueError(
            f"table holds {int(counts[k])} rows for the node (node_z, node_y, node_x) = {node}"
        )
    status = np.full(int(np.prod(shape)), _MISSING, dtype=object)
    status[flat] = table["status"].astype(str).to_numpy(dtype=object)
    ok = status == "ok"
    u = np.full((3, int(np.prod(shape))), np.nan)
    for c, a in enumerate(_AXES):
        u[c, flat] = table[f"u_{a}_um"].to_numpy(dtype=np.float64)
    u[:, ~ok] = np.nan
    return DisplacementGrid(
        z_um=pos[0], y_um=pos[1], x_um=pos[2],
        z_index=idx[0], y_index=idx[1], x_index=idx[2],
        u_um=u.reshape((3,) + shape), status=status.reshape(shape),
    )


@dataclass(frozen=True)
class Strain:
    """Result of :func:`strain`.

    Attributes
    ----------
    tensor : (nz, ny, nx, 3, 3) ndarray of float64
        Strain tensor at every node (small strain or Green–Lagrange, see `kind`),
        dimensionless, indices in (z, y, x) order; NaN where undefined.
    table : pandas.DataFrame
        One row per grid node, C order (z slowest): ``node_z``, ``node_y``, ``node_x``,
        ``node_z_um``, ``node_y_um``, ``node_x_um``, ``status``, the six independent
        components ``e_zz``, ``e_yy``, ``e_xx``, ``e_zy``, ``e_zx``, ``e_yx`` (tensor
        components, not engineering shear strains), ``volumetric`` (trace of the tensor),
        ``volume_change`` (:math:`\\det F - 1`, the exact relative volume change, the same
        for both kinds) and the principal strains ``e_1 >= e_2 >= e_3``.
    gradient : (nz, ny, nx, 3, 3) ndarray of float64
        Displacement gradient :math:`H_{ij} = \\partial u_i / \\partial X_j = F - I`.
    principal : (nz, ny, nx, 3) ndarray of float64
        Principal strains (eigenvalues of `tensor`), decreasing.
    directions : (nz, ny, nx, 3, 3) ndarray of float64
        Principal directions: ``directions[..., :, k]`` is the unit (z, y, x) vector of
        ``principal[..., k]`` (sign arbitrary).
    grid : DisplacementGrid
        The displacement grid the strain was computed from.
    kind : str
        ``"small"`` or ``"green_lagrange"``.
    """

    tensor: np.ndarray
    table: pd.DataFrame
    gradient: np.ndarray
    principal: np.ndarray
    directions: np.ndarray
    grid: DisplacementGrid
    kind: str


def _gradient(u, coords):
    """H[..., i, j] = ∂u_i/∂X_j with NaN wherever a node of the stencil is NaN.

    numpy.gradient: second-order central differences inside, second-order one-sided
    differences at the edges (first-order along an axis with only two nodes). Along an axis
    with a single node the derivative is undefined (NaN).
    """
    shape = u.shape[1:]
    h = np.full(shape + (3, 3), np.nan)
    for j, x in enumerate(coords):
        if x.size < 2:
            continue
        order = 2 if x.size >= 3 else 1
        for i in range(3):
            h[..., i, j] = np.gradient(u[i], x, axis=j, edge_order=order)
    # A central difference skips the centre node: undefined displacement there -> NaN too.
    h[~np.all(np.isfinite(u), axis=0)] = np.nan
    h[~np.all(np.isfinite(h), axis=(-2, -1))] = np.nan
    return h


def strain(table_or_grid, *, kind="small"):
    """Strain tensors at the nodes of a DVC grid, by finite differences of the displacement.

    Parameters
    ----------
    table_or_grid : pandas.DataFrame or DisplacementGrid
        The table of :func:`tomopipe.dvc.dvc` (one row per node, displacements in µm in
        ``u_z_um``, ``u_y_um``, ``u_x_um``), or the grid made of it by
        :func:`displacement_grid`. Only nodes of status ``"ok"`` are used.
    kind : {"small", "green_lagrange"}
        ``"small"``: the infinitesimal strain :math:`\\varepsilon = \\tfrac12 (H + H^T)`;
        ``"green_lagrange"``: :math:`E = \\tfrac12 (H + H^T + H^T H) = \\tfrac12 (F^T F - I)`,
        exact for large displacements and rotations.

    Returns
    -------
    result : Strain
        ``tensor`` (nz, ny, nx, 3, 3), ``table`` (one row per node with ``e_zz``, ``e_yy``,
        ``e_xx``, ``e_zy``, ``e_zx``, ``e_yx``, ``volumetric``, ``volume_change``, ``e_1``,
        ``e_2``, ``e_3``), ``gradient``, ``principal``, ``directions`` and ``grid``; see
        :class:`Strain`. All strains are dimensionless (0.01 = 1 %); positive is tension.

    Raises
    ------
    TypeError
        If `table_or_grid` is neither a DataFrame nor a :class:`DisplacementGrid`.
    ValueError
        If `kind` is not one of the above, or the table is not a valid DVC table (see
        :func:`displacement_grid`).

    See Also
    --------
    displacement_grid : the node grid and displacement array this differentiates.

    Notes
    -----
    The displacement gradient :math:`H_{ij} = \\partial u_i / \\partial X_j` (indices in
    (z, y, x) order, :math:`X` the reference node positions in µm, :math:`u` in µm) is taken
    with :func:`numpy.gradient` on the node positions: second-order central differences at
    inner nodes,

    .. math:: \\frac{\\partial u}{\\partial X}\\Big|_k \\approx
              \\frac{u_{k+1} - u_{k-1}}{X_{k+1} - X_{k-1}}
              \\quad \\text{(uniform spacing)},

    and second-order one-sided differences over three nodes at the first and last node of an
    axis (first-order over two nodes where an axis has only two). Both are exact for a
    displacement linear in :math:`X`. Along an axis with a single node the derivative is
    undefined and the whole tensor is NaN.

    NaN rules: a node whose displacement is undefined (status not ``"ok"``) has NaN strain,
    and so has every node whose stencil uses such a node (its neighbours along each axis, or
    the two next nodes inward at an edge): no one-sided fallback is taken, so a strain is
    either the full second-order estimate or NaN.

    The principal strains are the eigenvalues of the symmetric tensor
    (:func:`numpy.linalg.eigh`). ``volumetric`` is the trace — for small strain the
    first-order relative volume change — and ``volume_change`` is :math:`\\det F - 1`.

    Strain is the derivative of a measured displacement: its noise is the displacement noise
    (about 0.05–0.1 voxel for subset-based DVC [1]_) divided by the node spacing, so nodes
    closer than the subset size give correlated, noisier strains.

    References
    ----------
    .. [1] B. K. Bay, T. S. Smith, D. P. Fyhrie, M. Saad, "Digital volume correlation:
       three-dimensional strain mapping using X-ray tomography", Exp. Mech. 39, 217–226
       (1999), doi:10.1007/BF02323555.
    .. [2] G. A. Holzapfel, *Nonlinear Solid Mechanics* (Wiley, 2000), §2.5: the
       Green–Lagrange strain tensor and its small-strain linearisation.

    Examples
    --------
    A uniform 1 % stretch along z on a 3×3×3 grid of nodes 50 µm apart:

    >>> import numpy as np, pandas as pd
    >>> z, y, x = np.meshgrid(*3 * [np.arange(3) * 50.0], indexing="ij")
    >>> t = pd.DataFrame({"node_z_um": z.ravel(), "node_y_um": y.ravel(),
    ...                   "node_x_um": x.ravel(), "u_z_um": 0.01 * z.ravel(),
    ...                   "u_y_um": 0.0, "u_x_um": 0.0, "status": "ok"})
    >>> for a in "zyx":
    ...     t[f"node_{a}"] = (t[f"node_{a}_um"] / 0.5).astype(int)
    >>> s = strain(t)
    >>> np.round(s.table[["e_zz", "e_xx", "volumetric"]].iloc[13].to_list(), 12).tolist()
    [0.01, 0.0, 0.01]
    >>> round(float(strain(t, kind="green_lagrange").table["e_zz"].iloc[13]), 8)
    0.01005
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if isinstance(table_or_grid, DisplacementGrid):
        grid = table_or_grid
    elif isinstance(table_or_grid, pd.DataFrame):
        grid = displacement_grid(table_or_grid)
    else:
        raise TypeError(
            "table_or_grid must be a DVC table (pandas.DataFrame) or a DisplacementGrid, got "
            f"{type(table_or_grid).__name__}"
        )
    h = _gradient(np.asarray(grid.u_um, dtype=np.float64), grid.coords_um)
    ht = np.swapaxes(h, -1, -2)
    eps = 0.5 * (h + ht)
    if kind == "green_lagrange":
        eps = eps + 0.5 * (ht @ h)
    good = np.all(np.isfinite(h), axis=(-2, -1))
    eps[~good] = np.nan
    principal = np.full(eps.shape[:-1], np.nan)
    directions = np.full(eps.shape, np.nan)
    if good.any():
        w, v = np.linalg.eigh(eps[good])
        principal[good] = w[:, ::-1]
        directions[good] = v[:, :, ::-1]
    vol_change = np.full(good.shape, np.nan)
    if good.any():
        vol_change[good] = np.linalg.det(np.eye(3) + h[good]) - 1.0

    tab = grid.to_frame()
    n = tab.shape[0]
    e = eps.reshape(n, 3, 3)
    for (i, j) in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)):
        tab[f"e_{_AXES[i]}{_AXES[j]}"] = e[:, i, j]
    tab["volumetric"] = np.trace(e, axis1=1, axis2=2)
    tab["volume_change"] = vol_change.ravel()
    p = principal.reshape(n, 3)
    for k in range(3):
        tab[f"e_{k + 1}"] = p[:, k]
    return Strain(tensor=eps, table=tab, gradient=h, principal=principal,
                  directions=directions, grid=grid, kind=kind)
