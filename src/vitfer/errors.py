"""Every error that means bad input or a request vitfer cannot carry out, in one place, by meaning.

The command line prints such an error as one line naming the input and exits with status 2; anything else
is a bug and keeps its traceback. Each class also stays a ValueError (RuntimeError where something that should
exist could not be made) for callers that catch those.
"""

from __future__ import annotations


class VitferError(Exception):
    """Bad input or an impossible request; the message names the input."""


# --- what the user asked for -------------------------------------------------------------------------------
class ArgumentError(VitferError, ValueError):
    """A command-line or API argument that names nothing usable or is out of range."""


class ConfigError(VitferError, ValueError):
    """A configuration key or value that vitfer does not know."""


class DeviceError(VitferError, RuntimeError):
    """A device (``cuda``, ``cuda:1``) that was asked for and is not there."""


class ExtraMissing(VitferError, RuntimeError):
    """A feature of an optional extra (``vitfer[train]``, ``vitfer[serve]``) that is not installed."""


# --- inputs -------------------------------------------------------------------------------------------------
class SourceError(VitferError, ValueError):
    """An input that cannot be read: a missing file, a corrupt image, an unreadable video, no webcam."""


class ImageTooLarge(SourceError):
    """An image over the pixel limit, refused before (or instead of) decoding it."""


class DataError(VitferError, ValueError):
    """A data set that cannot be read as asked (layout, labels, splits, votes)."""


class LabelError(VitferError, ValueError):
    """A class name that vitfer's label sets do not know."""


# --- models and the files they come in --------------------------------------------------------------------
class ModelError(VitferError, ValueError):
    """A model reference, model file or architecture that cannot be used."""


class WeightImportError(VitferError, RuntimeError):
    """Pretrained weights (a TFLite graph, a state dict) that cannot be imported into a model."""


class DetectorError(VitferError, RuntimeError):
    """A face detector that cannot be created (missing or corrupt model file, failed download)."""


class DownloadError(VitferError, ValueError):
    """A file fetched by name that could not be downloaded or failed its checksum."""


class ExplainError(VitferError, ValueError):
    """An explanation method that cannot run on the given model."""


# --- outputs ------------------------------------------------------------------------------------------------
class OutputError(VitferError, ValueError):
    """An output path that cannot be written as asked (exists, or lies under a file)."""
