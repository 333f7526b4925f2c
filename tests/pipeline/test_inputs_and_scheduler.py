import numpy as np
import pytest
import yaml
import zarr
from typer.testing import CliRunner

from tomopipe.cli import app
from tomopipe.datasets import fetch
from tomopipe.errors import InputFileError
from tomopipe.pipeline import load_workflow, run_workflow

runner = CliRunner()


def test_tiff_series_workflow_equals_hdf5(tmp_path, small_scan, write_workflow, scan_file, tiff_series):
    s = small_scan
    tiff_series(tmp_path / "tif", s)
    wf_path = tmp_path / "tif.yaml"
    wf_path.write_text(yaml.safe_dump({
        "name": "tif",
        "input": {"path": "tif/proj_*.tif", "flats": "tif/flat_*.tif", "darks": "tif/dark_*.tif",
                  "theta": {"start": "0 deg", "stop": "180 deg"},
                  "flat_index": [float(v) for v in s["flat_index"]]},
        "geometry": {"pixel_size": "0.88 um"},
        "recon": {"rows_per_chunk": 4}, "output": {"chunk_angles": 8, "pyramid_levels": 2},
    }))
    a = run_workflow(load_workflow(wf_path), tmp_path / "tif.zarr", progress=False)
    b = run_workflow(load_workflow(write_workflow(tmp_path / "h5.yaml", scan_file)), tmp_path / "h5.zarr",
                     progress=False)
    va = zarr.open_group(str(a.store / "volume"), mode="r")["0"][:]
    vb = zarr.open_group(str(b.store / "volume"), mode="r")["0"][:]
    np.testing.assert_array_equal(va, vb)


def test_distributed_scheduler(tmp_path, write_workflow, scan_file):
    from distributed import LocalCluster

    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file))
    ref = run_workflow(wf, tmp_path / "local.zarr", progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:
        res = run_workflow(wf, tmp_path / "dist.zarr", scheduler=cluster.scheduler_address, progress=False)
    np.testing.assert_array_equal(zarr.open_group(str(res.store / "volume"), mode="r")["0"][:],
                                  zarr.open_group(str(ref.store / "volume"), mode="r")["0"][:])


def test_demo_command(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--size", "48", "--quiet"])
    assert res.exit_code == 0, res.output
    for state in ("OCV", "D1p2V", "D0p7V", "C3p0V"):  # a small simulated in-situ series, run as a series
        for stage in ("volume", "segmentation", "metrics"):
            assert (tmp_path / "demo" / f"{state}.zarr" / stage).is_dir()
        assert (tmp_path / "demo" / f"{state}.zarr.preview.png").is_file()
        assert (tmp_path / "demo" / f"{state}.truth").is_dir()
    assert (tmp_path / "demo" / "D0p7V.zarr" / "dvc").is_dir()
    assert (tmp_path / "demo" / "report" / "report.html").is_file()
    assert "report:" in res.output


def test_fetch_uses_verified_local_copy(tmp_path, tooth_path, monkeypatch):
    monkeypatch.setenv("TOMOPIPE_DATA", str(tooth_path.parent))
    assert fetch("tooth.h5") == tooth_path
    # a corrupt copy is not used (here no network: it must fail with a clear error, not use it)
    bad = tmp_path / "tooth.h5"
    bad.write_bytes(b"not the tooth")
    monkeypatch.setenv("TOMOPIPE_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    p = None
    try:
        p = fetch("tooth.h5")
    except InputFileError as exc:
        assert "tooth.h5" in str(exc)
    if p is not None:
        assert p != bad
    with pytest.raises(InputFileError, match="unknown sample dataset"):
        fetch("nope.h5")
