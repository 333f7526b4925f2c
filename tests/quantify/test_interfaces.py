"""Grey-value profiles and layer interfaces along z."""

import dask.array as da
import numpy as np
import pytest
import zarr

from tomopipe.errors import ShapeMismatchError
from quantify_phantoms import electrolyte_majority_stack, grey_from_labels, reconstructed
from tomopipe.quantify import Interfaces, find_interfaces, grey_profile, grey_quantiles, layer_stats
from tomopipe.schema import LabelSchemaError
from tomopipe.simulate import CellParams, generate_cell, insitu_sequence, label_volumes_to_mu

V = 0.88
NOISE = 2.0  # 1/cm: about the μ of the electrolyte, 1/10 of the CuS–electrolyte contrast


def _reconstructed_like(labels, seed):
    mu, _ = label_volumes_to_mu(labels, 35.0)
    rng = np.random.default_rng(seed)
    return mu + rng.normal(0.0, NOISE, mu.shape).astype(np.float32)


@pytest.fixture(scope="module")
def cell():
    return generate_cell(CellParams(shape=(96, 96, 96), seed=1))


@pytest.fixture(scope="module")
def state(cell):
    return insitu_sequence(cell)[3]  # D0.7V: cracks, inclusions, cathode moved by 7 µm


def _zarr(arr, chunks):
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=arr.shape, chunks=chunks,
                          dtype=arr.dtype)
    z[...] = arr
    return z


# --------------------------------------------------------------------------------------------
# grey_profile
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(5)
    vol = rng.normal(size=(23, 30, 26)).astype(np.float32) + np.arange(23)[:, None, None]
    vol[3, 4, 5] = np.nan
    vol[7] = np.nan  # a slice without finite voxels
    mask2 = np.zeros((30, 26), dtype=bool)
    mask2[5:25, 3:20] = True
    mask3 = rng.random(vol.shape) < 0.5
    return vol, mask2, mask3


def _reference(vol, mask, stat):
    out = []
    for z in range(vol.shape[0]):
        m = np.ones(vol.shape[1:], bool) if mask is None else (mask if mask.ndim == 2 else mask[z])
        vals = vol[z][m & np.isfinite(vol[z])].astype(np.float64)
        out.append(np.nan if vals.size == 0 else getattr(np, stat)(vals))
    return np.array(out)


@pytest.mark.parametrize("stat", ["median", "mean"])
@pytest.mark.parametrize("which_mask", [None, "2d", "3d"])
def test_grey_profile_chunked_equals_in_memory(noisy, stat, which_mask, recwarn):
    vol, mask2, mask3 = noisy
    mask = {None: None, "2d": mask2, "3d": mask3}[which_mask]
    ref = _reference(vol, mask, stat)
    got = grey_profile(vol, stat=stat, mask=mask)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(got[7])
    mask_d = mask if mask is None or mask.ndim == 2 else da.from_array(mask, chunks=(4, 11, 9))
    for lazy in (da.from_array(vol, chunks=(5, 11, 7)), _zarr(vol, (6, 16, 13))):
        chunked = grey_profile(lazy, stat=stat, mask=mask_d)
        if stat == "median":
            np.testing.assert_array_equal(chunked, got)  # same values per slice: exact
        else:
            np.testing.assert_allclose(chunked, got, rtol=1e-12, equal_nan=True)
    assert len(recwarn) == 0  # no "mean of empty slice" warnings


def test_grey_quantiles_chunked_equals_in_memory(noisy):
    vol, mask2, _ = noisy
    q = (0.1, 0.5, 0.9)
    ref = grey_quantiles(vol, quantiles=q, mask=mask2)
    assert ref.shape == (vol.shape[0], 3) and np.isnan(ref[7]).all()
    np.testing.assert_allclose(ref[:, 1], grey_profile(vol, mask=mask2), equal_nan=True)
    lazy = grey_quantiles(da.from_array(vol, chunks=(5, 11, 7)), quantiles=q, mask=mask2)
    np.testing.assert_array_equal(lazy, ref)
    with pytest.raises(ValueError, match="quantiles"):
        grey_quantiles(vol, quantiles=(0.5, 1.5))


def test_grey_profile_bad_input(noisy):
    vol, mask2, _ = noisy
    with pytest.raises(ValueError, match="stat"):
        grey_profile(vol, stat="mode")
    with pytest.raises(ShapeMismatchError, match="mask"):
        grey_profile(vol, mask=mask2[:-1])
    with pytest.raises(TypeError, match="mask must be boolean"):
        grey_profile(vol, mask=mask2.astype(np.uint8))
    with pytest.raises(ValueError, match="volume must be a 3-D"):
        grey_profile(vol[0])


# --------------------------------------------------------------------------------------------
# find_interfaces on analytic profiles
# --------------------------------------------------------------------------------------------


