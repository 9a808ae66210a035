r"""The permuted-pixel incremental protocol (the paper's Table 3): task A, then task B with EWC.

Task A is a classification data set of small grayscale images with its pixels as they are;
task B is the same data set with one fixed random permutation of the pixels, the same for
the training and the test images. An MLP (:class:`MLP`, the EWC paper's two hidden layers of
400 ReLU units) is trained on task A, then on task B from task A's weights with EWC's
penalty (diagonal Fisher on task A's data, at task A's weights) and, for ``ewc+bss``, BSS on
the last hidden layer's features (the input of the shared head ``fc``). Both test sets are
evaluated at the end: ``final.json`` of the task-B run holds ``evals.test`` (task B) and
``evals.task_a`` (task A).

One engine, two runs. :class:`PermutedPixelsTask` (``task = "permuted"``) has two phases
(``task_options.phase``, inferred when absent: ``A`` for a fresh ``mlp:`` model, ``B`` for a
checkpoint):

* **A**: the model spec ``mlp:IN-H1-H2-OUT`` (e.g. ``mlp:784-400-400-10``) builds a fresh
  MLP (seeded by the run's seed); it trains on the original pixels; ``method = "none"``.
* **B**: the model is task A's checkpoint (``runs/<task A>/model.safetensors``); it trains on
  the permuted pixels; :meth:`PermutedPixelsTask.prepare_loader` hands the regularizers task
  A's training batches (original pixels), so EWC's Fisher is task A's. EWC's reference is
  the model as it starts, i.e. task A's network.

:func:`run_permuted` runs both (task A's run directory is shared by every task-B method of
the same seed, so EWC and EWC+BSS start from the very same network) and returns a
:class:`PermutedResult` with both accuracies and their average.

The permutation of a run is drawn from ``SeedSequence([permutation_seed, 17])`` with
``permutation_seed`` the run's seed unless ``task_options.permutation_seed`` fixes it
(:func:`pixel_permutation`). Pixels are scaled to [0, 1], as in the EWC paper.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data import load_dataset, make_splits
from ..errors import ConfigError
from ..models import load_model
from ..models.mlp import MLP
from .image import init_head
from .presets import Preset, register_preset
from .tasks import Task, TaskSetup, register_task

if TYPE_CHECKING:
    from .config import FinetuneConfig
    from .hooks import TrainingHook
    from .rundir import RunResult

__all__ = [
    "PixelPermutation",
    "pixel_permutation",
    "PermutedPixelsTask",
    "PermutedResult",
    "permuted_configs",
    "run_permuted",
    "PERMUTED_PRESET",
]

_PERMUTATION_STREAM = 17
_OPTIONS = ("phase", "permutation_seed")


# ---------------------------------------------------------------------- the permutation


def pixel_permutation(pixels: int, seed: int) -> np.ndarray:
    """The fixed permutation of ``pixels`` positions for ``seed`` (int64, shape ``(pixels,)``).

    Example:
        >>> p = pixel_permutation(784, 0)
        >>> bool((p == pixel_permutation(784, 0)).all()), sorted(p.tolist()) == list(range(784))
        (True, True)
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _PERMUTATION_STREAM]))
    return rng.permutation(int(pixels)).astype(np.int64)


