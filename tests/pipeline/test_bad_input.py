"""Bad input through the CLI: a clear message naming the file/key/parameter, exit code 2,
and an earlier complete result in the same store left untouched."""

import os

import h5py
import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tomopipe.cli import app

runner = CliRunner()


@pytest.fixture
def good_store(tmp_path, write_workflow, scan_file):
    wf = write_workflow(tmp_path / "good.yaml", scan_file)
    store = tmp_path / "store.zarr"
    res = runner.invoke(app, ["run", str(wf), "--out", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    return store


def _snapshot(store):
    out = {}
    for stage in ("raw", "normalized", "sinograms", "volume"):
        g = zarr.open_group(str(store / stage), mode="r")
        out[stage] = g.attrs["tomopipe"]["fingerprint"]
    out["vol"] = np.asarray(zarr.open_group(str(store / "volume"), mode="r")["0"][:])
    return out


def _bad_h5(path, small_scan, *, drop=None, flats=None, theta_units=None, theta=None):
    s = small_scan
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = s["projections"]
        f["/exchange/data_white"] = s["flats"] if flats is None else flats
        f["/exchange/data_dark"] = s["darks"]
        f["/exchange/theta"] = np.rad2deg(s["theta"]) if theta is None else theta
        if theta_units:
            f["/exchange/theta"].attrs["units"] = theta_units
        if drop:
            del f[drop]
    return path


def _cases(tmp_path, small_scan):
    s = small_scan
    yield "missing key", _bad_h5(tmp_path / "nokey.h5", s, drop="/exchange/data_white"), ["nokey.h5", "data_white"]
    yield "flat shape", _bad_h5(tmp_path / "shape.h5", s, flats=s["flats"][:, :, :-1]), ["shape.h5", "flat"]
    yield "zero flats", _bad_h5(tmp_path / "zero.h5", s, flats=np.zeros_like(s["flats"])), ["zero.h5", "flat"]
    nan = s["flats"].astype(np.float32)
    nan[2, 3, 4] = np.nan
    yield "nan flats", _bad_h5(tmp_path / "nan.h5", s, flats=nan), ["nan.h5", "flat", "NaN"]
    deg = _bad_h5(tmp_path / "deg.h5", s, theta=np.rad2deg(s["theta"]), theta_units="rad")
    yield "degrees as radians", deg, ["deg.h5", "theta", "degrees"]
    trunc = _bad_h5(tmp_path / "trunc.h5", s)
    os.truncate(trunc, os.path.getsize(trunc) // 2)
    yield "truncated", trunc, ["trunc.h5"]
    yield "missing file", tmp_path / "nowhere.h5", ["nowhere.h5"]


def test_bad_input_files(tmp_path, write_workflow, small_scan, good_store):
    before = _snapshot(good_store)
    for name, path, needles in _cases(tmp_path, small_scan):
        wf = write_workflow(tmp_path / f"{path.stem}.yaml", path)
        res = runner.invoke(app, ["run", str(wf), "--out", str(good_store), "--quiet"])
        assert res.exit_code == 2, (name, res.output)
        for needle in needles:
            assert needle in res.output, (name, needle, res.output)
        assert "Traceback" not in res.output
    after = _snapshot(good_store)
    for k in ("raw", "normalized", "sinograms", "volume"):
        assert before[k] == after[k]
    np.testing.assert_array_equal(before["vol"], after["vol"])
    assert not any(p.name.endswith(".partial") for p in good_store.iterdir())


def test_unknown_workflow_key(tmp_path, scan_file, good_store):
    wf = tmp_path / "typo.yaml"
    wf.write_text(f"input:\n  path: {scan_file}\nrecon:\n  filtre_name: shepp\n")
    res = runner.invoke(app, ["run", str(wf), "--out", str(good_store)])
    assert res.exit_code == 2
    assert "typo.yaml" in res.output and "recon.filtre_name" in res.output


def test_info_lists_stages(good_store):
    res = runner.invoke(app, ["info", str(good_store)])
    assert res.exit_code == 0
    for stage in ("raw/", "normalized/", "sinograms/", "volume/"):
        assert stage in res.output
    assert "(z,y,x)" in res.output and "1/cm" in res.output
    res = runner.invoke(app, ["info", str(good_store / "nothing")])
    assert res.exit_code == 2
