"""Tiled inference: chunked result == single pass (no seams), blending, shapes and dtypes."""

import dask.array as da
import numpy as np
import pytest

from tomopipe.segment import predict_probabilities, segment, segment_dask, tile_geometry
from tomopipe.segment._infer import _window


@pytest.mark.parametrize("chunks", [(20, 13, 17), (48, 48, 48), (7, 48, 5)])
def test_chunked_equals_single_pass_2p5d(tiny_model, sim_volume, chunks):
    vol = sim_volume.mu
    lab, prob = segment(vol, tiny_model)
    dl, dp = segment_dask(da.from_array(vol, chunks=chunks), tiny_model)
    lab2, prob2 = da.compute(dl, dp)
    assert lab2.dtype == np.uint8 and prob2.dtype == np.float16
    assert prob2.shape == (len(tiny_model.classes),) + vol.shape
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(prob, prob2)


def test_chunked_equals_single_pass_3d(tiny_model_3d, sim_volume):
    vol = sim_volume.mu[:, :40, :36]
    lab, prob = segment(vol, tiny_model_3d)
    dl, dp = segment_dask(da.from_array(vol, chunks=(15, 22, 9)), tiny_model_3d)
    lab2, prob2 = da.compute(dl, dp)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(prob, prob2)


def test_default_model_has_no_seams(sim_volume):
    """The shipped network, chunks smaller than a tile: identical to one pass."""
    from tomopipe.segment import load_model

    m = load_model("default", device="cpu")
    lab, prob = segment(sim_volume.mu, m)
    dl, dp = segment_dask(da.from_array(sim_volume.mu, chunks=(24, 16, 20)), m)
    lab2, prob2 = da.compute(dl, dp)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(prob, prob2)


def test_region_equals_part_of_whole(tiny_model, sim_volume):
    whole = predict_probabilities(sim_volume.mu, tiny_model)
    region = ((5, 30), (0, 11), (20, 48))
    part = predict_probabilities(sim_volume.mu, tiny_model, region=region)
    np.testing.assert_array_equal(part, whole[:, 5:30, 0:11, 20:48])


def test_probabilities_sum_to_one_and_labels_are_argmax(tiny_model, sim_volume):
    lab, prob = segment(sim_volume.mu, tiny_model)
    p = prob.astype(np.float32)
    np.testing.assert_allclose(p.sum(0), 1.0, atol=5e-3)
    values = np.array([tiny_model.schema[c] for c in tiny_model.classes], dtype=np.uint8)
    exact = predict_probabilities(sim_volume.mu, tiny_model)
    np.testing.assert_array_equal(lab, values[exact.argmax(0)])


def test_blending_is_a_partition_of_unity_of_the_tile_windows(tiny_model):
    """A constant probability field stays constant through the blending."""
    geo = tile_geometry(tiny_model, (48, 48, 48))
    assert geo["step"][1] == geo["tile"][1]  # planes are independent: no overlap along y
    assert geo["context"] == (0, 1, 0)
    w = _window(16, 4)
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w[::-1])
    # tiles on a volume-fixed grid, last one flush with the far edge
    assert geo["starts"][0] == [0, 12, 24, 32]


def test_small_volume_smaller_than_tile(tiny_model):
    vol = np.random.default_rng(1).normal(2.5, 3, size=(5, 3, 7)).astype(np.float32)
    lab, prob = segment(vol, tiny_model)
    assert lab.shape == vol.shape and prob.shape[1:] == vol.shape
    dl, dp = segment_dask(da.from_array(vol, chunks=(2, 2, 3)), tiny_model)
    np.testing.assert_array_equal(dl.compute(), lab)


def test_not_3d(tiny_model):
    with pytest.raises(ValueError, match="3-D"):
        segment(np.zeros((4, 4)), tiny_model)


def test_both_orientations_chunked_equals_single_pass(tiny_model, sim_volume):
    vol = sim_volume.mu[:, :30, :44]
    lab, prob = segment(vol, tiny_model, orientations=("xz", "yz"))
    dl, dp = segment_dask(da.from_array(vol, chunks=(20, 13, 17)), tiny_model, orientations=("xz", "yz"))
    lab2, prob2 = da.compute(dl, dp)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(prob, prob2)
    # the yz pass is the xz pass of the volume with y and x swapped
    xz = predict_probabilities(vol, tiny_model, orientations=("xz",))
    yz = predict_probabilities(vol, tiny_model, orientations=("yz",))
    np.testing.assert_array_equal(yz, predict_probabilities(vol.transpose(0, 2, 1), tiny_model).transpose(0, 1, 3, 2))
    np.testing.assert_allclose(prob.astype(np.float32), (xz + yz) / 2, atol=1e-3)
    with pytest.raises(ValueError, match="orientations"):
        segment(vol, tiny_model, orientations=("xy",))


def test_grouped_engine_agrees_with_chunkwise_reference(tiny_model, sim_volume):
    """Tile groups shared between chunks (overlap-add) give the blend of the chunkwise engine,
    in which every chunk recomputes the tiles it touches (same tiles, another summation order)."""
    from tomopipe.segment._infer import _segment_dask_chunkwise

    vol = da.from_array(sim_volume.mu, chunks=(20, 13, 17))
    a_l, a_p = da.compute(*segment_dask(vol, tiny_model, guard=False))
    b_l, b_p = da.compute(*_segment_dask_chunkwise(vol, tiny_model))
    np.testing.assert_allclose(a_p.astype(np.float32), b_p.astype(np.float32), atol=2e-3)
    assert np.mean(a_l == b_l) > 0.999


