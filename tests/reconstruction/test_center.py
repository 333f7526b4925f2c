"""Tests of the rotation-centre finders against analytic sinograms, TomoPy and real data."""

import h5py
import numpy as np
import pytest
from scipy import ndimage
from skimage.data import shepp_logan_phantom
from skimage.transform import radon, rescale

from tomopipe.errors import ShapeMismatchError
from tomopipe.reconstruction import _center
from tomopipe.reconstruction._center import find_center_pc, find_center_vo

# --------------------------------------------------------------------------------------------
# analytic ground truth


def disc_sinogram(n_angles, ncol, center, discs, *, endpoint=False):
    """Exact (pixel-integrated) parallel-beam sinogram (angle, col) of uniform discs.

    The rotation axis projects on column index `center` (pixel ``i`` centred at ``i``);
    `discs` holds ``(x0, y0, radius, mu)`` relative to the axis, in pixels.
    """
    theta = np.linspace(0.0, np.pi, n_angles, endpoint=endpoint)
    edges = np.arange(ncol + 1) - 0.5
    sino = np.zeros((n_angles, ncol))
    for x0, y0, r, mu in discs:
        pos = center + x0 * np.cos(theta) + y0 * np.sin(theta)
        x = np.clip(edges[None, :] - pos[:, None], -r, r)
        area = x * np.sqrt(r * r - x * x) + r * r * np.arcsin(x / r)  # ∫ 2 sqrt(r² - t²) dt
        sino += mu * np.diff(area, axis=1)
    return sino.astype(np.float32)


def random_discs(seed, radius, n=8):
    rng = np.random.default_rng(seed)
    return [
        (rng.uniform(-radius, radius), rng.uniform(-radius, radius), rng.uniform(2, 8), 1.0)
        for _ in range(n)
    ]


@pytest.mark.parametrize("ncol", [128, 129])
@pytest.mark.parametrize("offset", [-10.25, -3.5, -0.5, 0.0, 0.5, 0.75, 4.0, 12.6])
def test_vo_analytic_discs(ncol, offset):
    # centres are column indices (pixel i centred at i): offset -0.5 with even ncol is an axis
    # through the geometric middle of the detector, (ncol - 1) / 2
    center = ncol / 2 + offset
    sino = disc_sinogram(180, ncol, center, random_discs(1, 0.17 * ncol))
    # the search grid is 0.25 px; allow one grid step plus the off-grid remainder
    assert find_center_vo(sino) == pytest.approx(center, abs=0.4)


def test_vo_matches_skimage_radon_convention():
    # skimage.transform.radon rotates about column N // 2: the value tomopy's recon takes for
    # a centred axis.  Cutting k columns on the left moves the axis to N // 2 - k.
    image = rescale(shepp_logan_phantom(), 0.32)  # 128 x 128
    sino = radon(image, theta=np.arange(180.0), circle=True).T
    assert find_center_vo(sino) == pytest.approx(64.0, abs=0.25)
    assert find_center_vo(sino[:, 5:]) == pytest.approx(59.0, abs=0.25)
    assert find_center_vo(sino[:, :-7]) == pytest.approx(64.0, abs=0.25)


def test_vo_projection_stack_and_rows():
    ncol, center = 96, 44.5
    rows = [disc_sinogram(120, ncol, center, random_discs(s, 16)) for s in range(3)]
    stack = np.stack(rows, axis=1)  # (angle, row, col)
    by_row = [find_center_vo(stack, ind=i) for i in range(3)]
    for i, c in enumerate(by_row):
        assert c == find_center_vo(rows[i])  # one row of a stack == the 2-D sinogram
        assert c == pytest.approx(center, abs=0.4)
    assert find_center_vo(stack, ind=-1) == by_row[2]
    assert find_center_vo(stack, ind=np.int64(1)) == by_row[1]
    # default: middle row (3 rows <= 10: no averaging)
    assert find_center_vo(stack) == by_row[1]
    # a list of rows: mean sinogram, or median of the per-row centres
    mean_sino = np.mean(stack[:, [0, 2], :], axis=1)
    assert find_center_vo(stack, ind=[0, 2]) == find_center_vo(mean_sino)
    assert find_center_vo(stack, ind=(0, 1, 2), combine="median") == np.median(by_row)


def test_vo_default_averages_ten_middle_rows():
    ncol, center = 80, 41.0
    sino = disc_sinogram(90, ncol, center, random_discs(4, 13))
    stack = np.repeat(sino[:, None, :], 16, axis=1)
    rng = np.random.default_rng(0)
    stack = stack + rng.normal(0, 0.5, stack.shape).astype(np.float32)
    # rows 0-2 and 13-15 are garbage; the default uses rows 3 ... 12 (16 // 2 ± 5)
    stack[:, :3] = rng.uniform(0, 50, (90, 3, ncol))
    stack[:, 13:] = rng.uniform(0, 50, (90, 3, ncol))
    assert find_center_vo(stack) == find_center_vo(stack, ind=list(range(3, 13)))
    assert find_center_vo(stack) == pytest.approx(center, abs=0.4)


