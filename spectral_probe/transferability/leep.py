r"""LEEP: log expected empirical prediction of the source classifier's outputs.

Nguyen, Hassner, Seeger, Archambeau. *LEEP: A New Measure to Evaluate Transferability of
Learned Representations*, ICML 2020 (reference: ``tllib/ranking/leep.py``).

With :math:`\theta(x_i) \in \Delta^{C_s}` the source model's class probabilities on target
sample :math:`x_i` and :math:`y_i` its target label, the empirical joint and conditional are

.. math::

    \hat P(y, z) = \frac1N \sum_{i: y_i = y} \theta_z(x_i), \qquad
    \hat P(y \mid z) = \frac{\hat P(y, z)}{\sum_{y'} \hat P(y', z)},

and LEEP is the mean log-likelihood of the "expected empirical predictor":

.. math::

    T = \frac1N \sum_i \log \sum_z \hat P(y_i \mid z)\, \theta_z(x_i) \;\le 0.

Higher is better. Source classes no sample gives any probability to are ignored.
"""

from __future__ import annotations

from typing import Any

import torch

from .._checks import as_matrix
from ..errors import DataError
from ._check import encode_labels, one_hot

__all__ = ["leep"]


def leep(source_probs: Any, labels: Any, *, atol: float = 1e-4) -> float:
    """LEEP of the source model's probabilities ``(N, C_s)`` for the target ``labels``.

    Args:
        source_probs: softmax outputs of the source classifier, one row per target sample.
        labels: ``(N,)`` target labels (at least two classes).
        atol: how far a row sum may be from 1.

    Raises:
        DataError: rows that are not probabilities, or bad labels.

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]])
        >>> round(leep(probs, [0, 0, 1, 1]), 4)
        -0.2955
    """
    theta = as_matrix(source_probs, "source probabilities", dtype=torch.float64)
    y, c = encode_labels(labels, theta.shape[0])
    sums, low = (
        (theta.numpy().sum(1), float(theta.numpy().min()))
        if theta.device.type == "cpu"  # NumPy's reductions are faster on the CPU
        else (theta.sum(1), float(theta.min()))
    )
    if low < 0 or float(abs(sums - 1).max()) > atol:
        raise DataError(
            "expected source probabilities (non-negative rows summing to 1, a softmax), "
            f"found row sums in [{float(sums.min()):.4g}, {float(sums.max()):.4g}] and minimum {low:.4g}"
        )
    n = theta.shape[0]
    joint = one_hot(y, c, theta).mT @ theta / n  # (C_t, C_s)
    marginal = joint.sum(0, keepdim=True)
    cond = torch.where(
        marginal > 0, joint / torch.where(marginal > 0, marginal, 1.0), 0.0
    )  # P(y | z)
    eep = (theta @ cond.mT).gather(1, y.to(theta.device)[:, None])  # sum_z theta_z(x_i) P(y_i | z)
    return float(eep.log().mean())
