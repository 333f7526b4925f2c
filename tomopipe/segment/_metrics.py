"""Overlap scores of a segmentation against ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._schema import DEFAULT_SCHEMA

__all__ = ["dice_scores", "mean_scores"]


def dice_scores(pred, truth, schema=DEFAULT_SCHEMA, *, ignore=(254,)):
    """Per-class Dice and IoU of a label volume against the truth.

    Parameters
    ----------
    pred, truth : (z, y, x) array_like of int
        Label values of `schema`, same shape.
    schema : mapping
        Class name → label value.
    ignore : sequence of int
        Truth values excluded from all scores (unannotated voxels).

    Returns
    -------
    pandas.DataFrame
        Indexed by class: ``dice`` = 2|P∩T|/(|P|+|T|), ``iou`` = |P∩T|/|P∪T|,
        ``truth_voxels``, ``pred_voxels`` (NaN scores for classes absent from both).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} must have the same shape")
    keep = ~np.isin(truth, list(ignore))
    p, t = pred[keep].astype(np.int64), truth[keep].astype(np.int64)
    conf = np.bincount(t * 256 + p, minlength=256 * 256).reshape(256, 256)
    rows = {}
    for name, v in schema.items():
        tp = conf[v, v]
        nt, npred = conf[v].sum(), conf[:, v].sum()
        union = nt + npred - tp
        rows[name] = {"dice": 2 * tp / (nt + npred) if nt + npred else np.nan,
                      "iou": tp / union if union else np.nan,
                      "truth_voxels": int(nt), "pred_voxels": int(npred)}
    return pd.DataFrame.from_dict(rows, orient="index")


def mean_scores(tables):
    """Per-class mean of :func:`dice_scores` tables (e.g. one per scan).

    A class absent from a scan's truth and prediction (NaN scores) does not count for that scan.

    Parameters
    ----------
    tables : sequence of pandas.DataFrame
        Tables of :func:`dice_scores` (or their ``dice``/``iou`` columns), same index.

    Returns
    -------
    pandas.DataFrame
    """
    total = sum(t.fillna(0) for t in tables)
    count = sum(t.notna().astype(int) for t in tables)
    return total / count
