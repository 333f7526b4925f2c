"""DVC between two simulated in-situ states, through the reconstruction pipeline."""

import numpy as np
import pytest
from typer.testing import CliRunner

from tomopipe.cli import app
from tomopipe.pipeline import load_workflow, run_workflow
from tomopipe.pipeline.dvc_stage import run_dvc
from tomopipe.simulate import CellParams, generate_cell, insitu_sequence, simulate_insitu

N, SEED = 128, 5


@pytest.fixture(scope="module")
def two_states(tmp_path_factory):
    out = tmp_path_factory.mktemp("dvc")
    series = simulate_insitu(out, size=N, states=["OCV", "D1.7V"], seed=SEED, photons=5e4)
    stores = []
    for wf in series.workflows:
        w = load_workflow(wf)
        stores.append(run_workflow(w.model_copy(update={"quantify": None}), progress=False).store)
    cell = generate_cell(CellParams(shape=(N, N, N), seed=SEED))
    truth = {s.name: s for s in insitu_sequence(cell, seed=SEED)}["D1.7V"]
    return stores, truth, cell


def test_layer_z_shift_matches_truth(two_states):
    (ref, dfm), truth, cell = two_states
    res = run_dvc(ref, dfm, node_spacing_um=14.0, subset_size_um=21.0, search_voxels=6)
    nodes = res["nodes"]
    ok = nodes[nodes["status"] == "ok"].copy()
    ok["truth_um"] = truth.displacement_at(ok["node_z_um"].to_numpy())
    # the simulator moves layer boundaries by whole voxels (labels): use planes of nodes whose
    # subsets lie inside one layer, away from the collector|cathode|separator boundaries
    half = 10.5
    inner = np.zeros(len(ok), bool)
    for name in ("cathode", "separator"):
        a, b = cell.layers.loc[name, ["z_start_um", "z_stop_um"]]
        inner |= (ok["node_z_um"] - half > a + 1.0).to_numpy() & (ok["node_z_um"] + half < b - 1.0).to_numpy()
    planes = ok[inner].groupby("node_z_um")
    assert len(planes) >= 2
    for z, g in planes:
        assert len(g) >= 10
        err_vox = (g["u_z_um"].median() - g["truth_um"].median()) / 0.88
        assert abs(err_vox) <= 0.1, (z, err_vox)
    assert res["quiver"].is_file()
    again = run_dvc(ref, dfm, node_spacing_um=14.0, subset_size_um=21.0, search_voxels=6)
    assert again["skipped"]


def test_dvc_cli_errors(tmp_path, two_states):
    (ref, _), _, _ = two_states
    r = CliRunner().invoke(app, ["dvc", str(ref), str(tmp_path / "none.zarr")])
    assert r.exit_code == 2 and "no complete volume" in r.output
    assert not (tmp_path / "none.zarr").exists()  # a bad path creates nothing
    r = CliRunner().invoke(app, ["dvc", str(ref), str(ref), "--node-spacing", "50"])
    assert r.exit_code == 2 and "--node-spacing" in r.output
