"""Per-layer displacement, interface motion and quiver plots of DVC tables."""

import numpy as np
import pandas as pd
import pytest

from tomopipe.dvc._summary import interface_motion, layer_displacement, quiver_plot

VOXEL_UM = 0.88
STEP_UM = 50.0


def make_table(shape=(8, 3, 4), u_fn=None, z0_um=30.0):
    """DVC table on a grid of nodes 50 µm apart; ``u_fn(z, y, x) -> (u_z, u_y, u_x)`` in µm."""
    nz, ny, nx = shape
    z, y, x = (a.ravel() for a in np.meshgrid(z0_um + STEP_UM * np.arange(nz),
                                              STEP_UM * np.arange(ny), STEP_UM * np.arange(nx),
                                              indexing="ij"))
    u = (np.zeros_like(z),) * 3 if u_fn is None else u_fn(z, y, x)
    u = [np.broadcast_to(np.asarray(c, float), z.shape) for c in u]
    return pd.DataFrame({
        "node_z": np.rint(z / VOXEL_UM).astype(int), "node_y": np.rint(y / VOXEL_UM).astype(int),
        "node_x": np.rint(x / VOXEL_UM).astype(int),
        "node_z_um": z, "node_y_um": y, "node_x_um": x,
        "u_z": u[0] / VOXEL_UM, "u_y": u[1] / VOXEL_UM, "u_x": u[2] / VOXEL_UM,
        "u_z_um": u[0], "u_y_um": u[1], "u_x_um": u[2],
        "zncc": 0.9, "converged": True, "iterations": 4, "status": "ok",
    })


A = -0.004  # u_z = A z: 0.4 % compression along the stack axis


def compressed(z, y, x):
    return A * z, 0.0, 0.0


def with_outliers(t):
    """Mark some nodes as outliers and give them absurd displacements (must be ignored)."""
    t = t.copy()
    rows = t.index[::7]
    t.loc[rows, "status"] = "outlier"
    t.loc[rows, ["u_z_um", "u_y_um", "u_x_um"]] = 1e4
    return t, rows


# ------------------------------------------------------------------ layer_displacement


def test_one_layer_per_node_plane_by_default():
    t, rows = with_outliers(make_table(u_fn=compressed))
    per = layer_displacement(t)
    planes = 30.0 + STEP_UM * np.arange(8)
    assert per.index.name == "layer" and len(per) == 8
    np.testing.assert_allclose(per["z_center_um"], planes)
    np.testing.assert_allclose(per["z_start_um"], planes - 25.0)
    np.testing.assert_allclose(per["z_stop_um"], planes + 25.0)
    np.testing.assert_allclose(per["u_z_mean_um"], A * planes, rtol=1e-12)
    np.testing.assert_allclose(per["u_z_median_um"], A * planes, rtol=1e-12)
    np.testing.assert_allclose(per[["u_z_std_um", "u_z_mad_um"]], 0.0, atol=1e-12)
    np.testing.assert_allclose(per.filter(regex="^u_[yx]_"), 0.0, atol=0)
    n_out = np.bincount(((t.loc[rows, "node_z_um"] - 30.0) / STEP_UM).astype(int), minlength=8)
    np.testing.assert_array_equal(per["n_rejected"], n_out)
    np.testing.assert_array_equal(per["n_nodes"], 12 - n_out)


def test_n_layers_means_at_layer_centres_and_analytic_spread():
    t, _ = with_outliers(make_table(u_fn=compressed))
    per = layer_displacement(t, n_layers=4)  # two node planes per layer
    np.testing.assert_allclose(per["z_start_um"], 5.0 + 100.0 * np.arange(4))
    np.testing.assert_allclose(per["z_center_um"], 55.0 + 100.0 * np.arange(4))
    # without outliers both planes of a layer hold 12 nodes: mean = median = A * centre
    clean = layer_displacement(make_table(u_fn=compressed), n_layers=4)
    np.testing.assert_allclose(clean["u_z_mean_um"], A * clean["z_center_um"], rtol=1e-12)
    np.testing.assert_allclose(clean["u_z_median_um"], A * clean["z_center_um"], rtol=1e-12)
    # half the nodes at ±25 µm from the centre: MAD = |A| 25 µm, sample std known exactly
    np.testing.assert_allclose(clean["u_z_mad_um"], abs(A) * 25.0, rtol=1e-12)
    n = 24
    np.testing.assert_allclose(clean["u_z_std_um"], abs(A) * 25.0 * np.sqrt(n / (n - 1)),
                               rtol=1e-12)
    # outliers change counts, never the values: every statistic stays within the layer's range
    lo, hi = np.sort([A * (per["z_center_um"] - 25.0), A * (per["z_center_um"] + 25.0)], axis=0)
    assert ((per["u_z_mean_um"] >= lo - 1e-12) & (per["u_z_mean_um"] <= hi + 1e-12)).all()
    assert (per["n_nodes"] + per["n_rejected"] == 24).all()


