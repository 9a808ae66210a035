"""Optional dependencies: import one, or fail with one line naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["require_extra"]


def require_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise :class:`~spectral_probe.errors.MissingExtraError`.

    Args:
        module: the module to import (``"tensorboard"``, ``"mlflow"``, ``"lightning"``).
        extra: the package extra that installs it (``pip install 'spectral-probe[EXTRA]'``).
        what: what needs it, for the message (``"--log tensorboard"``).

    Example:
        >>> require_extra("json", "none", "a doctest").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"expected the package {module!r} for {what} (pip install 'spectral-probe[{extra}]'), "
            "found it not installed"
        ) from None
