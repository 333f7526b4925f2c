"""npe2 reader: a tomopipe store (a ``.zarr`` folder) opens as its volume and segmentation."""

from __future__ import annotations

from ._store import is_store, open_store

__all__ = ["get_reader", "read_store"]


def get_reader(path):
    """napari reader hook: a reader for a tomopipe store, None for anything else (never raises)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    return read_store if is_store(path) else None


def read_store(path):
    """Layer tuples of a store (:meth:`StoreView.layers`); notes (e.g. no segmentation) are shown."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    view = open_store(path)
    if view.notes:
        from napari.utils.notifications import show_warning

        for note in view.notes:
            show_warning(note)
    layers = view.layers()
    if layers:
        layers[0][1]["metadata"]["notes"] = list(view.notes)
    return layers
