"""Segmentation of reconstructed volumes: a U-Net shipped as safetensors, and classical baselines.

- :mod:`._schema`: the label schema (:data:`DEFAULT_SCHEMA`: pore, electrolyte, active,
  inclusion, lithium, current_collector, crack, outside) and truth → schema mapping.
- :mod:`._unet`: the network (2.5-D by default: an xz plane and its neighbours along y as
  channels; 3-D available).
- :mod:`._model`: model files (safetensors + Markdown model card with sha256), loading with
  checks, never unpickling.
- :mod:`._normalize`: the network's input (normalized from the volume itself) and the
  input-domain guard (:func:`check_input_domain`).
- :mod:`._infer`: tiled inference with overlap and blending, in memory or over dask chunks
  (chunked result = single-pass result).
- :mod:`._train`: training on simulated scans or on corrected labels.
- :mod:`._recipes`: training recipes (domain-randomized simulation; fine-tuning on corrected
  labels, :func:`fine_tune`, :func:`train_from_store`).
- :mod:`._data`, :mod:`._domain`: simulated training/evaluation scans with ground truth (fixed
  and randomized conditions).
- :mod:`._baselines`: multi-Otsu and a random-forest pixel classifier (scikit-image).
- :mod:`._metrics`: per-class Dice and IoU.

Axis order: volumes ``(z, y, x)``; probabilities ``(class, z, y, x)``. μ in 1/cm (any units
for the percentile-normalized default model).
"""

from ._baselines import (
    MULTIOTSU_CLASSES,
    RandomForestModel,
    fit_random_forest,
    multiotsu_segment,
    multiotsu_thresholds,
    random_forest_segment,
    rf_feature_depth,
    rf_features,
)
from ._data import SimVolume, simulate_volume, simulated_series
from ._heldout import HELDOUT_SCANS, TRAINING_SERIES
from ._infer import (
    InputDomainWarning,
    class_weights,
    labels_from_probabilities,
    predict_probabilities,
    segment,
    segment_dask,
    tile_geometry,
)
from ._metrics import dice_scores, mean_scores
from ._model import BUNDLED_MODELS, SegmentationModel, default_model_path, load_model, read_card, save_model
from ._normalize import check_input_domain, input_sample, input_stats
from ._recipes import fine_tune, train_from_simulation, train_from_store
from ._schema import DEFAULT_CLASSES, DEFAULT_SCHEMA, classes_to_labels, truth_to_labels
from ._train import UNLABELLED, TrainConfig, TrainingCancelled, TrainProgress, train_unet
from ._unet import UNet

__all__ = [
    "DEFAULT_SCHEMA", "DEFAULT_CLASSES", "classes_to_labels", "truth_to_labels",
    "UNet", "SegmentationModel", "load_model", "save_model", "read_card", "default_model_path", "BUNDLED_MODELS",
    "predict_probabilities", "labels_from_probabilities", "class_weights", "segment", "segment_dask", "tile_geometry",
    "check_input_domain", "input_sample", "input_stats", "InputDomainWarning",
    "TrainConfig", "train_unet", "TrainProgress", "TrainingCancelled", "UNLABELLED", "fine_tune",
    "train_from_store", "SimVolume", "simulate_volume", "simulated_series",
    "dice_scores", "mean_scores",
    "MULTIOTSU_CLASSES", "multiotsu_thresholds", "multiotsu_segment", "RandomForestModel", "rf_features",
    "rf_feature_depth", "fit_random_forest", "random_forest_segment",
    "train_from_simulation", "TRAINING_SERIES", "HELDOUT_SCANS",
]
