"""Evaluation: top-1 accuracy and loss on a (capped, sharded) split, single or ten-crop."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .batches import eval_loader, eval_subset
from .distributed import DistContext
from .tasks import Task

__all__ = ["evaluate", "autocast"]


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` on CUDA with ``dtype``; a no-op when ``dtype`` is ``None``."""
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


@torch.no_grad()
def evaluate(
    task: Task,
    model: nn.Module,
    dataset: Any,
    *,
    dist: DistContext,
    batch_size: int,
    cap: int | None = None,
    amp: torch.dtype | None = None,
    channels_last: bool = False,
    num_workers: int = 0,
    collate: Callable[[list[Any]], Any] | None = None,
) -> dict[str, float]:
    r"""Accuracy and mean cross-entropy of ``model`` on ``dataset``.

    A batch of shape ``(B, n_crops, C, H, W)`` (ten-crop) is classified by the sum of the
    crops' logits, as in the paper (the loss uses their mean). Under DDP each rank
    evaluates ``indices[rank::world]`` and the counts are summed.

    Returns:
        ``{"accuracy": float, "loss": float, "n": int}``, plus the task's own metrics
        (:meth:`Task.metrics` of the confusion matrix, e.g. ``f1``).
    """
    device = dist.device
    idx = eval_subset(len(dataset), cap, rank=dist.rank, world=dist.world)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # correct, loss, count
    # (true, predicted) counts, only for tasks with metrics of their own; sized by the classes
    wants = type(task).metrics is not Task.metrics
    k = len(getattr(dataset, "classes", None) or [])
    confusion = torch.zeros(k * k, dtype=torch.float64, device=device) if wants and k else None
    try:
        with autocast(device, amp):
            for batch in eval_loader(
                dataset,
                idx,
                batch_size,
                num_workers=num_workers,
                pin_memory=device.type == "cuda",
                collate=collate,
            ):
                x, y = task.to_device(batch, device)
                crops = 1
                if isinstance(x, torch.Tensor) and x.ndim == 5:
                    crops = x.shape[1]
                    x = x.flatten(0, 1)
                if channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                logits = task.forward(model, x).float()
                if crops > 1:
                    logits = logits.view(-1, crops, logits.shape[-1]).sum(1)
                pred = logits.argmax(-1)
                sums[0] += (pred == y).sum()
                if wants:
                    if confusion is None:
                        k = logits.shape[-1]
                        confusion = torch.zeros(k * k, dtype=torch.float64, device=device)
                    confusion += torch.bincount(y * k + pred, minlength=k * k)[: k * k].to(
                        torch.float64
                    )
                sums[1] += F.cross_entropy(logits / crops, y, reduction="sum").double()
                sums[2] += y.shape[0]
    finally:
        model.train(was_training)
    dist.sum(sums)
    correct, loss, n = sums.tolist()
    out: dict[str, float] = {
        "accuracy": correct / n if n else float("nan"),
        "loss": loss / n if n else float("nan"),
        "n": int(n),
    }
    if confusion is not None:
        out.update(task.metrics(dist.sum(confusion).view(k, k).cpu()))
    return out
