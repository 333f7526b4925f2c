"""Model files: safetensors weights with a Markdown model card (YAML front matter), never pickles.

A model named ``<stem>`` is two files side by side::

    <stem>.safetensors   the network's tensors (safetensors format: a JSON header and raw
                         little-endian arrays; loading executes no code)
    <stem>.md            the model card: YAML front matter (machine-read, keys below) and
                         Markdown prose for people

Card keys (front matter): ``name``, ``format`` (``tomopipe-unet/1``), ``architecture``
(``ndim``, ``in_channels``, ``features``, ``plane``), ``classes`` (output channel order),
``schema`` (class name → uint8 label value), ``voxel_size_um`` ([min, max] trained on),
``normalization`` (``method: percentile`` with ``percentiles``: the network sees the volume
mapped by two of its own percentiles; or ``scale``: the network sees ``μ / scale``, see
:mod:`tomopipe.segment._normalize`), ``input_domain`` (optional: value range and normalized
histogram of the training scans, checked by :func:`tomopipe.segment.check_input_domain`),
``inference`` (``tile``, ``overlap``, optional ``memory_format``), ``training``,
``metrics`` and ``weights`` (``file``, ``sha256``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..datasets import _sha256
from ..errors import InputFileError, ModelError
from ..pipeline.store import _json_default

__all__ = ["SegmentationModel", "load_model", "save_model", "default_model_path", "read_card", "FORMAT",
           "BUNDLED_MODELS"]

FORMAT = "tomopipe-unet/1"
_REQUIRED = ("name", "format", "architecture", "classes", "schema", "voxel_size_um", "normalization",
             "inference", "weights")
DEFAULT_MODEL = "tomopipe-unet25d-cus-v4"
#: Bundled models, loadable by name (``load_model("tomopipe-unet25d-cus-v1")``): the default and
#: the earlier ones, kept for reproducibility (v3: v4's parent, v2 and v1: earlier defaults).
BUNDLED_MODELS = ("tomopipe-unet25d-cus-v4", "tomopipe-unet25d-cus-v3", "tomopipe-unet25d-cus-v2",
                  "tomopipe-unet25d-cus-v1")


def default_model_path(name=None):
    """Path of a bundled model's weights (``models/<name>.safetensors``), by default the default's.

    Looked up in ``$TOMOPIPE_MODELS``, then in the installed package data
    (``tomopipe.models``), then in the source tree's ``models/`` folder.

    Parameters
    ----------
    name : str, optional
        A name of :data:`BUNDLED_MODELS` (or of a model in ``$TOMOPIPE_MODELS``); default
        :data:`DEFAULT_MODEL`.

    Raises
    ------
    ModelError
        If no copy of the model is found.
    """
    name = DEFAULT_MODEL if name in (None, "default") else str(name)
    names = [f"{name}.safetensors"]
    places = []
    if os.environ.get("TOMOPIPE_MODELS"):
        places.append(Path(os.environ["TOMOPIPE_MODELS"]))
    try:
        from importlib.resources import files

        places.append(Path(str(files("tomopipe.models"))))
    except (ModuleNotFoundError, TypeError):
        pass
    places.append(Path(__file__).resolve().parents[2] / "models")
    for place in places:
        for n in names:
            if (place / n).is_file():
                return place / n
    raise ModelError(f"the model {name} was not found in {[str(p) for p in places]}; "
                     "pass a model path or train one with 'tomopipe train'")


def _paths(path):
    path = Path(path)
    if path.suffix == ".md":
        return path.with_suffix(".safetensors"), path
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors") if not path.name.endswith(".safetensors") else path
    return path, path.with_suffix(".md")


def read_card(path):
    """Read and check a model card (the YAML front matter of ``<stem>.md``).

    Parameters
    ----------
    path : path-like
        The card (``.md``) or the weights (``.safetensors``) beside it.

    Returns
    -------
    dict

    Raises
    ------
    ModelError
        If the card is missing, has no YAML front matter, lacks a key, or its classes and schema
        disagree.
    """
    _, card_path = _paths(path)
    if not card_path.is_file():
        raise ModelError(f"{card_path}: model card missing (every model needs its card: classes, "
                         "label schema, normalization, sha256 of the weights)")
    text = card_path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ModelError(f"{card_path}: the model card has no YAML front matter ('---' block)")
    try:
        _, front, _ = text.split("---", 2)
        card = yaml.safe_load(front)
    except (ValueError, yaml.YAMLError) as exc:
        raise ModelError(f"{card_path}: unreadable YAML front matter ({exc})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: the front matter is not a mapping")
    missing = [k for k in _REQUIRED if k not in card]
    if missing:
        raise ModelError(f"{card_path}: model card lacks {missing}")
    if card["format"] != FORMAT:
        raise ModelError(f"{card_path}: format {card['format']!r} is not {FORMAT!r}")
    classes, schema = card["classes"], card["schema"]
    if not isinstance(classes, list) or not isinstance(schema, dict):
        raise ModelError(f"{card_path}: 'classes' must be a list and 'schema' a mapping")
    unknown = [c for c in classes if c not in schema]
    if unknown or len(classes) != len(schema):
        raise ModelError(f"{card_path}: classes {classes} and schema {sorted(schema)} disagree "
                         f"({'not in schema: ' + str(unknown) if unknown else 'different class count'})")
    values = [schema[c] for c in classes]
    if any(not isinstance(v, int) or not 0 <= v <= 255 for v in values) or len(set(values)) != len(values):
        raise ModelError(f"{card_path}: schema values must be distinct integers 0..255, got {schema}")
    for key in ("ndim", "in_channels", "features"):
        if key not in card["architecture"]:
            raise ModelError(f"{card_path}: architecture lacks {key!r}")
    norm = card["normalization"]
    if not isinstance(norm, dict) or not (
            (norm.get("method") == "percentile" and isinstance(norm.get("percentiles"), list)
             and len(norm["percentiles"]) == 2 and norm["percentiles"][0] < norm["percentiles"][1])
            or (norm.get("method", "scale") == "scale" and isinstance(norm.get("scale"), (int, float))
                and norm["scale"] > 0)):
        raise ModelError(f"{card_path}: normalization must be 'method: percentile' with two increasing "
                         f"percentiles, or a positive 'scale'; got {norm}")
    if "sha256" not in card["weights"]:
        raise ModelError(f"{card_path}: weights lacks 'sha256'")
    return card


@dataclass
class SegmentationModel:
    """A loaded segmentation network with its card.

    Attributes
    ----------
    net : tomopipe.segment.UNet
        In ``eval()`` mode, on `device`.
    card : dict
        The model card's front matter.
    path : Path
        The weights file.
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    net: object
    card: dict
    path: Path
    device: str = "cpu"

    @property
    def classes(self):
        return tuple(self.card["classes"])

    @property
    def schema(self):
        return {c: int(self.card["schema"][c]) for c in self.classes}

    @property
    def ndim(self):
        return int(self.card["architecture"]["ndim"])

    @property
    def in_channels(self):
        return int(self.card["architecture"]["in_channels"])

    @property
    def scale(self):
        """Divisor of a ``scale``-normalized card (None for percentile normalization)."""
        s = self.card["normalization"].get("scale")
        return None if s is None else float(s)

    def __dask_tokenize__(self):
        return ("tomopipe-model", self.card["weights"]["sha256"], self.device)


