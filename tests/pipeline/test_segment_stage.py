"""The segmentation stage in `tomopipe run` on a simulated in-situ scan."""

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from tomopipe.cli import app
from tomopipe.errors import ConfigError, ModelError
from tomopipe.pipeline import load_workflow, run_workflow
from tomopipe.pipeline.config import QuantifyConfig, SegmentConfig
from tomopipe.segment import default_model_path, dice_scores, load_model, read_card, truth_to_labels
from tomopipe.simulate import read_truth, simulate_insitu


@pytest.fixture(scope="module")
def d07(tmp_path_factory):
    out = tmp_path_factory.mktemp("seg")
    series = simulate_insitu(out, size=64, states=["D0.7V"], seed=11, photons=4e4)
    return series, load_workflow(series.workflows[0])


def _with(wf, store, **segment):
    return wf.model_copy(update={"segment": SegmentConfig(**segment), "quantify": None,
                                 "output": wf.output.model_copy(update={"store": str(store), "preview": False})})


V1 = "tomopipe-unet25d-cus-v1"


def test_run_writes_labels_and_probabilities(d07, tmp_path):
    """The stage's arrays, attributes and seam-freedom, with the model trained on this simulator
    (v1, named in the workflow); the default model's accuracy here is the next test's."""
    series, wf = d07
    res = run_workflow(_with(wf, tmp_path / "a.zarr", model=V1, chunks=(24, 40, 28)), progress=False)
    assert "segmentation" in res.ran
    g = zarr.open_group(str(res.store / "segmentation"), mode="r")
    labels, prob = g["labels"], g["probabilities"]
    model = load_model(V1, device="cpu")
    assert labels.dtype == np.uint8 and labels.shape == (64, 64, 64)
    assert prob.dtype == np.float16 and prob.shape == (len(model.classes), 64, 64, 64)
    assert dict(labels.attrs["labels"]) == model.schema
    assert list(prob.attrs["classes"]) == list(model.classes)
    assert g.attrs["model"]["sha256"] == model.card["weights"]["sha256"]
    np.testing.assert_allclose(np.asarray(prob[:], dtype=np.float32).sum(0), 1.0, atol=6e-3)
    # against the simulator's truth
    truth = read_truth(series.truths[0])
    t = truth_to_labels(truth["labels"], truth["crack_ids"])
    scores = dice_scores(labels[:], t, model.schema)
    for name in ("electrolyte", "active", "current_collector", "outside"):
        assert scores.loc[name, "dice"] > 0.85, scores.to_string()
    # seam-free at the pipeline level: one chunk == many chunks
    res1 = run_workflow(_with(wf, tmp_path / "b.zarr", model=V1, chunks=(64, 64, 64)), progress=False)
    g1 = zarr.open_group(str(res1.store / "segmentation"), mode="r")
    np.testing.assert_array_equal(g1["labels"][:], labels[:])
    np.testing.assert_array_equal(g1["probabilities"][:], prob[:])
    again = run_workflow(_with(wf, tmp_path / "a.zarr", model=V1, chunks=(24, 40, 28)), progress=False)
    assert "segmentation" in again.skipped


@pytest.fixture(scope="module")
def default_metrics(d07, tmp_path_factory):
    """The default model (v2) and the metrics of its labels on the 64³ D0.7V cell."""
    series, wf = d07
    w = _with(wf, tmp_path_factory.mktemp("m") / "m.zarr").model_copy(
        update={"quantify": QuantifyConfig(labels="segmentation", n_layers=4, pore_sizes=False)})
    res = run_workflow(w, progress=False)
    assert {"segmentation", "metrics"} <= set(res.ran)
    return series, res


