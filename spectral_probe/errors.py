"""Errors a user can cause and fix.

Every error raised for bad input derives from :class:`SpectralProbeError` (itself a
``ValueError``). Its message is one line that says what was expected and what was found;
the CLI prints exactly that line and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "SpectralProbeError",
    "ModelSpecError",
    "CheckpointError",
    "UnsafeCheckpointError",
    "NoSharedLayersError",
    "DataError",
    "NonFiniteFeaturesError",
    "MatrixError",
    "ConfigError",
    "OutputError",
    "TrainingDivergedError",
    "MissingExtraError",
]


class SpectralProbeError(ValueError):
    """Base class of the toolkit's user-facing errors (one-line message)."""


class ModelSpecError(SpectralProbeError):
    """A model spec string that cannot be parsed or resolved."""


class CheckpointError(SpectralProbeError):
    """A checkpoint file that is missing, truncated, corrupt or of an unknown layout."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that could only be read by unpickling arbitrary Python objects."""


class NoSharedLayersError(SpectralProbeError):
    """Two models with no layer of the same name and shape."""


class DataError(SpectralProbeError):
    """A dataset spec, root, split or sampling request that cannot be satisfied."""


class NonFiniteFeaturesError(SpectralProbeError):
    """Feature matrices holding NaN or Inf (a broken checkpoint, or an overflow under AMP)."""


class ConfigError(SpectralProbeError):
    """A configuration value outside its allowed range or an unknown option."""


class MatrixError(DataError, ConfigError):
    """A feature matrix of the wrong shape, dtype or values (``_checks.as_matrix``).

    Both a :class:`DataError` (the data given to a score or metric) and a
    :class:`ConfigError` (the settings that fed a regularizer such features), so callers of
    either kind catch it.
    """


class OutputError(SpectralProbeError):
    """An output location that cannot be written."""


class TrainingDivergedError(SpectralProbeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class MissingExtraError(SpectralProbeError, ImportError):
    """An optional dependency (a ``pip install 'spectral-probe[EXTRA]'`` extra) is not installed.

    Also an ``ImportError``, so ``except ImportError`` around an optional import catches it.
    """
