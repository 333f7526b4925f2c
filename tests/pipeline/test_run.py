import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

import tomopipe as tp
from tomopipe.cli import app
from tomopipe.pipeline import Store, load_workflow, run_workflow

runner = CliRunner()


def _volume(store):
    return np.asarray(zarr.open_group(str(store / "volume"), mode="r")["0"][:])


def test_pipeline_equals_in_memory_chain(tmp_path, write_workflow, scan_file, small_scan):
    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file, normalize={"flats": "interpolate"}))
    res = run_workflow(wf, tmp_path / "s.zarr", progress=False)
    assert res.ran == ["raw", "normalized", "sinograms", "volume"]
    assert abs(res.center - small_scan["center"]) < 0.5
    # the same chain in memory with the public tomopy-compatible functions
    s = small_scan
    proj = tp.normalize_interp(s["projections"], s["flats"], s["darks"], s["flat_index"], averaging="median")
    rec = tp.recon(tp.minus_log(proj), s["theta"], res.center, pixel_size=0.88e-4, nthreads=1)
    vol = _volume(res.store)
    np.testing.assert_allclose(vol, rec, rtol=0, atol=1e-5 * np.abs(rec).max())
    # provenance and units
    g = zarr.open_group(str(res.store / "volume"), mode="r")
    meta = g.attrs["tomopipe"]
    assert meta["complete"] and meta["version"] == tp.__version__
    assert g.attrs["units"] == "1/cm" and g.attrs["voxel_size_um"] == pytest.approx([0.88] * 3)
    assert tuple(g["0"].metadata.dimension_names) == ("z", "y", "x")
    assert g["1"].shape == tuple(n // 2 for n in vol.shape)
    raw = zarr.open_group(str(res.store / "raw"), mode="r")
    assert len(raw.attrs["tomopipe"]["inputs"]["checksum"]) == 64
    assert res.preview.is_file()
    # μ of the particles (25 /cm... 23 /cm in the phantom) is physical: check a big one
    big = max(s["ellipsoids"][1:], key=lambda e: e.semi_axes[0] if e.value > 20 * 0.88e-4 else 0)
    assert big.value / 0.88e-4 == pytest.approx(23.0)


def test_second_run_skips_and_interrupted_stage_is_redone(tmp_path, write_workflow, scan_file, monkeypatch):
    wf = load_workflow(write_workflow(tmp_path / "wf.yaml", scan_file))
    ref = run_workflow(wf, tmp_path / "ref.zarr", progress=False)
    again = run_workflow(wf, tmp_path / "ref.zarr", progress=False)
    assert again.ran == [] and again.skipped == ["raw", "normalized", "sinograms", "volume"]

    import tomopipe.reconstruction._dask as rd

    calls = {"n": 0}
    real = rd.recon

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("node lost")
        return real(*a, **k)

    monkeypatch.setattr(rd, "recon", failing)
    with pytest.raises(RuntimeError, match="node lost"):
        run_workflow(wf, tmp_path / "cut.zarr", progress=False)
    st = Store(tmp_path / "cut.zarr")
    assert st.stages() == ["raw", "normalized", "sinograms"]
    assert (tmp_path / "cut.zarr" / "volume.partial").is_dir()
    monkeypatch.setattr(rd, "recon", real)
    res = run_workflow(wf, tmp_path / "cut.zarr", progress=False)
    assert res.ran == ["volume"]
    assert not (tmp_path / "cut.zarr" / "volume.partial").exists()
    np.testing.assert_array_equal(_volume(res.store), _volume(ref.store))


def test_changed_parameter_recomputes_only_downstream(tmp_path, write_workflow, scan_file):
    run_workflow(load_workflow(write_workflow(tmp_path / "a.yaml", scan_file)), tmp_path / "s.zarr", progress=False)
    wf2 = load_workflow(write_workflow(tmp_path / "b.yaml", scan_file, recon={"filter_name": "hann"}))
    res = run_workflow(wf2, tmp_path / "s.zarr", progress=False)
    assert res.ran == ["volume"]
    assert zarr.open_group(str(tmp_path / "s.zarr" / "volume"), mode="r").attrs["tomopipe"]["parameters"][
        "filter_name"] == "hann"
    # a reconstruction setting that changes only the tasks never copies the raw data again
    wf3 = load_workflow(write_workflow(tmp_path / "c.yaml", scan_file, recon={"filter_name": "hann",
                                                                             "rows_per_chunk": 2}))
    res = run_workflow(wf3, tmp_path / "s.zarr", progress=False)
    assert res.ran == ["volume"] and res.skipped == ["raw", "normalized", "sinograms"]


def test_killed_process_resumes_identically(tmp_path, write_workflow, scan_file):
    wf_path = write_workflow(tmp_path / "wf.yaml", scan_file)
    ref = run_workflow(load_workflow(wf_path), tmp_path / "ref.zarr", progress=False)
    store = tmp_path / "killed.zarr"
    # a slow reconstruction so that the kill lands inside the volume stage
    code = (
        "import time, tomopipe.reconstruction._dask as d\n"
        "real = d.recon\n"
        "def slow(*a, **k):\n    time.sleep(0.3)\n    return real(*a, **k)\n"
        "d.recon = slow\n"
        "from tomopipe.cli import app\n"
        f"app(['run', {str(wf_path)!r}, '--out', {str(store)!r}, '--quiet'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (store / "volume.partial").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert (store / "volume.partial").exists(), "the volume stage never started"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Store(store).info("volume") is None  # never marked complete
    res = runner.invoke(app, ["run", str(wf_path), "--out", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "ran: volume" in res.output
    assert "took over the store from a run that died" in res.output  # its lock record was found
    np.testing.assert_array_equal(_volume(store), _volume(ref.store))


def test_tooth_workflow_centre_and_sharpness(tmp_path, tooth_path, monkeypatch):
    monkeypatch.setenv("TOMOPIPE_DATA", str(tooth_path.parent))
    wf = load_workflow(os.path.join(os.path.dirname(__file__), "..", "..", "workflows", "tooth.yaml"))
    res = run_workflow(wf, tmp_path / "tooth.zarr", progress=False)
    assert abs(res.center - 295.5) <= 1.0
    assert res.preview.is_file()
    # no doubled edges: the automatic centre is sharper than centres a few pixels off
    sino = np.asarray(zarr.open_group(str(res.store / "sinograms"), mode="r")["sinograms"][:])
    theta = np.asarray(zarr.open_group(str(res.store / "raw"), mode="r")["theta"][:])

    def blur(c):  # gradient energy of the smoothed slice: doubled edges spread it out
        from scipy import ndimage as ndi

        img = ndi.gaussian_filter(tp.recon(sino, theta, c)[0], 1.0)
        return np.hypot(*np.gradient(img)).sum()

    at = blur(res.center)
    assert at < blur(res.center - 3) and at < blur(res.center + 3)
    assert at < blur(res.center - 2) and at < blur(res.center + 2.5)
