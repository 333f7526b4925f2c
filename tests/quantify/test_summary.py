import dask.array as da
import numpy as np
import pytest
import zarr

import tomopipe.quantify

from tomopipe.pipeline import load_workflow, run_workflow
from tomopipe.quantify import ResolutionWarning, quantify_labels, read_table
from tomopipe.schema import LabelSchema, MissingClassError
from tomopipe.simulate import CellParams, generate_cell, insitu_sequence, simulate_insitu


@pytest.fixture(scope="module")
def d07():
    cell = generate_cell(CellParams(shape=(64, 64, 64), seed=2))
    return {s.name: s for s in insitu_sequence(cell, seed=2)}["D0.7V"]


def test_quantify_labels_against_truth_and_chunked(d07):
    m = quantify_labels(d07.labels, 0.88, max_pore_diameter_um=12.0)
    t = d07.totals
    assert m.summary["inclusion_volume_um3"] == pytest.approx(t["inclusion_volume_um3"], rel=0.10)
    # a small (64³) cell: +5 % (see test_cracks.py for the accuracy over many seeds)
    assert m.summary["crack_volume_um3"] == pytest.approx(t["crack_volume_um3"], rel=0.10)
    assert m.summary["crack_angle_to_z_deg"] < 10
    assert m.summary["crack_volume_weighted_angle_to_z_deg"] < 10
    assert len(m.tables["layers"]) == 10
    assert m.tables["pore_sizes"]["fraction"].sum() == pytest.approx(1.0)
    chunked = quantify_labels(da.from_array(d07.labels, chunks=(23, 31, 29)), 0.88, max_pore_diameter_um=12.0)
    for k, v in m.summary.items():
        assert chunked.summary[k] == pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v == chunked.summary[k]
    np.testing.assert_allclose(chunked.tables["layers"]["porosity"], m.tables["layers"]["porosity"], rtol=1e-12)


def test_metrics_stage_in_a_simulated_workflow(tmp_path, monkeypatch):
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
    # a change of what the quantification methods compute is a change of the metrics stage
    monkeypatch.setattr(tomopipe.quantify, "METHODS_REVISION", "test")
    third = run_workflow(wf, progress=False)
    assert third.ran == ["metrics"] and "segmentation" in third.skipped


# --------------------------------------------------------------------------------------------
# any schema, anisotropic voxels, scaled defaults, one meaning of layers (issue 11)
# --------------------------------------------------------------------------------------------


def test_layer_boundaries_are_not_rounded_half_to_even():
    """12 slices of 1 µm in 4 layers: slices 0-2 are layer 0, so an inclusion in slice 2 is
    counted in layer 0 (np.round(2.5) == 2 put it in layer 1)."""
    lab = np.full((12, 6, 6), 1, np.uint8)
    lab[:, 1:5, 1:5] = 2
    lab[2, 2:4, 2:4] = 3
    schema = {"pore": 0, "electrolyte": 1, "active": 2, "inclusion": 3}
    m = quantify_labels(lab, 1.0, schema=schema, n_layers=4, pore_sizes=False)
    incl = m.tables["inclusion_layers"]
    assert incl["volume_um3"].tolist() == [4.0, 0.0, 0.0, 0.0]
    assert incl["n_objects"].tolist() == [1, 0, 0, 0]
    # every per-layer table has the same slabs
    for name in ("layers", "inclusion_layers", "crack_layers", "particle_layers"):
        t = m.tables[name]
        assert t["z_start_um"].tolist() == [-0.5, 2.5, 5.5, 8.5], name
        assert t["n_slices"].tolist() == [3, 3, 3, 3], name


def _electrode(seed=0, shape=(48, 64, 64)):
    from quantify_phantoms import calendered_electrode

    return calendered_electrode(seed, shape=shape)


