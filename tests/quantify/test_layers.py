"""Per-layer statistics: simulator ground truth, porespy, chunked == in-memory, objects."""

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import zarr
from scipy import ndimage

from tomopipe.errors import ShapeMismatchError
from tomopipe.quantify._layers import LayerStats, layer_stats, porosity_profile, slice_counts
from tomopipe.simulate import LABELS, CellParams, generate_cell, insitu_sequence

V = 0.88
FRACTION_LABELS = [n for n in LABELS if n != "outside"]


@pytest.fixture(scope="module")
def cell():
    return generate_cell(CellParams(shape=(96, 96, 96), seed=1))


@pytest.fixture(scope="module")
def state(cell):
    """State D0.7V: inclusions, cracks and a moved cathode | separator interface."""
    st = insitu_sequence(cell)[3]
    assert st.name == "D0.7V" and len(st.cracks) > 0 and len(st.inclusions) > 0
    return st


def _zarr(arr, chunks):
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=arr.shape, chunks=chunks,
                          dtype=arr.dtype)
    z[...] = arr
    return z


# --------------------------------------------------------------------------------------------
# ground truth of the simulator
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["cell", "state"])
def test_fractions_equal_simulator_truth(which, cell, state):
    obj = cell if which == "cell" else state
    per, tot = layer_stats(obj.labels, V, layers=obj.layers)
    truth = obj.fractions
    assert list(per.index) == list(obj.layers.index)
    for layer in obj.layers.index:
        assert per.loc[layer, "n_voxels"] == truth.loc[layer, "n_voxels"]
        assert per.loc[layer, "porosity"] == pytest.approx(truth.loc[layer, "pore"], abs=0.01)
        for name in FRACTION_LABELS:
            assert per.loc[layer, f"fraction_{name}"] == pytest.approx(
                truth.loc[layer, name], abs=0.01
            ), (layer, name)
    # overall, within 0.5 percentage points
    assert tot["n_voxels"] == truth.loc["sample", "n_voxels"]
    assert tot["porosity"] == pytest.approx(truth.loc["sample", "pore"], abs=0.005)
    for name in FRACTION_LABELS:
        assert tot[f"fraction_{name}"] == pytest.approx(truth.loc["sample", name], abs=0.005)
    # fractions of the sample add up to one, volumes are voxels × v³
    fr = per[[f"fraction_{n}" for n in FRACTION_LABELS]].sum(axis=1)
    np.testing.assert_allclose(fr, 1.0, rtol=1e-12)
    np.testing.assert_allclose(per["volume_um3"], per["n_voxels"] * V**3, rtol=1e-12)
    assert tot["volume_um3"] == pytest.approx(per["volume_um3"].sum(), rel=1e-12)
    # slab geometry follows the layers table
    np.testing.assert_allclose(per["z_start_um"], obj.layers["z_start_um"], atol=1e-9)
    np.testing.assert_allclose(per["z_stop_um"], obj.layers["z_stop_um"], atol=1e-9)
    np.testing.assert_array_equal(per["n_slices"], obj.layers["z_stop"] - obj.layers["z_start"])


def test_layer_porosity_matches_layer_table(cell, state):
    # the simulator's design porosities: cathode 10 %, separator 5 %
    per, _ = layer_stats(cell.labels, V, layers=cell.layers)
    assert per.loc["cathode", "porosity"] == pytest.approx(0.10, abs=0.01)
    assert per.loc["separator", "porosity"] == pytest.approx(0.05, abs=0.01)
    per, _ = layer_stats(state.labels, V, layers=state.layers)
    for layer in state.layers.index:
        assert per.loc[layer, "porosity"] == pytest.approx(
            state.totals[f"porosity_{layer}"], abs=0.01
        )


def test_porosity_profile_equals_simulator_profile(state):
    prof = porosity_profile(state.labels, V)
    np.testing.assert_allclose(prof["porosity"], state.profile["pore"], atol=1e-12)
    np.testing.assert_allclose(prof["z_um"], state.profile["z_um"], atol=1e-12)
    assert prof.index.name == "z" and list(prof.columns) == ["z_um", "porosity"]


