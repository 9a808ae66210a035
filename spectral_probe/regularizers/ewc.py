"""EWC: elastic weight consolidation with the diagonal Fisher of the previous task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from .._checks import check_choice, check_float, check_int
from ..errors import ConfigError
from ._base import Loader, Regularizer, StepContext, TensorStore, resolve_head, unwrap_model
from ._registry import register_regularizer

__all__ = ["EWC", "diagonal_fisher"]

FISHER_KINDS = ("true", "empirical")


def diagonal_fisher(
    model: nn.Module,
    loader: Loader,
    *,
    kind: str = "true",
    max_samples: int = 1024,
    seed: int = 0,
    chunk_elements: int = 2**27,
) -> dict[str, Tensor]:
    r"""Diagonal Fisher information of ``model`` on ``loader``'s data, per parameter.

    .. math::
        F_i = \frac{1}{N} \sum_{n=1}^{N}
              \Big(\frac{\partial \log p_\theta(y_n \mid x_n)}{\partial \theta_i}\Big)^2

    with per-sample gradients from ``torch.func`` (``vmap(grad(...))``, in chunks of at most
    ``chunk_elements`` gradient entries), the model in eval mode. ``kind="true"`` draws
    :math:`y_n \sim p_\theta(\cdot \mid x_n)` (one Monte-Carlo label per input, seeded: the
    Fisher as defined, and as EWC uses it); ``kind="empirical"`` uses the dataset labels (the
    "empirical Fisher", a cheaper proxy that is biased away from the optimum).

    Args:
        model: the network trained on the previous task, outputting logits.
        loader: ``(inputs, targets)`` batches of the previous task.
        kind: ``"true"`` or ``"empirical"``.
        max_samples: number of inputs used (the first ones of the loader).
        seed: seed of the label sampling.
        chunk_elements: bound on the per-sample gradient memory.

    Returns:
        ``{parameter name: F}`` for every trainable parameter.
    """
    check_choice("ewc.fisher", kind, FISHER_KINDS)
    model = unwrap_model(model)
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ConfigError("expected trainable parameters for ewc's Fisher, found none")
    buffers = dict(model.named_buffers())
    device = next(iter(params.values())).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    n_params = sum(p.numel() for p in params.values())
    chunk = max(1, chunk_elements // n_params)

    def nll(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    per_sample = vmap(grad(nll), in_dims=(None, 0, 0))
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    seen = 0
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            x, y = batch[0].to(device), batch[1].to(device)
            x, y = x[: max_samples - seen], y[: max_samples - seen]
            if kind == "true":
                with torch.no_grad():
                    probs = torch.softmax(model(x).float(), dim=-1)
                y = torch.multinomial(probs, 1, generator=gen).squeeze(1)
            for i in range(0, x.shape[0], chunk):
                grads = per_sample(params, x[i : i + chunk], y[i : i + chunk])
                for n, g in grads.items():
                    fisher[n] += g.float().square().sum(0)
            seen += x.shape[0]
            if seen >= max_samples:
                break
    finally:
        model.train(was_training)
    if seen == 0:
        raise ConfigError("expected at least one sample in ewc's loader, found none")
    return {n: f / seen for n, f in fisher.items()}


@register_regularizer
class EWC(Regularizer):
    r"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017).

    .. math::
        \Omega(\theta) = \frac{\lambda}{2} \sum_i F_i (\theta_i - \theta^*_i)^2

    :math:`\theta^*` are the weights after task A and :math:`F` the diagonal Fisher on task
    A's data (:func:`diagonal_fisher`), both kept as buffers (``star.*``, ``fisher.*``). The
    penalty covers every trainable parameter with a Fisher entry of the same name and shape
    (a newly shaped head is left out; a shared head, as in permuted MNIST, is included).

    Args:
        lam: strength :math:`\lambda` (not given by the BSS paper; 100 is a starting point,
            tune it per task).
        fisher: ``"true"`` (labels sampled from the model, the default) or ``"empirical"``.
        fisher_samples: number of task-A inputs used for the Fisher.
        seed: seed of the label sampling of the true Fisher.
    """

    name: ClassVar[str] = "ewc"
    needs_loader: ClassVar[bool] = True

    def __init__(
        self,
        *,
        lam: float = 100.0,
        fisher: str = "true",
        fisher_samples: int = 1024,
        seed: int = 0,
    ) -> None:
        super().__init__()
        hp = self.check_hyperparameters(
            {"lam": lam, "fisher": fisher, "fisher_samples": fisher_samples, "seed": seed}
        )
        self.lam: float = hp["lam"]
        self.fisher: str = hp["fisher"]
        self.fisher_samples: int = hp["fisher_samples"]
        self.seed: int = hp["seed"]
        self.star = TensorStore()
        self.fisher_diag = TensorStore()

    @classmethod
    def check_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "lam": check_float("ewc.lam", values["lam"]),
            "fisher": check_choice("ewc.fisher", values["fisher"], FISHER_KINDS),
            "fisher_samples": check_int("ewc.fisher_samples", values["fisher_samples"]),
            "seed": check_int("ewc.seed", values["seed"], minimum=0),
        }

    def prepare(
        self,
        model: nn.Module,
        *,
        head: str,
        reference: nn.Module | Mapping[str, Tensor] | None = None,
        loader: Loader | None = None,
    ) -> None:
        """Store ``theta*`` and the Fisher of ``reference`` (default: ``model``) on ``loader``.

        ``loader`` yields task A's ``(inputs, targets)``; ``reference`` is task A's network
        when ``model`` has already been changed (e.g. given a new head).
        """
        resolve_head(model, head)
        if loader is None:
            raise ConfigError("expected ewc.prepare(..., loader=task A batches), found none")
        if reference is not None and not isinstance(reference, nn.Module):
            raise ConfigError(
                "expected ewc's reference to be the task-A module, found a state dict"
            )
        source = unwrap_model(reference if reference is not None else model)
        fisher = diagonal_fisher(
            source, loader, kind=self.fisher, max_samples=self.fisher_samples, seed=self.seed
        )
        own = {n: p for n, p in unwrap_model(model).named_parameters() if p.requires_grad}
        src = dict(source.named_parameters())
        self.star.clear()
        self.fisher_diag.clear()
        for name, f in fisher.items():
            p = own.get(name)
            if p is not None and p.shape == f.shape:
                self.star[name] = src[name].detach().to(p.dtype).clone()
                self.fisher_diag[name] = f.to(device=p.device)
        if not len(self.star):
            raise ConfigError("expected the model to share parameters with ewc's task-A model")

    def penalty(self, ctx: StepContext) -> Tensor:
        """``lam/2 * sum_i F_i (theta_i - theta*_i)^2``."""
        if not len(self.star):
            raise ConfigError("expected ewc.prepare(model, head=..., loader=...) before training")
        params = dict(unwrap_model(ctx.model).named_parameters())
        total = super().penalty(ctx)
        for name, star in self.star.items():
            p = params.get(name)
            if p is not None and p.requires_grad:
                dtype = torch.promote_types(p.dtype, torch.float32)
                diff = p.to(dtype) - star.to(dtype)
                total = total + (self.fisher_diag[name].to(dtype) * diff.square()).sum()
        return 0.5 * self.lam * total
