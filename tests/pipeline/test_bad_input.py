"""Bad input through the CLI, as a hostile but fair user would give it.

Each case must end with exactly one ``error: …`` line naming the file, key or parameter at
fault, exit code 2, no traceback — and a complete store given with ``--out`` must be left
byte-identical (nothing overwritten, no half-written stage, no changed attribute).
"""

import hashlib
import os
import re

import h5py
import numpy as np
import pytest
import yaml
import zarr
from typer.testing import CliRunner

from tomopipe.cli import app

runner = CliRunner()

BASE = {"name": "t", "geometry": {"pixel_size": "0.88 um"}, "recon": {"rows_per_chunk": 4},
        "output": {"chunk_angles": 8, "pyramid_levels": 2}}


def _snapshot(store):
    """sha256 of every file in the store, by relative path (and the set of folders)."""
    files, dirs = {}, set()
    for root, dnames, fnames in os.walk(store):
        for d in dnames:
            dirs.add(os.path.relpath(os.path.join(root, d), store))
        for f in fnames:
            p = os.path.join(root, f)
            files[os.path.relpath(p, store)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return files, dirs


def _h5(path, s, *, drop=None, flats=None, darks=None, theta=None, theta_units="degrees", proj=None):
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = s["projections"] if proj is None else proj
        f["/exchange/data_white"] = s["flats"] if flats is None else flats
        f["/exchange/data_dark"] = s["darks"] if darks is None else darks
        f["/exchange/theta"] = np.rad2deg(s["theta"]) if theta is None else theta
        if theta_units is not None:
            f["/exchange/theta"].attrs["units"] = theta_units
        if drop:
            del f[drop]
    return path


def _wf(path, scan, *, no_pixel_size=False, **sections):
    data = {**BASE, "input": {"path": str(scan)}}
    if no_pixel_size:
        data["geometry"] = {}
    for k, v in sections.items():
        if v is None:
            data.pop(k, None)
        elif isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory, small_scan, tiff_series):
    """A complete good store, the good scan, and a folder for the bad inputs (and the TIFF writer)."""
    d = tmp_path_factory.mktemp("bad")
    s = small_scan
    good = _h5(d / "good.h5", s)
    store = d / "store.zarr"
    res = runner.invoke(app, ["run", str(_wf(d / "good.yaml", good)), "--out", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    return d, s, good, store, tiff_series


def _cases(d, s, good, store, tiff_series):
    """(name, argv, needles): every needle must appear in the one error line."""
    n_a = s["projections"].shape[0]

    def run(wf, *extra, out=store):
        return ["run", str(wf), "--out", str(out), "--quiet", *extra]

    def case(name, scan=good, needles=(), extra=(), out=store, **sections):
        wf = _wf(d / (re.sub(r'\W+', '_', name) + ".yaml"), scan, **sections)
        return name, run(wf, *extra, out=out), list(needles)

    # ---- files and keys -------------------------------------------------------------------
    yield case("missing key", _h5(d / "nokey.h5", s, drop="/exchange/data_white"), ["nokey.h5", "data_white"])
    yield case("no darks key", _h5(d / "nodark.h5", s, drop="/exchange/data_dark"), ["nodark.h5", "data_dark"])
    yield case("no theta key", _h5(d / "notheta.h5", s, drop="/exchange/theta"), ["notheta.h5", "theta"])
    yield case("flat shape", _h5(d / "fshape.h5", s, flats=s["flats"][:, :, :-1]), ["fshape.h5", "flat"])
    yield case("dark shape", _h5(d / "dshape.h5", s, darks=s["darks"][:, :-1]), ["dshape.h5", "dark"])
    yield case("zero flats", _h5(d / "zero.h5", s, flats=np.zeros_like(s["flats"])), ["zero.h5", "flat"])
    nan = s["flats"].astype(np.float32)
    nan[2, 3, 4] = np.nan
    yield case("nan flats", _h5(d / "nanf.h5", s, flats=nan), ["nanf.h5", "flat", "NaN"])
    yield case("flats below darks", _h5(d / "swap.h5", s, flats=s["darks"][:1].repeat(10, 0),
                                        darks=s["flats"][:5]), ["swap.h5", "flat"])
    yield case("degrees as radians", _h5(d / "deg.h5", s, theta_units="rad"), ["deg.h5", "theta", "degrees"])
    yield case("unknown angle unit", _h5(d / "mrad.h5", s, theta_units="mrad"), ["mrad.h5", "theta", "mrad"])
    th = np.rad2deg(s["theta"]).copy()
    th[5] = np.nan
    yield case("nan theta", _h5(d / "nantheta.h5", s, theta=th), ["nantheta.h5", "theta", "NaN"])
    yield case("theta count", _h5(d / "thcount.h5", s, theta=np.rad2deg(s["theta"][:-3])), ["thcount.h5", "theta"])
    p = s["projections"].astype(np.float32)
    p[[3, 7, 11, 20, 21, 22, 40, 41, 60, 61]] = np.nan
    yield case("nan projections", _h5(d / "nanproj.h5", s, proj=p), ["nanproj.h5", "10 of", "NaN"])
    p = s["projections"].copy()
    p[[5, 6]] = 0
    yield case("zero projections", _h5(d / "zeroproj.h5", s, proj=p), ["zeroproj.h5", "2 of", "zero"])
    trunc = _h5(d / "trunc.h5", s)
    os.truncate(trunc, os.path.getsize(trunc) // 2)
    yield case("truncated", trunc, ["trunc.h5"])
    yield case("missing file", d / "nowhere.h5", ["nowhere.h5"])
    (d / "afolder").mkdir(exist_ok=True)
    yield case("input is a folder", d / "afolder", ["input.path", "afolder", "folder"])
    (d / "notes.txt").write_text("hello")
    yield case("unknown suffix", d / "notes.txt", ["notes.txt", "format"])
    yield case("unknown sample", "sample:nope.h5", ["sample:nope.h5"])
    yield case("rows out of range", good, ["input.rows"], input={"path": str(good), "rows": [2, 99]})
    # ---- TIFF series -----------------------------------------------------------------------
    t = tiff_series(d / "tif", s)
    tif = {"path": str(t / "proj_*.tif"), "flats": str(t / "flat_*.tif"), "darks": str(t / "dark_*.tif"),
           "theta": {"start": "0 deg", "stop": "180 deg"}}
    yield case("tiff without flats", needles=["input.flats"], input={k: v for k, v in tif.items() if k != "flats"})
    yield case("tiff without theta", needles=["input.theta"], input={k: v for k, v in tif.items() if k != "theta"})
    yield case("tiff flat_index out of range", needles=["input.flat_index"],
               input={**tif, "flat_index": [-0.5] * 5 + [n_a + 40.0] * 5})
    yield case("tiff flat_index count", needles=["input.flat_index"], input={**tif, "flat_index": [0.0, 1.0]})
    yield case("tiff no match", needles=["input.path", "nothing_"], input={**tif, "path": str(t / "nothing_*.tif")})
    # ---- workflow values ---------------------------------------------------------------------
    yield case("center negative", needles=["geometry.center", "-50"], geometry={"center": -50})
    yield case("center far off", needles=["geometry.center", "1e+06"], geometry={"center": 1e6})
    yield case("pixel 5 mm", needles=["pixel_size", "5000 µm", "force_pixel_size"], geometry={"pixel_size": "5 mm"})
    yield case("pixel no unit", needles=["geometry.pixel_size", "no unit"], geometry={"pixel_size": 0.88})
    yield case("pixel wrong unit", needles=["geometry.pixel_size", "kg"], geometry={"pixel_size": "0.88 kg"})
    yield case("pixel negative", needles=["geometry.pixel_size", "greater than 0"], geometry={"pixel_size": "-1 um"})
    yield case("center method", needles=["geometry.center_method"], geometry={"center_method": "magic"})
    yield case("energy in eV", needles=["phase.energy", "keV"],
               phase={"energy": "35 eV", "distance": "10 cm", "delta_beta": 100})
    yield case("distance no unit", needles=["phase.distance"],
               phase={"energy": "35 keV", "distance": "10", "delta_beta": 100})
    yield case("phase without pixel size", needles=["phase", "geometry.pixel_size"], no_pixel_size=True,
               phase={"energy": "35 keV", "distance": "10 cm", "delta_beta": 100})
    yield case("unknown key", needles=["recon.filtre_name"], recon={"filtre_name": "shepp"})
    yield case("unknown filter", needles=["recon.filter_name"], recon={"filter_name": "hanning"})
    yield case("zero chunk", needles=["output.chunk_angles"], output={"chunk_angles": 0})
    yield case("dezinger negative", needles=["normalize.dezinger.threshold"],
               normalize={"dezinger": {"threshold": -5}})
    # ---- segment / quantify ------------------------------------------------------------------
    yield case("model missing", needles=["missing-model.safetensors"],
               segment={"model": str(d / "missing-model.safetensors")})
    junk = d / "junk.safetensors"
    junk.write_bytes(b"\x80\x04 not a model")
    yield case("model junk", needles=["junk"], segment={"model": str(junk)})
    yield case("unet in 1/pixel", needles=["geometry.pixel_size", "1/cm"], segment={"method": "unet"},
               no_pixel_size=True)
    yield case("multiotsu class", needles=["segment.classes", "unobtainium"],
               segment={"method": "multiotsu", "classes": ["pore", "unobtainium"]})
    yield case("rf without annotations", needles=["segment.annotations"], segment={"method": "random_forest"})
    zarr.save_array(str(d / "ann_small.zarr"), np.full((4, 4, 4), 254, np.uint8))
    yield case("rf annotations shape", needles=["segment.annotations", "ann_small.zarr"],
               segment={"method": "random_forest", "annotations": str(d / "ann_small.zarr")})
    yield case("labels path missing", needles=["quantify.labels", "no_labels.zarr"],
               quantify={"labels": str(d / "no_labels.zarr")})
    yield case("quantify needs segment", needles=["quantify.labels", "segment:"], quantify={"labels": "segmentation"})
    zarr.save_array(str(d / "labels2d.zarr"), np.zeros((4, 4), np.uint8))
    yield case("labels not 3-D", needles=["quantify.labels", "labels2d.zarr"],
               quantify={"labels": str(d / "labels2d.zarr")})
    # ---- the store and the compute -------------------------------------------------------------
    (d / "a_file").write_text("x")
    yield case("out is a file", out=d / "a_file", needles=["--out", "a_file", "is a file"])
    yield case("out below a file", out=d / "a_file" / "s.zarr", needles=["--out", "a_file"])
    yield case("out not writable", out="/proc/tomopipe-test.zarr", needles=["--out", "/proc", "not writable"])
    (d / "busy").mkdir(exist_ok=True)
    (d / "busy" / "x.txt").write_text("x")
    yield case("out not a store", out=d / "busy", needles=["--out", "busy", "not a tomopipe store"])
    yield case("scheduler unreachable", extra=("--scheduler", "tcp://127.0.0.1:1"), needles=["--scheduler", "127.0.0.1:1"])
    yield case("scheduler malformed", extra=("--scheduler", "localhost"), needles=["--scheduler", "localhost"])
    cl = d / "cluster.yaml"
    cl.write_text(yaml.safe_dump({"kind": "slurm", "jobs": 2, "cores": 8, "memory": "64 GiB"}))
    yield case("slurm without interface", extra=("--cluster", str(cl)), needles=["cluster.interface"])
    cl2 = d / "cluster2.yaml"
    cl2.write_text(yaml.safe_dump({"kind": "pbs", "walltime": "forever", "interface": "ib0", "memory": "8 GiB"}))
    yield case("cluster walltime", extra=("--cluster", str(cl2)), needles=["cluster2.yaml", "walltime"])
    yield case("scheduler and cluster", extra=("--scheduler", "tcp://127.0.0.1:1"),
               needles=["--scheduler", "cluster"], cluster={"kind": "local"})
    # ---- the workflow file itself ----------------------------------------------------------------
    bad_yaml = d / "broken.yaml"
    bad_yaml.write_text("input: [unclosed\n")
    yield "yaml syntax", run(bad_yaml), ["broken.yaml", "YAML"]
    yield "workflow missing", run(d / "absent.yaml"), ["absent.yaml"]
    lst = d / "list.yaml"
    lst.write_text("- a\n- b\n")
    yield "workflow not a mapping", run(lst), ["list.yaml", "mapping"]


@pytest.fixture(scope="module")
def cases(env):
    return list(_cases(*env))


def test_bad_input_table(env, cases):
    d, s, good, store, _ = env
    assert len(cases) >= 40
    before = _snapshot(store)
    failures = []
    for name, argv, needles in cases:
        res = runner.invoke(app, argv)
        errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        problems = []
        if res.exit_code != 2:
            problems.append(f"exit {res.exit_code}")
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines")
        if "Traceback" in res.output or res.exception is not None and not isinstance(res.exception, SystemExit):
            problems.append("traceback")
        line = errors[0] if errors else ""
        problems += [f"no {n!r}" for n in needles if n not in line]
        if _snapshot(store) != before:
            problems.append("the store changed")
        if problems:
            failures.append(f"{name}: {', '.join(problems)}\n    {res.output.strip()[-400:]}")
    assert not failures, "\n".join(failures)
    assert not any(p.name.endswith(".partial") for p in store.iterdir())


def test_late_failures_now_fail_before_the_first_write(env, tmp_path):
    """A missing model, a U-Net on 1/pixel, a missing labels path and phase without a pixel
    size used to be found after the earlier stages had been computed and written."""
    d, s, good, _, _ = env
    late = {
        "model": dict(segment={"model": str(d / "missing-model.safetensors")}),
        "unet_1_per_pixel": dict(segment={"method": "unet"}, no_pixel_size=True),
        "labels": dict(quantify={"labels": str(d / "no_labels.zarr")}),
        "phase": dict(phase={"energy": "35 keV", "distance": "10 cm", "delta_beta": 100}, no_pixel_size=True),
    }
    for name, sections in late.items():
        wf = _wf(tmp_path / f"{name}.yaml", good, **sections)
        store = tmp_path / f"{name}.zarr"
        res = runner.invoke(app, ["run", str(wf), "--out", str(store), "--quiet"])
        assert res.exit_code == 2, (name, res.output)
        assert not store.exists(), name  # nothing at all was written


def test_theta_in_radians_without_unit_is_read_right(env, tmp_path):
    """No ``units`` attribute: the unit is decided from the values, with a warning, and the
    volume equals the one from the same angles stored in degrees."""
    d, s, good, store, _ = env
    rad = _h5(tmp_path / "rad.h5", s, theta=s["theta"], theta_units=None)
    res = runner.invoke(app, ["run", str(_wf(tmp_path / "rad.yaml", rad)), "--out", str(tmp_path / "r.zarr"),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "read as radians" in res.output
    a = zarr.open_group(str(tmp_path / "r.zarr" / "volume"), mode="r")["0"][:]
    b = zarr.open_group(str(store / "volume"), mode="r")["0"][:]
    np.testing.assert_array_equal(a, b)


def test_dry_run_writes_nothing_and_shows_the_plan(env, tmp_path):
    d, s, good, store, _ = env
    wf = _wf(tmp_path / "dry.yaml", good, segment={"method": "multiotsu"})
    out = tmp_path / "dry.zarr"
    res = runner.invoke(app, ["run", str(wf), "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert not out.exists()
    for name in ("raw", "normalized", "sinograms", "volume", "segmentation"):
        assert f"  {name}" in res.output and "will run" in res.output
    before = _snapshot(store)
    res = runner.invoke(app, ["run", str(_wf(tmp_path / "g.yaml", good)), "--out", str(store), "--dry-run"])
    assert res.exit_code == 0 and "up to date" in res.output and "0 stage(s) would run" in res.output
    assert _snapshot(store) == before


def test_info_lists_stages_and_leftovers(env, tmp_path):
    d, s, good, store, _ = env
    res = runner.invoke(app, ["info", str(store)])
    assert res.exit_code == 0
    for stage in ("raw/", "normalized/", "sinograms/", "volume/"):
        assert stage in res.output
    assert "(z,y,x)" in res.output and "1/cm" in res.output
    res = runner.invoke(app, ["info", str(store / "nothing")])
    assert res.exit_code == 2
