r"""NCE: negative conditional entropy of the target labels given the source labels.

Tran, Nguyen, Hassner. *Transferability and Hardness of Supervised Classification Tasks*,
ICCV 2019 (reference: ``tllib/ranking/nce.py``).

With :math:`z_i` the source model's predicted class (``argmax`` of its outputs) and
:math:`y_i` the target label of sample :math:`i`, the empirical joint
:math:`\hat P(y, z) = \frac1N |\{i: y_i = y, z_i = z\}|` gives

.. math::

    \mathrm{NCE} = -H(Y \mid Z) = \sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)} \;\le 0.

Higher is better; 0 when the source label determines the target label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._check import encode_labels

__all__ = ["nce"]


def nce(source_labels: Any, labels: Any) -> float:
    """NCE of the source model's hard labels ``(N,)`` for the target ``labels`` ``(N,)``.

    Raises:
        DataError: labels of different lengths, fewer than two target classes.

    Example:
        >>> nce([0, 0, 1, 1], ["a", "a", "b", "b"])
        0.0
    """
    src = (
        source_labels.detach().cpu().numpy()
        if isinstance(source_labels, Tensor)
        else np.asarray(source_labels)
    )
    z, c_s = encode_labels(
        src, len(src) if src.ndim == 1 else -1, what="source labels", min_classes=1
    )
    y, c_t = encode_labels(labels, len(z))
    n = len(y)
    joint = torch.bincount(y * c_s + z, minlength=c_t * c_s).reshape(c_t, c_s).to(torch.float64) / n
    marginal = joint.sum(0, keepdim=True).expand_as(joint)
    seen = joint > 0
    return float((joint[seen] * (joint[seen] / marginal[seen]).log()).sum())
