"""Weight tensors as matrices.

A convolution weight of shape ``(c_out, c_in / groups, *kernel)`` is unfolded to the matrix

.. math:: W \\in \\mathbb{R}^{c_{out} \\times (c_{in}/g) \\prod_j k_j},

row ``o`` holding every weight that produces output channel ``o`` (paper, Section 3.3).
For a grouped convolution (``groups = g > 1``) each row only sees the ``c_in / g`` input
channels of its group, so the unfolded matrix stacks ``g`` unrelated blocks; depthwise
convolutions (``c_in / g = 1``) become ``(c_out, prod(kernel))``. :func:`split_groups` returns
the ``g`` per-group blocks ``(c_out / g, (c_in / g) prod(kernel))`` instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["unfold_weight", "split_groups", "split_fused"]


def unfold_weight(weight: Tensor, *, transposed: bool = False, groups: int = 1) -> Tensor:
    """Return ``weight`` as a 2-D matrix with one row per output unit.

    Args:
        weight: a Linear weight ``(out, in)`` or a convolution weight
            ``(c_out, c_in / groups, *kernel)`` of any spatial rank (1-D, 2-D, 3-D).
        transposed: ``True`` for a transposed convolution, whose weight is stored as
            ``(c_in, c_out / groups, *kernel)``; rows are then output channels too.
        groups: the convolution's groups (only used with ``transposed``).

    Returns:
        A view or copy of shape ``(c_out, numel / c_out)``.

    Example:
        >>> unfold_weight(torch.zeros(64, 3, 7, 7)).shape
        torch.Size([64, 147])
    """
    if weight.ndim < 2:
        raise ValueError(
            f"expected a weight with at least 2 dimensions, found shape {tuple(weight.shape)}"
        )
    if transposed:
        c_in, c_out_g = weight.shape[:2]
        k = weight.shape[2:]
        # (g, c_in/g, c_out/g, *k) -> (g, c_out/g, c_in/g, *k) -> (c_out, c_in/g, *k)
        w = weight.reshape(groups, c_in // groups, c_out_g, *k).transpose(1, 2)
        weight = w.reshape(groups * c_out_g, c_in // groups, *k)
    return weight.reshape(weight.shape[0], -1)


def split_groups(matrix: Tensor, groups: int) -> list[Tensor]:
    """Split an unfolded grouped-convolution matrix into its ``groups`` row blocks.

    Args:
        matrix: ``(c_out, (c_in / groups) * prod(kernel))`` from :func:`unfold_weight`.
        groups: the convolution's ``groups``; must divide ``c_out``.
    """
    if groups < 1 or matrix.shape[0] % groups:
        raise ValueError(f"expected groups dividing c_out={matrix.shape[0]}, found groups={groups}")
    return list(torch.chunk(matrix, groups, dim=0))


def split_fused(matrix: Tensor, parts: int = 3) -> list[Tensor]:
    """Split a fused projection (``in_proj_weight`` / ``qkv``, shape ``(3d, d)``) into q, k, v."""
    if matrix.shape[0] % parts:
        raise ValueError(
            f"expected a fused projection with rows divisible by {parts}, found shape {tuple(matrix.shape)}"
        )
    return list(torch.chunk(matrix, parts, dim=0))