def test_default_model_through_the_stage(default_metrics):
    """The default (domain-randomized) model on the simulator's 64³ cell: below v1 in-domain
    (see its card), the figures measured when it was made the default."""
    series, res = default_metrics
    g = zarr.open_group(str(res.store / "segmentation"), mode="r")
    assert g.attrs["model"]["name"] == read_card(default_model_path())["name"]
    truth = read_truth(series.truths[0])
    model = load_model("default", device="cpu")
    scores = dice_scores(g["labels"][:], truth_to_labels(truth["labels"], truth["crack_ids"]), model.schema)
    for name, least in (("active", 0.90), ("outside", 0.93), ("inclusion", 0.80), ("electrolyte", 0.75),
                        ("current_collector", 0.70)):
        assert scores.loc[name, "dice"] > least, scores.to_string()


def test_inclusion_volume_from_the_segmentation(default_metrics):
    series, res = default_metrics
    summary = zarr.open_group(str(res.store / "metrics"), mode="r").attrs["summary"]
    truth = series.summary.iloc[0]
    assert summary["crack_method"] == "label"  # cracks come from the U-Net's crack class
    assert summary["inclusion_volume_um3"] == pytest.approx(truth["inclusion_volume_um3"], rel=0.25)


@pytest.mark.xfail(strict=True, reason="the default model's crack class reads +17 % on this small, "
                   "noisy 64³ cell (with the card's crack weight 0.9; −18 to +11 % in D1.2V–C2.5V and −31 % "
                   "in C3.0V on the 192³ series benchmark, RESULTS.md)")
def test_crack_volume_from_the_segmentation(default_metrics):
    series, res = default_metrics
    summary = zarr.open_group(str(res.store / "metrics"), mode="r").attrs["summary"]
    truth = series.summary.iloc[0]
    assert summary["crack_volume_um3"] == pytest.approx(truth["crack_volume_um3"], rel=0.15)


def test_multiotsu_baseline_stage(d07, tmp_path):
    _, wf = d07
    res = run_workflow(_with(wf, tmp_path / "o.zarr", method="multiotsu"), progress=False)
    g = zarr.open_group(str(res.store / "segmentation"), mode="r")
    assert "probabilities" not in g and g.attrs["method"] == "multiotsu"
    vals = set(np.unique(g["labels"][:]).tolist())
    assert vals <= {0, 1, 2, 6}


def test_bad_model_fails_before_writing(d07, tmp_path):
    _, wf = d07
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="model card missing"):
        run_workflow(_with(wf, tmp_path / "x.zarr", model=str(bad)), progress=False)
    assert not (tmp_path / "x.zarr" / "segmentation").exists()
    assert not (tmp_path / "x.zarr" / "segmentation.partial").exists()


def test_quantify_segmentation_needs_segment(d07, tmp_path):
    _, wf = d07
    w = wf.model_copy(update={"segment": None, "quantify": QuantifyConfig(labels="segmentation"),
                              "output": wf.output.model_copy(update={"store": str(tmp_path / "q.zarr")})})
    with pytest.raises(ConfigError, match="needs a 'segment:' section"):
        run_workflow(w, progress=False)
    assert not (tmp_path / "q.zarr").exists()  # found by the plan, before any stage is written


def test_fine_tune_on_corrections_cli(d07, tmp_path):
    series, wf = d07
    res = run_workflow(_with(wf, tmp_path / "f.zarr"), progress=False)
    truth = read_truth(series.truths[0])
    corr = np.full((64, 64, 64), 254, np.uint8)  # only some slices reviewed
    t = truth_to_labels(truth["labels"], truth["crack_ids"])
    corr[20:28] = t[20:28]
    zarr.save_array(str(tmp_path / "corrected.zarr"), corr)
    out = tmp_path / "tuned"
    r = CliRunner().invoke(app, ["train", str(out), "--store", str(res.store), "--labels",
                                 str(tmp_path / "corrected.zarr"), "--iterations", "4"])
    assert r.exit_code == 0, r.output
    m = load_model(out.with_suffix(".safetensors"), device="cpu")
    assert m.card["training"]["annotated_voxels"] == 8 * 64 * 64
    assert m.card["training"]["base_model"] == load_model("default").card["name"]
    r = CliRunner().invoke(app, ["train", str(tmp_path / "t2"), "--store", str(res.store), "--labels",
                                 str(tmp_path / "none.zarr")])
    assert r.exit_code == 2 and "none.zarr" in r.output


