"""NXtomo reader: split of interleaved frames by image_key, flat_index, entries, bad input."""

import os
import pickle

import dask
import h5py
import numpy as np
import pytest

from tomopipe.errors import (
    TomopipeWarning,
    AngleUnitError,
    InputFileError,
    MissingKeyError,
    ShapeMismatchError,
    TruncatedFileError,
)
from tomopipe.io import read_nxtomo, read_scan

ROWS, COLS = 4, 5

# acquisition order: 3 flats, 5 projections, 1 invalid, 2 flats, 4 projections, 2 darks
KEYS = np.array([1, 1, 1, 0, 0, 0, 0, 0, 3, 1, 1, 0, 0, 0, 0, 2, 2], dtype=np.int8)


def _frames(n):
    """Frame i is filled with 10 * i + the pixel index, so every frame is recognisable."""
    pix = np.arange(ROWS * COLS, dtype=np.float32).reshape(1, ROWS, COLS) / 100
    return (10 * np.arange(n, dtype=np.float32).reshape(n, 1, 1) + pix).astype(np.float32)


def _make_nxtomo(
    path,
    keys=KEYS,
    *,
    entry="entry",
    definition="NXtomo",
    layout="instrument",
    angles="frame",
    units="degree",
    drop=(),
):
    """Write a small NXtomo file: data + image_key + rotation_angle under `entry`."""
    n = keys.size
    data = _frames(n)
    angle_deg = np.zeros(n)  # flats and darks at 0 degrees
    angle_deg[keys == 0] = np.linspace(0, 180, int(np.sum(keys == 0)), endpoint=False)
    with h5py.File(path, "w") as f:
        g = f.create_group(entry)
        g.attrs["NX_class"] = "NXentry"
        if definition is not None:
            g.create_dataset("definition", data=definition)
        det = f.create_group(f"{entry}/instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        nxdata = f.create_group(f"{entry}/data")
        nxdata.attrs["NX_class"] = "NXdata"
        target = det if layout == "instrument" else nxdata
        if "data" not in drop:
            target.create_dataset("data", data=data, chunks=(1, ROWS, COLS))
        if "image_key" not in drop:
            target.create_dataset("image_key", data=keys)
        if layout == "instrument" and "data" not in drop:
            nxdata["data"] = h5py.SoftLink(f"/{entry}/instrument/detector/data")
        sample = f.create_group(f"{entry}/sample")
        if "rotation_angle" not in drop:
            values = angle_deg if angles == "frame" else angle_deg[keys == 0]
            if units in ("rad", "radian"):
                values = np.deg2rad(values)
            ds = sample.create_dataset("rotation_angle", data=values)
            if units is not None:
                ds.attrs["units"] = units
    return path, data, np.deg2rad(angle_deg[keys == 0])


@pytest.fixture
def nx_file(tmp_path):
    return _make_nxtomo(tmp_path / "scan.nx")


def test_interleaved_split_and_flat_index(nx_file):
    path, data, theta = nx_file
    scan = read_nxtomo(path)
    assert scan.format == "nxtomo" and scan.source == str(path)
    assert scan.projections.shape == (9, ROWS, COLS)
    assert scan.flats.shape == (5, ROWS, COLS) and scan.darks.shape == (2, ROWS, COLS)
    assert scan.projections.dtype == np.float32
    np.testing.assert_array_equal(scan.projections.compute(), data[KEYS == 0])
    np.testing.assert_array_equal(scan.flats.compute(), data[KEYS == 1])
    np.testing.assert_array_equal(scan.darks.compute(), data[KEYS == 2])
    np.testing.assert_allclose(scan.theta, theta, atol=1e-12)
    # first flats before any projection -> -0.5 clipped to 0; the next after 5 -> 4.5
    np.testing.assert_array_equal(scan.flat_index, [0.0, 0.0, 0.0, 4.5, 4.5])
    # chunked reads across the invalid frame map indices correctly
    np.testing.assert_array_equal(
        read_nxtomo(path, chunks=(2, -1, -1)).projections[3:7].compute(), data[KEYS == 0][3:7]
    )
    np.testing.assert_array_equal(scan.projections[[8, 0, 5], 1].compute(), data[KEYS == 0][[8, 0, 5], 1])


def test_flats_at_end_clip_to_last_index(tmp_path):
    keys = np.array([2, 0, 0, 0, 1, 1], dtype=np.int8)
    path, _, _ = _make_nxtomo(tmp_path / "end.nx", keys)
    scan = read_nxtomo(path)
    assert scan.flat_index is None  # one block of flats
    keys = np.array([1, 0, 0, 0, 1, 1, 2], dtype=np.int8)
    path, _, _ = _make_nxtomo(tmp_path / "both.nx", keys)
    np.testing.assert_array_equal(read_nxtomo(path).flat_index, [0.0, 2.0, 2.0])


def test_contiguous_flats_give_none(tmp_path):
    keys = np.array([2, 2, 1, 1, 1, 0, 0, 0, 0], dtype=np.int8)
    path, data, _ = _make_nxtomo(tmp_path / "one.nx", keys)
    scan = read_nxtomo(path)
    assert scan.flat_index is None
    np.testing.assert_array_equal(scan.darks.compute(), data[:2])


def test_entry_found_by_definition_and_nxdata_layout(tmp_path):
    path, data, theta = _make_nxtomo(
        tmp_path / "scan.h5", entry="scan_0007", layout="nxdata", angles="projection",
        units="rad",
    )
    # a second, non-NXtomo entry is ignored
    with h5py.File(path, "a") as f:
        other = f.create_group("entry")
        other.attrs["NX_class"] = "NXentry"
        other.create_dataset("definition", data="NXmx")
    scan = read_nxtomo(path)
    np.testing.assert_array_equal(scan.projections.compute(), data[KEYS == 0])
    np.testing.assert_allclose(scan.theta, theta, atol=1e-12)
    assert read_nxtomo(path, entry="scan_0007").projections.shape[0] == 9
    # an .h5 file with an NXtomo entry dispatches to the NXtomo reader
    assert read_scan(path).format == "nxtomo"
    with pytest.raises(MissingKeyError, match=r"scan\.h5.*/nope"):
        read_nxtomo(path, entry="nope")


def test_several_nxtomo_entries_need_a_choice(tmp_path):
    path, _, _ = _make_nxtomo(tmp_path / "two.nx", entry="a")
    with h5py.File(path, "a") as f:
        g = f.create_group("b")
        g.attrs["NX_class"] = "NXentry"
        g.create_dataset("definition", data="NXtomo")
    with pytest.raises(InputFileError, match=r"two\.nx.*entry="):
        read_nxtomo(path)
    assert read_nxtomo(path, entry="/a").projections.shape[0] == 9


def test_read_scan_and_pickle(nx_file):
    path, data, _ = nx_file
    scan = read_scan(path)
    assert scan.format == "nxtomo"
    blob = pickle.dumps(scan.projections)
    np.testing.assert_array_equal(pickle.loads(blob).compute(), data[KEYS == 0])
    pickle.dumps(scan.flats)
    pickle.dumps(scan.darks)
    total = dask.compute(scan.flats.sum(), scheduler="processes", num_workers=2)[0]
    np.testing.assert_allclose(total, data[KEYS == 1].sum(dtype=np.float64), rtol=1e-6)


def test_explicit_theta_and_units(tmp_path):
    path, _, theta = _make_nxtomo(tmp_path / "na.nx", drop=("rotation_angle",))
    with pytest.raises(MissingKeyError, match=r"na\.nx.*/entry/sample/rotation_angle"):
        read_nxtomo(path)
    np.testing.assert_array_equal(read_nxtomo(path, theta=theta).theta, theta)
    with pytest.raises(AngleUnitError, match="theta"):
        read_nxtomo(path, theta=np.rad2deg(theta))
    with pytest.raises(ShapeMismatchError, match="theta"):
        read_nxtomo(path, theta=theta[:3])

    path, _, theta = _make_nxtomo(tmp_path / "nounits.nx", units=None)
    with pytest.warns(TomopipeWarning, match="no 'units' attribute"):  # unit decided from the values
        np.testing.assert_allclose(read_nxtomo(path).theta, theta, atol=1e-12)
    path, _, _ = _make_nxtomo(tmp_path / "mrad.nx", units="mrad")
    with pytest.raises(AngleUnitError, match=r"mrad\.nx.*rotation_angle.*mrad"):
        read_nxtomo(path)


@pytest.mark.parametrize("what", ["data", "image_key"])
def test_missing_datasets(tmp_path, what):
    path, _, _ = _make_nxtomo(tmp_path / "m.nx", drop=(what,))
    with pytest.raises(MissingKeyError, match=rf"m\.nx.*/entry/instrument/detector/{what}") as info:
        read_nxtomo(path)
    assert f"/entry/data/{what}" in str(info.value)


def test_missing_darks_and_flats(tmp_path):
    keys = np.array([1, 0, 0, 0], dtype=np.int8)
    path, _, _ = _make_nxtomo(tmp_path / "nd.nx", keys)
    with pytest.raises(MissingKeyError, match=r"nd\.nx.*== 2"):
        read_nxtomo(path)
    scan = read_nxtomo(path, allow_missing_darks=True)
    assert scan.darks.shape == (0, ROWS, COLS)
    keys = np.array([2, 0, 0, 0], dtype=np.int8)
    path, _, _ = _make_nxtomo(tmp_path / "nf.nx", keys)
    with pytest.raises(MissingKeyError, match=r"nf\.nx.*== 1"):
        read_nxtomo(path)


def test_image_key_length_and_values(tmp_path):
    path, _, _ = _make_nxtomo(tmp_path / "len.nx")
    with h5py.File(path, "a") as f:
        del f["/entry/instrument/detector/image_key"]
        f["/entry/instrument/detector/image_key"] = KEYS[:-1]
    with pytest.raises(ShapeMismatchError, match=r"len\.nx.*image_key"):
        read_nxtomo(path)

    bad = KEYS.copy()
    bad[4] = 7
    path, _, _ = _make_nxtomo(tmp_path / "val.nx", bad)
    with pytest.raises(InputFileError, match=r"val\.nx.*\[7\]"):
        read_nxtomo(path)


def test_rotation_angle_length_mismatch(tmp_path):
    path, _, _ = _make_nxtomo(tmp_path / "ra.nx")
    with h5py.File(path, "a") as f:
        del f["/entry/sample/rotation_angle"]
        f["/entry/sample/rotation_angle"] = np.zeros(5)
    with pytest.raises(ShapeMismatchError, match=r"ra\.nx.*rotation_angle"):
        read_nxtomo(path)


def test_data_not_3d(tmp_path):
    path, _, _ = _make_nxtomo(tmp_path / "2d.nx")
    with h5py.File(path, "a") as f:
        del f["/entry/instrument/detector/data"]
        f["/entry/instrument/detector/data"] = np.zeros((KEYS.size, ROWS * COLS))
    with pytest.raises(ShapeMismatchError, match=r"2d\.nx.*3-D"):
        read_nxtomo(path)


def test_truncated_and_missing_file(nx_file, tmp_path):
    path, _, _ = nx_file
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(TruncatedFileError, match=r"scan\.nx"):
        read_nxtomo(path)
    with pytest.raises(InputFileError, match=r"absent\.nxs"):
        read_nxtomo(tmp_path / "absent.nxs")
    with pytest.raises(InputFileError, match=r"absent\.nxs"):
        read_scan(tmp_path / "absent.nxs")
