"""Import torchvision without paying for ``torch._dynamo`` (about 1.1-1.4 s of every command).

``torchvision.ops.roi_align`` runs ``from torch._dynamo.utils import is_compile_supported`` at
import time (torchvision 0.29), and ``torchvision.models`` imports ``torchvision.ops``. That one
line loads the whole compiler stack, although nothing here compiles anything: measured with
``python -X importtime``, 1.1 s of torchvision's 1.3 s import on a quiet 2-core box.

:func:`import_torchvision` imports torchvision while ``sys.modules`` holds a placeholder
``torch._dynamo.utils`` whose ``is_compile_supported`` forwards, on first call, to the real
function, then removes the placeholder: a later ``import torch._dynamo`` (``torch.compile``,
timm) loads the real package as usual. If torchvision needs anything else from the placeholder,
the import is undone and done the plain way, so the worst case is the old cost.
``SPECTRAL_PROBE_PLAIN_IMPORTS=1`` turns the shortcut off.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any

__all__ = ["import_torchvision"]

_PLACEHOLDERS = ("torch._dynamo", "torch._dynamo.utils")


def _is_compile_supported(*args: Any, **kwargs: Any) -> Any:
    """Forward to ``torch._dynamo.utils.is_compile_supported`` (imported on first use)."""
    from torch._dynamo.utils import is_compile_supported

    return is_compile_supported(*args, **kwargs)


def _plain() -> types.ModuleType:
    return importlib.import_module("torchvision")


def import_torchvision() -> types.ModuleType:
    """``import torchvision``, without importing ``torch._dynamo`` on the way when possible.

    Example:
        >>> import_torchvision().__name__
        'torchvision'
    """
    if (
        "torchvision" in sys.modules
        or "torch._dynamo" in sys.modules
        or os.environ.get("SPECTRAL_PROBE_PLAIN_IMPORTS")
    ):
        return _plain()
    import torch

    package = types.ModuleType("torch._dynamo")
    package.__path__ = []
    utils = types.ModuleType("torch._dynamo.utils")
    utils.is_compile_supported = _is_compile_supported  # type: ignore[attr-defined]
    package.utils = utils  # type: ignore[attr-defined]
    placeholders = {"torch._dynamo": package, "torch._dynamo.utils": utils}
    sys.modules.update(placeholders)
    try:
        module = importlib.import_module("torchvision")
    except (AttributeError, ImportError):
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        module = None
    finally:
        for name, placeholder in placeholders.items():
            if sys.modules.get(name) is placeholder:
                del sys.modules[name]
        if torch.__dict__.get("_dynamo") is package:
            del torch.__dict__["_dynamo"]
    return module if module is not None else _plain()