def test_slice_counts_sum_to_slice_size(cell):
    counts = slice_counts(cell.labels)
    assert list(counts.columns) == list(LABELS)
    assert counts.index.name == "z" and len(counts) == 96
    np.testing.assert_array_equal(counts.sum(axis=1), 96 * 96)
    ref = np.stack([np.bincount(cell.labels[z].ravel(), minlength=256) for z in range(96)])
    for name, value in LABELS.items():
        np.testing.assert_array_equal(counts[name], ref[:, value])


def test_porosity_gradient_through_separator():
    """10 layers between two interfaces, porosity rising linearly 9.9 % → 30.7 %."""
    rng = np.random.default_rng(3)
    nz, ny, nx = 60, 40, 40
    lab = np.full((nz, ny, nx), LABELS["electrolyte"], dtype=np.uint8)
    lab[:10] = LABELS["active"]  # cathode below, z < 10
    lab[50:] = LABELS["lithium"]  # lithium above, z >= 50
    target = np.linspace(0.099, 0.307, 10)
    for k in range(10):  # 4 slices per slab, exactly round(p · 1600) pore voxels per slice
        for z in range(10 + 4 * k, 14 + 4 * k):
            pos = rng.choice(ny * nx, size=int(round(target[k] * ny * nx)), replace=False)
            lab[z].ravel()[pos] = LABELS["pore"]
    a, b = (10 - 0.5) * V, (50 - 0.5) * V  # the two interfaces
    per, tot = layer_stats(lab, V, n_layers=10, z_range_um=(a, b))
    np.testing.assert_array_equal(per["n_slices"], 4)
    np.testing.assert_allclose(per["porosity"], np.round(target * 1600) / 1600, atol=1e-12)
    assert per["porosity"].iloc[0] == pytest.approx(0.099, abs=1e-3)
    assert per["porosity"].iloc[-1] == pytest.approx(0.307, abs=1e-3)
    assert tot["n_slices"] == 40
    assert tot["z_start_um"] == pytest.approx(a) and tot["z_stop_um"] == pytest.approx(b)
    np.testing.assert_allclose(per["z_center_um"], (per["z_start_um"] + per["z_stop_um"]) / 2)


# --------------------------------------------------------------------------------------------
# independent reference: porespy
# --------------------------------------------------------------------------------------------


def _porespy():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import porespy
    except Exception as exc:  # porespy is a test-only dependency
        pytest.skip(f"porespy cannot be imported ({type(exc).__name__}: {exc})")
    return porespy


