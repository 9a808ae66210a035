r"""A Hugging Face ``Trainer`` that adds Batch Spectral Shrinkage to the loss.

.. math::
    L = L_{task} + \eta \sum_{i=1}^{k} \sigma_{-i}^2(F)

with ``F`` the ``(b, d)`` features of each training micro-batch: the last hidden state of the
first token (``features="cls"``, [CLS] for BERT-like encoders) or the input of the
classification head (``features="pooled"``: BERT's pooler output; a head that takes the whole
sequence, as RoBERTa's, gives its first token)::

    from spectral_probe.integrations.hf import BSSTrainer

    trainer = BSSTrainer(model=model, args=args, train_dataset=train, bss_eta=1e-3, bss_k=1)
    trainer.train()

Evaluation and prediction are unchanged. The mean penalty since the last log line is logged
as ``loss_bss``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .._checks import check_choice, check_float, check_int
from .._extras import require_extra
from ..errors import ConfigError
from ..regularizers import FeatureCapture, bss_penalty

_transformers: Any = require_extra("transformers", "hf", "spectral_probe.integrations.hf")
require_extra("accelerate", "hf", "transformers.Trainer")

__all__ = ["BSSTrainer", "FEATURES"]

#: Where ``F`` is read: the first token's last hidden state, or the classification head's input.
FEATURES = ("cls", "pooled")


class BSSTrainer(_transformers.Trainer):
    """``transformers.Trainer`` with BSS on the [CLS] or pooled features of each training batch.

    Args:
        *args: as ``transformers.Trainer``.
        bss_eta: trade-off :math:`\\eta` (paper: 0.001).
        bss_k: number of smallest singular values penalised (paper: 1); ``< batch size``.
        bss_features: ``"cls"`` (default) or ``"pooled"`` (see the module docstring).
        bss_head: with ``"pooled"``, the dotted name of the classification head
            (default ``"classifier"``, as in ``*ForSequenceClassification`` models).
        **kwargs: as ``transformers.Trainer``.
    """

    def __init__(
        self,
        *args: Any,
        bss_eta: float = 0.001,
        bss_k: int = 1,
        bss_features: str = "cls",
        bss_head: str = "classifier",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.bss_eta = check_float("bss_eta", bss_eta)
        self.bss_k = check_int("bss_k", bss_k)
        self.bss_features = check_choice("bss_features", bss_features, FEATURES)
        self._capture = FeatureCapture(self.model, bss_head) if bss_features == "pooled" else None
        self._bss_sum = 0.0
        self._bss_count = 0

    def bss_features_of(self, outputs: Any) -> Tensor:
        """``F`` of the batch just run, shape ``(b, d)``."""
        if self._capture is not None:
            f = self._capture.features
            if f is None:
                raise ConfigError(
                    "expected the classification head to run in the forward pass, found no input"
                )
            return f[:, 0] if f.dim() == 3 else f.flatten(1)
        hidden = outputs.get("hidden_states") if isinstance(outputs, dict) else None
        if not hidden:
            raise ConfigError(
                "expected the model to return hidden_states with output_hidden_states=True, found none"
            )
        return hidden[-1][:, 0]

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """The task loss of ``transformers.Trainer`` plus, in training, the BSS penalty."""
        training = model.training
        if training and self._capture is None:
            inputs = {**inputs, "output_hidden_states": True}
        if self._capture is not None:
            self._capture.features = None
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if training:
            penalty = self.bss_eta * bss_penalty(self.bss_features_of(outputs), self.bss_k)
            self._bss_sum += float(penalty.detach())
            self._bss_count += 1
            if self._loss_scaled_for_accumulation(num_items_in_batch):
                penalty = penalty / max(
                    int(getattr(self, "current_gradient_accumulation_steps", 1)), 1
                )
            loss = loss + penalty.to(loss.dtype)
        return (loss, outputs) if return_outputs else loss

    def _loss_scaled_for_accumulation(self, num_items_in_batch: Any) -> bool:
        """Whether the Trainer skips dividing this loss by the accumulation steps (then BSS
        divides itself, so that it weighs ``eta`` per micro-batch either way)."""
        fixed = getattr(self, "loss_is_scaled_for_ga", None)
        if fixed is not None:
            return bool(fixed)
        accepts = bool(getattr(self, "model_accepts_loss_kwargs", False))
        return (accepts and num_items_in_batch is not None) or getattr(
            self, "compute_loss_func", None
        ) is not None

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add ``loss_bss`` (the mean penalty since the last training log line)."""
        if "loss" in logs and self._bss_count:
            logs["loss_bss"] = self._bss_sum / self._bss_count
            self._bss_sum, self._bss_count = 0.0, 0
        super().log(logs, *args, **kwargs)
