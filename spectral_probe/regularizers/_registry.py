"""The registry of regularizers, their composition with ``+``, and the composite module.

Adding a regularizer is one file (a :class:`Regularizer` subclass decorated with
:func:`register_regularizer`) plus one import line in ``regularizers/__init__.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ._base import (
    Loader,
    Regularizer,
    StepContext,
    hyperparameters_of,
    resolve_head,
    unwrap_model,
)

__all__ = [
    "Method",
    "RegularizerInfo",
    "RegularizerSet",
    "register_regularizer",
    "build_regularizer",
    "parse_method",
    "list_regularizers",
    "hyperparameters_of",
]

_REGISTRY: dict[str, type[Regularizer]] = {}
R = TypeVar("R", bound=type[Regularizer])


def register_regularizer(cls: R) -> R:
    """Class decorator: make ``cls`` buildable by its ``name``."""
    name = getattr(cls, "name", "")
    if not name or "+" in name or name != name.strip().lower():
        raise ValueError(f"regularizer name must be lower-case without '+', found {name!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"regularizer {name!r} is already registered")
    _REGISTRY[name] = cls
    return cls


@dataclass(frozen=True)
class RegularizerInfo:
    """One registered regularizer, for CLI choices and docs.

    Attributes:
        name: the name used in specs (``"l2-sp"``).
        summary: first line of the class docstring.
        hyperparameters: hyperparameter names mapped to their (paper) defaults.
        needs_features: whether the engine must capture the head's input.
        needs_loader: whether ``prepare`` needs ``loader=``.
    """

    name: str
    summary: str
    hyperparameters: Mapping[str, Any]
    needs_features: bool
    needs_loader: bool


def list_regularizers() -> list[RegularizerInfo]:
    """Every registered regularizer, sorted by name.

    Examples:
        >>> from spectral_probe.regularizers import list_regularizers
        >>> [r.name for r in list_regularizers()]
        ['bss', 'delta', 'ewc', 'l2', 'l2-sp', 'tsvd']
        >>> dict(next(r for r in list_regularizers() if r.name == "bss").hyperparameters)
        {'eta': 0.001, 'k': 1, 'precision': 'auto', 'gather': False}
    """
    out = []
    for name in sorted(_REGISTRY):
        cls = _REGISTRY[name]
        doc = inspect.getdoc(cls) or ""
        out.append(
            RegularizerInfo(
                name=name,
                summary=doc.splitlines()[0] if doc else "",
                hyperparameters=hyperparameters_of(cls),
                needs_features=cls.needs_features,
                needs_loader=cls.needs_loader,
            )
        )
    return out


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """Turn CLI strings into the type of the default (bool, int, float); others unchanged."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = type(default).__name__
        raise ConfigError(f"expected {method}.{key} to be a {kind}, found {value!r}") from None
    return value


def _parse_spec(spec: str) -> list[str]:
    names = [part.strip().lower() for part in spec.split("+")]
    if spec.strip().lower() in ("", "none"):
        return []
    valid = ", ".join(sorted(_REGISTRY))
    for name in names:
        if name not in _REGISTRY:
            raise ConfigError(
                f"expected regularizers from {valid} joined by '+' (or 'none'), "
                f"found {name!r} in {spec!r}"
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"expected each regularizer once in {spec!r}, found {dup[0]!r} twice")
    return names


