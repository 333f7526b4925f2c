"""Data Exchange reader / writer: round trips, the tooth sample, laziness and bad input."""

import os
import pickle

import dask
import dask.array as da
import h5py
import numpy as np
import pytest

from tomopipe.errors import (
    TomopipeWarning,
    AngleUnitError,
    InputFileError,
    InvalidFlatError,
    MissingKeyError,
    ShapeMismatchError,
    TruncatedFileError,
)
from tomopipe.io import RawScan, read_dxchange, read_scan, write_dxchange

RNG = np.random.default_rng(20240611)


def _scan_arrays(n_angles=20, rows=5, cols=7, dtype=np.uint16):
    proj = RNG.integers(100, 4000, size=(n_angles, rows, cols)).astype(dtype)
    flats = RNG.integers(4000, 5000, size=(4, rows, cols)).astype(dtype)
    darks = RNG.integers(0, 50, size=(3, rows, cols)).astype(dtype)
    theta = np.linspace(0.0, np.pi, n_angles, endpoint=False)
    return proj, flats, darks, theta


def _write_h5(path, datasets, attrs=None):
    """Write {key: array} into a fresh HDF5 file; attrs: {key: {name: value}}."""
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
        for key, kv in (attrs or {}).items():
            f[key].attrs.update(kv)
    return path


@pytest.fixture
def small_file(tmp_path):
    proj, flats, darks, theta = _scan_arrays()
    path = write_dxchange(tmp_path / "scan.h5", proj, flats, darks, theta, chunk_angles=6)
    return path, (proj, flats, darks, theta)


# --------------------------------------------------------------------------- the real sample


def test_tooth_loads_lazily_with_radians(tooth_path):
    scan = read_dxchange(tooth_path)
    assert isinstance(scan, RawScan)
    assert scan.format == "dxchange" and scan.source == str(tooth_path)
    assert isinstance(scan.projections, da.Array)
    assert scan.projections.shape == (181, 2, 640)
    assert scan.projections.dtype == np.float32
    assert scan.flats.shape == (10, 2, 640) and scan.darks.shape == (10, 2, 640)
    # default chunks: whole frames, a few angles each
    assert scan.projections.chunks[1:] == ((2,), (640,))
    assert max(scan.projections.chunks[0]) <= 16
    assert scan.theta.dtype == np.float64 and scan.theta.shape == (181,)
    assert scan.theta[0] == 0.0
    np.testing.assert_allclose(scan.theta[-1], np.deg2rad(179.0055), atol=1e-6)
    assert np.all(np.diff(scan.theta) > 0)
    assert scan.flat_index is None
    with h5py.File(tooth_path, "r") as f:
        np.testing.assert_array_equal(scan.projections[90].compute(), f["/exchange/data"][90])
        np.testing.assert_array_equal(scan.darks.compute(), f["/exchange/data_dark"][()])
    assert read_scan(tooth_path).format == "dxchange"


# --------------------------------------------------------------------------- round trips


def test_round_trip_numpy(small_file):
    path, (proj, flats, darks, theta) = small_file
    scan = read_dxchange(path)
    assert scan.projections.dtype == np.uint16
    np.testing.assert_array_equal(scan.projections.compute(), proj)
    np.testing.assert_array_equal(scan.flats.compute(), flats)
    np.testing.assert_array_equal(scan.darks.compute(), darks)
    np.testing.assert_allclose(scan.theta, theta, rtol=0, atol=1e-12)
    assert scan.flat_index is None
    with h5py.File(path, "r") as f:
        assert f["/exchange/theta"].attrs["units"] == "degrees"
        np.testing.assert_allclose(f["/exchange/theta"][()], np.rad2deg(theta))
    # no temporary file left behind
    assert sorted(os.listdir(path.parent)) == ["scan.h5"]


