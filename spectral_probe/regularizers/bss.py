"""BSS: Batch Spectral Shrinkage, the penalty on the smallest singular values of ``F``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._checks import as_matrix, check_choice, check_float, check_int
from ..errors import ConfigError
from ..spectral.eigen import (
    PRECISIONS,
    one_lapack_thread,
    smallest_eigenpairs_device,
    smallest_eigenpairs_host,
    solved_on_host,
)
from ._base import Regularizer, StepContext
from ._gram import no_autocast
from ._registry import register_regularizer

__all__ = ["BSS", "bss_penalty", "gather_features"]


class _SmallestEigenvalueSum(torch.autograd.Function):
    """``scale * sum of the k smallest eigenvalues of the Gram of F`` with a rank-k backward.

    Forward: ``G = F F^T`` (or ``F^T F`` when d < b), its k smallest eigenpairs by LAPACK
    on the host or ``torch.linalg.eigh`` on the device (:mod:`spectral_probe.spectral.eigen`).
    Backward: with ``V_k`` the matching eigenvectors,
    ``d(sum lambda_i)/dF = 2 V_k V_k^T F`` (or ``2 F V_k V_k^T``): the derivative of
    ``||V_k^T F||^2`` with ``V_k`` held fixed. Eigenvalue derivatives never involve the
    eigenvector derivatives, so no ``1/(lambda_i - lambda_j)`` appears and the gradient stays
    finite when eigenvalues repeat or vanish (then it is a valid subgradient); it costs
    ``O(k b d)`` instead of the ``O(b^2 d)`` of differentiating the Gram product.
    """

    @staticmethod
    def forward(ctx: Any, f: Tensor, k: int, precision: str, scale: float) -> Tensor:
        with one_lapack_thread(f.device):
            return _SmallestEigenvalueSum._forward(ctx, f, k, precision, scale)

    @staticmethod
    def _forward(ctx: Any, f: Tensor, k: int, precision: str, scale: float) -> Tensor:
        out_dtype = torch.promote_types(f.dtype, torch.float32)
        host = smallest_eigenpairs_host(f, k, precision) if solved_on_host(f) else None
        if host is None:
            total, vec, ctx.left = smallest_eigenpairs_device(f, k, precision)
            vk = vec.to(out_dtype)
            ctx.save_for_backward(f, vk, (2 * scale) * vk)
            return (total * scale).to(out_dtype)
        host_total, v, ctx.left = host
        np_dtype = np.float64 if out_dtype == torch.float64 else np.float32
        if f.device.type == "cpu":  # no copies: three small arrays become tensors as they are
            host_vk: np.ndarray = v.astype(np_dtype)
            ctx.save_for_backward(
                f, torch.from_numpy(host_vk), torch.from_numpy((2 * scale) * host_vk)
            )
            return torch.tensor(scale * host_total, dtype=out_dtype)
        # on the GPU, one pinned buffer copied once: V_k, 2 * scale * V_k and the value
        n = v.size
        packed = torch.empty(2 * n + 1, dtype=out_dtype, pin_memory=True)
        host_view = packed.numpy()
        host_view[:n] = v.ravel()
        host_view[n : 2 * n] = (2 * scale) * host_view[:n]
        host_view[-1] = scale * host_total
        buf = packed.to(f.device, non_blocking=True)
        ctx.save_for_backward(f, buf[:n].view(v.shape), buf[n : 2 * n].view(v.shape))
        return buf[-1].clone()  # not a view of the saved tensors' storage

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None, None, None]:
        f, vk, vk2 = ctx.saved_tensors
        with one_lapack_thread(f.device):
            fw = f if f.dtype == vk.dtype else f.to(vk.dtype)
            scaled = vk2 * grad_out
            grad = (
                torch.mm(scaled, torch.mm(vk.t(), fw))
                if ctx.left
                else torch.mm(torch.mm(fw, vk), scaled.t())
            )
        return (grad if grad.dtype == f.dtype else grad.to(f.dtype)), None, None, None


def _checked(features: Tensor, k: int, precision: str) -> Tensor:
    f = as_matrix(features, "bss features", finite=False, flatten=True, detach=False)
    b, d = f.shape
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k >= b or k > d:
        raise ConfigError(
            f"expected bss.k >= 1, < batch size and <= feature dimension, found k={k!r} for "
            f"features of shape ({b}, {d})"
        )
    if precision not in PRECISIONS:
        check_choice("bss.precision", precision, PRECISIONS)
    return f


def bss_penalty(features: Tensor, k: int = 1, *, precision: str = "auto") -> Tensor:
    r"""Sum of the ``k`` smallest squared singular values of the feature matrix.

    .. math::
        L(F) = \sum_{i=1}^{k} \sigma_{-i}^2(F)

    computed as the ``k`` smallest eigenvalues of the ``min(b, d)``-square Gram matrix,
    never with a full SVD. ``precision`` is that of the Gram: ``"float64"`` (eigenvalues
    within ~1e-15 of :math:`\sigma_{\max}^2` of NumPy's SVD), ``"float32"`` (within
    ~2e-7 of :math:`\sigma_{\max}^2`: no relative accuracy left for
    :math:`\sigma^2 < 10^{-6}\sigma_{\max}^2`) or ``"auto"`` (default: float32 on CPU,
    redone in float64 when the result is below ``1e-3 trace(F F^T)``, so relative error
    <= ~2e-4; float64 on GPU). Half-precision features (AMP) are upcast; the result is
    float32 (float64 for float64 features).

    Args:
        features: ``F``, tensor of shape ``(b, d)`` (trailing dimensions are flattened).
        k: number of smallest singular values, ``1 <= k < b`` and ``k <= d``.
        precision: ``"auto"``, ``"float64"`` or ``"float32"``.

    Returns:
        A 0-d tensor, differentiable with finite gradients even for repeated or zero
        singular values.

    Example:
        >>> import torch
        >>> F = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        >>> bss_penalty(F, k=1)
        tensor(4.)
    """
    f = _checked(features, k, precision)
    with no_autocast(f.device):
        return _SmallestEigenvalueSum.apply(f, k, precision, 1.0)


def gather_features(features: Tensor) -> Tensor:
    """All ranks' features concatenated along the batch (differentiable all-gather).

    The identity without an initialised process group or with one process. Every rank must
    hold the same number of rows (use ``drop_last=True``). The backward of
    ``torch.distributed.nn.functional.all_gather`` sums the gradients of all ranks, so after
    DDP averages parameter gradients over the W ranks, they equal those of the penalty on the
    global batch computed in one process.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features.contiguous()), dim=0)


