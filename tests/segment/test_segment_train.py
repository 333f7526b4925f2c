"""Training: reproducible, learns, honours unlabelled voxels; the simulated recipe writes a card."""

import numpy as np
import pytest
import torch

from tomopipe.segment import TrainConfig, UNLABELLED, dice_scores, load_model, save_model, segment, train_unet
from tomopipe.segment._recipes import train_from_simulation


def _cfg(**kw):
    return TrainConfig(**{"features": (8, 16), "patch": 32, "batch": 8, "iterations": 12, "in_channels": 3,
                          "seed": 3, "threads": 1, **kw})


def test_same_seed_same_weights(sim_volume):
    pairs = [(sim_volume.mu, sim_volume.labels)]
    a, _ = train_unet(pairs, _cfg())
    b, _ = train_unet(pairs, _cfg())
    c, _ = train_unet(pairs, _cfg(seed=4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_learns_the_big_phases(sim_volume):
    """A short run on one simulated scan separates electrolyte, CuS and the collector."""
    pairs = [(sim_volume.mu, sim_volume.labels)]
    cfg = _cfg(iterations=150, batch=8, patch=48, features=(8, 16, 32), lr=5e-3)
    net, hist = train_unet(pairs, cfg)
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    card = {"name": "t", "architecture": {"ndim": 2, "in_channels": 3, "features": [8, 16, 32]},
            "classes": list(cfg.classes), "schema": dict(cfg.schema), "voxel_size_um": [0.9, 0.9],
            "normalization": {"quantity": "mu", "units": "1/cm", "energy_keV": 35.0, "scale": cfg.scale},
            "inference": {"tile": [48, 8, 48], "overlap": [8, 0, 8]}}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        m = load_model(save_model(net, card, Path(d) / "t"), device="cpu")
        lab, _ = segment(sim_volume.mu, m)
    s = dice_scores(lab, sim_volume.labels)
    for name in ("electrolyte", "active", "current_collector"):
        assert s.loc[name, "dice"] > 0.8, s


def test_patch_min_draws_smaller_fields_of_view(sim_volume, monkeypatch):
    """`patch_min`: each step's patches share one side, drawn from the network's multiples
    between patch_min and patch; without it every patch is `patch` and the stream is unchanged."""
    from tomopipe.segment import _train

    seen = []
    orig = _train._Sampler.sample_2d

    def spy(self, batch, patch=None):
        x, y = orig(self, batch, patch)
        seen.append(x.shape[-2:])
        assert x.shape[-2:] == y.shape[-2:] and x.shape[0] == batch
        return x, y

    monkeypatch.setattr(_train._Sampler, "sample_2d", spy)
    pairs = [(sim_volume.mu, sim_volume.labels)]
    train_unet(pairs, _cfg(iterations=30, patch=32, patch_min=7))  # features (8, 16): multiples of 2
    sides = {s for s in seen}
    assert all(a == b and a % 2 == 0 and 8 <= a <= 32 for a, b in sides) and len(sides) >= 5
    seen.clear()
    a, _ = train_unet(pairs, _cfg())
    assert {s for s in seen} == {(32, 32)}
    with pytest.raises(ValueError, match="patch_min"):
        train_unet(pairs, _cfg(patch_min=64))


def test_unlabelled_voxels_are_ignored(sim_volume):
    """All voxels unlabelled but one slab: the loss only sees that slab (no NaN, no error)."""
    lab = np.full_like(sim_volume.labels, UNLABELLED)
    lab[20:24] = sim_volume.labels[20:24]
    net, hist = train_unet([(sim_volume.mu, lab)], _cfg(iterations=5))
    assert np.isfinite(hist["loss"]).all()


def test_bad_pairs():
    with pytest.raises(ValueError, match="pairs"):
        train_unet([], _cfg())
    with pytest.raises(ValueError, match=r"pairs\[0\]"):
        train_unet([(np.zeros((8, 8, 8)), np.zeros((8, 8, 9), np.uint8))], _cfg())


def test_simulated_recipe_writes_model_and_card(tmp_path):
    series = {"n_cells": 1, "seed": 1, "size": 32, "voxel_size_um": (0.8, 1.0), "photons": (2e4, 4e4),
              "states": ("D0.7V",)}
    path, table = train_from_simulation(tmp_path / "m", config=_cfg(iterations=3), series=series)
    m = load_model(path, device="cpu")
    assert m.card["training"]["volumes"] == 1 and m.card["training"]["seed"] == 3
    assert set(m.card["metrics"]["dice"]) == set(m.classes)
    assert "Held-out metrics" in path.with_suffix(".md").read_text()
    assert list(table.index) == list(m.classes)


def test_simulated_recipe_continues_from_a_parent(tmp_path, tiny_model):
    """`init`: training starts from the parent's weights (a copy) and the card names the parent."""
    before = {k: v.clone() for k, v in tiny_model.net.state_dict().items()}
    series = {"n_cells": 1, "seed": 1, "size": 32, "voxel_size_um": (0.8, 1.0), "photons": (2e4, 4e4),
              "states": ("D0.7V",)}
    path, _ = train_from_simulation(tmp_path / "child", config=_cfg(iterations=2, patch=16), series=series,
                                    init=tiny_model)
    child = load_model(path, device="cpu")
    assert child.card["training"]["base_model"] == "tiny"
    assert child.card["training"]["base_sha256"] == tiny_model.card["weights"]["sha256"]
    assert child.card["architecture"]["features"] == tiny_model.card["architecture"]["features"]
    assert child.card["weights"]["sha256"] != tiny_model.card["weights"]["sha256"]
    assert all(torch.equal(v, tiny_model.net.state_dict()[k]) for k, v in before.items())


def test_fine_tune_on_three_corrected_xz_slices(tiny_model, sim_volume):
    """Sparse corrections (3 xz slices, 254 elsewhere): finite loss, progress reports, a usable model."""
    from tomopipe.segment import TrainProgress, fine_tune

    lab = np.full_like(sim_volume.labels, UNLABELLED)
    for y in (10, 24, 38):
        lab[:, y, :] = sim_volume.labels[:, y, :]
    reports = []
    tuned, hist = fine_tune(sim_volume.mu, lab, init=tiny_model, iterations=20, lr=1e-3, threads=1, batch=4,
                            progress=reports.append)
    assert np.isfinite(hist["loss"]).all() and len(reports) >= 2
    assert isinstance(reports[0], TrainProgress) and str(reports[-1]).startswith("step 20/20")
    assert tuned.card["training"]["annotated_voxels"] == 3 * 48 * 48
    # the base model is untouched
    assert not all(torch.equal(a, b) for a, b in zip(tuned.net.state_dict().values(),
                                                     tiny_model.net.state_dict().values()))
    lab2, _ = segment(sim_volume.mu, tuned, guard=False)
    assert lab2.shape == sim_volume.mu.shape


def test_fine_tune_cancel_and_errors(tiny_model, sim_volume):
    from tomopipe.segment import TrainingCancelled, fine_tune

    lab = np.full_like(sim_volume.labels, UNLABELLED)
    lab[:, 5, :] = sim_volume.labels[:, 5, :]
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(TrainingCancelled, match="step 3/50"):
        fine_tune(sim_volume.mu, lab, init=tiny_model, iterations=50, threads=1, batch=2, cancel=cancel)
    with pytest.raises(ValueError, match="no annotated voxel"):
        fine_tune(sim_volume.mu, np.full_like(lab, UNLABELLED), init=tiny_model, iterations=2)
    with pytest.raises(ValueError, match="same shape"):
        fine_tune(sim_volume.mu, lab[:-1], init=tiny_model, iterations=2)


def test_train_from_store_takes_arrays(tmp_path, tiny_model, sim_volume):
    from tomopipe.segment import TrainConfig, train_from_store

    lab = np.full_like(sim_volume.labels, UNLABELLED)
    lab[:, 30, :] = sim_volume.labels[:, 30, :]
    path = train_from_store(tmp_path / "ft", sim_volume.mu, lab, init=tiny_model,
                            config=TrainConfig(iterations=3, threads=1))
    m = load_model(path, device="cpu")
    assert m.card["training"]["source"] == "fine-tuned on corrected labels"
    assert m.card["training"]["store"] == "array"