def test_user_schema_without_dummy_classes():
    lab = _electrode()
    schema = {"pore": 0, "NMC": 1, "binder": 2}
    m = quantify_labels(lab, 0.5, schema=schema, n_layers=4, particles="NMC",
                        max_pore_diameter_um=6.0)
    assert m.tables["layers"]["porosity"].mean() == pytest.approx((lab == 0).mean(), abs=0.02)
    assert {"fraction_NMC", "fraction_binder"} <= set(m.tables["layers"].columns)
    assert m.summary["porosity"] == pytest.approx((lab == 0).mean())
    assert m.summary["n_particles"] > 10
    assert m.tables["pore_sizes"]["fraction"].sum() == pytest.approx(1.0)
    assert set(m.summary["skipped"]) == {"inclusions"}
    assert "inclusions" not in m.tables
    # a cylindrical cell's {void, can, electrode}: no outside, no inclusions, no particles
    from quantify_phantoms import cylindrical_cell

    cyl = cylindrical_cell(shape=(40, 48, 48), headspace=(28, 36))
    m = quantify_labels(cyl, 34.0, schema={"void": 0, "can": 1, "electrode": 2}, n_layers=2)
    assert set(m.summary["skipped"]) == {"inclusions", "particles"}
    assert m.summary["porosity"] == pytest.approx((cyl == 0).mean())
    assert m.summary["n_cracks"] == 0  # the flat headspace is not a crack
    # a schema without the classes a metric needs is not an error: the metric is skipped
    m = quantify_labels(np.ones((4, 4, 4), np.uint8), 1.0, schema={"solid": 1})
    assert {"porosity", "cracks", "inclusions", "particles", "pore_sizes"} <= set(m.summary["skipped"])
    with pytest.raises(MissingClassError, match="'NCM'"):
        quantify_labels(lab, 0.5, schema=schema, particles="NCM", pore_sizes=False)


def test_schema_read_from_the_labels_attributes(tmp_path):
    lab = _electrode(shape=(24, 32, 32))
    z = zarr.create_array(str(tmp_path / "l.zarr"), shape=lab.shape, chunks=(12, 32, 32), dtype="uint8")
    z[...] = lab
    z.attrs.update(LabelSchema({"pore": 0, "NMC": 1, "binder": 2}).to_attrs())
    m = quantify_labels(z, 0.5, n_layers=2, pore_sizes=False, particles=None)
    assert m.summary["schema"] == {"pore": 0, "NMC": 1, "binder": 2}
    assert m.summary["porosity"] == pytest.approx((lab == 0).mean())


def test_z_binned_volume_keeps_volume_and_pore_sizes():
    """A volume binned 2× along z (lab CT) described by (dz, dy, dx) = (2v, v, v)."""
    lab = _electrode(shape=(64, 64, 64))
    v = 0.5
    full = quantify_labels(lab, v, schema={"pore": 0, "NMC": 1, "binder": 2}, n_layers=4,
                           particles=None, max_pore_diameter_um=12.0)
    binned = lab[::2]  # every other slice: the same sample at 2v along z
    half = quantify_labels(binned, (2 * v, v, v), schema={"pore": 0, "NMC": 1, "binder": 2},
                           n_layers=4, particles=None, max_pore_diameter_um=12.0)
    vol_full = float(full.tables["totals"]["volume_um3"].iloc[0])
    vol_half = float(half.tables["totals"]["volume_um3"].iloc[0])
    assert vol_full == pytest.approx(64**3 * v**3)
    assert vol_half == pytest.approx(vol_full)  # a scalar voxel size made it 2× wrong
    extent = [float(m.tables["totals"]["z_stop_um"].iloc[0] - m.tables["totals"]["z_start_um"].iloc[0])
              for m in (full, half)]
    assert extent[1] == pytest.approx(extent[0]) == pytest.approx(32.0)
    for k in ("pore_diameter_d50_um", "pore_diameter_mean_um"):
        assert half.summary[k] == pytest.approx(full.summary[k], rel=0.10), k
    assert half.summary["porosity"] == pytest.approx(full.summary["porosity"], abs=0.01)


def test_pore_size_cap_scales_and_warns():
    lab = _electrode(shape=(32, 48, 48))
    schema = {"pore": 0, "NMC": 1, "binder": 2}
    with pytest.warns(ResolutionWarning, match="max_diameter_um = 20 µm"):
        m = quantify_labels(lab, 34.0, schema=schema, max_pore_diameter_um=20.0, particles=None)
    assert m.summary["pore_diameter_d50_um"] == 20.0  # every size clipped to the cap
    # the default cap is in voxels: sizes are measured at 34 µm voxels too
    m = quantify_labels(lab, 34.0, schema=schema, particles=None)
    assert m.summary["max_pore_diameter_um"] == 24 * 34.0
    sizes = m.tables["pore_sizes"]["thickness_um"]
    assert sizes.nunique() > 3 and sizes.max() < 24 * 34.0
    assert m.summary["pore_diameter_d50_um"] >= 2 * 34.0