class PixelPermutation(nn.Module):
    r"""``uint8`` images to flat pixel vectors in [0, 1], permuted: :math:`y_j = x_{\pi(j)} / 255`.

    Takes ``(C, H, W)`` or batches ``(B, C, H, W)`` (``batched``: in-memory datasets apply it to
    whole batches) and returns ``(C·H·W,)`` or ``(B, C·H·W)`` float32. ``permutation=None``
    keeps the pixel order (task A).
    """

    batched = True
    index: Tensor | None

    def __init__(self, permutation: np.ndarray | Sequence[int] | None = None) -> None:
        super().__init__()
        index = (
            None
            if permutation is None
            else torch.as_tensor(np.asarray(permutation), dtype=torch.int64)
        )
        self.register_buffer("index", index, persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        single = images.ndim == 3
        x = (images.unsqueeze(0) if single else images).flatten(1).to(torch.float32).div_(255.0)
        if self.index is not None:
            if self.index.numel() != x.shape[1]:
                raise ConfigError(
                    f"expected images of {self.index.numel()} pixels, found {x.shape[1]}"
                )
            x = x.index_select(1, self.index.to(x.device))
        return x[0] if single else x


# ---------------------------------------------------------------------- the task


class _TaskABatches:
    """Re-iterable ``(inputs, targets)`` batches of task A's training set, in a fixed order."""

    def __init__(self, dataset: Any, batch_size: int, device: torch.device, seed: int) -> None:
        self.dataset, self.batch_size, self.device, self.seed = dataset, batch_size, device, seed

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = np.random.default_rng(
            np.random.SeedSequence([self.seed, _PERMUTATION_STREAM, 1])
        ).permutation(len(self.dataset))
        for i in range(0, len(order), self.batch_size):
            x, y = self.dataset[order[i : i + self.batch_size]]
            yield x.to(self.device), y.to(self.device)


def _options(config: FinetuneConfig) -> dict[str, Any]:
    opts = PermutedPixelsTask.check_options(config.task_options)
    phase = opts.get("phase", "A" if config.model.startswith("mlp:") else "B")
    if phase not in ("A", "B"):
        raise ConfigError(f"expected task option phase 'A' or 'B', found {phase!r}")
    pseed = opts.get("permutation_seed", config.seed)
    if isinstance(pseed, bool) or not isinstance(pseed, int) or pseed < 0:
        raise ConfigError(
            f"expected task option permutation_seed to be an integer >= 0, found {pseed!r}"
        )
    return {"phase": phase, "permutation_seed": pseed}


@register_task
class PermutedPixelsTask(Task):
    """Task A (original pixels) or task B (permuted pixels) of the incremental protocol."""

    name = "permuted"
    unit = "images"
    options = _OPTIONS

    def __init__(self) -> None:
        self._task_a_train: Any = None
        self._fisher_batches = (100, 0)  # batch size, order seed

    def setup(self, config: FinetuneConfig) -> TaskSetup:
        opts = _options(config)
        full = load_dataset(config.data, "train")
        if full.kind != "image" or not getattr(full, "supports_batch_index", False):
            raise ConfigError(
                f"expected an in-memory image dataset (mnist, fashion-mnist, digits) for task {self.name}, found {config.data}"
            )
        splits = make_splits(
            full.targets,
            rate=config.rate,
            val=config.val,
            seed=config.split_seed,
            min_per_class=2,
            classes=full.classes,
        )
        test = load_dataset(config.data, "test")
        pixels = int(np.prod(full[0][0].shape))
        original = PixelPermutation(None)
        permuted = PixelPermutation(pixel_permutation(pixels, opts["permutation_seed"]))
        phase_b = opts["phase"] == "B"
        if not phase_b and "ewc" in str(config.method).split("+"):
            raise ConfigError(
                f"expected task A (phase A) without ewc, found method {config.method!r}: EWC needs task A's "
                "network; run both tasks with `finetune --scenario permuted` or run_permuted()"
            )
        if phase_b and config.model.startswith("mlp:"):
            raise ConfigError(
                "expected task A's checkpoint (runs/<task A>/model.safetensors) as the model of phase B, "
                f"found a fresh network {config.model}"
            )
        loaded = load_model(config.model)
        sizes = getattr(loaded.model, "sizes", None)
        if (
            not isinstance(loaded.model, MLP)
            or sizes is None
            or sizes[0] != pixels
            or sizes[-1] != len(full.classes)
        ):
            want = f"mlp:{pixels}-400-400-{len(full.classes)}"
            raise ConfigError(
                f"expected an MLP with {pixels} inputs and {len(full.classes)} outputs for {config.data} "
                f"(e.g. {want}), found {config.model} ({loaded.arch})"
            )
        if not phase_b:
            init_head(loaded.model.fc, str(config.head_init))
        train_t = permuted if phase_b else original
        train = full.with_transform(train_t).subset(splits.train)
        val = full.with_transform(train_t).subset(splits.val) if len(splits.val) else None
        evals: dict[str, Any] = {"test": test.with_transform(train_t)}
        if phase_b:
            evals["task_a"] = test.with_transform(original)
            if len(splits.val):
                evals["task_a_val"] = full.with_transform(original).subset(splits.val)
            self._task_a_train = full.with_transform(original).subset(splits.train)
            self._fisher_batches = (int(config.batch_size), int(config.seed))  # type: ignore[arg-type]
        return TaskSetup(
            model=loaded.model,
            head="fc",
            base=loaded.arch,
            train=train,
            val=val,
            evals=evals,
            classes=list(full.classes),
            preprocessing=None,
            modality="image",
            info={
                "phase": opts["phase"],
                "permutation_seed": opts["permutation_seed"],
                "pixels": pixels,
                "train_size": len(train),
                "val_size": len(splits.val),
                "test_size": len(test),
                "num_classes": len(full.classes),
                "task_a_model": config.model if phase_b else None,
            },
        )

    def prepare_loader(self, setup: TaskSetup, batches: Any) -> Any:
        """Phase B: task A's training batches (original pixels), for EWC's Fisher."""
        if self._task_a_train is None:
            return batches()
        device = next(setup.model.parameters()).device
        batch_size, seed = self._fisher_batches
        return _TaskABatches(self._task_a_train, batch_size, device, seed)


PERMUTED_PRESET = register_preset(
    Preset(
        name="permuted",
        summary="the EWC paper's permuted-MNIST MLP training: plain SGD (no momentum), lr 0.1 on the "
        "mean loss of batches of 100, 20 epochs per task, constant lr, torch's default initialisation",
        optimizer="sgd",
        lr=0.1,
        head_lr_ratio=1.0,
        momentum=0.0,
        batch_size=100,
        epochs=20,
        schedule="constant",
        image_size=28,
        resize=28,
        augment="none",
        ten_crop=False,
        head_init="default",
        eval_batch_size=1000,
    )
)


# ---------------------------------------------------------------------- both phases


@dataclass(frozen=True)
class PermutedResult:
    """The two runs of one permuted-pixel experiment.

    Attributes:
        task_a: the task-A run (original pixels, ``method = "none"``).
        task_b: the task-B run (permuted pixels, the method under test), ``None`` until task A
            is finished.
    """

    task_a: RunResult
    task_b: RunResult | None

    @property
    def status(self) -> str:
        """``finished`` when both runs are; otherwise the status of the one in progress."""
        if self.task_a.status != "finished" or self.task_b is None:
            return self.task_a.status
        return self.task_b.status

    def accuracies(self) -> dict[str, float | None]:
        """``task_a``, ``task_b`` (test top-1 after task B, fractions) and their ``average``."""
        evals = (self.task_b.final.get("evals") or {}) if self.task_b is not None else {}
        a = (evals.get("task_a") or {}).get("accuracy")
        b = (evals.get("test") or {}).get("accuracy")
        avg = (a + b) / 2 if a is not None and b is not None else None
        return {
            "task_a": a,
            "task_b": b,
            "average": avg,
            "task_a_before_b": self.task_a.test_accuracy,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: status, accuracies, both run directories and final.json files."""
        return {
            "status": self.status,
            **self.accuracies(),
            "task_a_run": str(self.task_a.run_dir),
            "task_b_run": str(self.task_b.run_dir) if self.task_b else None,
            "task_a_final": self.task_a.final,
            "task_b_final": self.task_b.final if self.task_b else None,
        }


def permuted_configs(
    config: FinetuneConfig, task_a_model: str | Path
) -> tuple[FinetuneConfig, FinetuneConfig]:
    """``(task A config, task B config)`` for a task-B ``config`` (its method is task B's).

    Task A keeps the data, rate, seed, preset and optimisation fields, with ``method = "none"``
    and the hyperparameters dropped; task B starts from ``task_a_model``.
    """
    opts = {k: v for k, v in dict(config.task_options).items() if k != "phase"}
    cfg_a = dataclasses.replace(
        config, task="permuted", method="none", hp={}, task_options={**opts, "phase": "A"}
    )
    cfg_b = dataclasses.replace(
        config, task="permuted", model=str(task_a_model), task_options={**opts, "phase": "B"}
    )
    return cfg_a, cfg_b


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock`` (POSIX ``flock``; a no-op elsewhere).

    Parallel sweep jobs of the ``ewc`` and ``ewc+bss`` cells of one seed need the same task-A
    run: the first trains it, the others wait and then reuse it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    created = not lock.parent.exists()
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    except BaseException:
        if created and [p.name for p in lock.parent.iterdir()] == [
            lock.name
        ]:  # leave nothing behind
            lock.unlink(missing_ok=True)
            lock.parent.rmdir()
        raise


def run_permuted(
    config: FinetuneConfig,
    out: str | Path,
    *,
    run_dir: str | Path | None = None,
    hooks: Sequence[TrainingHook] = (),
) -> PermutedResult:
    """Train task A (``out/<task A run id>``), then task B from it (``run_dir`` or ``out/<id>``).

    ``config`` describes task B: data, method (``ewc``, ``ewc+bss``...), seed, rate, preset
    (``permuted``), the MLP spec (``mlp:784-400-400-10``). A finished task-A run is reused, an
    interrupted one continues; the same holds for task B, so calling again after an
    interruption completes the experiment. Returns after task A if it did not finish.

    Example:
        >>> from spectral_probe.training import FinetuneConfig, run_permuted
        >>> cfg = FinetuneConfig(model="mlp:784-400-400-10", data="fashion-mnist", method="ewc+bss",
        ...                      task="permuted", preset="permuted")
        >>> run_permuted(cfg, "runs/").accuracies()  # doctest: +SKIP
        {'task_a': 0.86, 'task_b': 0.88, 'average': 0.87, 'task_a_before_b': 0.89}
    """
    from .engine import finetune

    if not config.model.startswith("mlp:"):
        raise ConfigError(
            f"expected the task-A network as an mlp: spec (e.g. mlp:784-400-400-10), found {config.model}"
        )
    out = Path(out)
    cfg_a, _ = permuted_configs(config, "")
    dir_a = out / cfg_a.run_id
    with _exclusive(out / f".{cfg_a.run_id}.lock"):  # sweep cells of one seed share task A
        res_a = finetune(cfg_a, dir_a, resume="auto", hooks=hooks)
    if res_a.status != "finished":
        return PermutedResult(res_a, None)
    _, cfg_b = permuted_configs(config, dir_a / "model.safetensors")
    dir_b = Path(run_dir) if run_dir is not None else out / cfg_b.run_id
    res_b = finetune(cfg_b, dir_b, resume="auto", hooks=hooks)
    return PermutedResult(res_a, res_b)