def test_class_weights_of_the_card_shift_the_decision(tiny_model, sim_volume):
    """inference.class_weights: labels = argmax w·p, in memory and chunked alike; the
    probabilities are those of the unweighted model."""
    import dataclasses

    from tomopipe.errors import ModelError
    from tomopipe.segment import class_weights, labels_from_probabilities

    plain = tiny_model
    lab0, prob0 = segment(sim_volume.mu, plain)
    values = np.array([plain.schema[c] for c in plain.classes], dtype=np.uint8)
    top = plain.classes[int(np.argmax([(lab0 == v).sum() for v in values]))]  # the most frequent class
    card = {**plain.card, "inference": {**plain.card["inference"], "class_weights": {top: 0.5}}}
    weighted = dataclasses.replace(plain, card=card)
    w = class_weights(weighted)
    k = plain.classes.index(top)
    assert w[k] == np.float32(0.5) and (np.delete(w, k) == 1).all()
    np.testing.assert_array_equal(class_weights(plain), np.ones(len(plain.classes), np.float32))
    lab1, prob1 = segment(sim_volume.mu, weighted)
    np.testing.assert_array_equal(prob0, prob1)
    p = predict_probabilities(sim_volume.mu, plain)
    np.testing.assert_array_equal(lab1, values[(p * w[:, None, None, None]).argmax(0)])
    np.testing.assert_array_equal(labels_from_probabilities(p, weighted), lab1)
    assert (lab1 == values[k]).sum() < (lab0 == values[k]).sum()
    chunked, _ = segment_dask(da.from_array(sim_volume.mu, chunks=(20, 24, 24)), weighted)
    np.testing.assert_array_equal(np.asarray(chunked), lab1)
    bad = dataclasses.replace(plain, card={**card, "inference": {"class_weights": {"graphite": 2.0}}})
    with pytest.raises(ModelError, match="graphite"):
        class_weights(bad)


def test_float16_conversion_is_numpys():
    """The probabilities' float16 conversion (through PyTorch, fast on values that become
    subnormal) gives NumPy's astype bit for bit, ties and subnormals included."""
    from tomopipe.segment._infer import _float16

    rng = np.random.default_rng(0)
    a = rng.integers(0, 0x3F800001, 2_000_000, dtype=np.uint32).view(np.float32)  # all of [0, 1]
    ties = ((np.arange(0, 0x3F800000 >> 13, 7, dtype=np.uint32) << 13) | 0x1000).view(np.float32)
    for x in (a, ties, a.reshape(8, -1, 50)[:, ::3].transpose(0, 2, 1)):  # and a strided view
        np.testing.assert_array_equal(_float16(x).view(np.uint16), x.astype(np.float16).view(np.uint16))


def test_weighted_argmax_is_numpys_argmax_ties_included():
    """The running-maximum argmax gives np.argmax(w·p, axis=0): the first class on ties."""
    from tomopipe.segment._infer import _weighted_argmax

    rng = np.random.default_rng(1)
    p = rng.random((8, 6, 7, 9), dtype=np.float32)
    p[:, 0] = np.round(p[:, 0] * 2) / 2  # many exact ties
    p[3, 1] = p[5, 1] = 0.99  # tie between two later classes
    for w in (np.ones(8, np.float32), np.array([1, 1, 0.5, 1, 0.223, 1, 0.525, 1], np.float32)):
        ref = np.argmax(p * w[:, None, None, None], axis=0)
        got = _weighted_argmax(p, w)
        np.testing.assert_array_equal(got, ref)
        assert got.dtype == np.uint8
    np.testing.assert_array_equal(_weighted_argmax(p[:, ::2].transpose(0, 2, 1, 3), np.ones(8, np.float32)),
                                  np.argmax(p[:, ::2].transpose(0, 2, 1, 3), axis=0))


def test_inference_net_folds_batch_norm_and_follows_the_weights(tiny_model, tiny_model_3d):
    """The inference copy with batch norm folded into the convolutions gives the network's
    logits (float32 rounding), keeps no batch norm, and is rebuilt when the weights change
    in place (as fine-tuning does)."""
    import copy
    import dataclasses

    import torch

    from tomopipe.segment._infer import _inference_net

    for mdl in (tiny_model, tiny_model_3d):
        model = dataclasses.replace(mdl, net=copy.deepcopy(mdl.net))
        torch.manual_seed(0)
        shape = (2, model.in_channels, 16, 16) if model.ndim == 2 else (1, 1, 16, 16, 16)
        x = torch.randn(shape)
        fused = _inference_net(model)
        assert fused is not model.net and _inference_net(model) is fused  # cached
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
        with torch.inference_mode():
            ref, got = model.net(x), fused(x)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
        with torch.no_grad():  # an in-place change of the weights, as an optimizer step makes
            model.net.down[0][0].weight.mul_(-1.0)
            model.net.down[0][1].running_mean.add_(0.3)
        fused2 = _inference_net(model)
        assert fused2 is not fused
        with torch.inference_mode():
            torch.testing.assert_close(fused2(x), model.net(x), rtol=1e-4, atol=1e-4)
            assert not torch.allclose(fused2(x), got, atol=1e-3)
