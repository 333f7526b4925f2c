"""An in-situ series end to end: states → own segmentation → metrics → DVC → report (HTML)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
import zarr
from typer.testing import CliRunner

from tomopipe.cli import app
from tomopipe.pipeline import load_workflow, run_series
from tomopipe.simulate import simulate_insitu

runner = CliRunner()
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
STATES = ["OCV", "D1.2V", "D0.7V"]  # acquisition order; C3.0V is added by a test


def _series_yaml(folder, states, *, extra=None):
    """The simulator's series workflow, made small: fewer states, no pore sizes, no probabilities."""
    data = yaml.safe_load((folder / "series.yaml").read_text())
    data["series"]["states"] = [s for s in data["series"]["states"] if s["name"] in states]
    data["quantify"] = {**data["quantify"], "pore_sizes": False, "n_layers": 4}
    data["segment"] = {"method": "unet", "probabilities": False}
    data.update(extra or {})
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("series")
    simulate_insitu(folder, size=64, seed=2, photons=4e4, states=STATES + ["C3.0V"])
    wf = _series_yaml(folder, STATES)
    res = run_series(load_workflow(wf), progress=False, log=lambda m: None)
    return folder, wf, res


def test_report_from_the_pipelines_own_segmentation(series):
    folder, wf, res = series
    report = folder / "report" / "report.html"
    assert res.report == report and report.is_file()
    for name in ("OCV", "D1p2V", "D0p7V"):
        store = folder / f"{name}.zarr"
        meta = zarr.open_group(str(store / "metrics"), mode="r").attrs["tomopipe"]
        seg = zarr.open_group(str(store / "segmentation"), mode="r").attrs["tomopipe"]
        # the metrics were computed from this store's segmentation stage, not from the truth
        assert meta["parameters"]["labels"] == "segmentation"
        assert meta["inputs"]["labels"] == seg["fingerprint"]
    for state in ("D1p2V", "D0p7V"):
        assert (folder / f"{state}.zarr" / "dvc").is_dir()
    assert (folder / "D0p7V.zarr" / "dvc_previous").is_dir()  # against D1.2V
    assert not (folder / "D1p2V.zarr" / "dvc_previous").exists()  # its previous state is the reference
    tables = {p.stem for p in (folder / "report").glob("*.csv")}
    assert {"states", "validation", "trends", "dvc_layers", "porosity_profile", "phase_fractions", "orientation",
            "inclusion_sizes", "provenance", "interfaces", "strain_layers"} <= tables
    states = pd.read_csv(folder / "report" / "states.csv")
    assert list(states["state"]) == STATES
    val = pd.read_csv(folder / "report" / "validation.csv")
    assert set(val["state"]) == set(STATES)
    assert {"inclusion_volume_um3", "crack_volume_um3", "porosity"} <= set(val["quantity"])
    prov = pd.read_csv(folder / "report" / "provenance.csv")
    assert prov["item"].str.contains("model").any() and prov["value"].str.contains("sha256").any()
    assert prov["item"].str.contains("raw input sha256").sum() == 3
    page = report.read_text()
    assert page.count("<img ") >= 10 and "data:image/png;base64," in page and "src=\"http" not in page


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_HARNESS = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="{src}" style="width:1200px;height:900px"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var out = {{n: 0, broken: [], error: null}};
  try {{
    var imgs = this.contentDocument.images; out.n = imgs.length;
    for (var i = 0; i < imgs.length; i++)
      if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) out.broken.push(imgs[i].alt || String(i));
  }} catch (e) {{ out.error = String(e); }}
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>"""


def _render(page, tmp):
    """Load `page` in headless Chromium; return {n, broken, error} of its images."""
    harness = tmp / "harness.html"
    harness.write_text(_HARNESS.format(src=page.resolve().as_uri()))
    out = subprocess.run([_chromium(), *_FLAGS, f"--user-data-dir={tmp / 'profile'}", "--allow-file-access-from-files",
                          "--virtual-time-budget=15000", "--dump-dom", harness.as_uri()],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout.split('<pre id="result">', 1)[1].split("</pre>", 1)[0]
    return json.loads(text)


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(series, tmp_path):
    folder, _, _ = series
    page = folder / "report" / "report.html"
    res = _render(page, tmp_path)
    assert res["error"] is None and res["n"] >= 10 and res["broken"] == [], res
    # the check can fail: a page with one corrupted image is caught
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("base64,iVBOR", "base64,XXXXX", 1))
    res_bad = _render(bad, tmp_path)
    assert len(res_bad["broken"]) == 1, res_bad
    # keep a screenshot in the test output folder
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "series_report.png"
    subprocess.run([_chromium(), *_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1200,3000",
                    f"--screenshot={shot}", page.resolve().as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000


def test_adding_a_state_recomputes_only_it(series, tmp_path):
    folder, wf, first = series
    work = tmp_path / "s"
    shutil.copytree(folder, work)  # (a copy keeps the timestamps: every stage stays up to date)
    wf2 = _series_yaml(work, STATES + ["C3.0V"])
    res = run_series(load_workflow(wf2), progress=False, log=lambda m: None)
    assert res.ran["OCV"] == [] and res.ran["D1.2V"] == [] and res.ran["D0.7V"] == []
    assert res.ran["C3.0V"][:6] == ["raw", "normalized", "sinograms", "volume", "segmentation", "metrics"]
    assert set(res.ran["C3.0V"][6:]) == {"dvc", "dvc_previous", "truth"}
    assert res.ran["series"] == ["report"]
    again = run_series(load_workflow(wf2), progress=False, log=lambda m: None)
    assert all(v == [] for v in again.ran.values())


def test_reconstructed_volume_state_equals_projection_state(series, tmp_path):
    """A state given as its reconstructed volume (TIFF stack, HDF5 dataset) gives the same labels
    and metrics as the same state run from projections."""
    import h5py
    import tifffile

    folder, _, _ = series
    ref = folder / "D0p7V.zarr"
    vol = zarr.open_group(str(ref / "volume"), mode="r")["0"][:]
    tifffile.imwrite(tmp_path / "d07.tif", vol)
    with h5py.File(tmp_path / "d07.h5", "w") as f:
        f["/exchange/recon"] = vol
    base = yaml.safe_load((folder / "small.yaml").read_text())
    shared = {k: v for k, v in base.items() if k in ("segment", "quantify")}
    ref_labels = zarr.open_group(str(ref / "segmentation"), mode="r")["labels"][:]
    ref_summary = zarr.open_group(str(ref / "metrics"), mode="r").attrs["summary"]
    for name, inp in (("tif", {"volume": "d07.tif", "voxel_size": "0.88 um"}),
                      ("h5", {"volume": "d07.h5", "key": "/exchange/recon", "voxel_size": "0.88 um"})):
        wf = tmp_path / f"{name}.yaml"
        wf.write_text(yaml.safe_dump({"name": name, "input": inp, **shared}))
        r = runner.invoke(app, ["run", str(wf), "--out", str(tmp_path / f"{name}.zarr"), "--quiet"])
        assert r.exit_code == 0, r.output
        g = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="r")
        np.testing.assert_array_equal(g["segmentation/labels"][:], ref_labels)
        assert dict(g["metrics"].attrs["summary"]) == dict(ref_summary)


def test_reconstructed_volume_errors(tmp_path):
    import h5py
    import tifffile

    vol = np.random.default_rng(0).random((6, 20, 20), dtype=np.float32)
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["/exchange/recon"] = vol
    slices = tmp_path / "slices"
    slices.mkdir()
    for i, s in enumerate(vol):
        tifffile.imwrite(slices / f"s_{i:03d}.tif", s if i != 3 else s[:, :-2])  # one slice of another shape
    tifffile.imwrite(tmp_path / "v.tif", vol)
    cases = [
        ({"volume": "v.h5", "key": "/exchange/wrong", "voxel_size": "1 um"}, ["v.h5", "/exchange/wrong"]),
        ({"volume": "v.h5", "voxel_size": "1 um"}, ["v.h5", "<dataset>"]),
        ({"volume": "slices/s_*.tif", "voxel_size": "1 um"}, ["s_003.tif", "shape"]),
        ({"volume": "v.tif"}, ["input.voxel_size", "v.tif"]),
        ({"volume": "v.tif", "voxel_size": "1"}, ["input.voxel_size", "no unit"]),
        ({"volume": "v.tif", "voxel_size": "5 mm"}, ["input.voxel_size", "plausible"]),
        ({"volume": "missing.tif", "voxel_size": "1 um"}, ["missing.tif", "no such file"]),
        ({"volume": "v.tif", "voxel_size": "1 um", "rows": [0, 2]}, ["input", "rows"]),
    ]
    for inp, needles in cases:
        wf = tmp_path / "wf.yaml"
        wf.write_text(yaml.safe_dump({"name": "v", "input": inp}))
        out = tmp_path / "v.zarr"
        r = runner.invoke(app, ["run", str(wf), "--out", str(out), "--quiet"])
        errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
        assert r.exit_code == 2 and len(errors) == 1, (inp, r.output)
        for n in needles:
            assert n in errors[0], (inp, n, errors[0])
        assert not out.exists()


def test_series_errors(series, tmp_path):
    folder, _, _ = series
    data = yaml.safe_load((folder / "small.yaml").read_text())
    bad = {**data, "series": {**data["series"], "reference": "D9V"}}
    (tmp_path / "ref.yaml").write_text(yaml.safe_dump(bad))
    r = runner.invoke(app, ["run", str(tmp_path / "ref.yaml"), "--dry-run"])
    assert r.exit_code == 2 and "reference 'D9V'" in r.output
    dup = {**data, "series": {"states": data["series"]["states"][:1] * 2}}
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(dup))
    r = runner.invoke(app, ["run", str(tmp_path / "dup.yaml"), "--dry-run"])
    assert r.exit_code == 2 and "unique" in r.output
    missing = dict(data)
    missing["series"] = {"states": [{**data["series"]["states"][0], "input": {"path": str(folder / "nope.h5")}}]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(missing))
    r = runner.invoke(app, ["run", str(tmp_path / "m.yaml"), "--dry-run"])
    assert r.exit_code == 2 and "state OCV" in r.output and "nope.h5" in r.output
