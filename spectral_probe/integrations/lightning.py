r"""Lightning callbacks: BSS on the features entering the head, and their spectrum logged.

Both read the head's input ``F`` (shape ``(b, d)``) with a forward pre-hook on the module
named ``head`` inside the ``LightningModule`` (a dotted name such as ``"model.fc"``), so the
module's ``training_step`` stays as it is::

    from lightning.pytorch import Trainer
    from spectral_probe.integrations.lightning import BSSCallback, SpectraCallback

    trainer = Trainer(callbacks=[BSSCallback(head="model.fc", eta=1e-3),
                                 SpectraCallback(head="model.fc", every_n_steps=50)])

Works with ``lightning`` (``lightning.pytorch``) or the older ``pytorch_lightning`` package.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import Tensor, nn

from .._checks import check_float, check_int
from .._extras import require_extra
from ..errors import ConfigError
from ..regularizers import FeatureCapture, bss_penalty
from ..spectral import singular_values

try:
    _pl: Any = importlib.import_module("lightning.pytorch")
except ImportError:  # the older distribution, or none (then one line naming the extra)
    _pl = require_extra("pytorch_lightning", "lightning", "spectral_probe.integrations.lightning")

__all__ = ["BSSCallback", "SpectraCallback"]

_Callback: Any = _pl.Callback


class _HeadFeatures(_Callback):
    """Capture the head's input during training batches (hook installed at ``setup``)."""

    def __init__(self, head: str) -> None:
        super().__init__()
        if not isinstance(head, str) or not head:
            raise ConfigError(
                f"expected head as the dotted name of the classifier module, found {head!r}"
            )
        self.head = head
        self._capture: FeatureCapture | None = None

    def setup(self, trainer: Any, pl_module: nn.Module, stage: str) -> None:
        if self._capture is None:
            self._capture = FeatureCapture(pl_module, self.head)

    def teardown(self, trainer: Any, pl_module: nn.Module, stage: str) -> None:
        if self._capture is not None:
            self._capture.remove()
            self._capture = None

    def on_train_batch_start(
        self, trainer: Any, pl_module: nn.Module, batch: Any, batch_idx: int
    ) -> None:
        if self._capture is not None:
            self._capture.features = None  # never a previous batch's (or validation's) features

    def features(self) -> Tensor:
        """``F`` of the current training batch, ``(b, d)``."""
        f = self._capture.features if self._capture is not None else None
        if f is None:
            raise ConfigError(
                f"expected the module {self.head!r} to run in training_step, found no input captured"
            )
        return f.flatten(1)


class BSSCallback(_HeadFeatures):
    r"""Add :math:`\eta \sum_{i=1}^{k} \sigma_{-i}^2(F)` to every training loss.

    The penalty is added in place to the loss Lightning is about to backpropagate (in
    ``on_before_backward``), scaled as Lightning scales that loss (the AMP grad scaler, and
    ``1 / accumulate_grad_batches``), so one backward pass covers both, under DDP too. It is
    logged as ``train/loss_bss``. The loss's last operation must not save its output for
    backward (true of ``cross_entropy``, ``mse_loss`` and sums).

    Args:
        head: dotted name of the classifier module inside the ``LightningModule``.
        eta: trade-off :math:`\eta` (paper: 0.001).
        k: number of smallest singular values (paper: 1).
        precision: Gram precision (see :func:`~spectral_probe.regularizers.bss_penalty`).
    """

    def __init__(
        self, head: str, *, eta: float = 0.001, k: int = 1, precision: str = "auto"
    ) -> None:
        super().__init__(head)
        self.eta = check_float("bss.eta", eta)
        self.k = check_int("bss.k", k)
        self.precision = precision

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Tensor) -> None:
        if not pl_module.training:
            return
        penalty = self.eta * bss_penalty(self.features(), self.k, precision=self.precision)
        scale = 1.0 / max(int(getattr(trainer, "accumulate_grad_batches", 1)), 1)
        scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
        if scaler is not None and scaler.is_enabled():
            scale = scale * float(scaler.get_scale())
        loss.add_(penalty.to(loss.dtype) * scale)
        pl_module.log("train/loss_bss", penalty.detach(), on_step=True, on_epoch=False)


class SpectraCallback(_HeadFeatures):
    """Log the singular values of the training batch's features every ``every_n_steps`` steps.

    Logs ``spectrum/sigma_max``, ``spectrum/sigma_min`` and ``spectrum/tail_energy`` (the
    share of :math:`\\sum \\sigma^2` in the ``k`` smallest) through ``pl_module.log``; with a
    TensorBoard logger, also the histogram ``features/singular_values``. Every measurement is
    kept in :attr:`spectra` as tidy rows ``(step, index, sigma)`` (index 0 the largest), the
    layout of :attr:`~spectral_probe.training.RunResult.spectra`; :meth:`to_frame` returns them
    as a DataFrame.

    Args:
        head: dotted name of the classifier module inside the ``LightningModule``.
        every_n_steps: global steps between measurements.
        k: number of smallest singular values in ``tail_energy``.
    """

    def __init__(self, head: str, *, every_n_steps: int = 50, k: int = 1) -> None:
        super().__init__(head)
        self.every_n_steps = check_int("every_n_steps", every_n_steps)
        self.k = check_int("k", k)
        self.spectra: list[tuple[int, int, float]] = []
        self._last_step = -1

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(trainer.global_step)
        due = step != self._last_step and (step - 1) % self.every_n_steps == 0
        if not due or self._capture is None or self._capture.features is None:
            return
        self._last_step = step
        sigma = singular_values(self.features().detach()).cpu()
        self.spectra.extend((step, i, float(s)) for i, s in enumerate(sigma.tolist()))
        energy = sigma.square()
        tail = float(energy[-self.k :].sum() / energy.sum().clamp_min(1e-30))
        pl_module.log_dict(
            {
                "spectrum/sigma_max": float(sigma[0]),
                "spectrum/sigma_min": float(sigma[-1]),
                "spectrum/tail_energy": tail,
            },
            on_step=True,
            on_epoch=False,
        )
        for logger in trainer.loggers:
            add_histogram = getattr(getattr(logger, "experiment", None), "add_histogram", None)
            if add_histogram is not None:  # TensorBoard's SummaryWriter
                add_histogram("features/singular_values", sigma.numpy(), step)

    def to_frame(self) -> Any:
        """The measurements as a tidy DataFrame ``(step, index, sigma)``."""
        import pandas as pd

        return pd.DataFrame(self.spectra, columns=["step", "index", "sigma"])
