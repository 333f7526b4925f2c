import dask.array as da
import numpy as np
import pytest
import zarr

from tomopipe.pipeline import load_workflow, run_workflow
from tomopipe.quantify import quantify_labels, read_table
from tomopipe.simulate import CellParams, generate_cell, insitu_sequence, simulate_insitu


@pytest.fixture(scope="module")
def d07():
    cell = generate_cell(CellParams(shape=(64, 64, 64), seed=2))
    return {s.name: s for s in insitu_sequence(cell, seed=2)}["D0.7V"]


def test_quantify_labels_against_truth_and_chunked(d07):
    m = quantify_labels(d07.labels, 0.88, max_pore_diameter_um=12.0)
    t = d07.totals
    assert m.summary["inclusion_volume_um3"] == pytest.approx(t["inclusion_volume_um3"], rel=0.10)
    assert m.summary["crack_volume_um3"] == pytest.approx(t["crack_volume_um3"], rel=0.10)
    assert m.summary["crack_angle_to_z_deg"] < 10
    assert len(m.tables["layers"]) == 10
    assert m.tables["pore_sizes"]["fraction"].sum() == pytest.approx(1.0)
    chunked = quantify_labels(da.from_array(d07.labels, chunks=(23, 31, 29)), 0.88, max_pore_diameter_um=12.0)
    for k, v in m.summary.items():
        assert chunked.summary[k] == pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v == chunked.summary[k]
    np.testing.assert_allclose(chunked.tables["layers"]["porosity"], m.tables["layers"]["porosity"], rtol=1e-12)


def test_metrics_stage_in_a_simulated_workflow(tmp_path):
    series = simulate_insitu(tmp_path, size=48, states=["D0.7V"])
    wf = load_workflow(series.workflows[0])
    res = run_workflow(wf, progress=False)
    assert "metrics" in res.ran
    g = zarr.open_group(str(res.store / "metrics"), mode="r")
    summary = g.attrs["summary"]
    truth = series.summary.iloc[0]
    assert summary["inclusion_volume_um3"] == pytest.approx(truth["inclusion_volume_um3"], rel=0.10)
    layers = read_table(g, "layers")
    assert {"z_center_um", "porosity"} <= set(layers.columns)
    folder = res.store.with_name(res.store.name + ".metrics")
    for f in ("layers.csv", "cracks.csv", "inclusions.csv", "layers.png", "orientation.png"):
        assert (folder / f).is_file(), f
    again = run_workflow(wf, progress=False)
    assert "metrics" in again.skipped