def test_ideal_steps_are_at_slice_faces():
    prof = np.r_[np.full(12, 3.0), np.full(15, 10.0), np.full(9, 1.0)]
    found = find_interfaces(prof, V, min_separation_um=3.0)
    assert isinstance(found, Interfaces) and len(found) == 2 and found.kind == "profile"
    np.testing.assert_allclose(found.positions_um, [11.5 * V, 26.5 * V], atol=1e-12)
    np.testing.assert_allclose(found.steps, [7.0, -9.0])
    np.testing.assert_allclose(found.contrast, [7.0, 9.0])
    assert np.all(np.isinf(found.confidence))  # a noiseless profile
    np.testing.assert_array_equal(found.faces, [11, 26])
    assert list(found.profile.columns) == ["z_um", "grey"]
    assert list(found.statistic.columns) == ["z_um", "distance"]
    assert len(found.statistic) == prof.size - 1
    # wider windows keep a symmetric step in place
    wide = find_interfaces(prof, V, min_separation_um=8 * V)
    np.testing.assert_allclose(wide.positions_um, [11.5 * V, 26.5 * V], atol=1e-9)


@pytest.mark.parametrize("z0", [20.0, 20.3, 20.5, 31.77])
def test_sub_slice_precision(z0):
    z = np.arange(60)
    prof = 5.0 + 2.0 * np.tanh((z - z0) / 2.5)  # a smooth step centred at z0 (slices)
    found = find_interfaces(prof, V, n=1)
    assert found.positions_um[0] == pytest.approx((z0 + 0.5) * V, abs=0.15 * V) or \
        found.positions_um[0] == pytest.approx(z0 * V, abs=0.6 * V)
    assert found.steps[0] > 0


def test_n_selects_strongest_and_orders_by_z():
    prof = np.r_[np.zeros(10), np.full(10, 1.0), np.full(10, 11.0), np.full(10, 10.5)]
    found = find_interfaces(prof, 1.0, n=2, min_separation_um=3.0)
    np.testing.assert_allclose(found.positions_um, [9.5, 19.5])  # the 0.5 step is dropped
    everything = find_interfaces(prof, 1.0, min_separation_um=3.0)
    np.testing.assert_allclose(everything.positions_um, [9.5, 19.5, 29.5])
    with pytest.raises(ValueError, match="n=5"):
        find_interfaces(prof, 1.0, n=5, min_separation_um=3.0)


def test_confidence_separates_steps_from_noise():
    rng = np.random.default_rng(0)
    prof = np.r_[np.zeros(40), np.full(40, 3.0)] + rng.normal(0, 0.5, 80)
    found = find_interfaces(prof, 1.0)
    np.testing.assert_allclose(found.positions_um, [39.5], atol=1.0)
    assert found.confidence[0] > 10
    noise = [find_interfaces(rng.normal(0, 0.5, 80), 1.0, n=1).confidence[0] for _ in range(50)]
    assert max(noise) < 10  # the default min_confidence
    assert len(find_interfaces(rng.normal(0, 0.5, 80), 1.0)) == 0


def test_find_interfaces_bad_input():
    prof = np.r_[np.zeros(10), np.ones(10)]
    with pytest.raises(ValueError, match="voxel_size_um"):
        find_interfaces(prof, -1.0)
    with pytest.raises(ValueError, match="window_um"):
        find_interfaces(prof, 1.0, window_um=-1.0)
    with pytest.raises(ValueError, match="n must"):
        find_interfaces(prof, 1.0, n=0)
    with pytest.raises(ValueError, match="no finite value"):
        find_interfaces(np.full(10, np.nan), 1.0)
    with pytest.raises(ValueError, match="3-D"):
        find_interfaces(np.zeros((4, 4, 4, 4)), 1.0)
    with pytest.raises(ValueError, match="kind"):
        find_interfaces(np.zeros((4, 4, 4)), 1.0, kind="median")
    with pytest.raises(LabelSchemaError, match="schema"):
        find_interfaces(np.zeros((4, 4, 4), np.uint8), 1.0, kind="labels")


# --------------------------------------------------------------------------------------------
# the cathode | separator boundary when the electrolyte is the majority on both sides
# (an independent phantom: tests/quantify/quantify_phantoms.py)
# --------------------------------------------------------------------------------------------

TRUE_FACE = 99  # the interface lies between slices 98 and 99


@pytest.fixture(scope="module")
def stack():
    return electrolyte_majority_stack(0, shape=(128, 96, 96), interface=TRUE_FACE)


def test_electrolyte_majority_from_fractions(stack):
    schema = {"pore": 0, "electrolyte": 1, "active": 2}
    # the median label is the electrolyte on both sides: nothing to see in a median profile
    assert np.median(stack[:TRUE_FACE]) == np.median(stack[TRUE_FACE:]) == 1
    found = find_interfaces(stack, 1.0, schema=schema, n=1)
    assert found.kind == "labels"
    assert found.positions_um[0] == pytest.approx(TRUE_FACE - 0.5, abs=1.0)
    assert found.confidence[0] > 10
    assert 0.25 < found.contrast[0] < 0.45  # ~30 % active and 4 % pore change sides
    assert found.changes.loc[0, "fraction_active"] < -0.15  # the active phase ends there
    # stored schema (zarr attributes) is found without schema=
    z = _zarr(stack, (40, 96, 96))
    z.attrs.update({"labels": schema})
    assert find_interfaces(z, 1.0, n=1).positions_um[0] == found.positions_um[0]


