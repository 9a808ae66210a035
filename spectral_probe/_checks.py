"""Value checks shared by every package: one family of one-line errors, and ``as_matrix``.

Each check returns the value it accepted (as the type it checked), so it reads as a
conversion: ``k = check_int("bss.k", k, 1)``. A failed check raises a
:class:`~spectral_probe.errors.ConfigError` whose one line names the setting, what was
expected and what was found. :func:`as_matrix` is the one check of a feature matrix; it
raises :class:`~spectral_probe.errors.MatrixError` (a ``DataError`` and a ``ConfigError``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, MatrixError

if TYPE_CHECKING:
    import torch

__all__ = ["check_int", "check_float", "check_choice", "as_matrix"]

_INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8")


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an integer ``>= minimum`` (a bool is not an integer here).

    Example:
        >>> check_int("batch size", 4, 2)
        4
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"expected {name} to be an integer >= {minimum}, found {value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float = 0.0, *, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` if ``strict``).

    Example:
        >>> check_float("lr", 1, strict=True)
        1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"expected {name} to be a finite number, found {value!r}")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise ConfigError(f"expected {name} {op} {minimum:g}, found {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"expected {name} to be one of {', '.join(choices)}, found {value!r}")
    return str(value)


def as_matrix(
    values: Any,
    what: str = "features",
    *,
    dtype: torch.dtype | None = None,
    finite: bool = True,
    flatten: bool = False,
    detach: bool = True,
) -> torch.Tensor:
    """``values`` as a 2-D real tensor: one row per sample.

    Args:
        values: a tensor (kept on its device), a NumPy array or nested lists.
        what: names the matrix in the error message.
        dtype: cast to this dtype (e.g. ``torch.float64``); ``None`` keeps the tensor's own,
            which must then be floating-point (the training-step path: no copy).
        finite: also refuse NaN and Inf (one pass over the values).
        flatten: accept ``(N, ...)`` and flatten the trailing dimensions.
        detach: drop the autograd graph (keep it for a penalty computed in a training step).

    Raises:
        MatrixError: not 2-D (or, with ``flatten``, fewer than 2 dimensions), not real-valued,
            or (``finite``) holding NaN or Inf.

    Example:
        >>> import torch
        >>> as_matrix([[1, 2], [3, 4]], dtype=torch.float64).dtype
        torch.float64
    """
    import numpy as np
    import torch

    if isinstance(values, torch.Tensor):
        t = values.detach() if detach else values
    else:
        try:
            t = torch.as_tensor(np.ascontiguousarray(values))
        except (TypeError, ValueError, RuntimeError):
            raise MatrixError(
                f"expected {what} as a tensor or array, found {type(values).__name__}"
            ) from None
    if t.dim() != 2 and not (flatten and t.dim() > 2):
        raise MatrixError(f"expected {what} of shape (N, d), found shape {tuple(t.shape)}")
    if dtype is None and not t.is_floating_point():
        raise MatrixError(f"expected floating-point {what}, found dtype {t.dtype}")
    if not (t.is_floating_point() or str(t.dtype).removeprefix("torch.") in _INTEGER_DTYPES):
        raise MatrixError(f"expected real-valued {what}, found dtype {t.dtype}")
    if t.dim() > 2:
        t = t.reshape(t.shape[0], -1)
    if dtype is not None:
        t = t.to(dtype)
    if finite and not bool(torch.isfinite(t).all()):
        raise MatrixError(f"expected finite {what}, found NaN or Inf")
    return t
