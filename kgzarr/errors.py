"""Exceptions raised by kgzarr.

Every error kgzarr raises on purpose derives from :class:`KgzarrError`. Where a
builtin exception fits, the subclass also inherits it, so ``except ValueError``
keeps working for callers that do not know kgzarr. Each class carries the exit
code the command-line interface uses for it: 2 for bad input or usage (the user
must change something), 1 for a failure while running.

Exception tree::

    KgzarrError
    ├── ConfigError (ValueError)                 bad option, config file or layer selection
    │   └── LayerSelectionError                  malformed layer_selection.yml
    ├── ModelFormatError (ValueError)            model file unreadable or inconsistent
    │   ├── UnsupportedModelVersion              version outside 8..17
    │   └── ModelFileNotFoundError (FileNotFoundError) model file missing
    ├── LayerNotFoundError (KeyError)            unknown layer name
    ├── InputShapeError (ValueError)             tensors of the wrong shape given to the network
    ├── PositionsFileError (ValueError)          a self-play .npz file is invalid
    ├── PositionsFolderError (FileNotFoundError) positions folder missing, empty or unreadable
    ├── SgfError (ValueError)                    a game in an SGF file is invalid
    ├── StoreError                               store problems
    │   ├── StoreFormatError (ValueError)        not a kgzarr store, or an incompatible format version
    │   ├── StoreLockedError                     another process writes the store
    │   └── SourceChangedError                   source files changed since ingest
    ├── OutputExistsError (FileExistsError)      results already present in the output folder
    ├── OutputWriteError (OSError)               writing results failed (disk full, permissions)
    ├── NonFiniteActivationError (ArithmeticError) the network produced NaN or inf
    ├── ConstantColumnError (ValueError)         an all-zero pooled column under --strict
    └── DeviceUnavailableError (RuntimeError)    requested torch device is not available
"""

from __future__ import annotations

__all__ = [
    "KgzarrError",
    "ConfigError",
    "LayerSelectionError",
    "ModelFormatError",
    "UnsupportedModelVersion",
    "ModelFileNotFoundError",
    "LayerNotFoundError",
    "InputShapeError",
    "PositionsFileError",
    "PositionsFolderError",
    "SgfError",
    "StoreError",
    "StoreFormatError",
    "StoreLockedError",
    "SourceChangedError",
    "OutputExistsError",
    "OutputWriteError",
    "NonFiniteActivationError",
    "ConstantColumnError",
    "DeviceUnavailableError",
]

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


class KgzarrError(Exception):
    """Base class of every error kgzarr raises on purpose."""

    exit_code: int = EXIT_FAILURE

    def __str__(self) -> str:
        # KeyError's own __str__ wraps the message in quotes; every kgzarr error
        # prints its message as written.
        return str(self.args[0]) if self.args else ""


class ConfigError(KgzarrError, ValueError):
    """An option, configuration file or argument combination is invalid."""

    exit_code = EXIT_BAD_INPUT


class LayerSelectionError(ConfigError):
    """A layer-selection YAML file is missing, malformed or lacks a key."""


class ModelFormatError(KgzarrError, ValueError):
    """A KataGo model file is truncated, corrupt or internally inconsistent."""

    exit_code = EXIT_BAD_INPUT


class UnsupportedModelVersion(ModelFormatError):
    """A KataGo model file declares a version kgzarr cannot read."""


class ModelFileNotFoundError(ModelFormatError, FileNotFoundError):
    """The model file to read does not exist or is not a regular file."""


class LayerNotFoundError(KgzarrError, KeyError):
    """A requested layer name is not produced by the network."""

    exit_code = EXIT_BAD_INPUT


class InputShapeError(KgzarrError, ValueError):
    """Input tensors given to the network have the wrong shape or channel count."""

    exit_code = EXIT_BAD_INPUT


class PositionsFileError(KgzarrError, ValueError):
    """A self-play training-data ``.npz`` file is invalid."""

    exit_code = EXIT_BAD_INPUT


class PositionsFolderError(KgzarrError, FileNotFoundError):
    """The positions folder is missing, empty or unreadable."""

    exit_code = EXIT_BAD_INPUT


class SgfError(KgzarrError, ValueError):
    """A game in an SGF file cannot be parsed or replayed."""

    exit_code = EXIT_BAD_INPUT


class StoreError(KgzarrError):
    """A positions store cannot be used as requested."""


class StoreFormatError(StoreError, ValueError):
    """A path is not a kgzarr store, or its format version is incompatible."""

    exit_code = EXIT_BAD_INPUT


class StoreLockedError(StoreError):
    """Another process holds the store's write lock."""


class SourceChangedError(StoreError):
    """Source files changed since they were ingested."""

    exit_code = EXIT_BAD_INPUT


class OutputExistsError(KgzarrError, FileExistsError):
    """The output folder already contains results and overwriting was not requested."""

    exit_code = EXIT_BAD_INPUT


class OutputWriteError(KgzarrError, OSError):
    """Writing an output file failed; nothing partial was left behind."""


class NonFiniteActivationError(KgzarrError, ArithmeticError):
    """The network produced NaN or infinity for a position."""


class ConstantColumnError(KgzarrError, ValueError):
    """A pooled column is all zero after the non-negative transform, and strict mode forbids it."""


class DeviceUnavailableError(KgzarrError, RuntimeError):
    """The requested torch device does not exist on this machine."""

    exit_code = EXIT_BAD_INPUT
