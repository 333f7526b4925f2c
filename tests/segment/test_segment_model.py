"""Model files: safetensors + card, checks, and no unpickling."""

import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml

from tomopipe.errors import InputFileError, ModelError
from tomopipe.segment import DEFAULT_SCHEMA, load_model, read_card
from tomopipe.segment._model import _sha256


def _copy(src, dst_dir):
    for suffix in (".safetensors", ".md"):
        shutil.copy(src.with_suffix(suffix), dst_dir / (src.stem + suffix))
    return dst_dir / (src.stem + ".safetensors")


def _edit_card(weights, fn):
    card_path = weights.with_suffix(".md")
    _, front, body = card_path.read_text().split("---", 2)
    card = fn(yaml.safe_load(front))
    card_path.write_text("---\n" + yaml.safe_dump(card, sort_keys=False) + "---" + body)


def test_round_trip_keeps_weights_and_card(tiny_model_path, tiny_model):
    card = read_card(tiny_model_path)
    assert card["weights"]["sha256"] == _sha256(tiny_model_path)
    assert tiny_model.classes == tuple(DEFAULT_SCHEMA)
    assert tiny_model.schema == dict(DEFAULT_SCHEMA)
    again = load_model(tiny_model_path.with_suffix(".md"), device="cpu")  # the card path works too
    for (k, a), (_, b) in zip(tiny_model.net.state_dict().items(), again.net.state_dict().items()):
        assert torch.equal(a, b), k


def test_default_model_loads_and_matches_its_card():
    m = load_model("default", device="cpu")
    assert set(m.classes) == set(DEFAULT_SCHEMA)
    # nominal held-out scans (v1's domain): 0.860 (v1: 0.912; see the card and RESULTS.md)
    assert m.card["metrics"]["mean_dice"] >= 0.85
    assert m.card["weights"]["sha256"] == _sha256(m.path)
    assert m.card["normalization"]["method"] == "percentile"
    for key in ("value_range", "histogram"):
        assert key in m.card["input_domain"]
    assert m.card["training"]["domain"]["energy_keV"] == [20.0, 80.0]


def test_previous_default_stays_loadable_by_name():
    """tomopipe-unet25d-cus-v1 (μ / 25 at 35 keV) loads by name, unchanged."""
    old = load_model("tomopipe-unet25d-cus-v1", device="cpu")
    assert old.card["name"] == "tomopipe-unet25d-cus-v1" and old.scale == 25.0
    assert old.card["weights"]["sha256"] == "e2d6fd9ba5b3143a76b2923058a01b2386f7f265e2049e92cda8cc9e0f9c33fe"
    assert load_model("default", device="cpu").card["name"] != old.card["name"]


def test_wider_domain_model_loads_by_name_with_its_recipe():
    """tomopipe-unet25d-cus-v3: bundled, not the default; its card names its parent, its
    inclusion-shape domain and its (crack-only) decision weights."""
    from tomopipe.segment import class_weights

    m = load_model("tomopipe-unet25d-cus-v3", device="cpu")
    assert m.card["weights"]["sha256"] == _sha256(m.path)
    assert load_model("default", device="cpu").card["name"] != m.card["name"]
    tr = m.card["training"]
    assert tr["series"]["shapes"] == "varied" and tr["domain"]["inclusion_tilt_deg"] == [8.0, 90.0]
    assert tr["base_model"] == "tomopipe-unet25d-cus-v3-stage2" and len(tr["base_sha256"]) == 64
    w = dict(zip(m.classes, class_weights(m)))
    assert w["crack"] == pytest.approx(1.5) and w["inclusion"] == 1.0
    assert m.card["metrics"]["mean_dice"] >= 0.85


def test_default_model_names_its_parent_and_calibration():
    """tomopipe-unet25d-cus-v4: v3 trained on cells of three sizes with smaller patches; its card
    names the parent by name and sha256 and carries decision weights fitted over the cell sizes."""
    from tomopipe.segment import class_weights

    m = load_model("default", device="cpu")
    parent = load_model("tomopipe-unet25d-cus-v3", device="cpu")
    tr = m.card["training"]
    assert m.card["name"] == "tomopipe-unet25d-cus-v4"
    assert tr["base_model"] == parent.card["name"] and tr["base_sha256"] == _sha256(parent.path)
    assert tr["series"]["size"] == [64, 96, 128] and tr["patch_min"] == 48
    assert "--patch-min 48" in tr["recipe"] and "48^3" in m.card["inference"]["class_weights_fit"]
    w = dict(zip(m.classes, class_weights(m)))
    assert (w["pore"], w["inclusion"], w["crack"]) == pytest.approx((1.1, 0.632, 0.9))


def test_card_normalization_is_checked(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    _edit_card(w, lambda c: {**c, "normalization": {"method": "percentile", "percentiles": [99, 1]}})
    with pytest.raises(ModelError, match="normalization"):
        load_model(w, device="cpu")


def test_loading_never_unpickles(monkeypatch, tiny_model_path):
    def forbidden(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    load_model(tiny_model_path, device="cpu")
    load_model("default", device="cpu")


class _Payload:
    ran = False

    def __reduce__(self):
        return (_mark, ())


def _mark():
    _Payload.ran = True
    return {}


def test_pickled_checkpoint_is_refused_without_running_it(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    w.write_bytes(pickle.dumps(_Payload()))  # a malicious "checkpoint" under the model's name
    _edit_card(w, lambda c: {**c, "weights": {**c["weights"], "sha256": _sha256(w)}})
    with pytest.raises(ModelError, match="safetensors"):
        load_model(w, device="cpu")
    assert not _Payload.ran


def test_wrong_checksum(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model(w, device="cpu")


def test_missing_card(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    w.with_suffix(".md").unlink()
    with pytest.raises(ModelError, match="model card missing"):
        load_model(w, device="cpu")


def test_missing_weights(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_model(tmp_path / "nothing.safetensors")


def test_class_count_differs_from_weights(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)

    def drop_crack(c):
        c["classes"].remove("crack")
        del c["schema"]["crack"]
        return c

    _edit_card(w, drop_crack)
    with pytest.raises(ModelError, match="8 output classes, the card lists 7"):
        load_model(w, device="cpu")


def test_card_classes_and_schema_disagree(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    _edit_card(w, lambda c: {**c, "classes": c["classes"][:-1] + ["separator"]})
    with pytest.raises(ModelError, match="not in schema"):
        load_model(w, device="cpu")


def test_card_lacks_key(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    _edit_card(w, lambda c: {k: v for k, v in c.items() if k != "normalization"})
    with pytest.raises(ModelError, match="normalization"):
        load_model(w, device="cpu")


def test_architecture_mismatch(tmp_path, tiny_model_path):
    w = _copy(tiny_model_path, tmp_path)
    _edit_card(w, lambda c: {**c, "architecture": {**c["architecture"], "features": [4, 8, 16]}})
    with pytest.raises(ModelError, match="do not match the card's architecture"):
        load_model(w, device="cpu")


def test_expected_schema_checked(tiny_model_path):
    with pytest.raises(ModelError, match="schema"):
        load_model(tiny_model_path, device="cpu", schema={"pore": 0, "solid": 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(sim_volume):
    from tomopipe.segment import predict_probabilities

    cpu = load_model("default", device="cpu")
    gpu = load_model("default", device="cuda")
    a = predict_probabilities(sim_volume.mu, cpu)
    b = predict_probabilities(sim_volume.mu, gpu)
    assert np.abs(a - b).max() < 1e-3
    assert (a.argmax(0) == b.argmax(0)).mean() > 0.999
