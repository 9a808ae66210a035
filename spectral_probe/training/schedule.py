r"""Learning-rate schedules as pure functions of the iteration (so resuming needs no state).

The factor multiplies each parameter group's initial learning rate at iteration ``t``
(0-based, the step about to be taken) of ``T``:

.. math::

    m(t) = \begin{cases} (t + 1) / w & t < w \quad\text{(linear warm-up)} \\
    \gamma^{\lfloor t / s \rfloor} & \text{step} \\
    1 & \text{constant} \\
    \tfrac12 \big(1 + \cos(\pi \, \tfrac{t - w}{T - w})\big) & \text{cosine} \\
    1 - \tfrac{t - w}{T - w} & \text{linear (BERT's decay)} \end{cases}

The paper's protocol (the L2-SP schedule the authors' ``BSS.py`` reproduces) is ``step``
with ``s = 6000``, ``gamma = 0.1`` over ``T = 9000`` iterations.
"""

from __future__ import annotations

import math

from ..errors import ConfigError

__all__ = ["lr_factor", "SCHEDULES"]

SCHEDULES = ("step", "constant", "cosine", "linear")


def lr_factor(
    schedule: str,
    iteration: int,
    total: int,
    *,
    step: int = 6000,
    gamma: float = 0.1,
    warmup: int = 0,
) -> float:
    """The learning-rate multiplier of ``iteration`` (0-based) out of ``total``.

    Example:
        >>> [lr_factor("step", t, 9000, step=6000) for t in (0, 5999, 6000, 8999)]
        [1.0, 1.0, 0.1, 0.1]
        >>> lr_factor("linear", 5, 10, warmup=5), lr_factor("linear", 0, 10, warmup=5)
        (1.0, 0.2)
    """
    if warmup and iteration < warmup:
        return (iteration + 1) / warmup
    if schedule == "step":
        return float(gamma ** (iteration // step))
    if schedule == "constant":
        return 1.0
    span = max(total - warmup, 1)
    progress = min(max(iteration - warmup, 0) / span, 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    raise ConfigError(f"expected a schedule in {list(SCHEDULES)}, found {schedule!r}")
