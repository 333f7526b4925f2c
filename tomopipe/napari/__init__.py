"""napari plugin of tomopipe: open a run's store, review the segmentation where it is least sure,
correct it, fine-tune the model and segment again.

The plugin (npe2 manifest ``napari.yaml``: a reader for stores, the Review, Fine-tune and
Measure widgets) needs ``pip install "tomopipe[napari]"``. The logic lives in Qt-free
functions, importable without napari:

- :func:`open_store` / :class:`StoreView`: a store as lazy layers (multiscale volume in µm,
  labels with the schema's names and colours, probabilities, :func:`uncertainty`);
- :func:`rank_tiles`, :func:`class_counts`, :func:`view_region`: review;
- :func:`save_corrections` (``corrections/vNNN``), :func:`resegment` (``segmentations/vNNN``):
  versioned writes through the pipeline's stage pattern, under the store lock;
- :func:`finetune`: fine-tuning on a corrections version, the model written beside the store;
- :func:`layer_profile`: per-layer porosity and phase fractions.

Axes ``(z, y, x)``; layer scales in µm.
"""

from ._finetune import FinetuneCancelled, FinetuneResult, finetune, models_folder, reviewed_box
from ._measure import layer_profile, plot_profile, write_profile_csv
from ._review import class_counts, rank_tiles, tile_slices, view_region
from ._schema import NOT_REVIEWED, OUTSIDE, Schema, label_colours, label_schema
from ._store import StoreView, contrast_limits, is_store, list_versions, open_store, uncertainty
from ._versions import CORRECTIONS, SEGMENTATIONS, check_corrections, resegment, save_corrections

__all__ = [
    "open_store", "StoreView", "is_store", "contrast_limits", "uncertainty", "list_versions",
    "rank_tiles", "class_counts", "view_region", "tile_slices",
    "check_corrections", "save_corrections", "resegment", "CORRECTIONS", "SEGMENTATIONS",
    "finetune", "FinetuneResult", "FinetuneCancelled", "models_folder", "reviewed_box",
    "layer_profile", "write_profile_csv", "plot_profile",
    "Schema", "label_schema", "label_colours", "NOT_REVIEWED", "OUTSIDE",
    "view",
]


def view(store, *, viewer=None):
    """Open napari on `store` with the Review, Fine-tune and Measure widgets (needs napari)."""
    from ._widgets import view as _view

    return _view(store, viewer=viewer)
