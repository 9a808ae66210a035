r"""Fine-tune only chosen parameters: axolotl's ``unfrozen_parameters``, read as axolotl reads it.

``select-layers --out DIR`` writes ``DIR/unfrozen_parameters.yaml`` (Spectrum's layout)::

    unfrozen_parameters:
    - ^lm_head.weight$
    - ^model.embed_tokens.weight$
    # mlp.down_proj layers
    - model.layers.3.mlp.down_proj

A fine-tuning run given these patterns (``finetune --unfrozen-parameters FILE``, or the config
field ``unfrozen_parameters``) trains the parameters whose names match one of them, and the
task head; every other parameter keeps ``requires_grad = False`` and its pre-trained value.

Patterns are matched as axolotl's ``freeze_layers_except`` matches them
(``src/axolotl/utils/freeze.py``, class ``LayerNamePattern``): every ``.`` not followed by
``+`` is a literal dot, and the pattern is matched with :func:`re.match` from the start of
``model.named_parameters()``'s names, so ``encoder.layer.3.output.dense`` unfreezes both
``...dense.weight`` and ``...dense.bias``. axolotl's optional row range suffix (``[:32000]``,
applied through a gradient hook) is refused: weight decay would still move the rows it
freezes. A pattern that matches no parameter is allowed (Spectrum's file starts with
``^lm_head.weight$`` whatever the model), but a set of patterns that matches none outside the
head is an error: it would train the head alone without saying so.

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 1))
    >>> freeze_except(net, ["^1"], head="2")
    ['1.weight', '1.bias', '2.weight', '2.bias']
    >>> sorted(n for n, p in net.named_parameters() if not p.requires_grad)
    ['0.bias', '0.weight']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from ..errors import ConfigError

__all__ = ["compile_unfrozen", "read_unfrozen_parameters", "resolve_unfrozen", "freeze_except"]

_RANGE = re.compile(r"^(.+)\[([0-9]*)(?::([0-9]*))?\]$")


def compile_unfrozen(pattern: str) -> re.Pattern[str]:
    """One ``unfrozen_parameters`` line as axolotl compiles it (dots literal unless before ``+``).

    Raises:
        ConfigError: not a string, empty, with a row range, or not a valid regex.

    Example:
        >>> bool(compile_unfrozen("layers.1.mlp").match("layers.1.mlp.weight"))
        True
        >>> bool(compile_unfrozen("layers.1.mlp").match("layers_1_mlp.weight"))
        False
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigError(f"expected an unfrozen_parameters pattern (a string), found {pattern!r}")
    if _RANGE.match(pattern):
        raise ConfigError(
            f"expected an unfrozen_parameters pattern without a [start:end] row range "
            f"(not supported), found {pattern!r}"
        )
    try:
        return re.compile(re.sub(r"\.(?!\+)", r"\\.", pattern))
    except re.error as exc:
        raise ConfigError(
            f"expected a valid regular expression in unfrozen_parameters, found {pattern!r}: {exc}"
        ) from None


def read_unfrozen_parameters(path: str | Path) -> tuple[str, ...]:
    """The patterns of an ``unfrozen_parameters.yaml`` (or of an axolotl config holding the key).

    The file is a YAML mapping whose ``unfrozen_parameters`` key holds a list of patterns
    (other keys of an axolotl config are ignored), or a bare YAML list. Each pattern is checked
    with :func:`compile_unfrozen`.

    Raises:
        ConfigError: a missing or unreadable file, not YAML, no ``unfrozen_parameters`` list,
            an empty list, or a bad pattern (one line naming the file).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"expected an unfrozen_parameters YAML file at {path}, found nothing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"expected YAML in {path}, found unreadable text: {first}") from None
    if isinstance(data, dict):
        data = data.get("unfrozen_parameters")
    if not isinstance(data, list) or not data:
        raise ConfigError(
            f"expected an 'unfrozen_parameters:' list of patterns in {path}, found "
            f"{type(data).__name__ if data is not None else 'none'}"
            + (" (empty)" if isinstance(data, list) else "")
        )
    try:
        for item in data:
            compile_unfrozen(item)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return tuple(data)


def resolve_unfrozen(value: str | Sequence[str]) -> tuple[str, ...]:
    """The config's ``unfrozen_parameters``: a YAML file's patterns (a path), or the patterns
    themselves, checked; ``()`` (train everything) stays ``()``."""
    if isinstance(value, (str, Path)):
        return read_unfrozen_parameters(value)
    if not isinstance(value, Sequence):
        raise ConfigError(
            f"expected unfrozen_parameters as a YAML file path or a list of patterns, found {value!r}"
        )
    for item in value:
        compile_unfrozen(item)
    return tuple(value)


def freeze_except(model: nn.Module, patterns: Sequence[str], *, head: str) -> list[str]:
    """Set ``requires_grad`` to match ``patterns`` (axolotl's rule) or the head; the rest frozen.

    Args:
        model: the model, modified in place.
        patterns: ``unfrozen_parameters`` lines (:func:`compile_unfrozen`).
        head: module name of the task head (its parameters always train).

    Returns:
        The names of the parameters left trainable, in ``named_parameters()`` order.

    Raises:
        ConfigError: a bad pattern, or patterns that match no parameter outside the head.
    """
    compiled = [compile_unfrozen(p) for p in patterns]
    trainable, matched = [], 0
    for name, param in model.named_parameters():
        in_head = name == head or name.startswith(head + ".")
        hit = any(c.match(name) for c in compiled)
        matched += hit and not in_head
        param.requires_grad_(hit or in_head)
        if hit or in_head:
            trainable.append(name)
    if not matched:
        shown = ", ".join(map(repr, list(patterns)[:3])) + (", ..." if len(patterns) > 3 else "")
        first = next((n for n, _ in model.named_parameters()), "none")
        raise ConfigError(
            f"expected unfrozen_parameters to match parameters of the model (names such as "
            f"{first!r}), found none matched by {shown}"
        )
    return trainable
