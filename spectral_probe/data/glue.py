"""GLUE text-classification tasks read from the official TSV files (``glue-<task>:DIR``).

``DIR`` is the task folder written by GLUE's download script (or the ``glue_data`` folder
above it). Files are read as GLUE's own processors read them: tab-separated, a header
row, no quoting (sentences may hold unbalanced ``"``), UTF-8 with an optional BOM.

=========  ==========  ============================  ==============  ==============================
spec       folder      text columns                  label column    classes (label values)
=========  ==========  ============================  ==============  ==============================
glue-sst2  ``SST-2``   ``sentence``                  ``label``       negative (0), positive (1)
glue-mrpc  ``MRPC``    ``#1 String``, ``#2 String``  ``Quality``     not_equivalent (0),
                                                                     equivalent (1)
glue-qnli  ``QNLI``    ``question``, ``sentence``    ``label``       entailment, not_entailment
glue-mnli  ``MNLI``    ``sentence1``, ``sentence2``  ``gold_label``  contradiction, entailment,
                                                                     neutral
=========  ==========  ============================  ==============  ==============================

Splits: ``train`` (``train.tsv``) and ``dev`` (``dev.tsv``; MNLI: ``dev_matched.tsv``, the
paper's MNLI-m). GLUE's ``test.tsv`` files carry no labels, so ``test`` is accepted as an
alias of ``dev``: the evaluation split. MNLI also has ``dev-mismatched``.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ._base import TextDataset, Transform
from ._layout import locate_root
from .spec import register_dataset

__all__ = ["GlueTask", "GLUE_TASKS", "read_glue_tsv", "load_glue"]


@dataclass(frozen=True)
class GlueTask:
    """Where one GLUE task keeps its text and labels."""

    name: str
    folder: str
    text_columns: tuple[str, ...]
    label_column: str
    label_values: tuple[str, ...]
    classes: tuple[str, ...]
    files: Mapping[str, str] = field(
        default_factory=lambda: {"train": "train.tsv", "dev": "dev.tsv"}
    )


GLUE_TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in (
        GlueTask("sst2", "SST-2", ("sentence",), "label", ("0", "1"), ("negative", "positive")),
        GlueTask(
            "mrpc",
            "MRPC",
            ("#1 String", "#2 String"),
            "Quality",
            ("0", "1"),
            ("not_equivalent", "equivalent"),
        ),
        GlueTask(
            "qnli",
            "QNLI",
            ("question", "sentence"),
            "label",
            ("entailment", "not_entailment"),
            ("entailment", "not_entailment"),
        ),
        GlueTask(
            "mnli",
            "MNLI",
            ("sentence1", "sentence2"),
            "gold_label",
            ("contradiction", "entailment", "neutral"),
            ("contradiction", "entailment", "neutral"),
            files={
                "train": "train.tsv",
                "dev": "dev_matched.tsv",
                "dev-mismatched": "dev_mismatched.tsv",
            },
        ),
    )
}


def read_glue_tsv(path: Path, task: GlueTask) -> tuple[list[tuple[str, ...]], list[int]]:
    """``(texts, targets)`` of a labelled GLUE TSV file.

    Raises:
        DataError: missing columns (names those expected and found), a short row, or a
            label outside the task's label set (names the line).
    """
    index_of = {v: i for i, v in enumerate(task.label_values)}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.strip() for h in next(reader, [])]
        wanted = [*task.text_columns, task.label_column]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise DataError(
                f"expected columns {wanted} in {path}, found {header} (missing {missing})"
            )
        cols = [header.index(c) for c in task.text_columns]
        label_col = header.index(task.label_column)
        need = max(*cols, label_col) + 1
        texts: list[tuple[str, ...]] = []
        targets: list[int] = []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            line = reader.line_num
            if len(row) < need:
                raise DataError(
                    f"expected at least {need} tab-separated fields in {path} (line {line}), "
                    f"found {len(row)}"
                )
            label = row[label_col].strip()
            if label not in index_of:
                raise DataError(
                    f"expected a {task.label_column} in {list(task.label_values)} in {path} "
                    f"(line {line}), found {label!r}"
                )
            texts.append(tuple(row[c] for c in cols))
            targets.append(index_of[label])
    return texts, targets


def load_glue(
    task: str, root: Path | None, split: str, transform: Transform | None = None
) -> TextDataset:
    """Load ``split`` (``train``/``dev``) of GLUE ``task`` from the TSV files under ``root``."""
    spec = GLUE_TASKS[task]
    name = f"glue-{task}"
    fname = spec.files[split]
    base = locate_root(root, name, fname, [spec.folder])
    texts, targets = read_glue_tsv(base / fname, spec)
    return TextDataset(
        texts, targets, list(spec.classes), name=name, split=split, transform=transform
    )


for _task in GLUE_TASKS.values():
    register_dataset(
        f"glue-{_task.name}",
        kind="text",
        splits=tuple(_task.files),
        split_aliases={"test": "dev", "validation": "dev", "dev-matched": "dev"},
        class_subsets=False,  # GLUE's metrics (F1, MCC) are defined on the full label set
        usage=f"glue-{_task.name}:/path/to/glue_data/{_task.folder}",
        summary=f"GLUE {_task.folder}: " + ", ".join(_task.files.values()),
    )(functools.partial(load_glue, _task.name))
del _task