def test_vo_median_resists_a_bad_row():
    ncol, center = 96, 50.25
    good = disc_sinogram(120, ncol, center, random_discs(5, 16))
    bad = disc_sinogram(120, ncol, center - 9, random_discs(6, 16))
    stack = np.stack([good, good, bad], axis=1)
    assert find_center_vo(stack, ind=[0, 1, 2], combine="median") == pytest.approx(center, abs=0.4)


def test_vo_binned_coarse_search(monkeypatch):
    # The 4 x 4 binned coarse search (for > 4e6 pixels) run on a small sinogram.
    ncol, center = 256, 121.3
    sino = disc_sinogram(240, ncol, center, random_discs(7, 45))
    full = find_center_vo(sino)
    monkeypatch.setattr(_center, "_LARGE_SINOGRAM", 1000)
    binned = find_center_vo(sino)
    assert binned == pytest.approx(center, abs=0.4)
    assert binned == pytest.approx(full, abs=0.25)


def test_vo_search_range_limits_and_fine_step():
    ncol, center = 128, 70.5
    sino = disc_sinogram(180, ncol, center, random_discs(8, 20))
    # a narrow coarse range that excludes the centre: the fine search (± srad) still finds it
    assert find_center_vo(sino, smin=3, smax=4, srad=5) == pytest.approx(center, abs=0.4)
    # ... but not beyond srad
    assert find_center_vo(sino, smin=-20, smax=-19, srad=2) < center - 5
    # a coarser fine step gives a centre on its grid around the coarse minimum
    c = find_center_vo(sino, step=1.0)
    assert abs(c - center) <= 1.0 and (2 * c) % 1 == 0


def test_vo_shift_rows_equals_scipy_shift():
    rng = np.random.default_rng(2)
    img = rng.random((6, 50)).astype(np.float32)
    coeffs = ndimage.spline_filter1d(img, order=3, axis=1, output=np.float32, mode="mirror")
    for shift in (3.3, -2.7, 0.5, 4.0, -6.0, 0.0):
        ref = ndimage.shift(img, (0, shift), order=3, mode="mirror")
        got = _center._shift_rows(img, coeffs, shift)
        np.testing.assert_allclose(got[:, 8:-8], ref[:, 8:-8], atol=1e-5)


# --------------------------------------------------------------------------------------------
# TomoPy's reference data


def test_vo_tomopy_sinogram(tomopy_ref):
    sino = tomopy_ref("sinogram")  # (45, 1, 91)
    assert find_center_vo(sino, smin=-10, smax=10) == pytest.approx(44.75, abs=0.25)
    # TomoPy's own test of the default range: 45.28 with rtol 0.015
    assert find_center_vo(sino) == pytest.approx(45.28, rel=0.015)


def test_pc_tomopy_projection(tomopy_ref):
    proj = tomopy_ref("projection")  # (128, 128)
    proj_180 = ndimage.shift(np.fliplr(proj), (0, 18.75), mode="reflect")
    # TomoPy's reference value, within tol = 0.5
    assert find_center_pc(proj, proj_180) == pytest.approx(73.375, abs=0.5)
    # the exact answer: a mirror image shifted by 18.75 px has its mirror line at
    # (N - 1 + 18.75) / 2 = 72.875
    assert find_center_pc(proj, proj_180, tol=0.1) == pytest.approx(72.875, abs=0.1)
    assert find_center_pc(proj, proj_180, tol=0.1, rotc_guess=75.0) == pytest.approx(
        72.875, abs=0.1
    )


# --------------------------------------------------------------------------------------------
# phase correlation, analytic


@pytest.mark.parametrize("center", [100.0, 87.3, 120.75])
def test_pc_analytic(center):
    sino = disc_sinogram(181, 200, center, random_discs(3, 50), endpoint=True)  # 0 ... 180°
    p0, p180 = np.tile(sino[0], (6, 1)), np.tile(sino[-1], (6, 1))
    assert find_center_pc(p0, p180, tol=0.1) == pytest.approx(center, abs=0.1)
    assert find_center_pc(p0, p180, tol=0.1, rotc_guess=center + 7.6) == pytest.approx(
        center, abs=0.1
    )
    # precision follows tol: the centre is a multiple of tol / 2 (from the middle 99.5)
    c = find_center_pc(p0, p180, tol=0.5)
    assert c == pytest.approx(center, abs=0.25) and (4 * c) % 1 == 0


# --------------------------------------------------------------------------------------------
# real data: the tooth (APS, via TomoPy)


@pytest.fixture(scope="module")
def tooth_attenuation(tooth_path):
    with h5py.File(tooth_path, "r") as f:
        data = f["/exchange/data"][...].astype(np.float64)
        flat = f["/exchange/data_white"][...].mean(axis=0)
        dark = f["/exchange/data_dark"][...].mean(axis=0)
        theta_deg = f["/exchange/theta"][...]
    trans = (data - dark) / np.maximum(flat - dark, 1e-6)
    return (-np.log(np.clip(trans, 1e-6, None))).astype(np.float32), theta_deg