def test_round_trip_dask_float32_with_flat_index(tmp_path):
    proj, flats, darks, theta = _scan_arrays(n_angles=33, dtype=np.float32)
    flat_index = np.array([0.0, 0.0, 32.0, 32.0])
    path = write_dxchange(
        tmp_path / "scan.h5",
        da.from_array(proj, chunks=(5, 5, 4)),
        da.from_array(flats, chunks=2),
        darks,
        theta,
        chunk_angles=8,
        flat_index=flat_index,
    )
    scan = read_dxchange(path, chunks=(10, -1, -1))
    assert scan.projections.chunks[0] == (10, 10, 10, 3)
    np.testing.assert_array_equal(scan.projections.compute(), proj)
    np.testing.assert_array_equal(scan.flats.compute(), flats)
    np.testing.assert_allclose(scan.flat_index, flat_index, atol=1e-9)


def test_write_refuses_to_overwrite(small_file):
    path, (proj, flats, darks, theta) = small_file
    with pytest.raises(FileExistsError, match="scan.h5"):
        write_dxchange(path, proj, flats, darks, theta)
    write_dxchange(path, proj[:4], flats, darks, theta[:4], overwrite=True)
    assert read_dxchange(path).projections.shape[0] == 4


def test_write_checks_input(tmp_path):
    proj, flats, darks, theta = _scan_arrays()
    with pytest.raises(AngleUnitError, match="theta"):
        write_dxchange(tmp_path / "a.h5", proj, flats, darks, np.rad2deg(theta))
    with pytest.raises(ShapeMismatchError, match="flats"):
        write_dxchange(tmp_path / "a.h5", proj, flats[:, :-1], darks, theta)
    with pytest.raises(ShapeMismatchError, match="theta"):
        write_dxchange(tmp_path / "a.h5", proj, flats, darks, theta[:-1])
    with pytest.raises(ValueError, match="projections"):
        write_dxchange(tmp_path / "a.h5", proj[0], flats, darks, theta)
    assert not (tmp_path / "a.h5").exists()


def test_interrupted_write_leaves_no_file(tmp_path):
    proj, flats, darks, theta = _scan_arrays()

    def fail(block):
        raise RuntimeError("disk gone")

    bad = da.from_array(proj, chunks=(4, -1, -1)).map_blocks(fail, dtype=proj.dtype)
    with pytest.raises(RuntimeError, match="disk gone"):
        write_dxchange(tmp_path / "a.h5", bad, flats, darks, theta)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- laziness, pickling


def test_arrays_pickle_and_run_in_worker_processes(small_file):
    path, (proj, flats, darks, _) = small_file
    scan = read_dxchange(path, chunks=(4, -1, -1))
    blob = pickle.dumps(scan.projections)
    assert len(blob) < 20_000  # the graph holds a path, not the data
    np.testing.assert_array_equal(pickle.loads(blob).compute(), proj)
    pickle.dumps(scan.flats)
    pickle.dumps(scan.darks)
    total = dask.compute(scan.projections.sum(), scheduler="processes", num_workers=2)[0]
    assert total == proj.sum()


def test_one_angle_reads_one_chunk(small_file, monkeypatch):
    path, (proj, *_rest) = small_file
    scan = read_dxchange(path)
    from tomopipe.io import _scan

    seen = []
    original = _scan.H5Slicer.__getitem__

    def spy(self, index):
        out = original(self, index)
        seen.append(out.shape)
        return out

    monkeypatch.setattr(_scan.H5Slicer, "__getitem__", spy)
    np.testing.assert_array_equal(scan.projections[7].compute(), proj[7])
    assert seen == [proj.shape[1:]]


def test_slicer_indexing_matches_numpy(small_file):
    path, (proj, *_rest) = small_file
    scan = read_dxchange(path, chunks=(6, -1, -1))
    p = scan.projections
    for index in [
        np.s_[3],
        np.s_[-1, 2],
        np.s_[::-3, 1:4, ::2],
        np.s_[[5, 1, 1, 17]],
        np.s_[2:9, :, [6, 0, 3]],
        np.s_[..., 4],
        np.s_[4:4],
    ]:
        np.testing.assert_array_equal(p[index].compute(), proj[index], err_msg=str(index))


# --------------------------------------------------------------------------- fallbacks