def test_real_scan_unet_needs_physical_units_multiotsu_runs(tmp_path, tooth_path, monkeypatch):
    """tooth.h5 (real APS data, no pixel size): the U-Net refuses μ in 1/pixel before writing
    anything; a multi-Otsu segmentation of the same reconstruction runs and separates the tooth
    from the air around it."""
    import os

    monkeypatch.setenv("TOMOPIPE_DATA", str(tooth_path.parent))
    wf = load_workflow(os.path.join(os.path.dirname(__file__), "..", "..", "workflows", "tooth.yaml"))
    store = tmp_path / "tooth.zarr"
    with pytest.raises(ConfigError, match="geometry.pixel_size"):
        run_workflow(wf.model_copy(update={"segment": SegmentConfig(method="unet")}), store, progress=False)
    assert not store.exists()  # refused by the plan, before the first stage
    seg = SegmentConfig(method="multiotsu", classes=["pore", "active"], chunks=(2, 160, 160))
    res = run_workflow(wf.model_copy(update={"segment": seg}), store, progress=False)
    assert "segmentation" in res.ran
    labels = zarr.open_group(str(store / "segmentation"), mode="r")["labels"][:]
    vol = zarr.open_group(str(store / "volume"), mode="r")["0"][:]
    assert labels.shape == vol.shape
    solid = labels == 2
    assert 0.05 < solid.mean() < 0.6
    assert vol[solid].mean() > 3 * vol[~solid].mean()


def test_random_forest_stage_on_scribbles(d07, tmp_path):
    series, wf = d07
    truth = read_truth(series.truths[0])
    t = truth_to_labels(truth["labels"], truth["crack_ids"])
    ann = np.full(t.shape, 254, np.uint8)
    ann[:, 30:34] = t[:, 30:34]  # a few annotated xz planes
    zarr.save_array(str(tmp_path / "scribbles.zarr"), ann)
    res = run_workflow(_with(wf, tmp_path / "rf.zarr", method="random_forest", chunks=(32, 64, 40),
                             annotations=str(tmp_path / "scribbles.zarr"), n_estimators=10, sigma_max=4.0),
                       progress=False)
    labels = zarr.open_group(str(res.store / "segmentation"), mode="r")["labels"][:]
    s = dice_scores(labels, t)
    for name in ("active", "current_collector"):
        assert s.loc[name, "dice"] > 0.8, s
    with pytest.raises(ConfigError, match="needs annotations"):
        run_workflow(_with(wf, tmp_path / "rf2.zarr", method="random_forest"), progress=False)


def test_editing_the_card_recomputes_the_stage(d07, tmp_path):
    """The stage's fingerprint holds what of the card changes the labels besides the weights
    (here the decision weights): an edited card recomputes, an untouched one is skipped."""
    import shutil

    src = default_model_path(V1)
    mdl = tmp_path / "m.safetensors"
    shutil.copy(src, mdl)
    shutil.copy(src.with_suffix(".md"), tmp_path / "m.md")
    _, wf = d07
    w = _with(wf, tmp_path / "e.zarr", model=str(mdl))
    first = run_workflow(w, progress=False)
    assert "segmentation" in first.ran
    assert "segmentation" in run_workflow(w, progress=False).skipped
    card = (tmp_path / "m.md").read_text()
    (tmp_path / "m.md").write_text(card.replace("inference:\n", "inference:\n  class_weights:\n    crack: 0.5\n", 1))
    again = run_workflow(w, progress=False)
    assert "segmentation" in again.ran
