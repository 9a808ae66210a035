"""L2: weight decay towards zero on every trainable parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from .._checks import check_float
from ..errors import ConfigError
from ._base import Regularizer, StepContext, squared_distance, unwrap_model
from ._registry import register_regularizer

__all__ = ["L2"]


@register_regularizer
class L2(Regularizer):
    r"""L2 penalty on all trainable weights (plain fine-tuning's weight decay).

    .. math::
        \Omega(W) = \frac{\alpha}{2} \lVert W \rVert_2^2

    over every trainable parameter (head, biases and normalisation parameters included, as
    ``weight_decay`` does in the authors' released code).

    By default the term is applied **through the optimizer**: :meth:`weight_decay` returns
    ``alpha`` for every parameter and the engine builds its groups with
    :meth:`RegularizerSet.param_groups`. For ``torch.optim.SGD`` (and ``Adam``, whose
    ``weight_decay`` is also coupled) this adds ``alpha * W`` to each gradient, exactly the
    gradient of the penalty, at no extra cost; :meth:`penalty` then returns 0. With
    ``explicit=True`` (for AdamW, whose decay is decoupled, or to log the value) the penalty
    is computed in the loss instead and ``weight_decay`` is 0.

    Args:
        alpha: strength :math:`\alpha` (default 0.01, the L2-SP/DELTA papers' setting for
            the fine-tuned weights; the BSS authors' code used ``weight_decay=5e-4``).
        explicit: compute the penalty in the loss rather than in the optimizer.
    """

    name: ClassVar[str] = "l2"

    def __init__(self, *, alpha: float = 0.01, explicit: bool = False) -> None:
        super().__init__()
        hp = self.check_hyperparameters({"alpha": alpha, "explicit": explicit})
        self.alpha: float = hp["alpha"]
        self.explicit: bool = hp["explicit"]

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        alpha = check_float("l2.alpha", values["alpha"])
        if not isinstance(values["explicit"], bool):
            raise ConfigError(
                f"expected l2.explicit to be true or false, found {values['explicit']!r}"
            )
        return {"alpha": alpha, "explicit": values["explicit"]}

    @property
    def has_penalty(self) -> bool:
        return self.explicit

    def weight_decay(self, name: str, param: Tensor, *, head: str) -> float:
        """``alpha`` in optimizer mode, else 0."""
        return 0.0 if self.explicit else self.alpha

    def penalty(self, ctx: StepContext) -> Tensor:
        """``alpha/2 * ||W||^2`` if ``explicit``, else 0 (the optimizer applies it)."""
        model = unwrap_model(ctx.model)
        if not self.explicit:
            return super().penalty(ctx)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            return super().penalty(ctx)
        return 0.5 * self.alpha * squared_distance(params)

    def value(self, model: torch.nn.Module) -> Tensor:
        """``alpha/2 * ||W||^2`` without autograd, for logging in optimizer mode."""
        with torch.no_grad():
            params = [p for p in unwrap_model(model).parameters() if p.requires_grad]
            return 0.5 * self.alpha * squared_distance(params)
