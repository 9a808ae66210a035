"""What the training loop accumulates between log lines, and its check of the weights."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Meters", "finite_weights"]


class Meters:
    """Running sums over one log interval, kept on the device (no per-step host sync).

    ``sums`` holds the total loss, the task loss, each penalty and the correct count; the
    sample count and the work units (images/tokens) are host integers.
    """

    def __init__(
        self, terms: list[str], device: torch.device, saved: dict[str, Any] | None
    ) -> None:
        self.terms = terms
        self.device = device
        self.sums = torch.zeros(3 + len(terms), dtype=torch.float64, device=device)
        self.steps = 0
        self.count = 0
        self.units = 0
        self.seconds = 0.0
        if saved and len(saved.get("sums", [])) == self.sums.numel():
            self.sums += torch.tensor(saved["sums"], dtype=torch.float64, device=device)
            self.steps, self.count = int(saved["steps"]), int(saved["count"])
            self.units, self.seconds = int(saved["units"]), float(saved["seconds"])

    def add(
        self,
        loss: torch.Tensor,
        task: torch.Tensor,
        parts: dict[str, torch.Tensor],
        logits: torch.Tensor,
        targets: torch.Tensor,
    ) -> None:
        correct = (logits.detach().argmax(-1) == targets).sum()
        values = [loss.detach(), task.detach(), *(parts[t] for t in self.terms), correct]
        self.sums += torch.stack([v.to(torch.float64).reshape(()) for v in values])
        self.count += int(targets.shape[0])
        self.steps += 1

    def reset(self) -> None:
        self.sums.zero_()
        self.steps, self.count, self.units, self.seconds = 0, 0, 0, 0.0

    def state(self) -> dict[str, Any]:
        return {
            "sums": self.sums.tolist(),
            "steps": self.steps,
            "count": self.count,
            "units": self.units,
            "seconds": self.seconds,
        }


def finite_weights(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter of ``model`` is finite (one norm per tensor)."""
    params = [p.detach() for p in model.parameters() if p.is_floating_point()]
    return (
        bool(torch.stack([p.float().norm() for p in params]).isfinite().all()) if params else True
    )
