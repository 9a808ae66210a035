"""Fine-tuning: the paper's protocol as presets, one training loop, run directories, sweeps.

Example:
    >>> from spectral_probe.training import FinetuneConfig, get_preset
    >>> get_preset("paper").momentum, get_preset("released").momentum
    (0.95, 0.9)
    >>> FinetuneConfig(data="digits", method="l2-sp+bss", rate="15%").resolve().hp["l2-sp.beta"]
    0.01

Run one: ``finetune(config, out_dir) -> RunResult``; read one back: ``load_run(dir)``;
many: ``load_sweep(path).configs()`` and ``run_sweep(...)``; tabulate: ``sweep_table(root)``.
Scenarios plug in as a :class:`Task` (``register_task``), optimisation defaults as a
:class:`Preset` (``register_preset``), extra behaviour as a :class:`TrainingHook`.
"""

from __future__ import annotations

from ..models.mlp import MLP
from ..models.text_classifier import TextClassifier
from .aggregate import (
    PAPER_DATASETS,
    PAPER_METHODS,
    SweepTable,
    collect_runs,
    paper_table2,
    sweep_table,
)
from .batches import BatchPlan, TensorTenCrop
from .config import OPERATIONAL_KEYS, FinetuneConfig, config_diff, parse_hp, parse_task_options
from .distributed import DistContext, init_distributed
from .engine import Trainer, finetune
from .figures import (
    plot_bss_k_sweep,
    plot_error_vs_rate,
    plot_spectra_with_without_bss,
    plot_spectrum_over_time,
    plot_tsvd_sweep,
    run_figures,
)
from .hooks import StopAfter, TrainingHook
from .image import ImageClassificationTask
from .permuted import (
    PermutedPixelsTask,
    PermutedResult,
    PixelPermutation,
    pixel_permutation,
    run_permuted,
)
from .presets import Preset, get_preset, list_presets, register_preset
from .rundir import RunDir, RunResult, load_run
from .scenarios import SCENARIOS, apply_scenario, scenario_of
from .schedule import lr_factor
from .spectra import bss_pairs, runs_feature_spectra
from .sweep import SweepReport, SweepSpec, load_sweep, run_sweep
from .table3 import PAPER_TABLE3, Table3, collect_permuted, table3
from .table4 import PAPER_TABLE4, Table4, collect_glue, table4
from .tasks import Task, TaskSetup, get_task, list_tasks, register_task
from .text import GLUE_METRICS, TextClassificationTask, TokenizeCollate

__all__ = [
    "FinetuneConfig",
    "OPERATIONAL_KEYS",
    "config_diff",
    "parse_hp",
    "parse_task_options",
    "Preset",
    "get_preset",
    "list_presets",
    "register_preset",
    "finetune",
    "Trainer",
    "TrainingHook",
    "StopAfter",
    "RunDir",
    "RunResult",
    "load_run",
    "Task",
    "TaskSetup",
    "register_task",
    "get_task",
    "list_tasks",
    "ImageClassificationTask",
    "TextClassificationTask",
    "TextClassifier",
    "TokenizeCollate",
    "GLUE_METRICS",
    "PermutedPixelsTask",
    "PermutedResult",
    "PixelPermutation",
    "pixel_permutation",
    "run_permuted",
    "MLP",
    "Table3",
    "table3",
    "collect_permuted",
    "PAPER_TABLE3",
    "Table4",
    "table4",
    "collect_glue",
    "PAPER_TABLE4",
    "SCENARIOS",
    "apply_scenario",
    "scenario_of",
    "BatchPlan",
    "TensorTenCrop",
    "DistContext",
    "init_distributed",
    "lr_factor",
    "SweepSpec",
    "SweepReport",
    "load_sweep",
    "run_sweep",
    "SweepTable",
    "collect_runs",
    "sweep_table",
    "paper_table2",
    "PAPER_DATASETS",
    "PAPER_METHODS",
    "runs_feature_spectra",
    "bss_pairs",
    "plot_error_vs_rate",
    "plot_tsvd_sweep",
    "plot_bss_k_sweep",
    "plot_spectra_with_without_bss",
    "plot_spectrum_over_time",
    "run_figures",
]