def test_fallback_keys_and_theta_units(tmp_path):
    proj, flats, darks, theta = _scan_arrays()
    path = _write_h5(
        tmp_path / "alt.h5",
        {
            "/exchange/data": proj,
            "/exchange/data_flat": flats,
            "/exchange/data_dark": darks,
            "/exchange/theta_deg": np.rad2deg(theta),
        },
    )
    scan = read_dxchange(path)
    np.testing.assert_array_equal(scan.flats.compute(), flats)
    np.testing.assert_allclose(scan.theta, theta, atol=1e-12)

    path = _write_h5(
        tmp_path / "rad.h5",
        {
            "/exchange/data": proj,
            "/exchange/data_white": flats,
            "/exchange/data_dark": darks,
            "/exchange/theta": theta,
        },
        attrs={"/exchange/theta": {"units": "rad"}},
    )
    np.testing.assert_allclose(read_dxchange(path).theta, theta, atol=0)


def test_theta_white_gives_flat_index(tmp_path):
    proj, flats, darks, _ = _scan_arrays(n_angles=11)
    theta_deg = np.linspace(0.0, 180.0, 11)  # 18 degrees per projection
    path = _write_h5(
        tmp_path / "tw.h5",
        {
            "/exchange/data": proj,
            "/exchange/data_white": flats,
            "/exchange/data_dark": darks,
            "/exchange/theta": theta_deg,
            "/exchange/theta_white": np.array([0.0, 9.0, 171.0, 200.0]),
        },
    )
    with pytest.warns(TomopipeWarning) as record:  # no units: both read as degrees, with a warning
        scan = read_dxchange(path)
    assert len(record) == 2 and all("read as degrees" in str(w.message) for w in record)
    # beyond the scan range the index is extrapolated: 200° is 20° = 1.11 steps past the end
    np.testing.assert_allclose(scan.flat_index, [0.0, 0.5, 9.5, 10.0 + 20.0 / 18.0])

    # decreasing angles map the same way
    path = _write_h5(
        tmp_path / "dec.h5",
        {
            "/exchange/data": proj,
            "/exchange/data_white": flats,
            "/exchange/data_dark": darks,
            "/exchange/theta": theta_deg[::-1],
            "/exchange/theta_flat": np.array([180.0, 180.0, 0.0, 0.0]),
        },
        attrs={"/exchange/theta": {"units": "deg"}, "/exchange/theta_flat": {"units": "deg"}},
    )
    np.testing.assert_allclose(read_dxchange(path).flat_index, [0.0, 0.0, 10.0, 10.0])


def test_missing_theta_needs_explicit_radians(tmp_path):
    proj, flats, darks, theta = _scan_arrays()
    path = _write_h5(
        tmp_path / "nt.h5",
        {"/exchange/data": proj, "/exchange/data_white": flats, "/exchange/data_dark": darks},
    )
    with pytest.raises(MissingKeyError, match=r"nt\.h5.*/exchange/theta.*theta_deg") as info:
        read_dxchange(path)
    assert info.value.key == "/exchange/theta" and info.value.path == str(path)
    scan = read_dxchange(path, theta=theta)
    np.testing.assert_array_equal(scan.theta, theta)
    with pytest.raises(AngleUnitError, match="theta"):
        read_dxchange(path, theta=np.rad2deg(theta))
    with pytest.raises(ShapeMismatchError, match=r"theta.*nt\.h5"):
        read_dxchange(path, theta=theta[:-2])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "drop, key",
    [
        ("/exchange/data", "/exchange/data"),
        ("/exchange/data_white", "/exchange/data_white"),
        ("/exchange/data_dark", "/exchange/data_dark"),
    ],
)
def test_missing_keys(tmp_path, drop, key):
    proj, flats, darks, theta = _scan_arrays()
    content = {
        "/exchange/data": proj,
        "/exchange/data_white": flats,
        "/exchange/data_dark": darks,
        "/exchange/theta": np.rad2deg(theta),
    }
    del content[drop]
    path = _write_h5(tmp_path / "m.h5", content)
    with pytest.raises(MissingKeyError, match=r"m\.h5.*" + key) as info:
        read_dxchange(path)
    assert info.value.key == key
    if drop == "/exchange/data_white":
        assert "/exchange/data_flat" in str(info.value)


