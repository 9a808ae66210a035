"""TSVD: replace ``F`` by its rank-(b - r) reconstruction (Section 5.2's analysis tool)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._checks import as_matrix, check_int
from ..errors import ConfigError
from ..spectral.eigen import eigh, gram
from ._base import Regularizer
from ._gram import no_autocast
from ._registry import register_regularizer

__all__ = ["TSVD", "truncate_spectrum"]

#: Lorentzian broadening of 1/(lambda_i - lambda_j), relative to lambda_i + lambda_j.
_BROADENING = 1e-4
#: Absolute floor of the broadening, relative to the largest eigenvalue (fp64 noise level).
_FLOOR = 1e-13


class _BottomProjector(torch.autograd.Function):
    """``P = V_r V_r^T``, the projector on the eigenvectors of the r smallest eigenvalues.

    Backward (derivative of a spectral projector): with ``R`` the r bottom indices and ``K``
    the others, ``dP = sum_{i in R, j in K} (v_j^T dG v_i) / (lambda_i - lambda_j)
    (v_i v_j^T + v_j v_i^T)``. Pairs inside ``R`` or inside ``K`` cancel exactly, so repeated
    or zero eigenvalues within either set cost nothing (torch's ``eigh`` backward would divide
    by their zero gaps and return NaN). Only a tie across the cut ``lambda_r = lambda_{r+1}``
    (where the truncation itself is not unique) is singular; there ``1/gap`` is replaced by
    the Lorentzian ``gap / (gap^2 + eps^2)`` with ``eps = 1e-4 (lambda_i + lambda_j)`` (plus a
    floor at fp64 noise), which is exact to 1e-8 relative for gaps above 1 % and bounded
    at ties.
    """

    @staticmethod
    def forward(ctx: Any, g: Tensor, r: int) -> Tensor:
        lam, vec = eigh(g)
        ctx.r = r
        ctx.save_for_backward(lam, vec)
        vr = vec[:, :r]
        return vr @ vr.mT

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_p: Tensor) -> tuple[Tensor, None]:
        lam, vec = ctx.saved_tensors
        r = ctx.r
        vr, vk = vec[:, :r], vec[:, r:]
        m = vec.mT @ (grad_p + grad_p.mT) @ vec  # symmetric part, in the eigenbasis
        cross = m[r:, :r]  # (j in K, i in R): v_j^T (Gp + Gp^T) v_i
        gap = lam[:r].unsqueeze(0) - lam[r:].unsqueeze(1)  # lambda_i - lambda_j <= 0
        eps = _BROADENING * (lam[:r].abs().unsqueeze(0) + lam[r:].abs().unsqueeze(1))
        eps = eps + _FLOOR * lam.abs().max().clamp_min(torch.finfo(lam.dtype).tiny)
        inv_gap = gap / (gap.square() + eps.square())
        w = cross * inv_gap
        grad_g = vk @ w @ vr.mT
        return 0.5 * (grad_g + grad_g.mT), None


def truncate_spectrum(features: Tensor, r: int) -> Tensor:
    r"""``F`` without its ``r`` smallest spectral components: the rank-(b - r) reconstruction.

    .. math::
        F_{b-r} = U_{b-r} \Sigma_{b-r} V_{b-r}^T = F - U_r U_r^T F

    with :math:`U_r` the left singular vectors of the ``r`` smallest singular values, taken
    from the eigenvectors of the ``b x b`` Gram ``F F^T`` (computed in float64; the result is
    cast back to ``features``' dtype). Differentiable with finite gradients (see
    ``_BottomProjector``).

    Args:
        features: ``F``, tensor of shape ``(b, d)`` (other shapes are flattened and restored).
        r: number of components removed, ``1 <= r < b``.

    Example:
        >>> import torch
        >>> F = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
        >>> truncate_spectrum(F, 1)
        tensor([[3., 0.],
                [0., 0.]])
    """
    f = as_matrix(features, "tsvd features", finite=False, flatten=True, detach=False)
    b = f.shape[0]
    r = check_int("tsvd.r", r)
    if r >= b:
        raise ConfigError(f"expected tsvd.r < batch size {b}, found r={r}")
    with no_autocast(f.device):
        x = f.to(torch.float64)
        p = _BottomProjector.apply(gram(x, left=True), r)
        out = x - p @ x
    return out.to(f.dtype).reshape(features.shape)


@register_regularizer
class TSVD(Regularizer):
    r"""Truncated SVD of the batch features (an analysis tool, not a penalty).

    During training (``self.training``), the head's input ``F`` is replaced by
    :math:`F_{b-r}`, its reconstruction from the ``b - r`` largest singular components
    (:func:`truncate_spectrum`). In eval mode the features pass unchanged (a batch-dependent
    transform has no meaning for single test images); the engine toggles ``train()`` /
    ``eval()`` on the regularizers together with the model.

    Args:
        r: number of smallest components removed (paper: 1, 2, 4, 8; any ``r < b``).
    """

    name: ClassVar[str] = "tsvd"

    def __init__(self, *, r: int = 1) -> None:
        super().__init__()
        self.r: int = self.check_hyperparameters({"r": r})["r"]

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        return {"r": check_int("tsvd.r", values["r"])}

    @property
    def has_penalty(self) -> bool:
        return False

    def transform_features(self, features: Tensor) -> Tensor:
        """:math:`F_{b-r}` in training mode, ``features`` unchanged in eval mode."""
        if not self.training:
            return features
        return truncate_spectrum(features, self.r)
