"""TIFF series reader: natural order, laziness (one file per angle read), bad input."""

import os
import pickle

import numpy as np
import pytest
import tifffile

from tomopipe.errors import (
    AngleUnitError,
    InputFileError,
    MissingKeyError,
    ShapeMismatchError,
    TruncatedFileError,
)
from tomopipe.io import read_scan, read_tiff_series
from tomopipe.io import _tiff

ROWS, COLS = 6, 9
N_ANGLES = 12


def _frame(value, dtype=np.uint16):
    base = np.arange(ROWS * COLS, dtype=np.float64).reshape(ROWS, COLS)
    return (base + 100 * value).astype(dtype)


@pytest.fixture
def series(tmp_path):
    """12 single-frame projections named proj_1 .. proj_12 (unpadded, so sorting matters),
    a 3-page flat stack, two single-frame darks."""
    proj_dir = tmp_path / "proj"
    proj_dir.mkdir()
    proj = np.stack([_frame(i) for i in range(N_ANGLES)])
    for i in range(N_ANGLES):
        tifffile.imwrite(proj_dir / f"proj_{i + 1}.tif", proj[i])
    flats = np.stack([_frame(50 + i) for i in range(3)])
    tifffile.imwrite(tmp_path / "flats.tif", flats, photometric="minisblack")
    darks = np.stack([np.full((ROWS, COLS), 3 + i, np.uint16) for i in range(2)])
    for i in range(2):
        tifffile.imwrite(tmp_path / f"dark_{i}.tiff", darks[i])
    theta = np.linspace(0, np.pi, N_ANGLES, endpoint=False)
    return {
        "proj_glob": str(proj_dir / "proj_*.tif"),
        "proj_dir": proj_dir,
        "flats": str(tmp_path / "flats.tif"),
        "darks": str(tmp_path / "dark_*.tiff"),
        "arrays": (proj, flats, darks),
        "theta": theta,
    }


def _read(series, **kw):
    return read_tiff_series(
        series["proj_glob"], series["flats"], series["darks"], theta=series["theta"], **kw
    )


def test_round_trip_natural_order(series):
    proj, flats, darks = series["arrays"]
    scan = _read(series)
    assert scan.format == "tiff" and scan.source == series["proj_glob"]
    assert scan.projections.shape == (N_ANGLES, ROWS, COLS)
    assert scan.projections.dtype == np.uint16
    np.testing.assert_array_equal(scan.projections.compute(), proj)
    np.testing.assert_array_equal(scan.flats.compute(), flats)
    np.testing.assert_array_equal(scan.darks.compute(), darks)
    np.testing.assert_array_equal(scan.theta, series["theta"])
    assert scan.flat_index is None


def test_list_and_directory_inputs_sort_naturally(series):
    proj, _, _ = series["arrays"]
    files = [series["proj_dir"] / f"proj_{i + 1}.tif" for i in range(N_ANGLES)]
    shuffled = [files[i] for i in np.random.default_rng(0).permutation(N_ANGLES)]
    scan = read_tiff_series(
        shuffled, [series["flats"]], series["darks"], theta=series["theta"]
    )
    np.testing.assert_array_equal(scan.projections.compute(), proj)
    scan = read_tiff_series(
        series["proj_dir"], series["flats"], series["darks"], theta=series["theta"]
    )
    np.testing.assert_array_equal(scan.projections.compute(), proj)


def test_one_angle_opens_only_its_file(series, monkeypatch):
    proj, _, _ = series["arrays"]
    scan = _read(series)  # default chunks: all 12 angles in one chunk
    assert scan.projections.numblocks[0] == 1

    opened = []
    original = _tiff._TiffSlicer._read_pages

    def spy(self, path, pages):
        opened.append((os.path.basename(path), pages))
        return original(self, path, pages)

    monkeypatch.setattr(_tiff._TiffSlicer, "_read_pages", spy)
    np.testing.assert_array_equal(scan.projections[7].compute(), proj[7])
    assert opened == [("proj_8.tif", [0])]
    opened.clear()
    np.testing.assert_array_equal(scan.flats[1:, 2].compute(), scan.flats.compute()[1:, 2])


def test_lazy_read_survives_deleting_other_files(series):
    proj, _, _ = series["arrays"]
    scan = _read(series, chunks=(1, -1, -1))
    for i in range(N_ANGLES):
        if i != 4:
            os.remove(series["proj_dir"] / f"proj_{i + 1}.tif")
    np.testing.assert_array_equal(scan.projections[4].compute(), proj[4])
    with pytest.raises(InputFileError, match=r"proj_6\.tif"):
        scan.projections[5].compute()


