"""The random forest on volumes thinner than its feature halo (issue 11)."""

import dask.array as da
import numpy as np
import pytest
import zarr

from tomopipe.segment._baselines import (
    fit_random_forest,
    random_forest_segment,
    rf_feature_depth,
    rf_features,
)


def _two_phase(shape, seed=0):
    rng = np.random.default_rng(seed)
    vol = rng.normal(0.0, 0.3, shape).astype(np.float32)
    vol[..., : shape[-1] // 2] += 3.0
    ann = np.full(shape, 254, np.uint8)
    ann[..., 2:6, 2:6] = 2
    ann[..., 2:6, -6:-2] = 0
    return vol, ann


@pytest.mark.parametrize("nz", [1, 2])
def test_fit_and_segment_thin_volumes(nz):
    vol, ann = _two_phase((nz, 48, 40))
    assert nz < rf_feature_depth(8.0)
    model = fit_random_forest(vol, ann, n_estimators=5)  # one slice failed inside numpy
    f = rf_features(vol)
    assert f.shape == vol.shape + (20,) and np.isfinite(f).all()
    ref = random_forest_segment(vol, model)
    assert (ref[..., 2:16] == 2).mean() > 0.95 and (ref[..., -16:-2] == 0).mean() > 0.95
    # dask: the halo is clipped to the array (a ValueError from dask.array.overlap before)
    for chunks in [(nz, 24, 20), (1, 17, 40)]:
        lazy = random_forest_segment(da.from_array(vol, chunks=chunks), model)
        assert lazy.chunks == da.from_array(vol, chunks=chunks).chunks
        np.testing.assert_array_equal(lazy.compute(), ref)
        labels, proba = random_forest_segment(da.from_array(vol, chunks=chunks), model, return_proba=True)
        np.testing.assert_array_equal(labels.compute(), ref)
        assert proba.shape == (2,) + vol.shape


def test_features_of_a_single_slice_are_the_2d_features():
    vol, _ = _two_phase((1, 32, 32), seed=3)
    f = rf_features(vol)
    thick = rf_features(np.repeat(vol, 3, axis=0))[1:2]  # a slice repeated along z
    np.testing.assert_allclose(f, thick, rtol=1e-5, atol=1e-5)


def test_random_forest_stage_on_tooth(tmp_path, tooth_path, monkeypatch):
    """Real APS data, 2 rows: `segment: {method: random_forest}` runs in the pipeline."""
    import os

    from tomopipe.pipeline import load_workflow, run_workflow
    from tomopipe.pipeline.config import SegmentConfig

    monkeypatch.setenv("TOMOPIPE_DATA", str(tooth_path.parent))
    wf = load_workflow(os.path.join(os.path.dirname(__file__), "..", "..", "workflows", "tooth.yaml"))
    store = tmp_path / "tooth.zarr"
    res = run_workflow(wf.model_copy(update={"segment": None}), store, progress=False)
    vol = zarr.open_group(str(res.store / "volume"), mode="r")["0"][:]
    assert vol.shape[0] == 2
    # scribbles: the brightest and the darkest voxels of the reconstruction
    ann = np.full(vol.shape, 254, np.uint8)
    hi, lo = np.quantile(vol, 0.995), np.quantile(vol, 0.3)
    ann[vol >= hi] = 2
    ann[(vol <= lo) & (np.arange(vol.shape[2]) % 7 == 0)] = 0
    zarr.save_array(str(tmp_path / "ann.zarr"), ann)
    seg = SegmentConfig(method="random_forest", annotations=str(tmp_path / "ann.zarr"),
                        n_estimators=8, chunks=(2, 160, 160))
    res = run_workflow(wf.model_copy(update={"segment": seg}), store, progress=False)
    assert "segmentation" in res.ran
    labels = zarr.open_group(str(store / "segmentation"), mode="r")["labels"][:]
    assert labels.shape == vol.shape
    solid = labels == 2
    assert 0.005 < solid.mean() < 0.6
    assert vol[solid].mean() > 2 * vol[~solid].mean()
