"""Named scenarios: which task, preset, method and model a run defaults to.

=============  ========================  ==========  ==========  ===================================
scenario       task                      preset      method      model
=============  ========================  ==========  ==========  ===================================
``image``      ``image-classification``  ``paper``   ``l2``      ``torchvision:resnet50:IMAGENET1K_V1``
``glue``       ``text-classification``   ``glue``    ``none``    ``bundled:minilm-l6``
``permuted``   ``permuted``              ``permuted`` ``ewc``    ``mlp:784-400-400-10``
=============  ========================  ==========  ==========  ===================================

Without an explicit scenario, a ``glue-*`` data spec selects ``glue``, a config whose task is
``permuted`` selects ``permuted``, anything else ``image``. The ``permuted`` scenario runs
two engine runs (task A, then task B: :func:`~spectral_probe.training.run_permuted`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ..errors import ConfigError

__all__ = ["SCENARIOS", "scenario_of", "apply_scenario"]

SCENARIOS: dict[str, dict[str, str]] = {
    "image": {
        "task": "image-classification",
        "preset": "paper",
        "method": "l2",
        "model": "torchvision:resnet50:IMAGENET1K_V1",
    },
    "glue": {
        "task": "text-classification",
        "preset": "glue",
        "method": "none",
        "model": "bundled:minilm-l6",
    },
    "permuted": {
        "task": "permuted",
        "preset": "permuted",
        "method": "ewc",
        "model": "mlp:784-400-400-10",
    },
}


def scenario_of(data: str, task: str = "image-classification") -> str:
    """The scenario a data spec (and a config's task) implies.

    Example:
        >>> scenario_of("glue-sst2:/data/SST-2"), scenario_of("fashion-mnist", "permuted"), scenario_of("digits")
        ('glue', 'permuted', 'image')
    """
    if str(data).startswith("glue-"):
        return "glue"
    if task == "permuted":
        return "permuted"
    return "image"


def apply_scenario(
    base: Any, given: Mapping[str, Any], scenario: str | None = None
) -> dict[str, Any]:
    """``given`` completed with the scenario's defaults for task, preset, method and model.

    A default fills a field only when ``given`` lacks it and ``base`` (a
    :class:`~spectral_probe.training.FinetuneConfig`, which builds its command-line configs
    with this) still holds the field's default (a config file's own choice is kept).
    """
    data = str(given.get("data") or base.data)
    name = scenario or scenario_of(data, str(given.get("task") or base.task))
    if name not in SCENARIOS:
        raise ConfigError(f"expected a scenario in {sorted(SCENARIOS)}, found {name!r}")
    defaults = {f.name: f.default for f in fields(base)}
    out = dict(given)
    for key, value in SCENARIOS[name].items():
        if key not in out and getattr(base, key) == defaults[key]:
            out[key] = value
    return out