def test_agrees_with_porespy_porosity_profile():
    ps = _porespy()
    rng = np.random.default_rng(7)
    lab = rng.choice([0, 1, 2, 255], p=[0.2, 0.4, 0.25, 0.15], size=(24, 17, 13)).astype(np.uint8)
    schema = {"pore": 0, "electrolyte": 1, "active": 2, "outside": 255}
    # porespy's convention: 1 (True) = void, 0 = solid, other values ignored
    im = np.where(lab == 0, 1, np.where(lab == 255, 2, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ps.metrics.porosity_profile(im, axis=0)
        ref4 = ps.metrics.porosity_profile(im, axis=0, span=4, voxel_size=V)
    ours = porosity_profile(lab, V, schema=schema)
    np.testing.assert_allclose(ours["porosity"], ref.porosity, rtol=0, atol=1e-9)
    per, _ = layer_stats(lab, V, schema=schema)  # default: one slab per slice
    np.testing.assert_allclose(per["porosity"], ref.porosity, rtol=0, atol=1e-9)
    # slabs of 4 slices; porespy centres slab [s, e) at (s + e) / 2 · v (voxel i spans
    # [i, i + 1] v), tomopipe at the slice centres' midpoint, ½ v lower
    per4, _ = layer_stats(lab, V, schema=schema, thickness_um=4 * V)
    np.testing.assert_allclose(per4["porosity"], ref4.porosity, rtol=0, atol=1e-9)
    np.testing.assert_allclose(per4["z_center_um"], ref4.position - V / 2, atol=1e-9)


# --------------------------------------------------------------------------------------------
# chunked == in-memory
# --------------------------------------------------------------------------------------------


def test_chunked_equals_in_memory(state):
    lab = state.labels
    objs = {"cracks": state.crack_ids, "inclusions": state.inclusion_ids}
    ref_counts = slice_counts(lab)
    ref = layer_stats(lab, V, n_layers=7, object_counts=objs)
    lab_d = da.from_array(lab, chunks=(7, 13, 17))
    lab_z = _zarr(lab, (10, 32, 20))
    objs_d = {k: da.from_array(v, chunks=(5, 31, 23)) for k, v in objs.items()}
    objs_z = {k: _zarr(v, (9, 48, 40)) for k, v in objs.items()}
    for lab_c, objs_c in ((lab_d, objs_d), (lab_z, objs_z)):
        pd.testing.assert_frame_equal(slice_counts(lab_c), ref_counts, check_exact=True)
        got = layer_stats(lab_c, V, n_layers=7, object_counts=objs_c)
        pd.testing.assert_frame_equal(got.per_layer, ref.per_layer, check_exact=True)
        pd.testing.assert_series_equal(got.totals, ref.totals, check_exact=True)
    # most cracks span several chunks: the test above exercises the cross-chunk merge
    boxes = [b for b in ndimage.find_objects(state.crack_ids) if b]
    spanning = [
        any(s.start // c != (s.stop - 1) // c for s, c in zip(box, (5, 31, 23))) for box in boxes
    ]
    assert sum(spanning) >= len(boxes) // 2


def test_counts_table_input_equals_volume_input(cell):
    counts = slice_counts(cell.labels)
    a = layer_stats(cell.labels, V, thickness_um=10.0)
    b = layer_stats(counts, V, thickness_um=10.0)
    pd.testing.assert_frame_equal(a.per_layer, b.per_layer, check_exact=True)
    pd.testing.assert_frame_equal(porosity_profile(counts, V), porosity_profile(cell.labels, V))


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.int64])
def test_other_integer_dtypes(cell, dtype):
    ref = slice_counts(cell.labels)
    pd.testing.assert_frame_equal(slice_counts(cell.labels.astype(dtype)), ref)


# --------------------------------------------------------------------------------------------
# objects per layer
# --------------------------------------------------------------------------------------------


def test_object_counts_brute_force(state):
    ids = state.crack_ids
    a, b = state.layers.loc["cathode", ["z_start_um", "z_stop_um"]]
    per, tot = layer_stats(state.labels, V, n_layers=6, z_range_um=(a, b),
                           object_counts=ids)
    present = np.unique(ids[ids > 0])
    zz = np.broadcast_to(np.arange(ids.shape[0])[:, None, None], ids.shape)
    centroid = np.asarray(ndimage.mean(zz, labels=ids, index=present))
    in_any = np.zeros(present.size, dtype=bool)
    for k, row in per.iterrows():
        s = int(round(row["z_start_um"] / V + 0.5))
        e = int(round(row["z_stop_um"] / V + 0.5))
        sub = ids[s:e]
        touching = np.unique(sub[sub > 0])
        inside = (centroid >= s - 0.5) & (centroid < e - 0.5)
        in_any |= inside
        assert row["n_objects_touching"] == touching.size
        assert row["n_objects"] == inside.sum()
        assert row["objects_volume_um3"] == pytest.approx(np.count_nonzero(sub) * V**3)
    assert tot["n_objects"] == in_any.sum() == per["n_objects"].sum()
    # the cracks all lie in the cathode: totals equal the simulator's crack table
    assert tot["n_objects"] == len(state.cracks) == state.totals["n_cracks"]
    assert tot["objects_volume_um3"] == pytest.approx(state.totals["crack_volume_um3"])
    assert tot["n_objects_touching"] == len(state.cracks)
    assert (per["n_objects_touching"] >= per["n_objects"]).all()


def test_object_counts_callable(state):
    tab = state.inclusions

    def count(z0, z1):
        inside = (tab["center_z_um"] >= z0) & (tab["center_z_um"] < z1)
        return {"n_inclusions": int(inside.sum()), "inclusion_um3": tab["volume_um3"][inside].sum()}

    per, tot = layer_stats(state.labels, V, layers=state.layers, object_counts=count)
    assert per.loc["cathode", "n_inclusions"] == len(tab)
    assert tot["n_inclusions"] == len(tab)
    assert tot["inclusion_um3"] == pytest.approx(state.totals["inclusion_volume_um3"])
    per, _ = layer_stats(state.labels, V, layers=state.layers, object_counts=lambda a, b: 2)
    assert (per["n_objects"] == 2).all()


# --------------------------------------------------------------------------------------------
# slabs and edge cases
# --------------------------------------------------------------------------------------------


def test_thickness_slabs_cover_the_volume(cell):
    per, tot = layer_stats(cell.labels, V, thickness_um=10.0)
    # 96 slices of 0.88 µm = 84.48 µm: 8 slabs of 10 µm and a thinner last one
    assert len(per) == 9
    assert set(per["n_slices"].iloc[:-1]) <= {11, 12}
    assert per["n_slices"].sum() == tot["n_slices"] == 96
    assert per["n_voxels"].sum() == tot["n_voxels"]
    np.testing.assert_allclose(per["z_start_um"].iloc[1:].to_numpy(),
                               per["z_stop_um"].iloc[:-1].to_numpy())


def test_slabs_without_sample_give_nan(recwarn):
    lab = np.full((4, 5, 5), 255, dtype=np.uint8)
    lab[2:] = 0
    lab[3, 0, 0] = 1
    prof = porosity_profile(lab, 1.0)
    assert np.isnan(prof["porosity"][:2]).all()
    assert prof["porosity"][2] == 1.0 and prof["porosity"][3] == pytest.approx(24 / 25)
    per, tot = layer_stats(lab, 1.0, n_layers=2)
    assert np.isnan(per["porosity"].iloc[0]) and np.isnan(per["fraction_electrolyte"].iloc[0])
    assert tot["porosity"] == pytest.approx(49 / 50)
    assert len(recwarn) == 0


def test_returns_named_tuple(cell):
    res = layer_stats(cell.labels, V, n_layers=3)
    assert isinstance(res, LayerStats)
    assert res.per_layer.index.name == "layer" and res.totals.name == "total"
    assert list(res.per_layer.columns[:7]) == [
        "z_start_um", "z_stop_um", "z_center_um", "n_slices", "n_voxels", "volume_um3", "porosity",
    ]
    assert "fraction_outside" not in res.per_layer.columns


def test_bad_input_names_the_parameter(cell):
    lab = cell.labels
    with pytest.raises(ValueError, match="not in schema"):
        slice_counts(lab, schema={"pore": 0, "electrolyte": 1})
    with pytest.raises(TypeError, match="labels must hold integer"):
        slice_counts(lab.astype(np.float32))
    with pytest.raises(ValueError, match="labels must be a 3-D"):
        slice_counts(lab[0])
    with pytest.raises(ValueError, match="voxel_size_um"):
        layer_stats(lab, 0.0)
    with pytest.raises(ValueError, match="at most one of"):
        layer_stats(lab, V, n_layers=4, thickness_um=5.0)
    with pytest.raises(ValueError, match="n_layers"):
        layer_stats(lab, V, n_layers=200)
    with pytest.raises(ValueError, match="z_range_um"):
        layer_stats(lab, V, n_layers=2, z_range_um=(50.0, 40.0))
    with pytest.raises(ValueError, match="pore_labels"):
        layer_stats(lab, V, pore_labels=("void",))
    with pytest.raises(ValueError, match="share the label value"):
        slice_counts(lab, schema={"a": 0, "b": 0})
    with pytest.raises(ShapeMismatchError, match="object_counts"):
        layer_stats(lab, V, object_counts=np.zeros((96, 96, 95), dtype=np.uint16))
    with pytest.raises(ValueError, match=r"layers\['x'\]"):
        layer_stats(lab, V, layers={"x": (200.0, 300.0)})
