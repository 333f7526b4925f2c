"""Strain from DVC displacement grids: analytic fields, NaN rules, grid assembly."""

import numpy as np
import pandas as pd
import pytest

from tomopipe.dvc._strain import DisplacementGrid, displacement_grid, strain

VOXEL_UM = 0.88


def make_table(shape=(4, 5, 6), step_vox=(20, 24, 30), origin_vox=(13, 17, 11), u_fn=None,
               voxel_um=VOXEL_UM):
    """A DVC table on a regular grid; ``u_fn(Z, Y, X) -> (u_z, u_y, u_x)`` in µm."""
    idx = [o + s * np.arange(n) for o, s, n in zip(origin_vox, step_vox, shape)]
    iz, iy, ix = (a.ravel() for a in np.meshgrid(*idx, indexing="ij"))
    z, y, x = iz * voxel_um, iy * voxel_um, ix * voxel_um
    if u_fn is None:
        u = (np.zeros_like(z),) * 3
    else:
        u = tuple(np.broadcast_to(np.asarray(c, dtype=float), z.shape) for c in u_fn(z, y, x))
    t = pd.DataFrame({
        "node_z": iz, "node_y": iy, "node_x": ix,
        "node_z_um": z, "node_y_um": y, "node_x_um": x,
        "u_z": u[0] / voxel_um, "u_y": u[1] / voxel_um, "u_x": u[2] / voxel_um,
        "u_z_um": u[0], "u_y_um": u[1], "u_x_um": u[2],
        "zncc": 0.95, "converged": True, "iterations": 5, "status": "ok",
    })
    return t


def linear(a, b=(0.0, 0.0, 0.0)):
    a = np.asarray(a, dtype=float)

    def u_fn(z, y, x):
        xs = np.stack([z, y, x])
        return tuple(np.tensordot(a, xs, axes=1) + np.asarray(b)[:, None])

    return u_fn


A = np.array([[0.012, -0.004, 0.003],
              [0.002, -0.007, 0.005],
              [-0.006, 0.001, 0.009]])


# ------------------------------------------------------------------ displacement_grid


def test_grid_positions_and_values_any_row_order():
    t = make_table(u_fn=linear(A, b=(1.0, -2.0, 0.5)))
    g = displacement_grid(t.sample(frac=1.0, random_state=3))
    assert isinstance(g, DisplacementGrid)
    assert g.shape == (4, 5, 6)
    np.testing.assert_allclose(g.z_um, (13 + 20 * np.arange(4)) * VOXEL_UM)
    np.testing.assert_allclose(g.y_um, (17 + 24 * np.arange(5)) * VOXEL_UM)
    np.testing.assert_array_equal(g.x_index, 11 + 30 * np.arange(6))
    Z, Y, X = np.meshgrid(*g.coords_um, indexing="ij")
    b = np.array([1.0, -2.0, 0.5])[:, None, None, None]
    expect = np.tensordot(A, np.stack([Z, Y, X]), axes=1) + b
    np.testing.assert_allclose(g.u_um, expect, rtol=0, atol=1e-12)
    assert (g.status == "ok").all() and g.valid.all()


def test_grid_nan_where_not_ok_and_missing_rows():
    t = make_table(u_fn=linear(A))
    t.loc[7, "status"] = "outlier"
    t.loc[8, "status"] = "masked"
    gone = t.loc[20, ["node_z", "node_y", "node_x"]].to_list()
    t = t.drop(index=20)
    g = displacement_grid(t)
    assert np.isnan(g.u_um).any(axis=0).sum() == 3
    flat = g.status.ravel()
    assert flat[7] == "outlier" and flat[8] == "masked" and flat[20] == "missing"
    assert [g.z_index[0], g.y_index[3], g.x_index[2]] == gone  # flat 20 -> (0, 3, 2)
    assert np.isnan(g.u_um.reshape(3, -1)[:, [7, 8, 20]]).all()
    assert np.isfinite(np.delete(g.u_um.reshape(3, -1), [7, 8, 20], axis=1)).all()


