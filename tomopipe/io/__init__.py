"""Streaming readers and a writer of raw tomography scans.

Readers return a :class:`RawScan` of lazy dask arrays (projections, flats, darks in the file
dtype, axis order (angle, row, col)) and angles in radians.  No reader loads a projection
stack: chunks are read from the file when computed, by picklable slicers that open the file
themselves, so the graphs also run on dask.distributed workers.

Formats: Data Exchange HDF5 (:func:`read_dxchange`, :func:`write_dxchange`), NeXus NXtomo
(:func:`read_nxtomo`), TIFF series (:func:`read_tiff_series`); :func:`read_scan` dispatches
on the file suffix. :func:`frame_defects` flags frames without a measurement;
:func:`read_volume` opens a reconstructed volume (TIFF stack, HDF5/NeXus, zarr/OME-Zarr, .npy);
:func:`write_pyramid` writes an OME-Zarr (NGFF) multiscale pyramid of a stored volume.
"""

from ._dispatch import read_scan
from ._dxchange import read_dxchange, write_dxchange
from ._nxtomo import read_nxtomo
from ._ngff import multiscales_metadata, write_pyramid
from ._scan import RawScan, frame_defects
from ._tiff import read_tiff_series, read_tiff_stack
from ._volume import VOLUME_FORMATS, VolumeSource, read_volume

__all__ = [
    "RawScan",
    "read_scan",
    "read_dxchange",
    "write_dxchange",
    "read_nxtomo",
    "read_tiff_series",
    "frame_defects",
    "read_tiff_stack",
    "read_volume",
    "VolumeSource",
    "VOLUME_FORMATS",
    "write_pyramid",
    "multiscales_metadata",
]