@pytest.mark.parametrize("recon", [False, True])
def test_electrolyte_majority_from_grey_histograms(stack, recon):
    mu = {0: 0.2, 1: 2.0, 2: 20.0}  # pore, electrolyte, CuS-like active (1/cm)
    z0 = 0
    vol = grey_from_labels(stack, mu, seed=1, noise=1.0)
    if recon:  # a parallel-beam scan of the phantom, reconstructed by scikit-image's FBP
        z0 = 64  # the upper half, to keep it fast
        vol = reconstructed(grey_from_labels(stack[z0:], mu, seed=1, noise=0.0, blur=0.0), n_angles=60)
    face = TRUE_FACE - z0
    prof = grey_profile(vol)
    # the median grey value barely moves at the boundary (electrolyte on both sides) ...
    assert abs(prof[face - 5:face].mean() - prof[face:face + 5].mean()) < \
        0.25 * (np.percentile(vol, 95) - np.percentile(vol, 5))
    # ... but the histogram does
    found = find_interfaces(vol, 1.0)
    assert found.kind == "grey" and len(found) == 1
    assert found.positions_um[0] == pytest.approx(face - 0.5, abs=1.5)
    assert found.confidence[0] > 10
    lazy = find_interfaces(da.from_array(vol, chunks=(17, 48, 48)), 1.0, n=1)
    np.testing.assert_array_equal(lazy.positions_um, found.positions_um)


# --------------------------------------------------------------------------------------------
# simulated cell: interfaces of the layers table, and layers anchored between them
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["cell", "state"])
def test_interfaces_of_simulated_cell(which, cell, state):
    obj = cell if which == "cell" else state
    vol = _reconstructed_like(obj.labels, seed=11)
    disk = obj.labels[0] != 255  # the sample's cross-section
    found = find_interfaces(vol, V, n=3, mask=disk)
    truth = obj.layers["z_stop_um"].to_numpy()[:-1]  # collector|cathode|separator|Li
    np.testing.assert_allclose(found.positions_um, truth, atol=V)
    # every interface goes to a less attenuating layer towards +z
    assert (found.steps < 0).all()
    # separator | Li metal (Li3PS4 vs Li, both light at 35 keV) is a weak step in grey ...
    assert (found.confidence[:2] > 5).all() and found.confidence[2] < found.confidence[1]
    # ... but a strong change of phase fractions in the labels
    from_labels = find_interfaces(obj.labels, V, schema=obj.schema, n=3)
    np.testing.assert_allclose(from_labels.positions_um, truth, atol=V)
    assert (from_labels.confidence > 5).all()
    # dask input gives the same result
    lazy = find_interfaces(da.from_array(vol, chunks=(13, 40, 96)), V, n=3, mask=disk)
    np.testing.assert_array_equal(lazy.positions_um, found.positions_um)
    # without a mask the air dilutes the contrast but the boundaries are still found
    np.testing.assert_allclose(find_interfaces(vol, V, n=3).positions_um, truth, atol=V)


@pytest.mark.parametrize("which", ["cell", "state"])
def test_layers_anchored_between_found_interfaces(which, cell, state):
    obj = cell if which == "cell" else state
    vol = _reconstructed_like(obj.labels, seed=12)
    disk = obj.labels[0] != 255
    found = find_interfaces(vol, V, n=3, mask=disk)
    prof = obj.profile  # ground truth per slice
    for k, layer in enumerate(["cathode", "separator"]):
        a, b = found.positions_um[k], found.positions_um[k + 1]
        per, tot = layer_stats(obj.labels, V, n_layers=10, z_range_um=(a, b))
        assert len(per) == 10
        # the slabs cover the true layer
        assert tot["n_slices"] == obj.layers.loc[layer, "z_stop"] - obj.layers.loc[layer, "z_start"]
        assert tot["porosity"] == pytest.approx(obj.fractions.loc[layer, "pore"], abs=0.01)
        for _, row in per.iterrows():
            s = int(round(row["z_start_um"] / V + 0.5))
            e = int(round(row["z_stop_um"] / V + 0.5))
            w = prof["n_voxels"][s:e]
            truth = float((prof["pore"][s:e] * w).sum() / w.sum())
            assert row["porosity"] == pytest.approx(truth, abs=0.01)
            if which == "cell":  # the pristine layers have a flat porosity
                assert row["porosity"] == pytest.approx(obj.fractions.loc[layer, "pore"], abs=0.01)