def test_allow_missing_darks(tmp_path):
    proj, flats, _, theta = _scan_arrays()
    path = _write_h5(
        tmp_path / "nd.h5",
        {"/exchange/data": proj, "/exchange/data_white": flats, "/exchange/theta": theta},
    )
    with pytest.warns(TomopipeWarning, match="no 'units' attribute.*read as radians"):
        scan = read_dxchange(path, allow_missing_darks=True)  # radians told from the values
    np.testing.assert_array_equal(scan.theta, theta)
    assert scan.darks.shape == (0,) + proj.shape[1:]
    assert scan.darks.dtype == proj.dtype
    assert scan.darks.compute().shape == (0,) + proj.shape[1:]


def test_empty_flats_rejected(tmp_path):
    proj, _, darks, theta = _scan_arrays()
    path = _write_h5(
        tmp_path / "ef.h5",
        {
            "/exchange/data": proj,
            "/exchange/data_white": np.zeros((0,) + proj.shape[1:], proj.dtype),
            "/exchange/data_dark": darks,
            "/exchange/theta": theta,
        },
    )
    with pytest.raises(InvalidFlatError, match=r"ef\.h5.*data_white"):
        read_dxchange(path)


@pytest.mark.parametrize("which", ["/exchange/data_white", "/exchange/data_dark"])
def test_frame_shape_mismatch(tmp_path, which):
    proj, flats, darks, theta = _scan_arrays()
    content = {
        "/exchange/data": proj,
        "/exchange/data_white": flats,
        "/exchange/data_dark": darks,
        "/exchange/theta": np.rad2deg(theta),
    }
    content[which] = content[which][:, :, :-1]
    path = _write_h5(tmp_path / "sm.h5", content)
    with pytest.raises(ShapeMismatchError) as info:
        read_dxchange(path)
    msg = str(info.value)
    assert "sm.h5" in msg and which in msg and "/exchange/data'" in msg


def test_theta_length_mismatch(tmp_path):
    proj, flats, darks, theta = _scan_arrays()
    path = _write_h5(
        tmp_path / "tl.h5",
        {
            "/exchange/data": proj,
            "/exchange/data_white": flats,
            "/exchange/data_dark": darks,
            "/exchange/theta": np.rad2deg(theta[:-1]),
        },
    )
    with pytest.raises(ShapeMismatchError, match=r"tl\.h5.*/exchange/theta"), pytest.warns(TomopipeWarning):
        read_dxchange(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="nothere.h5") as info:
        read_dxchange(tmp_path / "nothere.h5")
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(InputFileError, match="is a directory"):
        read_dxchange(tmp_path)


def test_truncated_file(small_file):
    path, _ = small_file
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(TruncatedFileError, match=r"scan\.h5"):
        read_dxchange(path)


def test_truncated_after_read_fails_at_compute(small_file):
    path, _ = small_file
    scan = read_dxchange(path)
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(TruncatedFileError, match=r"scan\.h5.*/exchange/data"):
        scan.projections.compute()


def test_deleted_after_read_fails_at_compute(small_file):
    path, _ = small_file
    scan = read_dxchange(path)
    os.remove(path)
    with pytest.raises(InputFileError, match=r"scan\.h5"):
        scan.flats.compute()


def test_not_hdf5(tmp_path):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"this is not an HDF5 file" * 100)
    with pytest.raises(TruncatedFileError, match=r"junk\.h5"):
        read_dxchange(path)


def test_read_scan_format_choice(small_file, tmp_path):
    path, (proj, *_rest) = small_file
    other = tmp_path / "scan.data"
    os.rename(path, other)
    with pytest.raises(InputFileError, match=r"scan\.data.*format="):
        read_scan(other)
    scan = read_scan(other, format="dxchange")
    np.testing.assert_array_equal(scan.projections.compute(), proj)
    with pytest.raises(ValueError, match="format"):
        read_scan(other, format="hdf")
    with pytest.raises(MissingKeyError, match=r"scan\.data"):
        read_scan(other, format="nxtomo")


def test_differently_chunked_reads_combine(small_file):
    path, (proj, *_rest) = small_file
    a = read_dxchange(path, chunks=(3, -1, -1)).projections
    b = read_dxchange(path).projections
    assert a.name != b.name
    np.testing.assert_array_equal((a + b).compute(), 2 * proj.astype(np.int64))
    # same file, same chunks -> same graph keys (dask can share the reads)
    assert read_dxchange(path).projections.name == b.name