@dataclass(frozen=True)
class Method:
    """A parsed method string: its terms in order and each term's checked hyperparameters.

    What :func:`parse_method` returns. Nothing is built: :meth:`build` makes the modules,
    which only the training engine needs.

    Attributes:
        names: the terms' registered names, in spec order (empty for ``"none"``).
        hyperparameters: per term, every hyperparameter with the value its module will hold
            (the default where none was given; checked and normalised by the class's
            :meth:`~Regularizer.check_hyperparameters`).
    """

    names: tuple[str, ...]
    hyperparameters: Mapping[str, Mapping[str, Any]]

    @property
    def spec(self) -> str:
        """The canonical method string: ``"l2-sp+bss"``, or ``"none"``."""
        return "+".join(self.names) or "none"

    def qualified(self) -> dict[str, Any]:
        """Every hyperparameter as ``{"TERM.NAME": value}``, in spec order."""
        return {f"{n}.{k}": v for n in self.names for k, v in self.hyperparameters[n].items()}

    def build(self) -> RegularizerSet:
        """The modules, one per term, with these hyperparameters."""
        return RegularizerSet([_REGISTRY[n](**self.hyperparameters[n]) for n in self.names])


def parse_method(spec: str, **hparams: Any) -> Method:
    """Parse ``spec`` (``"l2-sp+bss"``; ``"none"`` for none) and route ``hparams`` to its terms.

    Hyperparameters are routed by name: ``eta=0.01`` goes to every term that has an ``eta``;
    a qualified key ``**{"bss.eta": 0.01}`` goes to that term only. String values (from a
    command line) are converted to the type of the default. Every value is checked as the
    module would check it, but no module is built.

    Raises:
        ConfigError: an unknown method, a repeated one, an unknown hyperparameter (the message
            lists the valid ones) or a value out of range.

    Examples:
        >>> from spectral_probe.regularizers import parse_method
        >>> method = parse_method(" L2-SP+bss ", eta=0.01, beta="0.1")
        >>> method.spec, method.hyperparameters["bss"]["eta"], method.qualified()["l2-sp.beta"]
        ('l2-sp+bss', 0.01, 0.1)
    """
    if not isinstance(spec, str):
        raise ConfigError(f"expected a regularizer spec string like 'l2-sp+bss', found {spec!r}")
    names = _parse_spec(spec)
    per_term: dict[str, dict[str, Any]] = {n: {} for n in names}
    signatures = {n: hyperparameters_of(_REGISTRY[n]) for n in names}
    for key, value in hparams.items():
        method, _, hp = key.rpartition(".")
        targets = [method] if method else [n for n in names if hp in signatures[n]]
        if (
            (method and method not in names)
            or not targets
            or any(hp not in signatures[t] for t in targets)
        ):
            valid = [f"{n}.{h}" for n in names for h in signatures[n]]
            plain = sorted({h for n in names for h in signatures[n]})
            raise ConfigError(
                f"expected hyperparameters of {spec!r} from {', '.join(plain) or 'none'} "
                f"(or qualified: {', '.join(valid) or 'none'}), found {key!r}"
            )
        for t in targets:
            per_term[t][hp] = _coerce(t, hp, value, signatures[t][hp])
    checked = {
        n: _REGISTRY[n].check_hyperparameters({**signatures[n], **per_term[n]}) for n in names
    }
    return Method(tuple(names), checked)


def build_regularizer(spec: str, **hparams: Any) -> RegularizerSet:
    """Build the regularizers named in ``spec``: :func:`parse_method` then :meth:`Method.build`.

    Raises:
        ConfigError: as :func:`parse_method`.

    Examples:
        >>> from spectral_probe.regularizers import build_regularizer
        >>> reg = build_regularizer("l2-sp+bss", eta=0.01, beta="0.1")
        >>> reg.names, reg["bss"].eta, reg["l2-sp"].beta
        (['l2-sp', 'bss'], 0.01, 0.1)
    """
    return parse_method(spec, **hparams).build()