def test_grid_errors_name_the_problem():
    t = make_table()
    with pytest.raises(ValueError, match="u_x_um"):
        displacement_grid(t.drop(columns="u_x_um"))
    with pytest.raises(ValueError, match="rows for the node"):
        displacement_grid(pd.concat([t, t.iloc[[5]]]))
    with pytest.raises(ValueError, match="no node"):
        displacement_grid(t.iloc[:0])
    with pytest.raises(TypeError, match="table"):
        displacement_grid(t.to_numpy())
    bad = t.copy()
    bad.loc[3, "node_x_um"] += 1.0
    with pytest.raises(ValueError, match="node_x"):
        displacement_grid(bad)


# ------------------------------------------------------------------ strain: analytic fields


def test_linear_field_small_and_green_lagrange_exact():
    t = make_table(u_fn=linear(A, b=(3.0, -1.0, 2.0)))
    small = strain(t)
    gl = strain(t, kind="green_lagrange")
    np.testing.assert_allclose(small.gradient, np.broadcast_to(A, small.gradient.shape),
                               rtol=0, atol=1e-13)
    sym = 0.5 * (A + A.T)
    green = 0.5 * (A + A.T + A.T @ A)
    assert not np.allclose(sym, green, rtol=0, atol=1e-6)  # the two differ for this A
    np.testing.assert_allclose(small.tensor, np.broadcast_to(sym, small.tensor.shape),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(gl.tensor, np.broadcast_to(green, gl.tensor.shape),
                               rtol=0, atol=1e-13)
    # table columns: components, trace, det F - 1, principal strains
    tab = gl.table
    assert len(tab) == 4 * 5 * 6
    for name, (i, j) in {"e_zz": (0, 0), "e_yy": (1, 1), "e_xx": (2, 2), "e_zy": (0, 1),
                         "e_zx": (0, 2), "e_yx": (1, 2)}.items():
        np.testing.assert_allclose(tab[name], green[i, j], rtol=0, atol=1e-13)
    np.testing.assert_allclose(tab["volumetric"], np.trace(green), rtol=0, atol=1e-13)
    np.testing.assert_allclose(tab["volume_change"], np.linalg.det(np.eye(3) + A) - 1,
                               rtol=0, atol=1e-13)
    w = np.sort(np.linalg.eigvalsh(green))[::-1]
    np.testing.assert_allclose(tab[["e_1", "e_2", "e_3"]].to_numpy(), np.tile(w, (len(tab), 1)),
                               rtol=0, atol=1e-13)
    # node columns carried over, C order
    np.testing.assert_array_equal(tab["node_z"].to_numpy()[:30], 13)
    np.testing.assert_array_equal(tab["node_x"].to_numpy()[:6], 11 + 30 * np.arange(6))


def test_rigid_rotation_green_lagrange_zero_small_strain_second_order():
    theta = 0.02
    c, s = np.cos(theta), np.sin(theta)
    r = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # rotation in the z-x plane
    t = make_table(u_fn=linear(r - np.eye(3), b=(0.7, 0.0, -0.3)))
    gl = strain(t, kind="green_lagrange")
    small = strain(t, kind="small")
    assert np.nanmax(np.abs(gl.tensor)) < 1e-13
    np.testing.assert_allclose(small.table["e_zz"], c - 1, rtol=1e-9)
    np.testing.assert_allclose(small.table["e_xx"], c - 1, rtol=1e-9)
    np.testing.assert_allclose(small.table["e_zx"], 0.0, atol=1e-13)
    assert 0.4 * theta**2 < -small.table["e_zz"].iloc[0] < 0.6 * theta**2
    # a rotation keeps volume
    np.testing.assert_allclose(small.table["volume_change"], 0.0, atol=1e-13)


def test_one_percent_uniaxial_along_z():
    t = make_table(u_fn=lambda z, y, x: (0.01 * (z - z.min()), 0.0, 0.0))
    s = strain(t)
    np.testing.assert_allclose(s.table["e_zz"], 0.01, rtol=1e-12)
    for col in ("e_yy", "e_xx", "e_zy", "e_zx", "e_yx", "e_2", "e_3"):
        np.testing.assert_allclose(s.table[col], 0.0, atol=1e-14)
    np.testing.assert_allclose(s.table["e_1"], 0.01, rtol=1e-12)
    np.testing.assert_allclose(s.table["volumetric"], 0.01, rtol=1e-12)
    np.testing.assert_allclose(np.abs(s.directions[..., :, 0]),
                               np.broadcast_to([1.0, 0.0, 0.0], s.directions.shape[:-1]),
                               atol=1e-12)
    gl = strain(s.grid, kind="green_lagrange")  # a grid is accepted as well
    np.testing.assert_allclose(gl.table["e_zz"], 0.01 + 0.5 * 0.01**2, rtol=1e-12)


def test_quadratic_field_is_differentiated_exactly_including_edges():
    # second-order stencils (central inside, one-sided at edges) are exact for quadratics
    t = make_table(shape=(6, 3, 4), u_fn=lambda z, y, x: (1e-4 * z**2, 0.0, 2e-5 * x * y))
    s = strain(t)
    Z, Y, X = np.meshgrid(*s.grid.coords_um, indexing="ij")
    np.testing.assert_allclose(s.gradient[..., 0, 0], 2e-4 * Z, rtol=1e-10)
    np.testing.assert_allclose(s.gradient[..., 2, 2], 2e-5 * Y, rtol=1e-10)
    np.testing.assert_allclose(s.gradient[..., 2, 1], 2e-5 * X, rtol=1e-10)


def test_two_node_axis_first_order_and_single_node_axis_undefined():
    t = make_table(shape=(2, 3, 3), u_fn=linear(A))
    np.testing.assert_allclose(strain(t).tensor[1, 1, 1], 0.5 * (A + A.T), atol=1e-13)
    flat = strain(make_table(shape=(1, 3, 3), u_fn=linear(A)))
    assert np.isnan(flat.tensor).all() and flat.table["e_xx"].isna().all()


# ------------------------------------------------------------------ NaN handling


def test_nan_node_spoils_exactly_the_stencils_that_use_it():
    t = make_table(shape=(5, 5, 5), u_fn=linear(A))
    bad = (2, 2, 2)
    flat = np.ravel_multi_index(bad, (5, 5, 5))
    t.loc[flat, "status"] = "no_convergence"
    t.loc[flat, "u_z_um"] = 1e6  # must not leak: the node is not "ok"
    s = strain(t)
    expect_nan = np.zeros((5, 5, 5), bool)
    expect_nan[:, 2, 2] = expect_nan[2, :, 2] = expect_nan[2, 2, :] = True  # 13 nodes
    nan = np.isnan(s.tensor).any(axis=(-2, -1))
    np.testing.assert_array_equal(nan, expect_nan)
    assert np.isnan(s.tensor[expect_nan]).all()  # all or nothing
    np.testing.assert_allclose(s.tensor[~expect_nan],
                               np.broadcast_to(0.5 * (A + A.T), (125 - 13, 3, 3)), atol=1e-13)
    cols = ["e_zz", "volumetric", "volume_change", "e_1"]
    assert s.table.loc[nan.ravel(), cols].isna().all().all()
    assert s.table.loc[flat, "status"] == "no_convergence"


def test_nan_displacement_with_ok_status_and_edge_stencil():
    t = make_table(shape=(5, 4, 4), u_fn=linear(A))
    flat = np.ravel_multi_index((2, 0, 0), (5, 4, 4))
    t.loc[flat, "u_y_um"] = np.nan
    s = strain(t, kind="green_lagrange")
    nan = np.isnan(s.tensor).any(axis=(-2, -1))
    expect = np.zeros((5, 4, 4), bool)
    expect[:, 0, 0] = True  # z: central stencils of z = 1, 3; edge stencils of z = 0, 4
    expect[2, 1, 0] = True  # y: the central stencil of y = 1 (y = 3's edge stencil is 3, 2, 1)
    expect[2, 0, 1] = True  # x: likewise
    np.testing.assert_array_equal(nan, expect)


def test_strain_argument_errors():
    t = make_table()
    with pytest.raises(ValueError, match="kind"):
        strain(t, kind="engineering")
    with pytest.raises(TypeError, match="table_or_grid"):
        strain(np.zeros((3, 2, 2, 2)))
