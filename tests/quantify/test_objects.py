"""Tests of tomopipe.quantify._objects: labelling, object moments, connectivity to a seed."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from tomopipe.errors import ShapeMismatchError
from tomopipe.quantify._objects import OBJECT_COLUMNS, connected_to, label_objects, object_table


def _ellipsoid(shape, center, semi_cab, tilt_deg):
    """Solid ellipsoid with semi-axes (c, a, b) along (z, y, x) before tilting its short axis
    c away from z by `tilt_deg` (rotation about x)."""
    t = np.radians(tilt_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])
    m = rot @ np.diag(1.0 / np.asarray(semi_cab, float) ** 2) @ rot.T
    g = np.indices(shape).reshape(3, -1).T - np.asarray(center)
    return (np.einsum("ni,ij,nj->n", g, m, g) <= 1.0).reshape(shape)


def _blobs(shape, seed, frac=0.3, sigma=2.0):
    rng = np.random.default_rng(seed)
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return f > np.quantile(f, 1.0 - frac)


def _sorted(t):
    keys = ["centroid_z_um", "centroid_y_um", "centroid_x_um", "n_voxels"]
    return t.sort_values(keys).drop(columns="id").reset_index(drop=True)


@pytest.mark.parametrize("tilt", [0.0, 25.0, 60.0])
def test_tilted_oblate_ellipsoid(tilt):
    v = 0.5
    c, a, b = 5.0, 20.0, 14.0
    m = _ellipsoid((48, 60, 60), (23.3, 29.6, 30.2), (c, a, b), tilt)
    lab, n = label_objects(m)
    assert n == 1
    t = object_table(lab, v)
    assert list(t.columns) == list(OBJECT_COLUMNS)
    row = t.iloc[0]
    assert row["n_voxels"] == m.sum()
    assert row["volume_um3"] == pytest.approx(m.sum() * v**3)
    assert row["angle_to_z_deg"] == pytest.approx(tilt, abs=2.0)
    for name, truth in (("a", a), ("b", b), ("c", c)):
        assert row[f"semi_axis_{name}_um"] == pytest.approx(truth * v, rel=0.05)
    assert row["flatness"] == pytest.approx(c / a, rel=0.08)
    zc, yc, xc = (np.argwhere(m).mean(axis=0)) * v
    assert (row["centroid_z_um"], row["centroid_y_um"], row["centroid_x_um"]) == pytest.approx((zc, yc, xc))
    if tilt > 0:  # tilted about x: the normal lies in the z-y plane
        assert min(row["azimuth_deg"], 180 - row["azimuth_deg"]) == pytest.approx(90.0, abs=2.0)


def test_sphere_and_bbox():
    zz, yy, xx = np.indices((30, 30, 30))
    m = (zz - 14) ** 2 + (yy - 15) ** 2 + (xx - 13) ** 2 <= 10**2
    t = object_table(m.astype(np.int32), 1.0)
    row = t.iloc[0]
    assert row["flatness"] > 0.97
    assert row["semi_axis_a_um"] == pytest.approx(10.0, rel=0.05)
    assert row["equivalent_diameter_um"] == pytest.approx(20.0, rel=0.03)
    assert [row[f"bbox_{k}"] for k in ("z0", "y0", "x0", "z1", "y1", "x1")] == [4, 5, 3, 25, 26, 24]
    assert not row["touches_border"]


@pytest.mark.parametrize("connectivity", [1, 3])
def test_chunked_equals_in_memory(connectivity):
    m = _blobs((40, 44, 48), seed=3)
    ref, nref = ndimage.label(m, ndimage.generate_binary_structure(3, connectivity))
    lab, n = label_objects(m, connectivity=connectivity)
    assert n == nref
    d = da.from_array(m, chunks=(7, 11, 13))
    dlab, dn = label_objects(d, connectivity=connectivity)
    assert isinstance(dlab, da.Array) and dlab.chunks == d.chunks
    assert dn == nref
    computed = dlab.compute()
    # the same partition: a bijection between the ids of both labellings
    pairs = np.unique(np.stack([ref[m], computed[m]], axis=1), axis=0)
    assert len(pairs) == nref and (computed[~m] == 0).all()
    # some objects span several chunks
    tm = object_table(lab, 0.7)
    assert ((tm["bbox_z1"] - tm["bbox_z0"]) > 7).sum() > 3
    td = object_table(dlab, 0.7)
    a, b = _sorted(tm), _sorted(td)
    # angles are defined only where the smallest moment is not degenerate
    well = (a["semi_axis_c_um"] < 0.95 * a["semi_axis_b_um"]).to_numpy()
    num = [c for c in a.columns if c not in ("angle_to_z_deg", "azimuth_deg")]
    pd.testing.assert_frame_equal(a[num], b[num], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a["angle_to_z_deg"][well], b["angle_to_z_deg"][well], atol=1e-6)


def test_zarr_input_and_touching_flags():
    zarr = pytest.importorskip("zarr")
    phase = np.ones((9, 10, 11), np.uint8)         # 1 electrolyte
    phase[:, :, 8:] = 5                             # 5 lithium, x >= 8
    obj = np.zeros(phase.shape, np.int32)
    obj[2:4, 2:4, 6:8] = 1                          # face-adjacent to lithium at x = 8
    obj[5:7, 3:5, 1:3] = 2                          # far from lithium
    obj[0:2, 8:10, 2:4] = 3                         # on the volume border
    schema = {"electrolyte": 1, "lithium": 5}
    t = object_table(obj, 1.0, phase_labels=phase, schema=schema, touching=("lithium",))
    assert t["touches_lithium"].tolist() == [True, False, False]
    assert t["touches_border"].tolist() == [False, False, True]
    zobj = zarr.array(obj, chunks=(4, 3, 5))
    zphase = zarr.array(phase, chunks=(4, 3, 5))
    tz = object_table(zobj, 1.0, phase_labels=zphase, schema=schema, touching=("lithium",))
    pd.testing.assert_frame_equal(t, tz)
    # chunk face exactly between the object and the lithium
    td = object_table(da.from_array(obj, chunks=(9, 10, 8)), 1.0, phase_labels=phase,
                      schema=schema, touching="lithium")
    pd.testing.assert_frame_equal(t, td)


def test_min_volume_filter():
    obj = np.zeros((6, 6, 6), np.int32)
    obj[0, 0, 0] = 1                  # 1 voxel
    obj[2:4, 2:4, 2:4] = 2            # 8 voxels
    obj[5, :, :] = 3                  # 36 voxels
    v = 2.0                           # 8 µm³ per voxel
    t = object_table(obj, v, min_volume_um3=64.0)
    assert t["id"].tolist() == [2, 3]
    assert t["volume_um3"].tolist() == [64.0, 288.0]
    assert object_table(obj, v, min_volume_um3=100.0)["id"].tolist() == [3]
    assert len(object_table(obj, v, min_volume_um3=1e6)) == 0


def test_connected_to():
    mask = np.zeros((5, 5, 7), bool)
    mask[2, 2, 0:3] = True            # component touching the seed face at x = 3
    mask[0, 0, 0] = True              # isolated
    mask[4, 4, 4:7] = True            # overlaps the seed
    mask[2, 3, 3] = True              # diagonal to the first component: separate, touches seed
    seed = np.zeros_like(mask)
    seed[:, :, 3] = True
    seed[2, 3, 3] = False
    seed[4, 4, 4] = True
    res = connected_to(mask, seed)
    lab = res.labels
    expect = sorted({int(lab[2, 2, 0]), int(lab[4, 4, 5]), int(lab[2, 3, 3])})
    assert res.ids.tolist() == expect          # all but the isolated voxel
    assert res.n_components == 4
    assert res.n_voxels == 3 + 3 + 1 and res.n_mask_voxels == 8
    assert res.fraction == pytest.approx(7 / 8)
    assert not res.connected[0, 0, 0] and res.connected[2, 2, 0]
    d = connected_to(da.from_array(mask, chunks=(2, 3, 2)), da.from_array(seed, chunks=(3, 2, 3)))
    assert len(d.ids) == 3 and d.n_voxels == res.n_voxels
    np.testing.assert_array_equal(d.connected.compute(), res.connected)


def test_errors():
    m = np.zeros((3, 3, 3), np.int32)
    with pytest.raises(ValueError, match="voxel_size_um"):
        object_table(m, 0.0)
    with pytest.raises(ValueError, match="phase_labels"):
        object_table(m, 1.0, touching=("pore",))
    with pytest.raises(KeyError, match="nothing"):
        object_table(m, 1.0, phase_labels=m, touching=("nothing",))
    with pytest.raises(ShapeMismatchError):
        object_table(m, 1.0, phase_labels=np.zeros((3, 3, 4)), touching=("pore",))
    with pytest.raises(ValueError, match="connectivity"):
        label_objects(m, connectivity=4)
    with pytest.raises(ValueError, match="3-D"):
        label_objects(np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="min_volume_um3"):
        object_table(m, 1.0, min_volume_um3=-1)