class RegularizerSet(nn.Module):
    """Several regularizers applied together; what :func:`build_regularizer` returns.

    ``penalty`` sums the terms, ``forward`` also returns a per-term breakdown for logging,
    ``transform_features`` chains the terms' transforms and ``param_groups`` builds the
    optimizer groups (with the weight decay of an optimizer-side ``l2``).

    Examples:
        >>> import torch
        >>> from spectral_probe.regularizers import StepContext, build_regularizer
        >>> nn = torch.nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> reg = build_regularizer("l2-sp+bss")
        >>> reg.prepare(model, head="2")
        >>> x = torch.randn(5, 4); f = model[:2](x)
        >>> ctx = StepContext(model, "2", x, torch.zeros(5, dtype=torch.long), model[2](f), f)
        >>> total, parts = reg(ctx)
        >>> sorted(parts), total.shape
        (['bss', 'l2-sp'], torch.Size([]))
    """

    def __init__(self, terms: list[Regularizer]) -> None:
        super().__init__()
        self.terms = nn.ModuleDict({t.name: t for t in terms})

    @property
    def names(self) -> list[str]:
        """The terms' names, in spec order."""
        return list(self.terms.keys())

    def __getitem__(self, name: str) -> Regularizer:
        return self.terms[name]  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self):  # type: ignore[override]
        return iter(self.terms.values())

    @property
    def needs_features(self) -> bool:
        """Whether any term reads ``ctx.features``."""
        return any(t.needs_features for t in self)

    @property
    def needs_loader(self) -> bool:
        """Whether any term's ``prepare`` needs ``loader=``."""
        return any(t.needs_loader for t in self)

    def prepare(
        self,
        model: nn.Module,
        *,
        head: str,
        reference: nn.Module | Mapping[str, Tensor] | None = None,
        loader: Loader | None = None,
    ) -> None:
        """Call every term's :meth:`Regularizer.prepare` (see there)."""
        resolve_head(model, head)
        for term in self:
            term.prepare(model, head=head, reference=reference, loader=loader)

    def penalties(self, ctx: StepContext) -> dict[str, Tensor]:
        """Each term's penalty (with autograd), for the terms that add one."""
        return {t.name: t.penalty(ctx) for t in self if t.has_penalty}

    def penalty(self, ctx: StepContext) -> Tensor:
        """The sum of the terms' penalties (a 0-d tensor; zero if none adds one)."""
        return self(ctx)[0]

    def forward(self, ctx: StepContext) -> tuple[Tensor, dict[str, Tensor]]:  # type: ignore[override]
        """``(total, breakdown)``: the penalty to add to the loss and each term detached."""
        parts = self.penalties(ctx)
        if not parts:
            p = next(iter(ctx.model.parameters()), None)
            return torch.zeros((), device=p.device if p is not None else None), {}
        values = list(parts.values())
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total, {k: v.detach() for k, v in parts.items()}

    def transform_features(self, features: Tensor) -> Tensor:
        """The terms' ``transform_features`` applied in spec order."""
        for term in self:
            features = term.transform_features(features)
        return features

    def weight_decay(self, name: str, param: Tensor, *, head: str) -> float:
        """Sum of the terms' optimizer weight decay for ``param``."""
        return sum(t.weight_decay(name, param, head=head) for t in self)

    def param_groups(self, model: nn.Module, *, head: str) -> list[dict[str, Any]]:
        """Optimizer parameter groups: trainable parameters split by head/backbone and decay.

        Each group is ``{"params": [...], "weight_decay": float, "head": bool}``; the engine
        adds its learning rate per group (e.g. 10x on ``head`` groups) and passes the list to
        ``torch.optim.SGD``. With ``l2`` (optimizer mode) the groups carry ``weight_decay =
        alpha``, which for SGD (and Adam, not AdamW) is exactly the gradient of the penalty.
        """
        model = unwrap_model(model)
        resolve_head(model, head)
        groups: dict[tuple[bool, float], list[Tensor]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            is_head = name == head or name.startswith(head + ".")
            wd = float(self.weight_decay(name, param, head=head))
            groups.setdefault((is_head, wd), []).append(param)
        return [
            {"params": params, "weight_decay": wd, "head": is_head}
            for (is_head, wd), params in sorted(groups.items(), key=lambda kv: kv[0])
        ]

    def extra_repr(self) -> str:
        return "+".join(self.names) or "none"
