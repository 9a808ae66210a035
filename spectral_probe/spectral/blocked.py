r"""Singular values of a stored matrix without a float64 copy of it.

:func:`~spectral_probe.spectral.singular_values` converts the whole matrix to float64 before
forming its Gram matrix; for a bf16 weight that copy is four times the stored tensor (a
32000 x 2048 embedding: 500 MiB). :func:`blocked_singular_values` forms the same Gram matrix
:math:`G = \sum_b W_b W_b^\top` from blocks :math:`W_b` of the longer side, each converted to
float64 on its own, so the working set is the small side's Gram plus one block. The values
are those of the Gram route (float64 accumulation; the order of the sum differs, so they agree
with :func:`singular_values` to rounding, about 1e-15 relative on the large values).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["blocked_singular_values"]


def blocked_singular_values(w: Tensor, *, block: int = 2048) -> Tensor:
    """Singular values of the 2-D ``w`` (descending, float64) through a blocked float64 Gram.

    Args:
        w: a 2-D tensor of any floating dtype, on any device.
        block: columns (of the wide orientation) converted to float64 at a time.

    Example:
        >>> w = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 2.0]], dtype=torch.bfloat16)
        >>> blocked_singular_values(w, block=2).tolist()
        [3.0, 2.0]
    """
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, found shape {tuple(w.shape)}")
    if block < 1:
        raise ValueError(f"expected block >= 1, found {block}")
    wide = w if w.shape[0] <= w.shape[1] else w.mT
    small, long = wide.shape
    gram = torch.zeros(small, small, dtype=torch.float64, device=w.device)
    for start in range(0, long, block):
        part = wide[:, start : start + block].to(torch.float64)
        gram.addmm_(part, part.mT)
    lam = torch.linalg.eigvalsh(gram)
    return lam.flip(0).clamp_min(0).sqrt()