def test_arrays_pickle(series):
    proj, _, _ = series["arrays"]
    scan = _read(series)
    blob = pickle.dumps(scan.projections)
    assert len(blob) < 20_000
    np.testing.assert_array_equal(pickle.loads(blob).compute(), proj)
    pickle.dumps(scan.flats)
    pickle.dumps(scan.darks)


def test_flat_index_and_missing_darks(series):
    scan = _read(series, flat_index=[0.0, 0.0, 11.0])
    np.testing.assert_array_equal(scan.flat_index, [0.0, 0.0, 11.0])
    assert _read(series, flat_index=[3.0, 3.0, 3.0]).flat_index is None
    with pytest.raises(ShapeMismatchError, match="flat_index"):
        _read(series, flat_index=[0.0, 11.0])
    with pytest.raises(ValueError, match="flat_index"):
        _read(series, flat_index=[0.0, 0.0, 40.0])
    assert _read(series, flat_index=[-0.5, -0.5, 11.5]).flat_index is not None  # before / after the scan

    with pytest.raises(MissingKeyError, match="darks"):
        read_tiff_series(series["proj_glob"], series["flats"], None, theta=series["theta"])
    scan = read_tiff_series(
        series["proj_glob"], series["flats"], None, theta=series["theta"],
        allow_missing_darks=True,
    )
    assert scan.darks.shape == (0, ROWS, COLS)


def test_read_scan_dispatch(series):
    proj, _, _ = series["arrays"]
    scan = read_scan(
        series["proj_glob"], flats=series["flats"], darks=series["darks"], theta=series["theta"]
    )
    assert scan.format == "tiff"
    spec = {
        "projections": series["proj_glob"],
        "flats": series["flats"],
        "darks": series["darks"],
        "theta": series["theta"],
    }
    np.testing.assert_array_equal(read_scan(spec).projections.compute(), proj)
    scan = read_scan(
        series["proj_dir"], flats=series["flats"], darks=series["darks"], theta=series["theta"]
    )
    np.testing.assert_array_equal(scan.projections.compute(), proj)
    with pytest.raises(ValueError, match="flats"):
        read_scan(series["proj_glob"], theta=series["theta"])


def test_no_match_names_pattern(series, tmp_path):
    pattern = str(tmp_path / "nothing_*.tif")
    with pytest.raises(InputFileError, match=r"flats.*nothing_\*\.tif"):
        read_tiff_series(series["proj_glob"], pattern, series["darks"], theta=series["theta"])
    with pytest.raises(InputFileError, match=r"missing\.tif"):
        read_tiff_series(
            [tmp_path / "missing.tif"], series["flats"], series["darks"], theta=series["theta"]
        )


def test_frame_shape_mismatch_names_file(series):
    odd = series["proj_dir"] / "proj_5.tif"
    tifffile.imwrite(odd, np.zeros((ROWS, COLS + 1), np.uint16))
    with pytest.raises(ShapeMismatchError, match=r"proj_5\.tif.*proj_1\.tif"):
        _read(series)


def test_flat_shape_mismatch_names_file(series, tmp_path):
    bad = tmp_path / "bad_flat.tif"
    tifffile.imwrite(bad, np.zeros((ROWS + 2, COLS), np.uint16))
    with pytest.raises(ShapeMismatchError, match=r"bad_flat\.tif.*proj_1\.tif"):
        read_tiff_series(series["proj_glob"], bad, series["darks"], theta=series["theta"])


def test_colour_pages_rejected(series, tmp_path):
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((ROWS, COLS, 3), np.uint8), photometric="rgb")
    with pytest.raises(ShapeMismatchError, match=r"rgb\.tif.*2-D grayscale"):
        read_tiff_series(series["proj_glob"], rgb, series["darks"], theta=series["theta"])


def test_theta_checks(series):
    with pytest.raises(AngleUnitError, match="theta"):
        _read(series | {"theta": np.rad2deg(series["theta"])})
    with pytest.raises(ShapeMismatchError, match=r"theta.*proj_\*\.tif"):
        _read(series | {"theta": series["theta"][:-1]})


def test_corrupt_tiff(series, tmp_path):
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(TruncatedFileError, match=r"junk\.tif"):
        read_tiff_series(series["proj_glob"], junk, series["darks"], theta=series["theta"])
