"""L2-SP: pull the shared weights to the pre-trained start point, the new head to zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from .._checks import check_float
from ..errors import ConfigError
from ._base import (
    Loader,
    Regularizer,
    StepContext,
    TensorStore,
    split_start_point,
    squared_distance,
    unwrap_model,
)
from ._registry import register_regularizer

__all__ = ["L2SP"]


@register_regularizer
class L2SP(Regularizer):
    r"""L2-SP (Li et al., ICML 2018): starting-point regularisation.

    .. math::
        \Omega(W) = \frac{\beta}{2} \lVert W_S - W_S^0 \rVert_2^2
                  + \frac{\alpha}{2} \lVert W_G \rVert_2^2

    :math:`W_S` are the shared parameters (outside the head, with a tensor of the same name
    and shape in the pre-trained reference), :math:`W_S^0` their pre-trained values, and
    :math:`W_G` every other trainable parameter (the new head; any trainable parameter
    without a start point buffer counts as new). The BSS paper's notation is
    used: :math:`\beta` on the start point, :math:`\alpha` on the head (the L2-SP paper swaps
    the letters). The start point is kept as registered buffers (``start.<param name>`` in
    ``state_dict``), so it follows ``.to()`` and is restored with the checkpoint.

    Args:
        alpha: strength on the new parameters (default 0.01, as in the DELTA/L2-SP code).
        beta: strength on the distance to the start point (default 0.01).
    """

    name: ClassVar[str] = "l2-sp"

    def __init__(self, *, alpha: float = 0.01, beta: float = 0.01) -> None:
        super().__init__()
        hp = self.check_hyperparameters({"alpha": alpha, "beta": beta})
        self.alpha: float = hp["alpha"]
        self.beta: float = hp["beta"]
        self.start = TensorStore()

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "alpha": check_float("l2-sp.alpha", values["alpha"]),
            "beta": check_float("l2-sp.beta", values["beta"]),
        }

    def prepare(
        self,
        model: nn.Module,
        *,
        head: str,
        reference: nn.Module | Mapping[str, Tensor] | None = None,
        loader: Loader | None = None,
    ) -> None:
        """Copy the start point ``W_S^0`` (``reference``, default ``model`` now) into buffers."""
        start, _ = split_start_point(model, head, reference)
        self.start.clear()
        for name, tensor in start.items():
            self.start[name] = tensor

    def penalty(self, ctx: StepContext) -> Tensor:
        """``beta/2 ||W_S - W_S^0||^2 + alpha/2 ||W_G||^2``."""
        if not len(self.start):
            raise ConfigError("expected l2-sp.prepare(model, head=...) before the first step")
        params = {n: p for n, p in unwrap_model(ctx.model).named_parameters() if p.requires_grad}
        total = super().penalty(ctx)
        names = [n for n in params if n in self.start]
        if names:
            shared = squared_distance([params[n] for n in names], [self.start[n] for n in names])
            total = total + 0.5 * self.beta * shared
        new = [p for n, p in params.items() if n not in self.start]
        if new:
            total = total + 0.5 * self.alpha * squared_distance(new)
        return total
