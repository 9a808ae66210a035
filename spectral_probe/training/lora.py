r"""LoRA fine-tuning in the one training loop: peft's adapters on a task's model.

A run whose config holds ``lora = {rank = R, ...}`` trains, instead of every weight, a
low-rank update of each targeted matrix (peft's ``LoraLayer``):

.. math::

    W = W_0 + s\,B A, \qquad B \in \mathbb{R}^{m \times r},\ A \in \mathbb{R}^{r \times n},
    \qquad s = \alpha / r \ \ (\text{rsLoRA: } s = \alpha / \sqrt{r})

with ``B = 0`` at the start, so the run starts from the pre-trained model. The model is
wrapped by ``peft.get_peft_model`` before the optimizer is built; the training loop,
regularizers and evaluation are unchanged.

What is adapted, what trains:

- **targets**: every ``nn.Linear`` and every ungrouped ``nn.Conv2d`` outside the head whose
  dotted name matches ``targets`` (a regular expression, ``re.search``; default: all).
  Grouped and depthwise convolutions (``groups > 1``) are **never** targeted: peft 0.22
  accepts them only when ``r`` is a multiple of ``groups`` and cannot merge them
  (``peft/tuners/lora/layer.py``, ``_ConvNd.merge``), so they stay frozen. So do subclasses
  of ``nn.Conv2d`` such as timm's ``Conv2dSame`` (its "same" padding, e.g. EfficientNet's
  strided stem): peft builds ``lora_A`` as ``type(base_layer)(..., padding_mode=...)``,
  which they do not accept.
- **the new head** trains in full (peft's ``modules_to_save``), as in every other run.
- **normalisation layers with running statistics** (BatchNorm) are also in
  ``modules_to_save``, with their affine weights frozen: their running statistics follow
  the new data exactly as in full fine-tuning, and the saved adapter holds them, so base +
  adapter reproduces the run's model.
- everything else is frozen.

A finished run writes ``adapter/`` (peft's ``save_pretrained``: ``adapter_config.json`` and
``adapter_model.safetensors``) and, as every run, ``model.safetensors``: here the merged
model, equal to peft's ``merge_and_unload``, so ``compare-weights BASE RUN/model.safetensors``
compares it like a full fine-tune.

Example:
    >>> from spectral_probe.training.lora import resolve_lora
    >>> resolve_lora({"rank": 8})
    {'rank': 8, 'alpha': 8, 'rslora': False, 'targets': ''}
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from .._checks import check_float, check_int
from .._io import staged_dir
from ..errors import ConfigError
from ._checks import check_bool

__all__ = [
    "LORA_KEYS",
    "LoraWrap",
    "resolve_lora",
    "lora_targets",
    "wrap_lora",
    "save_lora",
    "merged_model",
]

#: The keys of a config's ``lora`` table.
LORA_KEYS = ("rank", "alpha", "rslora", "targets")

#: Methods whose terms need the pre-trained weights by name (renamed by peft's wrapping).
_NEEDS_REFERENCE = ("l2-sp", "delta", "ewc")


def resolve_lora(options: Mapping[str, Any], method: str = "none") -> dict[str, Any]:
    """The ``lora`` table checked and completed (``{}`` stays ``{}``: no LoRA).

    ``rank`` (required, >= 1), ``alpha`` (default ``rank``: s = 1, or √r with rsLoRA),
    ``rslora`` (default false), ``targets`` (a regular expression on module names, default
    ``""``: every Linear and ungrouped Conv2d outside the head).

    Raises:
        ConfigError: an unknown key, a bad value, or a method that needs the pre-trained
            weights by name (l2-sp, delta, ewc).
    """
    if not options:
        return {}
    unknown = sorted(set(options) - set(LORA_KEYS))
    if unknown:
        raise ConfigError(
            f"expected lora keys from {list(LORA_KEYS)}, found unknown {', '.join(map(repr, unknown))}"
        )
    if "rank" not in options:
        raise ConfigError("expected lora.rank (e.g. --lora-rank 8), found none")
    rank = options["rank"]
    check_int("lora.rank", rank, 1)
    alpha = options.get("alpha", rank)
    check_float("lora.alpha", alpha, 0, strict=True)
    rslora = options.get("rslora", False)
    check_bool("lora.rslora", rslora)
    targets = options.get("targets", "")
    if not isinstance(targets, str):
        raise ConfigError(f"expected lora.targets to be a regular expression, found {targets!r}")
    try:
        re.compile(targets)
    except re.error as exc:
        raise ConfigError(
            f"expected lora.targets to be a regular expression, found {targets!r} ({exc})"
        ) from None
    terms = [t for t in str(method).split("+") if t in _NEEDS_REFERENCE]
    if terms:
        raise ConfigError(
            f"expected a method without {', '.join(terms)} with LoRA (they need the pre-trained "
            f"weights by name, which LoRA's wrapping renames), found {method!r}"
        )
    return {"rank": rank, "alpha": alpha, "rslora": rslora, "targets": targets}


def _in_head(name: str, head: str) -> bool:
    return bool(head) and (name == head or name.startswith(head + "."))


def lora_targets(model: nn.Module, head: str, pattern: str = "") -> tuple[list[str], list[str]]:
    """``(targets, skipped)``: module names LoRA adapts, and convolutions it leaves.

    Targets are the ``nn.Linear`` and ``groups == 1`` plain ``nn.Conv2d`` modules outside
    ``head`` whose name matches ``pattern`` (``re.search``; ``""`` matches all); ``skipped``
    are the matching grouped/depthwise convolutions and ``nn.Conv2d`` subclasses (see the
    module docstring).
    """
    rx = re.compile(pattern)
    targets, skipped = [], []
    for name, module in model.named_modules():
        if not name or _in_head(name, head) or not rx.search(name):
            continue
        if isinstance(module, nn.Linear) or (type(module) is nn.Conv2d and module.groups == 1):
            targets.append(name)
        elif isinstance(module, nn.Conv2d):
            skipped.append(name)
    return targets, skipped


@dataclass
class LoraWrap:
    """A model wrapped by peft: ``peft`` (the ``PeftModel``), ``model`` (the same network
    with LoRA layers injected, module names unchanged: what the loop trains), ``targets``
    and ``skipped`` (from :func:`lora_targets`)."""

    peft: Any  # peft.PeftModel
    model: nn.Module
    targets: list[str]
    skipped: list[str]


def wrap_lora(model: nn.Module, options: Mapping[str, Any], *, head: str) -> LoraWrap:
    """Wrap ``model`` in place with ``peft.get_peft_model`` as ``options`` (resolved) say.

    Raises:
        ConfigError: no module matches ``options["targets"]``.
    """
    from peft import LoraConfig, get_peft_model

    targets, skipped = lora_targets(model, head, options["targets"])
    if not targets:
        raise ConfigError(
            f"expected lora.targets to match a Linear or ungrouped Conv2d outside the head, "
            f"found none for {options['targets']!r}"
        )
    norms = [
        n
        for n, m in model.named_modules()
        if n and isinstance(m, nn.modules.batchnorm._BatchNorm) and not _in_head(n, head)
    ]
    config = LoraConfig(
        r=int(options["rank"]),
        lora_alpha=options["alpha"],
        use_rslora=bool(options["rslora"]),
        lora_dropout=0.0,
        target_modules=targets,
        modules_to_save=[head, *norms],
    )
    try:
        wrapped = get_peft_model(model, config)
    except (TypeError, ValueError) as exc:  # a module peft cannot adapt: name it in one line
        raise ConfigError(
            f"expected modules peft's LoRA can adapt, found {str(exc).splitlines()[0]} "
            "(narrow --lora-targets)"
        ) from None
    inner = wrapped.get_base_model()
    for name in norms:  # running statistics follow the data; affine weights stay frozen
        for p in inner.get_submodule(name).parameters():
            p.requires_grad_(False)
    return LoraWrap(peft=wrapped, model=inner, targets=targets, skipped=skipped)


def save_lora(wrap: LoraWrap, directory: str | Path) -> Path:
    """Write the adapter with peft's ``save_pretrained`` into ``directory``, atomically."""
    with staged_dir(directory) as tmp:
        wrap.peft.save_pretrained(str(tmp))
    return Path(directory)


def merged_model(wrap: LoraWrap) -> nn.Module:
    """A merged copy (peft's ``merge_and_unload`` on a deep copy); ``wrap`` is unchanged."""
    merged: nn.Module = copy.deepcopy(wrap.peft).merge_and_unload()
    return merged
