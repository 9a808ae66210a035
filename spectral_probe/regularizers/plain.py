r"""The regularizers for your own training loop: plain modules on tensors and models.

The engine's terms (:class:`~spectral_probe.regularizers.BSS` and the others) read a
:class:`~spectral_probe.regularizers.StepContext`; these thin wrappers take what a
hand-written loop has at hand and reuse the same maths::

    bss = BatchSpectralShrinkage(k=1)
    loss = F.cross_entropy(head(f), y) + 1e-3 * bss(f)      # f: (batch, dim) features

- ``BatchSpectralShrinkage(k=1)``: ``bss(f)``, features ``(b, d)`` -> ``()``;
- ``SpectralTruncation(r=1)``: ``tsvd(f)``, ``(b, d)`` -> ``(b, d)`` (training mode only);
- ``L2SPPenalty(model, head="fc")``: ``l2sp()`` -> ``()``;
- ``DELTAPenalty(model, head="fc", loader=...)``: ``delta(x)`` after ``model(x)`` -> ``()``;
- ``EWCPenalty(model, loader)``: ``ewc()`` -> ``()``.

The model-based penalties keep what they need (start point, channel attention, Fisher) as
registered buffers of the wrapped term (``.term``): ``penalty.to(device)`` moves them and
``penalty.state_dict()`` saves them. The model itself is referenced, not registered, so it
is neither moved nor saved with the penalty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int
from ..spectral.eigen import PRECISIONS
from ._base import Loader, StepContext, unwrap_model
from .bss import bss_penalty
from .delta import DELTA
from .ewc import EWC
from .l2_sp import L2SP
from .tsvd import truncate_spectrum

__all__ = [
    "BatchSpectralShrinkage",
    "DELTAPenalty",
    "EWCPenalty",
    "L2SPPenalty",
    "SpectralTruncation",
]


def _context(model: nn.Module, head: str, inputs: Tensor | None = None) -> StepContext:
    """A step context holding what the model-based penalties read (the model, its inputs)."""
    empty = torch.empty(0)
    return StepContext(model, head, inputs if inputs is not None else empty, empty, empty, None)


class BatchSpectralShrinkage(nn.Module):
    r"""Batch Spectral Shrinkage: the sum of the ``k`` smallest squared singular values of ``F``.

    .. math::
        L_{bss}(F) = \sum_{i=1}^{k} \sigma_{-i}^2(F)

    Multiply by :math:`\eta` yourself (the paper: ``1e-3``). The same computation as the
    engine's ``bss`` term (:func:`~spectral_probe.regularizers.bss_penalty`): the ``k``
    smallest eigenvalues of the ``min(b, d)``-square Gram matrix with a rank-k backward.

    Args:
        k: number of smallest singular values, ``1 <= k < b`` and ``k <= d``.
        precision: Gram precision, ``"auto"``, ``"float64"`` or ``"float32"``.

    Shape:
        - Input: ``(b, d)`` features (trailing dimensions are flattened), e.g. the input of
          the classifier.
        - Output: ``()``, float32 (float64 for float64 features).

    Example:
        >>> import torch
        >>> bss = BatchSpectralShrinkage(k=1)
        >>> bss(torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
        tensor(4.)
    """

    def __init__(self, k: int = 1, *, precision: str = "auto") -> None:
        super().__init__()
        self.k = check_int("bss.k", k)
        self.precision = check_choice("bss.precision", precision, PRECISIONS)

    def forward(self, features: Tensor) -> Tensor:
        return bss_penalty(features, self.k, precision=self.precision)

    def extra_repr(self) -> str:
        return f"k={self.k}, precision={self.precision!r}"


class SpectralTruncation(nn.Module):
    r"""TSVD: ``F`` without its ``r`` smallest spectral components, in training mode only.

    .. math::
        F_{b-r} = F - U_r U_r^T F

    Apply it to the features before the classifier (``logits = head(tsvd(f))``); in eval
    mode (``tsvd.eval()``) features pass unchanged, since a batch-dependent transform means
    nothing for single test inputs. See
    :func:`~spectral_probe.regularizers.truncate_spectrum`.

    Args:
        r: number of smallest components removed, ``1 <= r < b``.

    Shape:
        - Input: ``(b, d)`` features (other shapes are flattened and restored).
        - Output: same shape and dtype as the input.

    Example:
        >>> import torch
        >>> SpectralTruncation(r=1)(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
        tensor([[3., 0.],
                [0., 0.]])
    """

    def __init__(self, r: int = 1) -> None:
        super().__init__()
        self.r = check_int("tsvd.r", r)

    def forward(self, features: Tensor) -> Tensor:
        return truncate_spectrum(features, self.r) if self.training else features

    def extra_repr(self) -> str:
        return f"r={self.r}"


class _ModelPenalty(nn.Module):
    """A prepared engine term bound to one model (referenced, not registered)."""

    term: Any

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.__dict__["model"] = model  # a reference: not a submodule, not in state_dict
        self.head = head

    def extra_repr(self) -> str:
        return f"head={self.head!r}, model={type(unwrap_model(self.__dict__['model'])).__name__}"


class L2SPPenalty(_ModelPenalty):
    r"""L2-SP: the distance of the shared weights to their start point, plus L2 on the head.

    .. math::
        \Omega(W) = \frac{\beta}{2} \lVert W_S - W_S^0 \rVert_2^2
                  + \frac{\alpha}{2} \lVert W_G \rVert_2^2

    The start point :math:`W_S^0` is copied when the penalty is built (``reference``, default
    ``model`` as it is then: build it right after attaching the new head). See
    :class:`~spectral_probe.regularizers.L2SP`.

    Args:
        model: the network being fine-tuned, new head attached.
        head: dotted name of the new head module (``"fc"``, ``"classifier"``).
        alpha: strength on the new parameters.
        beta: strength on the distance to the start point.
        reference: the pre-trained network or state dict, when ``model`` has moved already.

    Shape:
        - Output of ``penalty()``: ``()``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        head: str,
        alpha: float = 0.01,
        beta: float = 0.01,
        reference: nn.Module | Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__(model, head)
        self.term = L2SP(alpha=alpha, beta=beta)
        self.term.prepare(model, head=head, reference=reference)

    def forward(self) -> Tensor:
        return self.term.penalty(_context(self.__dict__["model"], self.head))


class DELTAPenalty(_ModelPenalty):
    r"""DELTA: attention-weighted distance of feature maps to those of the frozen start point.

    .. math::
        \Omega = \frac{\gamma}{2} \sum_{l} \frac{C_l}{H_l W_l} \sum_{n} \sum_{j}
                 D_{lj} \lVert FM_{lj}(W, x_n) - FM_{lj}(W^0, x_n) \rVert^2
                 + \frac{\kappa}{2} \lVert W_G \rVert^2

    Building it copies and freezes the start point, hooks the feature maps ``layers`` of
    ``model`` and computes the channel attention on ``loader``. Call it with the batch the
    model has just been given: ``logits = model(x); loss = ce(logits, y) + delta(x)``. Call
    :meth:`remove_hooks` when done. See :class:`~spectral_probe.regularizers.DELTA`.

    Args:
        model: the network being fine-tuned, new head attached.
        head: dotted name of the new head module.
        loader: training batches ``(inputs, targets)`` for the channel attention (``None``:
            uniform attention).
        layers: module names of the regularised feature maps (default: the last four
            stage outputs).
        gamma: weight of the feature-map term.
        kappa: weight of the new-parameter term.
        **options: the other options of :class:`~spectral_probe.regularizers.DELTA`
            (``temperature``, ``attention_batches``, ``probe_epochs``, ...).

    Shape:
        - Input: the ``inputs`` just given to ``model`` (any shape the model takes).
        - Output: ``()``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        head: str,
        loader: Loader | None = None,
        layers: str | Sequence[str] | None = None,
        gamma: float = 0.01,
        kappa: float = 0.01,
        **options: Any,
    ) -> None:
        super().__init__(model, head)
        self.term = DELTA(gamma=gamma, kappa=kappa, layers=layers, **options)
        self.term.prepare(model, head=head, loader=loader)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.term.penalty(_context(self.__dict__["model"], self.head, inputs))

    def remove_hooks(self) -> None:
        """Detach the forward hooks installed on the model."""
        self.term.remove_hooks()


class EWCPenalty(_ModelPenalty):
    r"""EWC: the Fisher-weighted distance to the weights after the previous task.

    .. math::
        \Omega(\theta) = \frac{\lambda}{2} \sum_i F_i (\theta_i - \theta^*_i)^2

    Build it after training task A, with task A's batches: it stores :math:`\theta^*` and the
    diagonal Fisher (:func:`~spectral_probe.regularizers.diagonal_fisher`). See
    :class:`~spectral_probe.regularizers.EWC`.

    Args:
        model: the network trained on task A (the one trained next).
        loader: task A's ``(inputs, targets)`` batches.
        lam: strength :math:`\lambda`.
        fisher: ``"true"`` (labels sampled from the model) or ``"empirical"``.
        fisher_samples: number of task-A inputs for the Fisher.
        head: dotted name of the head module (default: the model's last child module).
        reference: task A's network, when ``model`` has already been changed.

    Shape:
        - Output of ``penalty()``: ``()``.
    """

    def __init__(
        self,
        model: nn.Module,
        loader: Loader,
        *,
        lam: float = 100.0,
        fisher: str = "true",
        fisher_samples: int = 1024,
        head: str | None = None,
        reference: nn.Module | None = None,
    ) -> None:
        children = [name for name, _ in unwrap_model(model).named_children()]
        super().__init__(model, head if head is not None else (children[-1] if children else ""))
        self.term = EWC(lam=lam, fisher=fisher, fisher_samples=fisher_samples)
        self.term.prepare(model, head=self.head, reference=reference, loader=loader)

    def forward(self) -> Tensor:
        return self.term.penalty(_context(self.__dict__["model"], self.head))
