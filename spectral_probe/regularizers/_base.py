"""Shared plumbing of the regularizers: the step context, the base class, checks and buffers.

Every regularizer is an :class:`torch.nn.Module` so that whatever it keeps (start-point
weights, channel attention, Fisher diagonals) is a registered buffer: it follows ``.to()``,
appears in ``state_dict()`` and is restored by ``load_state_dict()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = [
    "StepContext",
    "Regularizer",
    "Loader",
    "TensorStore",
    "hyperparameters_of",
    "unwrap_model",
    "resolve_head",
    "is_head_parameter",
    "split_start_point",
    "squared_distance",
]

#: Anything iterable that yields ``(inputs, targets)`` batches (a ``DataLoader``, a list).
Loader = Iterable[Any]


@dataclass
class StepContext:
    """What the engine hands every regularizer at each training step.

    Attributes:
        model: the network being fine-tuned (the bare module; a ``DistributedDataParallel``
            or ``torch.compile`` wrapper is unwrapped by the regularizers).
        head: dotted name of the new classifier module (e.g. ``"fc"``, ``"classifier"``).
        inputs: the batch given to ``model`` this step.
        targets: the labels of ``inputs``.
        logits: ``model(inputs)``.
        features: ``F``, tensor of shape ``(b, d)``: the input of ``head`` captured by the
            forward pre-hook of :class:`~spectral_probe.regularizers.FeatureCapture`, before
            ``transform_features``. ``None`` if the engine did not capture it.
    """

    model: nn.Module
    head: str
    inputs: Tensor
    targets: Tensor
    logits: Tensor
    features: Tensor | None = None


class Regularizer(nn.Module):
    """Base class: one fine-tuning regularizer.

    Subclasses set :attr:`name`, take their hyperparameters as keyword-only ``__init__``
    arguments with the paper defaults (the registry reads them from the signature), store
    only parameters in ``__init__`` and build their state in :meth:`prepare`.

    Engine protocol: ``prepare`` once before training, then every step ``penalty(ctx)`` is
    added to the task loss; ``transform_features`` is applied to the head's input by the
    forward pre-hook; ``weight_decay`` tells the optimizer's parameter groups what decay to use.
    """

    name: ClassVar[str] = ""
    #: True if :meth:`penalty` reads ``ctx.features`` (the engine must capture them).
    needs_features: ClassVar[bool] = False
    #: True if :meth:`prepare` needs ``loader=`` (DELTA's attention, EWC's Fisher).
    needs_loader: ClassVar[bool] = False

    @property
    def has_penalty(self) -> bool:
        """Whether :meth:`penalty` can be non-zero (False for TSVD and optimizer-side L2)."""
        return True

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` (one per name of :func:`hyperparameters_of`) checked and normalised.

        What an instance built with ``values`` would hold, computed without building it: a
        method string is checked this way (:func:`~spectral_probe.regularizers.parse_method`)
        and ``__init__`` stores the result. Subclasses with hyperparameters override it.

        Raises:
            ConfigError: a value out of range (one line naming ``NAME.HP``).
        """
        return dict(values)

    def prepare(
        self,
        model: nn.Module,
        *,
        head: str,
        reference: nn.Module | Mapping[str, Tensor] | None = None,
        loader: Loader | None = None,
    ) -> None:
        """Build the state kept for training (called once, before the first step).

        Args:
            model: the network to fine-tune, new head attached, at its start point.
            head: dotted name of the new head module.
            reference: the pre-trained network (module or state dict) when it differs from
                ``model``'s current weights; ``None`` means ``model`` as it is now.
            loader: training batches ``(inputs, targets)`` for data-dependent state.
        """
        resolve_head(model, head)

    def penalty(self, ctx: StepContext) -> Tensor:
        """The scalar added to the loss this step (0-d tensor)."""
        return _zero_like_model(ctx.model)

    def transform_features(self, features: Tensor) -> Tensor:
        """Replace the head's input; the identity except for TSVD."""
        return features

    def weight_decay(self, name: str, param: Tensor, *, head: str) -> float:
        """Weight decay for ``param`` in the optimizer (non-zero only for optimizer-side L2)."""
        return 0.0

    def forward(self, ctx: StepContext) -> Tensor:
        return self.penalty(ctx)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in hyperparameters_of(type(self)))


def hyperparameters_of(cls: type[Regularizer]) -> dict[str, Any]:
    """The keyword-only ``__init__`` arguments of ``cls`` with their defaults, in order."""
    sig = inspect.signature(cls.__init__)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