def test_vo_tooth(tooth_attenuation):
    proj, _ = tooth_attenuation  # (181, 2, 640), 0 ... 179.0055° in steps of 180° / 181
    assert find_center_vo(proj) == pytest.approx(295.5, abs=1.0)
    assert find_center_vo(proj, ind=[0, 1]) == pytest.approx(295.5, abs=1.0)
    assert find_center_vo(proj, ind=[0, 1], combine="median") == pytest.approx(295.5, abs=1.0)


def test_pc_tooth_last_angle_not_180(tooth_attenuation):
    proj, theta_deg = tooth_attenuation
    # The scan has no projection at 180°: the last is 180° - 180°/181 = 179.0055°.  Pairing it
    # with 0° leaves a 1° error (see find_center_pc Notes); here it costs well under a pixel,
    # and the result agrees with Vo's method within 1.5 px.
    assert theta_deg[-1] == pytest.approx(180 - 180 / 181)
    c_pc = find_center_pc(proj[0], proj[-1], tol=0.25)
    assert c_pc == pytest.approx(295.5, abs=1.5)
    assert c_pc == pytest.approx(find_center_vo(proj), abs=1.5)
    assert find_center_pc(proj[0], proj[-1], tol=0.25, rotc_guess=300.0) == pytest.approx(
        295.5, abs=1.5
    )


# --------------------------------------------------------------------------------------------
# errors


@pytest.fixture(scope="module")
def small_sino():
    return disc_sinogram(60, 64, 32.0, random_discs(9, 10))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"smin": 5, "smax": 5}, "smin"),
        ({"smin": 10, "smax": -10}, "smin"),
        ({"smin": 40, "smax": 60}, "smin, smax"),  # beyond the searchable band
        ({"srad": 0}, "srad"),
        ({"step": -0.25}, "step"),
        ({"ratio": 0.0}, "ratio"),
        ({"drop": -1}, "drop"),
        ({"smin": float("nan")}, "smin"),
        ({"combine": "mode"}, "combine"),
        ({"ind": 0}, "ind"),  # ind with a 2-D sinogram
    ],
)
def test_vo_bad_parameters(small_sino, kwargs, name):
    with pytest.raises(ValueError, match=name):
        find_center_vo(small_sino, **kwargs)


@pytest.mark.parametrize("ind", [2, -3, [0, 5], [], [0.5], "0", [True]])
def test_vo_bad_ind(small_sino, ind):
    stack = np.stack([small_sino, small_sino], axis=1)
    with pytest.raises(ValueError, match="ind"):
        find_center_vo(stack, ind=ind)


def test_vo_bad_tomo(small_sino):
    with pytest.raises(ValueError, match="tomo"):
        find_center_vo(small_sino[0])
    with pytest.raises(ValueError, match="tomo"):
        find_center_vo(small_sino[None, None])
    with pytest.raises(ValueError, match="tomo"):
        find_center_vo(small_sino[:, :5])
    bad = small_sino.copy()
    bad[3, 10] = np.inf
    with pytest.raises(ValueError, match="tomo"):
        find_center_vo(bad)
    # non-finite values in a row that is not used are fine
    stack = np.stack([small_sino, bad], axis=1)
    assert find_center_vo(stack, ind=0) == find_center_vo(small_sino)


def test_pc_bad_inputs():
    a = np.ones((4, 32))
    with pytest.raises(ValueError, match="proj1"):
        find_center_pc(a[0], a)
    with pytest.raises(ValueError, match="proj2"):
        find_center_pc(a, a[None])
    with pytest.raises(ShapeMismatchError, match="proj1.*proj2"):
        find_center_pc(a, a[:, :30])
    b = a.copy()
    b[0, 0] = np.nan
    with pytest.raises(ValueError, match="proj2"):
        find_center_pc(a, b)
    for tol in (0, -0.5, float("inf")):
        with pytest.raises(ValueError, match="tol"):
            find_center_pc(a, a, tol=tol)
    for guess in (-1.0, 31.5, float("nan")):
        with pytest.raises(ValueError, match="rotc_guess"):
            find_center_pc(a, a, rotc_guess=guess)


def test_vo_lazy_arrays_read_rows_only(tmp_path):
    da = pytest.importorskip("dask.array")
    ncol, center = 96, 47.75
    rows = [disc_sinogram(120, ncol, center, random_discs(s, 16)) for s in range(12)]
    stack = np.stack(rows, axis=1)
    expected = find_center_vo(stack, ind=[4, 7])
    assert find_center_vo(da.from_array(stack, chunks=(120, 1, ncol)), ind=[4, 7]) == expected
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["data"] = stack
    with h5py.File(path, "r") as f:
        assert find_center_vo(f["data"], ind=[7, 4]) == expected  # h5py: any row order
        assert find_center_vo(f["data"]) == find_center_vo(stack)
