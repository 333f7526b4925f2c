"""Classical baselines: multi-Otsu thresholds and the random-forest pixel classifier."""

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from tomopipe.errors import ShapeMismatchError
from tomopipe.segment._baselines import (
    UNLABELLED,
    RandomForestModel,
    _strided_sample,
    fit_random_forest,
    multiotsu_segment,
    multiotsu_thresholds,
    random_forest_segment,
    rf_feature_depth,
    rf_features,
)
from tomopipe.segment._schema import DEFAULT_SCHEMA

PHASES = ("pore", "active", "current_collector")
MEANS = np.array([1.0, 10.0, 20.0])


def dice(a, b):
    s = a.sum() + b.sum()
    return 2.0 * (a & b).sum() / s if s else 1.0


def three_phase(seed=0, shape=(40, 44, 48), noise=2.0):
    """Smooth random blobs in three phases (μ 1, 10, 20) plus Gaussian noise; truth as phase index."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal(shape), 3.0)
    truth = np.digitize(field, np.quantile(field, [0.4, 0.8]))
    mu = (MEANS[truth] + rng.normal(0.0, noise, shape)).astype(np.float32)
    return mu, truth


def scribbles(labels, n_per_class, seed=0):
    """Sparse annotations: `n_per_class` random voxels of each truth label, UNLABELLED elsewhere."""
    rng = np.random.default_rng(seed)
    ann = np.full(labels.shape, UNLABELLED, dtype=np.uint8)
    flat = labels.ravel()
    for v in np.unique(flat):
        where = np.flatnonzero(flat == v)
        ann.ravel()[rng.choice(where, size=min(n_per_class, where.size), replace=False)] = v
    return ann


# --------------------------------------------------------------------------------------------
# multi-Otsu
# --------------------------------------------------------------------------------------------

def test_multiotsu_recovers_three_phases():
    mu, truth = three_phase()
    labels = multiotsu_segment(mu, classes=PHASES)
    assert labels.dtype == np.uint8 and labels.shape == mu.shape
    for k, name in enumerate(PHASES):
        assert dice(labels == DEFAULT_SCHEMA[name], truth == k) > 0.95, name
    t = multiotsu_thresholds(mu, 3)
    # optimal thresholds of equal-σ Gaussians lie between the means
    assert MEANS[0] < t[0] < MEANS[1] < t[1] < MEANS[2]


def test_multiotsu_subsample_close_to_full():
    mu, _ = three_phase()
    full = multiotsu_thresholds(mu, 3, n_sample=mu.size)
    for seed in (0, 1):
        sub = multiotsu_thresholds(mu, 3, n_sample=5_000, seed=seed)
        np.testing.assert_allclose(sub, full, atol=0.5)   # phases 9–10 apart, noise σ = 2


@pytest.mark.parametrize("shape, n_sample", [((40, 44, 48), 5_000), ((7, 300, 5), 999), ((10, 10, 10), 1000),
                                             ((3, 4, 5), 1)])
def test_strided_sample_is_bounded(shape, n_sample):
    vol = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    s = _strided_sample(vol, n_sample, seed=3)
    assert 0 < s.size <= n_sample
    assert s.size > n_sample / 8 or np.prod(shape) < 8 * n_sample   # not needlessly sparse
    np.testing.assert_array_equal(s, _strided_sample(da.from_array(vol, chunks=16), n_sample, seed=3))


def test_multiotsu_chunked_equals_numpy():
    mu, _ = three_phase(seed=1)
    x = da.from_array(mu, chunks=(16, 20, 48))
    lazy = multiotsu_segment(x, classes=PHASES, n_sample=5_000, seed=2)
    assert isinstance(lazy, da.Array) and lazy.chunks == x.chunks and lazy.dtype == np.uint8
    np.testing.assert_array_equal(lazy.compute(), multiotsu_segment(mu, classes=PHASES, n_sample=5_000, seed=2))
    np.testing.assert_array_equal(multiotsu_thresholds(x, 3, n_sample=5_000, seed=2),
                                  multiotsu_thresholds(mu, 3, n_sample=5_000, seed=2))


def test_multiotsu_given_thresholds_and_nan():
    vol = np.array([[[-1.0, 0.5, 1.5, 2.0, 7.0, np.nan]]])
    labels = multiotsu_segment(vol, classes=("pore", "active", "inclusion"), thresholds=[0.5, 2.0])
    # class k holds thresholds[k-1] <= v < thresholds[k]
    np.testing.assert_array_equal(labels.ravel()[:5], [0, 2, 2, 3, 3])
    assert np.isfinite(multiotsu_thresholds(vol, 2)).all()                 # NaN left out


def test_multiotsu_bad_arguments():
    mu, _ = three_phase()
    with pytest.raises(ValueError, match="classes"):
        multiotsu_segment(mu, classes=("pore", "glass"))
    with pytest.raises(ValueError, match="classes"):
        multiotsu_segment(mu, classes=("pore",))
    with pytest.raises(ValueError, match="thresholds"):
        multiotsu_segment(mu, classes=PHASES, thresholds=[1.0])
    with pytest.raises(ValueError, match="thresholds"):
        multiotsu_segment(mu, classes=PHASES, thresholds=[5.0, 1.0])
    with pytest.raises(ValueError, match="volume"):
        multiotsu_segment(mu[0], classes=PHASES)
    with pytest.raises(ValueError, match="no finite"):
        multiotsu_thresholds(np.full((2, 2, 2), np.nan), 2)


# --------------------------------------------------------------------------------------------
# random forest
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim_pair():
    from tomopipe.segment._data import simulate_volume

    return simulate_volume(1, size=48)[0], simulate_volume(2, size=48)[0]


@pytest.fixture(scope="module")
def sim_model(sim_pair):
    train, _ = sim_pair
    return fit_random_forest(train.mu, scribbles(train.labels, 1000), n_jobs=2)


def test_rf_features_shape_and_reach():
    mu, _ = three_phase(shape=(30, 32, 34))
    f = rf_features(mu, sigma_min=1.0, sigma_max=2.0)
    assert f.shape == mu.shape + (10,) and f.dtype == np.float32   # 2 scales x 5 features
    # a sub-volume gives the same features farther than rf_feature_depth from its cut faces
    d = rf_feature_depth(2.0)
    sub = rf_features(mu[:, 2:], sigma_min=1.0, sigma_max=2.0)
    np.testing.assert_array_equal(sub[:, d:], f[:, 2 + d:])


def test_rf_segments_simulated_cell(sim_pair, sim_model):
    _, test = sim_pair
    labels = random_forest_segment(test.mu, sim_model)
    assert labels.dtype == np.uint8 and labels.shape == test.mu.shape
    assert set(sim_model.label_values) == set(np.unique(sim_pair[0].labels).tolist())
    score = {name: dice(labels == DEFAULT_SCHEMA[name], test.labels == DEFAULT_SCHEMA[name])
             for name in ("electrolyte", "active", "current_collector", "outside")}
    # measured (48³, 1000 scribbles per class): electrolyte 0.76, active 0.94, current
    # collector 0.95, outside 0.89. Electrolyte vs pore/carbon (Δμ ≈ 1.5 /cm under noise
    # σ ≈ 6 /cm, pores a few voxels wide) is the hard part for a pixel classifier.
    assert score["active"] > 0.9 and score["current_collector"] > 0.9, score
    assert score["electrolyte"] > 0.7 and score["outside"] > 0.85, score


def test_rf_chunked_equals_in_memory(sim_pair, sim_model):
    _, test = sim_pair
    labels, proba = random_forest_segment(test.mu, sim_model, return_proba=True)
    assert proba.shape == (len(sim_model.label_values),) + test.mu.shape and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels, np.asarray(sim_model.label_values, np.uint8)[proba.argmax(axis=0)])
    # chunks (24) are smaller than the halo (35 voxels for σ = 8): dask merges, we rechunk back
    x = da.from_array(test.mu, chunks=24)
    lazy_labels, lazy_proba = random_forest_segment(x, sim_model, return_proba=True)
    assert lazy_labels.chunks == x.chunks and lazy_proba.chunks[1:] == x.chunks
    lazy_labels, lazy_proba = da.compute(lazy_labels, lazy_proba)
    np.testing.assert_array_equal(lazy_labels, labels)
    np.testing.assert_array_equal(lazy_proba, proba)


def test_rf_chunked_equals_in_memory_uneven_chunks():
    mu, truth = three_phase(shape=(40, 44, 48))
    ann = scribbles(np.asarray([0, 2, 6], dtype=np.uint8)[truth], 200)
    model = fit_random_forest(mu, ann, sigma_max=2.0, n_estimators=10)
    assert model.label_values == (0, 2, 6) and rf_feature_depth(2.0) == 11
    x = da.from_array(mu, chunks=((12, 16, 12), (20, 24), (48,)))   # every chunk ≥ the halo
    lazy = random_forest_segment(x, model)
    assert isinstance(lazy, da.Array) and lazy.chunks == x.chunks
    labels = random_forest_segment(mu, model)
    np.testing.assert_array_equal(lazy.compute(), labels)
    assert dice(labels == 2, truth == 1) > 0.95


def test_rf_several_volumes_and_sampling():
    mu0, t0 = three_phase(seed=0, shape=(20, 24, 28))
    mu1, t1 = three_phase(seed=1, shape=(16, 24, 28))
    a0 = np.where(t0 == 2, UNLABELLED, t0).astype(np.uint8)            # values 0, 1
    a1 = np.where(t1 == 2, 6, UNLABELLED).astype(np.uint8)             # value 6
    kw = dict(sigma_max=2.0, n_estimators=5, max_samples_per_class=50)
    model = fit_random_forest([mu0, mu1], [a0, a1], **kw)
    assert isinstance(model, RandomForestModel) and model.label_values == (0, 1, 6)
    assert model.classifier.n_features_in_ == 10
    # seeded: the same forest twice
    again = fit_random_forest([mu0, mu1], [a0, a1], **kw)
    np.testing.assert_array_equal(random_forest_segment(mu1, model), random_forest_segment(mu1, again))


def test_rf_bad_annotations():
    mu, truth = three_phase(shape=(10, 12, 14))
    ann = truth.astype(np.uint8)
    with pytest.raises(ValueError, match="no annotated voxel"):
        fit_random_forest(mu, np.full(mu.shape, UNLABELLED, np.uint8))
    bad = ann.copy()
    bad[0, 0, 0] = 9
    with pytest.raises(ValueError, match=r"annotations\[1\].*\[9\]"):
        fit_random_forest([mu, mu], [ann, bad])
    with pytest.raises(ValueError, match=r"annotations\[0\]"):
        fit_random_forest(mu, ann - 1.0)                       # float annotations
    with pytest.raises(ValueError, match=r"annotations\[0\]"):
        fit_random_forest(mu, ann.astype(np.int16) - 1)        # -1 is no label value
    with pytest.raises(ShapeMismatchError, match=r"annotations\[1\].*volumes\[1\]"):
        fit_random_forest([mu, mu], [ann, ann[1:]])
    with pytest.raises(ValueError, match="annotations: 1 annotation volumes for 2"):
        fit_random_forest([mu, mu], [ann])
    with pytest.raises(ValueError, match=r"volumes\[0\]"):
        fit_random_forest(mu[0], ann[0])
    with pytest.raises(ValueError, match="sigma_min"):
        fit_random_forest(mu, ann, sigma_min=4.0, sigma_max=2.0)
    with pytest.raises(TypeError, match="model"):
        random_forest_segment(mu, "model.pkl")


def test_multiotsu_many_classes_is_fast_and_exact():
    """Dynamic programming finds scikit-image's exhaustive optimum, and six classes do not hang."""
    import time

    from skimage.filters import threshold_multiotsu

    from tomopipe.segment import multiotsu_thresholds

    rng = np.random.default_rng(0)
    parts = [rng.normal(m, s, n) for m, s, n in [(0, 3, 30000), (2.4, 3, 40000), (23, 4, 20000), (41, 4, 5000),
                                                 (55, 6, 1000), (80, 5, 800)]]
    vol = np.concatenate(parts).astype(np.float32).reshape(-1, 1, 1)
    from skimage.exposure import histogram

    h, centers = histogram(vol.ravel(), 256, source_range="image")
    p = h / h.sum()

    def between(th):  # Σ S_k² / W_k of the classes the thresholds make (the Otsu objective + const)
        b = [0] + [int(np.searchsorted(centers, t)) + 1 for t in th] + [p.size]
        return sum((p[a:e] * centers[a:e]).sum() ** 2 / p[a:e].sum() for a, e in zip(b[:-1], b[1:]))

    for k in (2, 3, 4):
        ours, ref = multiotsu_thresholds(vol, k), threshold_multiotsu(vol.ravel(), classes=k)
        # the same optimum (scikit-image sums in float32 and may stop one bin off on a near-tie)
        assert between(ours) >= between(ref) * (1 - 1e-9)
        np.testing.assert_allclose(ours, ref, atol=1.01 * (centers[1] - centers[0]))
    t = time.perf_counter()
    th = multiotsu_thresholds(vol, 6, nbins=256)
    assert time.perf_counter() - t < 5.0
    assert th.shape == (5,) and np.all(np.diff(th) > 0)
    with pytest.raises(ValueError, match="distinct grey values"):
        multiotsu_thresholds(np.zeros((4, 4, 4), np.float32) + np.arange(4)[:, None, None], 6)


def test_baselines_are_public():
    import tomopipe.segment as seg

    for name in ("multiotsu_segment", "multiotsu_thresholds", "fit_random_forest", "random_forest_segment",
                 "RandomForestModel", "rf_features"):
        assert name in seg.__all__ and callable(getattr(seg, name))
