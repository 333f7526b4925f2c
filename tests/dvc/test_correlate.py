"""Tests of the local DVC engine against exactly known motions of a speckle volume.

The reference is a periodic Gaussian-smoothed random field (σ = 1.5 voxels) defined by its
Fourier series, so it can be evaluated anywhere: a rigid translation is a Fourier phase
shift, and any other motion ``x = φ(X)`` gives ``deformed(x) = ref(φ⁻¹(x))`` evaluated by a
type-2 NUFFT (finufft) to 1e-13 — the ground truth is exact, not interpolated.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi

from tomopipe.dvc._correlate import STATUS, correlate_node, dvc
from tomopipe.dvc._grid import node_grid
from tomopipe.errors import ShapeMismatchError

SIGMA = 1.5
SHIFT = np.array([1.3, -0.7, 2.2])


def _spectrum(n, seed):
    rng = np.random.default_rng(seed)
    spec = np.fft.fftn(rng.normal(size=(n, n, n)))
    k = np.fft.fftfreq(n) * 2 * np.pi
    kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
    spec *= np.exp(-(SIGMA**2) * (kz**2 + ky**2 + kx**2) / 2)
    spec /= np.fft.ifftn(spec).real.std()  # unit standard deviation
    return spec, (kz, ky, kx)


def _sample(spec, pts):
    """The field at points ``pts`` (3, M) in voxels (periodic Fourier series)."""
    import finufft

    n = spec.shape[0]
    c = finufft.nufft3d2(*(2 * np.pi * pts / n), spec.astype(np.complex128), eps=1e-13,
                         isign=1, modeord=1)
    return c.real / n**3


def _translated(n, shift, seed=0):
    """(ref, deformed) with deformed(x) = ref(x - shift), i.e. u = shift everywhere."""
    spec, (kz, ky, kx) = _spectrum(n, seed)
    ref = np.fft.ifftn(spec).real
    phase = np.exp(-1j * (kz * shift[0] + ky * shift[1] + kx * shift[2]))
    return ref, np.fft.ifftn(spec * phase).real


def _mapped(n, inverse, seed=0):
    """(ref, deformed) with deformed(x) = ref(inverse(x)), `inverse` acting on (3, M) points."""
    spec, _ = _spectrum(n, seed)
    ref = np.fft.ifftn(spec).real
    x = np.indices((n, n, n), dtype=np.float64).reshape(3, -1)
    return ref, _sample(spec, inverse(x)).reshape(ref.shape)


@pytest.fixture(scope="module")
def shifted():
    return _translated(64, SHIFT)


def _u(df):
    return df[["u_z", "u_y", "u_x"]].to_numpy()


# ------------------------------------------------------------------------------------------
# grid
# ------------------------------------------------------------------------------------------


def test_node_grid_cuboids_from_physical_sizes():
    g = node_grid((300, 400, 500), 0.88, cuboid_um=50)
    assert g.subset_shape == (57, 57, 57)  # 50 µm / 0.88 µm = 56.8 -> 57 voxels
    assert g.spacing_voxels.tolist() == [57, 57, 57]
    assert g.grid_shape == (5, 7, 8)
    lo = g.centers - g.half_width
    hi = g.centers + g.half_width
    assert lo.min() >= 0 and np.all(hi.max(0) <= np.array([299, 399, 499]))
    df = g.to_frame()
    assert len(df) == g.n_nodes == 5 * 7 * 8
    np.testing.assert_allclose(df["node_z_um"], df["node_z"] * 0.88)
    assert df.attrs["subset_shape_voxels"] == [57, 57, 57]
    # separate spacing and subset size, per-axis voxel size, margins
    g2 = node_grid((64, 64, 64), (1.0, 0.5, 0.5), node_spacing_um=8, subset_size_um=(9, 4.5, 4.5),
                   margin_voxels=4)
    assert g2.subset_shape == (9, 9, 9) and g2.spacing_voxels.tolist() == [8, 16, 16]
    assert (g2.centers - g2.half_width - 4).min() >= 0


def test_node_grid_errors_name_the_parameter():
    with pytest.raises(ValueError, match="cuboid_um or node_spacing_um"):
        node_grid((64,) * 3, 1.0)
    with pytest.raises(ValueError, match="voxel_size_um"):
        node_grid((64,) * 3, -1.0, cuboid_um=10)
    with pytest.raises(ValueError, match="axis z"):
        node_grid((10, 64, 64), 1.0, cuboid_um=20)


# ------------------------------------------------------------------------------------------
# accuracy on exact motions
# ------------------------------------------------------------------------------------------


def test_rigid_shift_bias(shifted):
    ref, deformed = shifted
    df = dvc(ref, deformed, 1.0, node_spacing_um=12, subset_size_um=17, margin_voxels=4)
    assert (df["status"] == "ok").all() and df["converged"].all()
    err = _u(df) - SHIFT
    bias = err.mean(axis=0)
    print("cubic bias per component (voxel):", bias, "max |err|:", np.abs(err).max())
    assert np.all(np.abs(bias) <= 0.002)
    assert np.abs(err).max() <= 0.005
    assert df["zncc"].min() > 0.999
    # µm columns follow the voxel size
    np.testing.assert_allclose(df["u_x_um"], df["u_x"] * 1.0)
    # trilinear interpolation: faster, about ten times the bias
    lin = _u(dvc(ref, deformed, 1.0, node_spacing_um=12, subset_size_um=17, margin_voxels=4,
                 order=1)) - SHIFT
    print("linear bias per component (voxel):", lin.mean(axis=0))
    assert np.all(np.abs(lin.mean(axis=0)) <= 0.03)


def test_sign_convention_deformed_at_x_plus_u_equals_reference(shifted):
    ref, deformed = shifted
    c = np.array([32, 32, 32])
    res = correlate_node(ref, deformed, c, 8)
    u = res.displacement
    assert res.status == "ok" and res.converged
    np.testing.assert_allclose(u, SHIFT, atol=2e-3)
    # deformed(x + u) ≈ reference(x) on the subset, and not deformed(x - u)
    x = np.indices((17, 17, 17)).reshape(3, -1) + (c - 8)[:, None]
    f = ref[tuple(x)]
    plus = ndi.map_coordinates(deformed, x + u[:, None], order=3, mode="grid-wrap")
    minus = ndi.map_coordinates(deformed, x - u[:, None], order=3, mode="grid-wrap")
    assert np.abs(plus - f).max() < 0.01 * f.std()
    assert np.abs(minus - f).max() > 0.5 * f.std()
    # an integer roll: the bright voxel at x moves to x + u
    blob = np.zeros((40, 40, 40))
    blob[20, 20, 20] = 1.0
    blob = ndi.gaussian_filter(blob, 2.0) + ndi.gaussian_filter(
        np.random.default_rng(3).normal(size=blob.shape), 1.5)
    moved = np.roll(blob, (3, -2, 1), axis=(0, 1, 2))
    r = correlate_node(blob, moved, (20, 20, 20), 8)
    np.testing.assert_allclose(r.displacement, [3, -2, 1], atol=1e-3)


def test_linear_z_displacement_8um():
    # u_z grows linearly from 0 at z = 0 to 8 µm at the last slice (0.88 µm voxels)
    n, vs = 64, 0.88
    a = (8.0 / vs) / (n - 1)  # voxel / voxel

    def inverse(x):
        out = x.copy()
        out[0] = x[0] / (1 + a)  # x = X + a X  ->  X = x / (1 + a)
        return out

    ref, deformed = _mapped(n, inverse, seed=1)
    kw = dict(node_spacing_um=10 * vs, subset_size_um=17 * vs, margin_voxels=2)
    aff = dvc(ref, deformed, vs, affine=True, **kw)
    ok = aff["status"] == "ok"
    # nodes near the top move out of the deformed volume: no convergence there, not an error
    assert set(aff.loc[~ok, "status"]) <= {"no_convergence"}
    assert ok.sum() >= 0.6 * len(aff)
    truth = a * aff["node_z"][ok]
    assert np.abs(aff["u_z"][ok] - truth).max() <= 0.01
    assert np.abs(aff["u_z_um"][ok] - truth * vs).max() <= 0.01 * vs
    assert np.abs(aff.loc[ok, ["u_y", "u_x"]].to_numpy()).max() <= 0.01
    assert np.abs(aff["grad_zz"][ok] - a).max() <= 1e-3
    assert aff["u_z_um"][ok].max() > 5.0  # large motion: over 5 µm (6 voxels) measured
    # translation-only subsets measure the subset's gradient-weighted mean displacement: equal
    # to the centre value on average, but with a 14 % strain a ±1.2 voxel spread across a
    # 17-voxel subset leaves per-node errors of a few 0.01 voxel (affine subsets are exact).
    tr = dvc(ref, deformed, vs, **kw)
    okt = tr["status"] == "ok"
    errt = tr["u_z"][okt] - a * tr["node_z"][okt]
    print("translation-only on a 14 % strain: mean error", errt.mean(), "rms", np.sqrt((errt**2).mean()))
    assert okt.sum() >= 0.6 * len(tr)
    assert abs(errt.mean()) <= 0.01
    assert np.sqrt((errt**2).mean()) <= 0.15


def test_affine_strain_gradient():
    n = 72
    grad = np.array([[0.010, 0.004, -0.003],
                     [0.002, -0.006, 0.005],
                     [-0.004, 0.003, 0.008]])
    c0 = np.full(3, (n - 1) / 2)
    u0 = np.array([0.4, -0.3, 0.6])

    def inverse(x):  # x = X + u0 + G (X - c0)
        return c0[:, None] + np.linalg.solve(np.eye(3) + grad, x - (c0 + u0)[:, None])

    ref, deformed = _mapped(n, inverse, seed=2)
    grid = node_grid(ref.shape, 1.0, node_spacing_um=16, subset_size_um=25, margin_voxels=6)
    df = dvc(ref, deformed, 1.0, grid=grid, affine=True, search_voxels=3)
    assert (df["status"] == "ok").all()
    g = df[[f"grad_{i}{j}" for i in "zyx" for j in "zyx"]].to_numpy().reshape(-1, 3, 3)
    gerr = g - grad
    print("gradient error: max", np.abs(gerr).max(), "mean", np.abs(gerr.mean(0)).max())
    assert np.abs(gerr).max() <= 1e-4
    assert np.abs(gerr.mean(axis=0)).max() <= 3e-5
    xc = df[["node_z", "node_y", "node_x"]].to_numpy()
    uerr = _u(df) - (u0 + (xc - c0) @ grad.T)
    assert np.abs(uerr).max() <= 2e-3
    assert np.abs(uerr.mean(axis=0)).max() <= 1e-3


def test_noise_rmse():
    ref, deformed = _translated(64, SHIFT, seed=4)
    rng = np.random.default_rng(5)
    level = 0.02  # noise std = 2 % of the speckle's std (1)
    ref_n = ref + level * rng.normal(size=ref.shape)
    def_n = 1.1 * (deformed + level * rng.normal(size=ref.shape)) + 0.3  # contrast + offset
    df = dvc(ref_n, def_n, 1.0, node_spacing_um=12, subset_size_um=17, margin_voxels=4)
    assert (df["status"] == "ok").all()
    err = _u(df) - SHIFT
    rmse = np.sqrt((err**2).mean(axis=0))
    print("2 % noise: RMSE per component (voxel)", rmse, "bias", err.mean(axis=0))
    assert np.all(rmse <= 0.005)


def test_large_motion_with_pyramid():
    shift = np.array([11.4, -9.3, 6.7])
    ref, deformed = _translated(80, shift, seed=6)
    grid = node_grid(ref.shape, 1.0, node_spacing_um=20, subset_size_um=17, margin_voxels=14)
    df = dvc(ref, deformed, 1.0, grid=grid, search_voxels=13, pyramid_levels=2)
    assert (df["status"] == "ok").all()
    np.testing.assert_allclose(_u(df), np.broadcast_to(shift, (len(df), 3)), atol=0.005)


# ------------------------------------------------------------------------------------------
# status: masked, featureless, outlier
# ------------------------------------------------------------------------------------------


def test_masked_featureless_and_outlier_nodes(shifted):
    ref, deformed = (a.copy() for a in shifted)
    grid = node_grid(ref.shape, 1.0, node_spacing_um=14, subset_size_um=11, margin_voxels=4)
    assert grid.centers[:, 0].tolist()[::16] == [10, 24, 38, 52]
    assert grid.half_width.tolist() == [5, 5, 5]
    # featureless: both volumes uniform for x < 16 (an empty region outside the sample)
    ref[:, :, :16] = 0.5
    deformed[:, :, :16] = 0.5
    # masked: no material for z < 20
    mask = np.ones(ref.shape, dtype=bool)
    mask[:20] = False
    # an outlier: the deformed neighbourhood of node (38, 38, 38) moves 3 voxels further in x
    k = int(np.flatnonzero((grid.centers == 38).all(axis=1))[0])
    _, jumped = _translated(64, SHIFT + [0, 0, 3])
    mid = np.rint(grid.centers[k] + SHIFT).astype(int)
    sl = tuple(slice(m - 6, m + 7) for m in mid)  # clear of the neighbours' subsets
    deformed[sl] = jumped[sl]
    df = dvc(ref, deformed, 1.0, grid=grid, mask=mask)
    st = df["status"]
    assert list(st.cat.categories) == list(STATUS)
    assert (st[df["node_z"] == 10] == "masked").all()
    assert (st[(df["node_x"] == 10) & (df["node_z"] > 10)] == "featureless").all()
    assert df.loc[st.isin(["masked", "featureless"]), "u_z"].isna().all()
    assert st.iloc[k] == "outlier", df.iloc[k]
    assert abs(df["u_x"].iloc[k] - SHIFT[2] - 3) < 0.5  # the value is kept
    good = st == "ok"
    assert good.sum() == len(df) - (df["node_z"] == 10).sum() - ((df["node_x"] == 10) & (df["node_z"] > 10)).sum() - 1
    np.testing.assert_allclose(_u(df[good]), np.broadcast_to(SHIFT, (good.sum(), 3)), atol=0.01)


# ------------------------------------------------------------------------------------------
# out of core: dask and zarr inputs give the NumPy result
# ------------------------------------------------------------------------------------------


def test_dask_and_zarr_equal_numpy(shifted, tmp_path):
    import dask.array as da
    import zarr

    ref, deformed = shifted
    kw = dict(node_spacing_um=12, subset_size_um=13, margin_voxels=4, batch_size=7)
    expect = dvc(ref, deformed, 0.88, **kw)
    zr = zarr.create_array(str(tmp_path / "ref.zarr"), shape=ref.shape, chunks=(20, 20, 20),
                           dtype="float64")
    zr[...] = ref
    zd = zarr.create_array(str(tmp_path / "def.zarr"), shape=ref.shape, chunks=(16, 32, 32),
                           dtype="float64")
    zd[...] = deformed
    for r, d in [(zr, zd), (da.from_array(ref, chunks=24), da.from_array(deformed, chunks=17)),
                 (da.from_zarr(zr), zd)]:
        got = dvc(r, d, 0.88, scheduler="threads", **kw)
        assert (got["status"] == expect["status"]).all()
        num = [k for k in expect.columns if k != "status"]
        np.testing.assert_allclose(got[num].to_numpy(float), expect[num].to_numpy(float),
                                   rtol=0, atol=1e-12)
    assert np.all(np.abs(expect["u_x_um"] - SHIFT[2] * 0.88) < 0.005)


# ------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------


def test_input_errors(shifted):
    ref, deformed = shifted
    with pytest.raises(ShapeMismatchError, match="deformed"):
        dvc(ref, deformed[:-1], 1.0, node_spacing_um=12)
    with pytest.raises(ShapeMismatchError, match="mask"):
        dvc(ref, deformed, 1.0, node_spacing_um=12, mask=np.ones((4, 4, 4), bool))
    with pytest.raises(ValueError, match="order"):
        correlate_node(ref, deformed, (32, 32, 32), 8, order=2)
    with pytest.raises(ValueError, match="does not fit"):
        correlate_node(ref, deformed, (3, 32, 32), 8)
    with pytest.raises(ValueError, match="ref must be a"):
        dvc(ref[0], deformed[0], 1.0, node_spacing_um=12)
    with pytest.raises(ValueError, match="node_spacing_um"):
        dvc(ref, deformed, 1.0)
    # a uniform subset is featureless, not an error
    flat = np.ones_like(ref)
    assert correlate_node(flat, deformed, (32, 32, 32), 8).status == "featureless"


# ------------------------------------------------------------------ ZNCC threshold and NaN voxels


def _texture(seed, n=96):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(size=(n, n, n)), 1.5).astype(np.float32)


def test_unrelated_volumes_give_no_ok_node():
    """Gauss–Newton converges on unrelated subsets too; their low ZNCC must not pass as 'ok'."""
    a, b = _texture(1), _texture(2)
    df = dvc(a, b, 1.0, node_spacing_um=20.0, search_voxels=8)
    st = df["status"].astype(str)
    assert (st != "ok").all(), st.value_counts()
    conv = df[df["converged"]]
    assert len(conv) > 0 and (conv["zncc"] < 0.8).all()  # converged, but rejected by ZNCC
    assert set(st[df["converged"]]) <= {"low_correlation"}
    # the same volume against itself shifted: every node ok (the threshold keeps true matches)
    ok = dvc(a, np.roll(a, 2, axis=0), 1.0, node_spacing_um=20.0, search_voxels=8)
    assert (ok["status"].astype(str) == "ok").all()


def test_one_nan_voxel_costs_only_its_subset():
    from tomopipe.errors import TomopipeWarning

    a = _texture(3)
    b = np.roll(a, (1, 0, -2), axis=(0, 1, 2))
    clean = dvc(a, b, 1.0, node_spacing_um=16.0, search_voxels=6)
    assert (clean["status"].astype(str) == "ok").all()
    bad = b.copy()
    hit = (36, 41, 34)  # a deformed voxel inside one subset (not on the shared faces of two)
    bad[hit] = np.nan
    with pytest.warns(TomopipeWarning, match=r"1 of \d+ nodes hold NaN"):
        df = dvc(a, bad, 1.0, node_spacing_um=16.0, search_voxels=6)
    st = df["status"].astype(str)
    # the nodes whose deformed subset (reference subset moved by u) contains the NaN voxel
    half = 8
    inside = np.all(np.abs(clean[["node_z", "node_y", "node_x"]].to_numpy()
                           + clean[["u_z", "u_y", "u_x"]].to_numpy() - np.array(hit)) <= half, axis=1)
    assert inside.sum() == 1
    assert list(st[st == "nan"].index) == list(clean.index[inside])
    assert df.attrs["n_nan_nodes"] == 1
    others = ~inside
    np.testing.assert_allclose(df.loc[others, ["u_z", "u_y", "u_x"]], clean.loc[others, ["u_z", "u_y", "u_x"]],
                               atol=0.01)
    # a NaN in the reference subset: that node only
    ra = a.copy()
    ra[8, 8, 8] = np.nan
    with pytest.warns(TomopipeWarning):
        dr = dvc(ra, b, 1.0, node_spacing_um=16.0, search_voxels=6)
    assert (dr["status"].astype(str) == "nan").sum() == 1
