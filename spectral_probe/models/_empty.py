"""Build an architecture without initialising it, when its weights are about to be overwritten.

Random initialisation of a large network costs seconds on a CPU (ResNet-50: ~1 s) and is thrown
away when a checkpoint supplies every tensor. :func:`build_empty` builds on PyTorch's ``meta``
device (shapes and dtypes, no memory, no initialisation); :func:`assign_state` then makes the
loaded tensors the module's parameters and buffers (``load_state_dict(assign=True)``), cast to
the dtype the architecture declares, exactly as a copying ``load_state_dict`` would hold them.

Whenever that cannot give the same model as a normal build followed by a copying load (the build
fails on ``meta``, parameters are tied, a buffer is not in the state dict), the helpers say so
and the caller builds normally.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import torch
from torch import nn

__all__ = ["build_empty", "can_assign", "assign_state", "has_meta_tensors"]

_T = TypeVar("_T")


#: ``torch.nn.init`` functions that :func:`build_empty` turns into no-ops while it builds.
_INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Make the ``torch.nn.init`` functions return their tensor untouched.

    On ``meta`` they would do nothing useful, yet the random ones dispatch through
    ``torch._refs``, whose wrapper imports ``torch._dynamo`` (about 1.5 s) on first use.
    """
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}

    def skip(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return tensor

    try:
        for name in saved:
            setattr(nn.init, name, skip)
        yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


def build_empty(build: Callable[[], _T]) -> _T | None:
    """Run ``build()`` on the meta device, with ``torch.nn.init`` switched off; ``None`` if it
    fails there (build normally then)."""
    try:
        with torch.device("meta"), _no_init():
            return build()
    except Exception:  # any failure on meta means: build the ordinary way
        return None


def has_meta_tensors(model: nn.Module) -> bool:
    """Whether any parameter or buffer of ``model`` still lives on the meta device."""
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def can_assign(model: nn.Module) -> bool:
    """Whether assigning a full state dict gives the same model as copying it into a built one.

    Not when parameters are tied (assignment would untie them) or when a tensor is not part of
    the state dict (a non-persistent buffer would stay on ``meta``).
    """
    params = list(model.named_parameters(remove_duplicate=False))
    if len({id(p) for _, p in params}) != len(params):
        return False
    keys = set(model.state_dict())
    named = [n for n, _ in params] + [n for n, _ in model.named_buffers(remove_duplicate=False)]
    return all(n in keys for n in named)


def assign_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Make the tensors of ``state`` those of a meta-built ``model`` (strict, dtype-preserving).

    Each tensor is cast to the dtype its target declares (a float16 file in a float32
    architecture becomes float32, as ``load_state_dict`` without ``assign`` would do).
    """
    target = model.state_dict()
    cast = {
        k: v.to(target[k].dtype) if k in target and v.dtype != target[k].dtype else v
        for k, v in state.items()
    }
    model.load_state_dict(cast, strict=True, assign=True)