def _build(card):
    from ._unet import UNet

    a = card["architecture"]
    return UNet(int(a["in_channels"]), len(card["classes"]), tuple(a["features"]), ndim=int(a["ndim"]))


def load_model(path="default", *, device=None, schema=None):
    """Load a segmentation model from safetensors weights and their model card.

    Nothing is unpickled: the card is YAML, the weights are read with
    :func:`safetensors.torch.load_file`.

    Parameters
    ----------
    path : path-like, "default" or a bundled model's name
        The weights (``.safetensors``), the card (``.md``) or their common stem; ``"default"``:
        the bundled CuS model (:func:`default_model_path`); a bare name of
        :data:`BUNDLED_MODELS` (e.g. ``"tomopipe-unet25d-cus-v1"``, the previous default):
        that bundled model.
    device : {"cpu", "cuda", None}
        Where the network runs; None: CUDA when available, else CPU.
    schema : mapping, optional
        A label schema the caller expects (name → value); checked against the card.

    Returns
    -------
    SegmentationModel

    Raises
    ------
    InputFileError
        If the weights file does not exist.
    ModelError
        If the card is missing or invalid, the sha256 of the weights differs from the card's,
        the file is not safetensors (e.g. a pickled ``.pt`` checkpoint), the weights do not fit
        the card's architecture (e.g. a head with a different class count), or `schema` differs
        from the card's.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if str(path) == "default" or (str(path) in BUNDLED_MODELS and not Path(path).exists()):
        path = default_model_path(str(path))
    weights, _ = _paths(path)
    if not weights.is_file():
        raise InputFileError(f"{weights}: model weights not found")
    card = read_card(weights)
    digest = _sha256(weights)
    if digest != card["weights"]["sha256"]:
        raise ModelError(f"{weights}: sha256 {digest} differs from the model card's "
                         f"{card['weights']['sha256']} (corrupted or replaced weights)")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights}: not a readable safetensors file ({exc}); pickled checkpoints "
                         "(.pt/.pth) are never loaded") from None
    if schema is not None:
        want = {str(k): int(v) for k, v in dict(schema).items()}
        if want != {c: int(card["schema"][c]) for c in card["classes"]}:
            raise ModelError(f"{weights}: the model's schema {card['schema']} differs from the expected {want}")
    net = _build(card)
    expected = net.state_dict()
    head = state.get("head.weight")
    if head is not None and head.shape[0] != len(card["classes"]):
        raise ModelError(f"{weights}: the network has {head.shape[0]} output classes, the card lists "
                         f"{len(card['classes'])} ({card['classes']})")
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or extra or wrong:
        raise ModelError(f"{weights}: tensors do not match the card's architecture {card['architecture']}: "
                         f"missing {missing[:3]}, unexpected {extra[:3]}, wrong shape {wrong[:3]}")
    net.load_state_dict(state, strict=True)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device='cuda' requested but PyTorch sees no CUDA device")
    net.to(device).eval()
    if card.get("inference", {}).get("memory_format") == "channels_last" and int(card["architecture"]["ndim"]) == 2:
        net.to(memory_format=torch.channels_last)
    return SegmentationModel(net=net, card=card, path=weights, device=device)


def save_model(net, card, path, *, prose=""):
    """Write a network as ``<stem>.safetensors`` and its card ``<stem>.md`` (sha256 filled in).

    Parameters
    ----------
    net : tomopipe.segment.UNet
    card : dict
        Front matter without ``weights`` (filled in here) and without ``format``.
    path : path-like
        ``<stem>`` or ``<stem>.safetensors``.
    prose : str
        Markdown body of the card.

    Returns
    -------
    Path
        The weights file.
    """
    from safetensors.torch import save_file

    weights, card_path = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    tmp = weights.with_name(weights.name + ".partial")
    save_file(state, str(tmp), metadata={"format": FORMAT, "classes": json.dumps(list(card["classes"]))})
    os.replace(tmp, weights)
    full = {"name": card.get("name", weights.stem), "format": FORMAT, **{k: v for k, v in card.items() if k != "name"},
            "weights": {"file": weights.name, "sha256": _sha256(weights)}}
    full = json.loads(json.dumps(full, default=_json_default))
    front = yaml.safe_dump(full, sort_keys=False, allow_unicode=True)
    card_path.write_text(f"---\n{front}---\n\n{prose}\n", encoding="utf-8")
    return weights


