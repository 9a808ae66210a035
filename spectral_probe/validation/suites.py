"""Validation suites: tasks (model x dataset x sampling rate) and how to pilot and fully train them.

===========  =========================================================================
``quick``    offline CPU, sized for about 15 minutes on 2 idle cores: bundled
             EfficientNet-Lite0 (ImageNet) and the same architecture randomly
             initialised, on Fashion-MNIST at 1%; 32 px,
             batch 16; pilots of 10 iterations on 2 seeds, full runs of 20 on 1 seed. A
             smoke test of the machinery: far too short to validate anything.
``cpu``      offline CPU, about 2 hours on 2 idle cores: bundled EfficientNet-Lite0 on
             Fashion-MNIST at 1% and 5%, on its four confusable classes (T-shirt/top,
             pullover, coat, shirt) at 5% and on digits at 30%; Lite0 randomly
             initialised and Lite1 on Fashion-MNIST at 5% (6 tasks); 64 px; pilots of
             150 iterations on 3 seeds, full runs of 300 on 3 seeds, for each of the
             report's five default candidates (180 runs).
``table2``   the paper's grid (ResNet-50 on the datasets of the packaged ``table2`` sweep at
             15/30/50/100%), ``paper`` preset: pilots of 1000 iterations on 3 seeds, full
             runs of 9000 on 3 seeds. Needs ``DATA`` set to the folder of the datasets.
===========  =========================================================================

Sizing the ``cpu`` suite: two runs side by side on the dev box (2026-12-05) took ~40-90 s
per pilot of 150 iterations (64 px, batch 32, up to 2000 validation images) and ~90 s per
full run of 300 iterations judged on the 10,000 test images, so a Lite0 task (15 pilots,
15 full runs) is ~20 minutes on 2 cores, Lite1 ~1.3x. More rates, Lite2 and longer full
runs each add as much: a larger grid belongs on a GPU (``--device cuda``) or a cluster
(``--executor slurm``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..report.settings import DEFAULT_METHODS

__all__ = ["CONFUSABLE_FASHION", "SUITES", "Suite", "Task", "get_suite", "list_suites"]

#: An ImageNet-free baseline: the Lite0 architecture with random weights (offline).
RANDOM_LITE0 = "timm:tf_efficientnet_lite0"


@dataclass(frozen=True)
class Task:
    """One decision to validate: which regularizer for ``model`` on ``data`` at ``rate``."""

    model: str
    data: str
    rate: str

    @property
    def name(self) -> str:
        return f"{self.model} | {self.data} | {self.rate}"


@dataclass(frozen=True)
class Suite:
    """Tasks, candidates, and the pilot and full-run protocols.

    Attributes:
        name: the suite's name.
        tasks: the decisions.
        methods: the candidates (the report's default list unless changed).
        preset: fine-tuning preset of every run.
        image_size: input side (``None``: the preset's).
        pilot_iterations / pilot_seeds / val / pilot_eval_max: the report's pilots
            (judged on a validation split carved from the training data).
        full_iterations / full_seeds / full_eval_max: the full runs (all training data,
            judged on the test split).
        spectrum_batches: batches of the pre-trained feature spectrum (the tail signal).
        overrides: other :class:`~spectral_probe.training.FinetuneConfig` fields of every run.
    """

    name: str
    tasks: tuple[Task, ...]
    methods: tuple[str, ...] = DEFAULT_METHODS
    preset: str = "demo"
    image_size: int | None = None
    pilot_iterations: int = 150
    pilot_seeds: tuple[int, ...] = (0, 1, 2)
    val: str = "10%"
    pilot_eval_max: int | None = 2000
    full_iterations: int = 600
    full_seeds: tuple[int, ...] = (0, 1, 2)
    full_eval_max: int | None = None
    spectrum_batches: int = 4
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _quick() -> Suite:
    lite0 = "bundled:efficientnet_lite0"
    return Suite(
        name="quick",
        tasks=(
            Task(lite0, "fashion-mnist", "1%"),
            Task(RANDOM_LITE0, "fashion-mnist", "1%"),
        ),
        image_size=32,
        pilot_iterations=10,
        pilot_seeds=(0, 1),
        val="20%",
        pilot_eval_max=200,
        full_iterations=20,
        full_seeds=(0,),
        full_eval_max=500,
        spectrum_batches=2,
        overrides={"batch_size": 16},
    )


#: Fashion-MNIST's four confusable classes (the upper-body garments).
CONFUSABLE_FASHION = "fashion-mnist[T-shirt/top,Pullover,Coat,Shirt]"


def _cpu() -> Suite:
    lite0 = "bundled:efficientnet_lite0"
    tasks = (
        Task(lite0, "fashion-mnist", "1%"),
        Task(lite0, "fashion-mnist", "5%"),
        Task(lite0, CONFUSABLE_FASHION, "5%"),
        Task(lite0, "digits", "30%"),
        Task(RANDOM_LITE0, "fashion-mnist", "5%"),
        Task("bundled:efficientnet_lite1", "fashion-mnist", "5%"),
    )
    return Suite(
        name="cpu",
        tasks=tasks,
        image_size=64,
        pilot_iterations=150,
        pilot_seeds=(0, 1, 2),
        val="10%",
        pilot_eval_max=2000,
        full_iterations=300,
        full_seeds=(0, 1, 2),
        full_eval_max=None,
    )


def _table2() -> Suite:
    from ..training.sweep import load_sweep

    spec = load_sweep("table2")  # ConfigError (one line) when DATA is unset
    model = str(spec.base.get("model", "torchvision:resnet50:IMAGENET1K_V1"))
    data = [d["data"] if isinstance(d, Mapping) else str(d) for d in spec.grid["data"]]
    rates = [str(r) for r in spec.grid["rate"]]
    return Suite(
        name="table2",
        tasks=tuple(Task(model, d, r) for d in data for r in rates),
        methods=DEFAULT_METHODS,
        preset="paper",
        pilot_iterations=1000,
        pilot_seeds=(0, 1, 2),
        val="10%",
        pilot_eval_max=None,
        full_iterations=9000,
        full_seeds=(0, 1, 2),
        spectrum_batches=8,
        overrides={"num_workers": 8},
    )


SUITES = {"quick": _quick, "cpu": _cpu, "table2": _table2}


def list_suites() -> list[str]:
    """Names of the shipped suites."""
    return sorted(SUITES)


def get_suite(name: str) -> Suite:
    """The shipped suite called ``name``.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in SUITES:
        raise ConfigError(f"expected a suite in {list_suites()}, found {name!r}")
    return SUITES[name]()
