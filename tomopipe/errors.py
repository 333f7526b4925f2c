"""Exception classes of tomopipe.

Every error raised for bad input names the file, HDF5 key, or parameter at fault, so that a
beamline user can fix the input without reading a traceback.  All classes derive from
:class:`TomopipeError`; each also derives from the built-in exception a Python user would
expect (``KeyError``, ``ValueError``, ``OSError``) so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "TomopipeError",
    "InputFileError",
    "MissingKeyError",
    "TruncatedFileError",
    "ShapeMismatchError",
    "InvalidFlatError",
    "AngleUnitError",
    "ConfigError",
    "StageError",
    "ModelError",
    "InvalidDataError",
    "StoreLockedError",
    "SchedulerError",
    "TomopipeWarning",
]


class TomopipeError(Exception):
    """Base class of all tomopipe errors."""


class InputFileError(TomopipeError, OSError):
    """An input file cannot be opened or read (the message names the file)."""


class MissingKeyError(TomopipeError, KeyError):
    """A required key (HDF5 dataset, NeXus field) is missing from an input file.

    Parameters
    ----------
    path : str
        The file.
    key : str
        The key that was looked for (and the fallbacks tried, if any).
    """

    def __init__(self, path, key, tried=()):
        self.path = str(path)
        self.key = key
        self.tried = tuple(tried)
        msg = f"{self.path}: required key {key!r} not found"
        if self.tried:
            msg += f" (also tried {', '.join(repr(t) for t in self.tried)})"
        super().__init__(msg)

    def __str__(self):  # KeyError would repr() the message otherwise
        return self.args[0]


class TruncatedFileError(InputFileError):
    """An input file ends early or is corrupt (the message names the file)."""


class ShapeMismatchError(TomopipeError, ValueError):
    """Two arrays that must agree in shape do not (the message names both)."""


class InvalidFlatError(TomopipeError, ValueError):
    """Flat (or dark) fields unusable for normalization: zero, negative, or NaN."""


class AngleUnitError(TomopipeError, ValueError):
    """Angles given in degrees where radians are due (or vice versa)."""


class ConfigError(TomopipeError, ValueError):
    """A workflow file is invalid: unknown key, wrong unit, bad value (message names it)."""


class StageError(TomopipeError, RuntimeError):
    """A pipeline stage failed or its store is inconsistent."""


class ModelError(TomopipeError, ValueError):
    """A segmentation model file is unusable: not safetensors, no or invalid model card,
    checksum mismatch, or weights that do not match the card's classes or architecture."""


class InvalidDataError(TomopipeError, ValueError):
    """Input values that cannot give a meaningful result: NaN angles, projections that are all
    NaN or all zero (the message names the file and the frames)."""


class StoreLockedError(TomopipeError, RuntimeError):
    """Another process is writing the store (the message names its host, pid and start time)."""


class SchedulerError(TomopipeError, ConnectionError):
    """A dask scheduler or cluster cannot be reached or started (the message names it)."""


class TomopipeWarning(UserWarning):
    """Something the user should check, though the run can go on (e.g. angles without a unit
    attribute whose unit was decided from their values)."""