def test_thickness_last_layer_thinner_and_empty_layers():
    t = make_table(u_fn=compressed)
    per = layer_displacement(t, thickness_um=150.0)  # range 5 .. 405 µm
    np.testing.assert_allclose(per["z_start_um"], [5.0, 155.0, 305.0])
    np.testing.assert_allclose(per["z_stop_um"], [155.0, 305.0, 405.0])
    np.testing.assert_array_equal(per["n_nodes"], [36, 36, 24])
    np.testing.assert_allclose(per["u_z_mean_um"], A * np.array([80.0, 230.0, 355.0]))
    # a range reaching beyond the nodes: empty slabs give NaN statistics and no warning
    per = layer_displacement(t, z_range_um=(-200.0, 600.0), n_layers=8)
    empty = per["n_nodes"] == 0
    assert empty.any() and per.loc[empty, "u_z_mean_um"].isna().all()
    assert per.loc[empty, ["u_z_std_um", "u_x_mad_um"]].isna().all().all()
    assert per["n_nodes"].sum() == len(t)
    # a single node in a slab: std undefined, MAD 0
    one = layer_displacement(t.iloc[:1])
    assert one["n_nodes"].tolist() == [1] and np.isnan(one["u_z_std_um"].iloc[0])
    assert one["u_z_mad_um"].iloc[0] == 0.0


def test_layer_displacement_errors():
    t = make_table()
    with pytest.raises(ValueError, match="thickness_um and n_layers"):
        layer_displacement(t, thickness_um=10.0, n_layers=2)
    with pytest.raises(ValueError, match="thickness_um"):
        layer_displacement(t, thickness_um=-1.0)
    with pytest.raises(ValueError, match="n_layers"):
        layer_displacement(t, n_layers=0)
    with pytest.raises(ValueError, match="z_range_um"):
        layer_displacement(t, z_range_um=(100.0, 50.0))
    with pytest.raises(ValueError, match="status"):
        layer_displacement(t.drop(columns="status"))


# ------------------------------------------------------------------ interface_motion


def test_interface_motion_median_in_window():
    b = 1.5
    t, _ = with_outliers(make_table(u_fn=lambda z, y, x: (A * z + b, 0.2, -0.1)))
    planes = 30.0 + STEP_UM * np.arange(8)
    zi = [planes[2], 0.5 * (planes[4] + planes[5]), 1000.0]
    m = interface_motion(t, zi, window_um=STEP_UM)
    assert len(m) == 3
    np.testing.assert_allclose(m["z_interface_um"], zi)
    np.testing.assert_allclose(m["window_um"], STEP_UM)
    # one plane at the first, the two planes at ±25 µm (inclusive) at the second, none at 1000
    ok_per_plane = t[t["status"] == "ok"].groupby("node_z_um").size()
    assert m["n_nodes"].tolist() == [ok_per_plane[planes[2]],
                                     ok_per_plane[planes[4]] + ok_per_plane[planes[5]], 0]
    np.testing.assert_allclose(m["u_z_median_um"].iloc[:2], A * np.array(zi[:2]) + b, rtol=1e-12)
    np.testing.assert_allclose(m["u_y_median_um"].iloc[:2], 0.2)
    np.testing.assert_allclose(m["u_x_median_um"].iloc[:2], -0.1)
    np.testing.assert_allclose(m["z_deformed_um"].iloc[:2], np.array(zi[:2]) * (1 + A) + b)
    assert m.iloc[2][["u_z_median_um", "u_z_mad_um", "z_deformed_um"]].isna().all()
    # a scalar position gives one row; the MAD of one plane of equal u_z is 0
    one = interface_motion(t, planes[2], window_um=10.0)
    assert len(one) == 1 and one["u_z_mad_um"].iloc[0] == 0.0
    # the separator between two interfaces: its thickness change is the difference
    sep = interface_motion(t, [planes[1], planes[6]], window_um=10.0)["u_z_median_um"].diff()
    np.testing.assert_allclose(sep.iloc[1], A * (planes[6] - planes[1]), rtol=1e-12)


def test_interface_motion_errors():
    t = make_table()
    with pytest.raises(ValueError, match="window_um"):
        interface_motion(t, 10.0, window_um=0.0)
    with pytest.raises(ValueError, match="z_interface_um"):
        interface_motion(t, [10.0, np.nan], window_um=5.0)


# ------------------------------------------------------------------ quiver_plot


def test_quiver_plot_writes_png(tmp_path):
    import matplotlib.image as mpimg

    def shear(z, y, x):
        return A * z, 0.0, 0.002 * (z - 200.0)

    t, _ = with_outliers(make_table(shape=(8, 3, 6), u_fn=shear))
    out = quiver_plot(t, tmp_path / "quiver_xz.png", position_um=60.0)
    assert out == tmp_path / "quiver_xz.png"
    assert out.is_file() and out.stat().st_size > 1000
    img = mpimg.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # not a blank canvas
    for plane in ("yz", "xy"):
        p = quiver_plot(t, tmp_path / f"quiver_{plane}.png", plane=plane, scale=20.0)
        assert p.stat().st_size > 1000
    # all-zero displacement: no arrows to scale, still a valid figure
    z = quiver_plot(make_table(), tmp_path / "zero.png")
    assert z.stat().st_size > 1000


def test_quiver_plot_errors(tmp_path):
    t = make_table()
    with pytest.raises(ValueError, match="plane"):
        quiver_plot(t, tmp_path / "a.png", plane="zx")
    with pytest.raises(ValueError, match="scale"):
        quiver_plot(t, tmp_path / "a.png", scale=0.0)
    with pytest.raises(TypeError, match="position_um"):
        quiver_plot(t, tmp_path / "a.png", position_um="middle")
