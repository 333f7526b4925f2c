"""The label schema of the segmentation models and the mapping from simulator truth to classes."""

from __future__ import annotations

import numpy as np

from ..schema import CUS_SEGMENTATION, SIMULATOR_TRUTH, UNREVIEWED

__all__ = ["UNLABELLED", "DEFAULT_SCHEMA", "DEFAULT_CLASSES", "classes_to_labels", "truth_to_labels"]

#: Label value of voxels without annotation in sparse labels (scribbles, partial corrections):
#: ignored by training and by the scores (:data:`tomopipe.schema.UNREVIEWED`).
UNLABELLED = UNREVIEWED

#: Label values of the composite-cathode cell as written by the segmentation stage (uint8):
#: :data:`tomopipe.schema.CUS_SEGMENTATION` (a :class:`~tomopipe.schema.LabelSchema`, a
#: read-only mapping name -> value). It extends the simulator's classes by ``crack`` (7);
#: ``outside`` (255) is the air around the sample; carbon black is part of ``pore``.
DEFAULT_SCHEMA = CUS_SEGMENTATION

#: Class order of the network's output channels.
DEFAULT_CLASSES = tuple(DEFAULT_SCHEMA)


def _lut(schema, classes):
    lut = np.zeros(256, dtype=np.uint8)
    for k, name in enumerate(classes):
        lut[schema[name]] = k
    return lut


def classes_to_labels(class_index, classes=DEFAULT_CLASSES, schema=DEFAULT_SCHEMA):
    """Map class indices (network channel order) to label values of `schema`.

    Parameters
    ----------
    class_index : ndarray of int
        Indices into `classes`, any shape.
    classes : sequence of str
        Channel order of the network.
    schema : mapping
        Class name → label value (0–255).

    Returns
    -------
    ndarray of uint8
        Same shape as `class_index`.
    """
    values = np.asarray([schema[c] for c in classes], dtype=np.uint8)
    return values[np.asarray(class_index)]


def truth_to_labels(labels, crack_ids=None):
    """Simulator truth (:data:`tomopipe.simulate.LABELS`) in :data:`DEFAULT_SCHEMA` values.

    Carbon (4) becomes ``pore`` (0); void voxels of a crack (``crack_ids > 0``) become
    ``crack`` (7).

    Parameters
    ----------
    labels : (z, y, x) ndarray of uint8
    crack_ids : (z, y, x) ndarray of int, optional
        Crack ids of :class:`tomopipe.simulate.State`.

    Returns
    -------
    (z, y, x) ndarray of uint8
    """
    out = np.array(labels, dtype=np.uint8, copy=True)
    out[out == SIMULATOR_TRUTH["carbon"]] = DEFAULT_SCHEMA["pore"]
    if crack_ids is not None:
        out[(np.asarray(crack_ids) > 0) & (out == DEFAULT_SCHEMA["pore"])] = DEFAULT_SCHEMA["crack"]
    return out
