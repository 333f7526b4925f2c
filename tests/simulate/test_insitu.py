import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi
from typer.testing import CliRunner

from tomopipe.cli import app
from tomopipe.pipeline import load_workflow, run_workflow
from tomopipe.simulate import LABELS, attenuation, read_truth, simulate_insitu


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    out = tmp_path_factory.mktemp("insitu")
    return simulate_insitu(out, size=64, states=["OCV", "D1.2V"], photons=5e4)


def test_series_layout(series):
    assert series.states == ["OCV", "D1.2V"]
    for h5, truth, wf in zip(series.scans, series.truths, series.workflows):
        assert h5.is_file() and wf.is_file()
        t = read_truth(truth)
        assert t["labels"].shape == (64, 64, 64)
    assert (series.folder / "summary.csv").is_file()
    assert list(series.summary.index) == ["OCV", "D1.2V"] or len(series.summary) == 2


def test_homogeneous_slab_mu_after_the_pipeline(series, tmp_path):
    # the stainless-steel current collector is a homogeneous slab: its reconstructed μ (1/cm)
    # through the normal pipeline must be within 2 % of the material's μ at 35 keV
    res = run_workflow(load_workflow(series.workflows[0]), tmp_path / "ocv.zarr", progress=False)
    vol = np.asarray(zarr.open_group(str(res.store / "volume"), mode="r")["0"][:])
    labels = read_truth(series.truths[0])["labels"]
    slab = labels == LABELS["current_collector"]
    inner = ndi.binary_erosion(slab, iterations=2)
    assert inner.sum() > 500
    expected = attenuation("stainless_steel", 35.0)
    assert np.mean(vol[inner]) == pytest.approx(expected, rel=0.02)


def test_simulate_cli(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "insitu", str(tmp_path / "s"), "--size", "32", "--states", "OCV"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "OCV.h5").is_file() and (tmp_path / "s" / "OCV.yaml").is_file()
    bad = CliRunner().invoke(app, ["simulate", "insitu", str(tmp_path / "s"), "--size", "32", "--states", "XYZ"])
    assert bad.exit_code == 2 and "XYZ" in bad.output