class TensorStore(nn.Module):
    """A dict of buffers keyed by parameter names (dots allowed), saved in ``state_dict``.

    Buffer names cannot contain ``.``, so a key ``layer1.0.conv1.weight`` is stored as
    ``layer1/0/conv1/weight``. Keys found in a loaded state dict are created on the fly, so a
    store can be restored before (or without) :meth:`Regularizer.prepare`.
    """

    def __setitem__(self, key: str, value: Tensor) -> None:
        name = key.replace(".", "/")
        if name in self._buffers:
            self._buffers[name] = value
        else:
            self.register_buffer(name, value)

    def __getitem__(self, key: str) -> Tensor:
        value = self._buffers[key.replace(".", "/")]
        if value is None:  # pragma: no cover - never stored
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.replace(".", "/") in self._buffers

    def __len__(self) -> int:
        return len(self._buffers)

    def keys(self) -> list[str]:
        """The stored keys, in insertion order, with their dots."""
        return [k.replace("/", ".") for k in self._buffers]

    def items(self) -> Iterator[tuple[str, Tensor]]:
        """``(key, tensor)`` pairs in insertion order."""
        for k, v in self._buffers.items():
            if v is not None:
                yield k.replace("/", "."), v

    def clear(self) -> None:
        """Drop every stored tensor."""
        self._buffers.clear()

    def extra_repr(self) -> str:
        return f"{len(self)} tensors"

    def _load_from_state_dict(  # type: ignore[override]
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        for key, value in state_dict.items():
            if key.startswith(prefix):
                name = key[len(prefix) :]
                if "." not in name and name not in self._buffers:
                    self.register_buffer(name, torch.empty_like(value))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside ``DistributedDataParallel``/``DataParallel``/``torch.compile``."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def resolve_head(model: nn.Module, head: str) -> nn.Module:
    """The head module named ``head``, or :class:`ConfigError` naming the top-level modules."""
    model = unwrap_model(model)
    try:
        module = model.get_submodule(head) if head else None
    except AttributeError:
        module = None
    if module is None or module is model:
        names = ", ".join(n for n, _ in model.named_children()) or "none"
        raise ConfigError(
            f"expected head to name a submodule of the model (top-level modules: {names}), "
            f"found {head!r}"
        )
    return module


def is_head_parameter(name: str, head: str) -> bool:
    """Whether the parameter ``name`` belongs to the module ``head``."""
    return name == head or name.startswith(head + ".")


def _reference_tensors(
    reference: nn.Module | Mapping[str, Tensor] | None, model: nn.Module
) -> Mapping[str, Tensor]:
    if reference is None:
        return dict(model.named_parameters())
    if isinstance(reference, nn.Module):
        return dict(unwrap_model(reference).named_parameters())
    if isinstance(reference, Mapping):
        return reference
    raise ConfigError(
        f"expected reference to be a module, a state dict or None, found {type(reference).__name__}"
    )


def split_start_point(
    model: nn.Module,
    head: str,
    reference: nn.Module | Mapping[str, Tensor] | None,
) -> tuple[dict[str, Tensor], list[str]]:
    """Split trainable parameters into shared ones (with a start point) and new ones.

    A parameter is *shared* when it is outside ``head`` and ``reference`` (default: ``model``
    as it is now) holds a tensor of the same name and shape; its start point is a detached
    copy of that tensor in the parameter's dtype and device. Every other trainable parameter
    (the head, and any module added to the backbone) is *new*.

    Returns:
        ``(start, new)``: start points keyed by parameter name, and the new parameters' names.
    """
    model = unwrap_model(model)
    resolve_head(model, head)
    ref = _reference_tensors(reference, model)
    start: dict[str, Tensor] = {}
    new: list[str] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        r = ref.get(name)
        if is_head_parameter(name, head) or r is None or tuple(r.shape) != tuple(param.shape):
            new.append(name)
        else:
            start[name] = r.detach().to(device=param.device, dtype=param.dtype).clone()
    if not start and reference is not None:
        raise ConfigError(
            "expected the reference to share parameter names and shapes with the model, "
            "found none in common"
        )
    return start, new


def squared_distance(params: Sequence[Tensor], refs: Sequence[Tensor] | None = None) -> Tensor:
    """``sum_i ||params[i] - refs[i]||^2`` (or ``sum_i ||params[i]||^2``), with autograd.

    Uses the fused multi-tensor ``torch._foreach_*`` kernels when every tensor shares a device
    and dtype (one launch instead of one per tensor on GPU); a plain loop otherwise.
    """
    if not params:
        return torch.zeros(())
    ps, rs = list(params), None if refs is None else list(refs)
    same = len({(p.device, p.dtype) for p in ps + (rs or [])}) == 1
    if same:
        diffs = torch._foreach_sub(ps, rs) if rs is not None else ps
        norms = torch._foreach_norm(diffs)
        return torch.stack(norms).square().sum()
    total = ps[0].new_zeros((), dtype=torch.float32)
    for i, p in enumerate(ps):
        d = p if rs is None else p - rs[i].to(p.dtype)
        total = total + d.float().square().sum()
    return total


def _zero_like_model(model: nn.Module) -> Tensor:
    p = next(iter(model.parameters()), None)
    return torch.zeros((), device=p.device if p is not None else None)
