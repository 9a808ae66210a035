"""Tasks: what the one training loop needs to know about a scenario.

The engine (:mod:`~spectral_probe.training.engine`) is scenario-agnostic. A :class:`Task`
tells it how to

* build the model with its new head and the datasets from a config (:meth:`Task.setup`),
* move a batch to the device (:meth:`Task.to_device`) and run the model on it
  (:meth:`Task.forward`), and the loss (:meth:`Task.loss`),
* count the work in a batch for throughput (:meth:`Task.count`: images, or tokens),
* which batches a data-dependent regularizer prepares on (:meth:`Task.prepare_loader`:
  the training data for DELTA, the previous task's for EWC),
* optionally, how the optimizer's parameter groups are split (:meth:`Task.param_groups`:
  BERT's no weight decay on biases and LayerNorm) and which metrics besides accuracy an
  evaluation reports (:meth:`Task.metrics`, from the confusion matrix: F1 for MRPC).

Image classification (the paper's Table 2) is the built-in task. Adding a scenario
(e.g. GLUE text classification, or the permuted-pixel incremental protocol) is one
subclass decorated with :func:`register_task`; the loop, checkpoints, resume, DDP, logging,
sweeps and run directories come for free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..models import Preprocessing
    from .config import FinetuneConfig

__all__ = ["Task", "TaskSetup", "register_task", "get_task", "list_tasks"]


@dataclass
class TaskSetup:
    """Everything a task builds for one run.

    Attributes:
        model: the network to fine-tune, new head attached, at its start point (CPU).
        head: dotted name of the head module (its input is the feature matrix ``F``).
        base: the model spec that rebuilds the architecture (the checkpoint's ``base``).
        train: the sampled training set, with the training transform.
        val: the validation split (evaluation transform), or ``None``.
        evals: final evaluation sets by name (``{"test": ...}``), evaluation transform.
        classes: class names, index-aligned with the head's outputs.
        preprocessing: the model's input normalisation (saved in the checkpoint).
        modality: ``"image"`` or ``"text"``.
        reference: the start point handed to the regularizers' ``prepare`` (``None``: the
            model's weights as they are now).
        collate: how samples become a batch for per-sample datasets (``None``: torch's).
        info: anything else worth recording in ``config.json`` (sizes, split counts).
    """

    model: nn.Module
    head: str
    base: str
    train: Any
    val: Any | None
    evals: dict[str, Any]
    classes: list[str]
    preprocessing: Preprocessing | None = None
    modality: str = "image"
    reference: nn.Module | Mapping[str, Tensor] | None = None
    collate: Callable[[list[Any]], Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class of a scenario run by the engine (see the module docstring)."""

    name: ClassVar[str] = ""
    #: what :meth:`count` counts, for the throughput column (``images/s``, ``tokens/s``)
    unit: ClassVar[str] = "images"
    #: the names ``config.task_options`` may hold (:meth:`check_options`)
    options: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` as a dict, refusing (one line naming the valid ones) names the task lacks."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            valid = f"from {list(cls.options)}" if cls.options else "(it takes none)"
            raise ConfigError(f"expected task options of {cls.name} {valid}, found {unknown}")
        return dict(options)

    def setup(self, config: FinetuneConfig) -> TaskSetup:
        """Build model (new head included, seeded by the caller) and datasets."""
        raise NotImplementedError

    def to_device(
        self, batch: Any, device: torch.device, *, channels_last: bool = False
    ) -> tuple[Any, Tensor]:
        """``(inputs, targets)`` of a loader batch, on ``device``."""
        inputs, targets = batch[0], batch[1]
        inputs = _move(inputs, device)
        if channels_last and isinstance(inputs, Tensor) and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs, targets.to(device, non_blocking=True)

    def forward(self, model: nn.Module, inputs: Any) -> Tensor:
        """Logits of ``model`` on ``inputs`` (a dict of tensors is passed as keywords)."""
        if isinstance(inputs, Mapping):
            return model(**inputs)
        return model(inputs)

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The task loss (cross-entropy)."""
        return torch.nn.functional.cross_entropy(logits.float(), targets)

    def count(self, inputs: Any) -> int:
        """Units of work in a batch (images; a text task counts tokens)."""
        if isinstance(inputs, Tensor):
            return int(inputs.shape[0])
        if isinstance(inputs, Mapping) and "attention_mask" in inputs:
            return int(inputs["attention_mask"].sum())
        first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs[0]
        return int(first.shape[0])

    def prepare_loader(
        self, setup: TaskSetup, batches: Callable[[], Iterable[Any]]
    ) -> Iterable[Any] | None:
        """Batches for data-dependent regularizers (DELTA's attention, EWC's Fisher).

        ``batches()`` yields the training data in the run's order, with the evaluation
        transform, as ``(inputs, targets)`` on the device. A task whose regularizer needs
        other data (EWC: the previous task) returns its own loader here.
        """
        return batches()

    def param_groups(self, model: nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (from the regularizers), possibly split further.

        A group may be marked ``"no_decay": True``: it then does not take the config's
        ``weight_decay``. The default returns ``groups`` unchanged.
        """
        return groups

    def metrics(self, confusion: Tensor) -> dict[str, float]:
        """Metrics beyond accuracy and loss from an evaluation's confusion matrix.

        ``confusion[i, j]`` counts samples of class ``i`` predicted as ``j`` (summed over DDP
        ranks). The default adds nothing.
        """
        return {}


def _move(value: Any, device: torch.device) -> Any:
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    return value


_TASKS: dict[str, type[Task]] = {}
T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Class decorator: make ``cls`` selectable as ``config.task = cls.name``."""
    if not cls.name:
        raise ValueError("a task needs a name")
    if cls.name in _TASKS and _TASKS[cls.name] is not cls:
        raise ValueError(f"task {cls.name!r} is already registered")
    _TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> Task:
    """A new instance of the task registered as ``name``."""
    try:
        return _TASKS[name]()
    except KeyError:
        raise ConfigError(f"expected a task in {sorted(_TASKS)}, found {name!r}") from None


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return sorted(_TASKS)
