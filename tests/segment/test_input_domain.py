"""Input normalization from the volume itself, and the input-domain guard."""

import warnings

import dask.array as da
import numpy as np
import pytest

from tomopipe.segment import (
    InputDomainWarning,
    check_input_domain,
    input_sample,
    input_stats,
    load_model,
    predict_probabilities,
    segment,
    segment_dask,
)

def test_stats_are_those_of_the_whole_volume_and_affine_equivariant(pct_model, sim_volume):
    vol = sim_volume.mu
    lo, width = input_stats(pct_model, vol)
    p1, p99 = np.percentile(input_sample(vol), [1, 99])
    assert lo == pytest.approx(p1) and width == pytest.approx(p99 - p1)
    lo2, width2 = input_stats(pct_model, vol * 0.37 + 5.0)
    assert lo2 == pytest.approx(lo * 0.37 + 5.0, rel=1e-5, abs=1e-4)
    assert width2 == pytest.approx(width * 0.37, rel=1e-5)


def test_labels_do_not_depend_on_the_units(pct_model, sim_volume):
    """μ in 1/cm and the same volume ×0.37 + offset ('arbitrary units') give the same labels."""
    vol = sim_volume.mu
    a, _ = segment(vol, pct_model, guard=False)
    b, _ = segment(vol * np.float32(0.37) + np.float32(5.0), pct_model, guard=False)
    assert np.mean(a == b) > 0.999


@pytest.mark.parametrize("chunks", [(20, 13, 17), (7, 48, 5)])
def test_chunked_equals_single_pass_with_volume_statistics(pct_model, sim_volume, chunks):
    """The statistics are computed once for the whole volume, so chunks see the same input."""
    vol = sim_volume.mu
    lab, prob = segment(vol, pct_model, guard=False)
    dl, dp = segment_dask(da.from_array(vol, chunks=chunks), pct_model, guard=False)
    lab2, prob2 = da.compute(dl, dp)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(prob, prob2)
    # a region uses the whole volume's statistics, not its own
    part = predict_probabilities(vol, pct_model, region=((5, 30), (0, 11), (20, 48)))
    np.testing.assert_array_equal(part, predict_probabilities(vol, pct_model)[:, 5:30, 0:11, 20:48])


def test_labels_only(pct_model, sim_volume):
    lab, prob = segment(sim_volume.mu, pct_model, guard=False, probabilities=False)
    assert prob is None and lab.shape == sim_volume.mu.shape
    dl, dp = segment_dask(da.from_array(sim_volume.mu, chunks=(24, 16, 24)), pct_model, guard=False,
                          probabilities=False)
    assert dp is None
    np.testing.assert_array_equal(dl.compute(), lab)


def test_guard_is_quiet_inside_the_domain(pct_model, sim_volume):
    assert check_input_domain(sim_volume.mu, pct_model, 0.9, units="1/cm") == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segment(sim_volume.mu, pct_model, voxel_size_um=0.9)


def test_guard_names_wrong_units_voxel_size_and_histogram(pct_model, sim_volume):
    vol = sim_volume.mu
    w = check_input_domain(vol * 0.88e-4, pct_model)  # μ in 1/pixel (pixel size not set)
    assert len(w) == 1 and w[0].startswith("values:") and "units" in w[0]
    w = check_input_domain(vol, pct_model, 25.0, units="1/pixel")
    assert any(s.startswith("voxel_size_um: 25 µm") for s in w)
    assert any(s.startswith("units: the volume is in '1/pixel'") for s in w)
    air = np.where(sim_volume.labels == 255, vol, 0.0).astype(np.float32)  # only air and noise
    assert any(s.startswith("value histogram:") for s in check_input_domain(air, pct_model))
    with pytest.warns(InputDomainWarning, match="values: 1st/99th percentile"):
        segment(vol * 100.0, pct_model)  # μ in 1/m
    with pytest.warns(InputDomainWarning, match="voxel_size_um"):
        segment_dask(da.from_array(vol, chunks=24), pct_model, voxel_size_um=5.0)
    assert check_input_domain(np.full((8, 8, 8), 3.0, np.float32), pct_model)[0].startswith("values: the volume is constant")


def test_default_model_guard_warns_on_wrong_units(sim_volume):
    """Must-show 2: the shipped model's guard flags a volume in the wrong units."""
    m = load_model("default", device="cpu")
    assert check_input_domain(sim_volume.mu, m, 0.9, units="1/cm") == []
    for wrong in (sim_volume.mu * 0.9e-4, sim_volume.mu * 100.0):  # 1/pixel, 1/m
        w = check_input_domain(wrong, m, 0.9)
        assert len(w) >= 1 and w[0].startswith("values: 1st/99th percentile"), w