@register_regularizer
class BSS(Regularizer):
    r"""Batch Spectral Shrinkage (Chen et al., NeurIPS 2019).

    .. math::
        L_{bss}(F) = \eta \sum_{i=1}^{k} \sigma_{-i}^2

    where :math:`\sigma_{-i}` is the i-th smallest singular value of the batch feature matrix
    ``F`` (``ctx.features``, shape ``(b, d)``), computed by :func:`bss_penalty`.

    Args:
        eta: trade-off :math:`\eta` (paper: 0.001).
        k: number of smallest singular values penalised (paper: 1).
        precision: Gram matrix precision, ``"auto"`` (default), ``"float64"`` or
            ``"float32"`` (see :func:`bss_penalty`).
        gather: under DDP, penalise the spectrum of the global batch (all ranks' ``F``
            gathered with autograd) instead of each rank's local batch.
    """

    name: ClassVar[str] = "bss"
    needs_features: ClassVar[bool] = True

    def __init__(
        self,
        *,
        eta: float = 0.001,
        k: int = 1,
        precision: str = "auto",
        gather: bool = False,
    ) -> None:
        super().__init__()
        hp = self.check_hyperparameters(
            {"eta": eta, "k": k, "precision": precision, "gather": gather}
        )
        self.eta: float = hp["eta"]
        self.k: int = hp["k"]
        self.precision: str = hp["precision"]
        self.gather: bool = hp["gather"]

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        out = {
            "eta": check_float("bss.eta", values["eta"]),
            "k": check_int("bss.k", values["k"]),
            "precision": check_choice("bss.precision", values["precision"], PRECISIONS),
        }
        if not isinstance(values["gather"], bool):
            raise ConfigError(
                f"expected bss.gather to be true or false, found {values['gather']!r}"
            )
        return {**out, "gather": values["gather"]}

    def penalty(self, ctx: StepContext) -> Tensor:
        """``eta * sum_{i<=k} sigma_{-i}^2(F)`` of ``ctx.features`` (gathered if asked)."""
        if ctx.features is None:
            raise ConfigError(
                "expected ctx.features (the head's input) for bss, found None: "
                "capture it with FeatureCapture"
            )
        f = as_matrix(ctx.features, "bss features", finite=False, flatten=True, detach=False)
        if self.gather:
            f = gather_features(f)
        f = _checked(f, self.k, self.precision)
        with no_autocast(f.device):
            return _SmallestEigenvalueSum.apply(f, self.k, self.precision, self.eta)
