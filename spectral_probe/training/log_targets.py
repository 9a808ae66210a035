"""The names of the experiment trackers a run can feed (``--log``), and their check.

They live apart from the trackers themselves (:mod:`~spectral_probe.training.loggers`) so that
a config can check its ``log`` field without importing the hooks that write to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError

__all__ = ["LOGGERS", "check_loggers"]

#: The ``--log`` targets, each with the package extra it needs (``None``: none).
LOGGERS: dict[str, str | None] = {"tensorboard": "tensorboard", "mlflow": "mlflow", "csv": None}


def check_loggers(names: Iterable[Any]) -> tuple[str, ...]:
    """``names`` as a tuple without duplicates, each one of :data:`LOGGERS`.

    Raises:
        ConfigError: an unknown name (one line listing the known ones).
    """
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"expected log targets from {sorted(LOGGERS)}, found {name!r}")
        if name not in out:
            out.append(name)
    return tuple(out)
