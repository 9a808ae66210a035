"""GLUE TSV tasks: columns, labels, quoting, splits, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from _fixtures.datasets import GLUE_FOLDERS, glue_label_values, make_glue_task

from spectral_probe.data import TextDataset, load_dataset
from spectral_probe.errors import DataError

CLASSES = {
    "sst2": ["negative", "positive"],
    "mrpc": ["not_equivalent", "equivalent"],
    "qnli": ["entailment", "not_entailment"],
    "mnli": ["contradiction", "entailment", "neutral"],
}
SEGMENTS = {"sst2": 1, "mrpc": 2, "qnli": 2, "mnli": 2}


def _reference(
    path: Path, text_cols: list[str], label_col: str
) -> list[tuple[tuple[str, ...], str]]:
    """An independent reading with csv.DictReader (utf-8-sig, no quoting)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(tuple(r[c] for c in text_cols), r[label_col]) for r in rows]


@pytest.mark.parametrize("task", sorted(GLUE_FOLDERS))
def test_each_task(tmp_path: Path, task: str) -> None:
    folder = make_glue_task(tmp_path, task, n=10, n_dev=5)
    train = load_dataset(f"glue-{task}:{folder}", "train")
    dev = load_dataset(f"glue-{task}:{folder}", "dev")
    assert isinstance(train, TextDataset) and train.kind == "text"
    assert train.classes == CLASSES[task]
    assert len(train) == 10 and len(dev) == 5
    values = glue_label_values(task)
    assert train.targets == [i % len(values) for i in range(10)]
    assert all(len(s) == SEGMENTS[task] for s, _ in (train[i] for i in range(len(train))))
    # the glue_data folder above the task folder works too
    assert load_dataset(f"glue-{task}:{tmp_path}", "test").targets == dev.targets


@pytest.mark.parametrize(
    ("task", "fname", "cols", "label"),
    [
        ("sst2", "train.tsv", ["sentence"], "label"),
        ("mrpc", "dev.tsv", ["#1 String", "#2 String"], "Quality"),
        ("qnli", "train.tsv", ["question", "sentence"], "label"),
        ("mnli", "dev_matched.tsv", ["sentence1", "sentence2"], "gold_label"),
    ],
)
def test_matches_an_independent_reading(
    tmp_path: Path, task: str, fname: str, cols: list[str], label: str
) -> None:
    folder = make_glue_task(tmp_path, task, n=12)
    split = "train" if fname == "train.tsv" else "dev"
    ds = load_dataset(f"glue-{task}:{folder}", split)
    ref = _reference(folder / fname, cols, label)
    assert ds.texts == [t for t, _ in ref]
    assert [ds.classes[t] for t in ds.targets] == [
        CLASSES[task][glue_label_values(task).index(v)] for _, v in ref
    ]
    assert any('"' in s for t in ds.texts for s in t)  # unbalanced quotes kept verbatim


def test_mrpc_header_bom_and_mnli_mismatched(tmp_path: Path) -> None:
    mrpc = make_glue_task(tmp_path, "mrpc")
    assert (mrpc / "train.tsv").read_bytes().startswith(b"\xef\xbb\xbfQuality\t#1 ID")
    assert len(load_dataset(f"glue-mrpc:{mrpc}", "train")) == 8
    mnli = make_glue_task(tmp_path, "mnli", n=6, n_dev=4)
    assert len(load_dataset(f"glue-mnli:{mnli}", "dev-mismatched")) == 4


def test_missing_columns_names_expected_and_found(tmp_path: Path) -> None:
    folder = make_glue_task(tmp_path, "qnli")
    (folder / "dev.tsv").write_text("index\tquestion\tpassage\tlabel\n0\tq\tp\tentailment\n")
    with pytest.raises(
        DataError,
        match=r"expected columns \['question', 'sentence', 'label'\] in .*dev.tsv, found \['index', 'question', 'passage', 'label'\] \(missing \['sentence'\]\)",
    ):
        load_dataset(f"glue-qnli:{folder}", "dev")


def test_label_outside_label_set_names_the_line(tmp_path: Path) -> None:
    folder = make_glue_task(tmp_path, "mnli", n=4)
    lines = (folder / "train.tsv").read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\t-"
    (folder / "train.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError,
        match=r"expected a gold_label in \['contradiction', 'entailment', 'neutral'\] in .*train.tsv \(line 4\), found '-'",
    ):
        load_dataset(f"glue-mnli:{folder}", "train")
    sst = make_glue_task(tmp_path, "sst2")
    (sst / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t2\n")
    with pytest.raises(
        DataError, match=r"expected a label in \['0', '1'\] .*\(line 3\), found '2'"
    ):
        load_dataset(f"glue-sst2:{sst}", "train")


def test_short_row_and_missing_file(tmp_path: Path) -> None:
    folder = make_glue_task(tmp_path, "sst2")
    (folder / "dev.tsv").write_text("sentence\tlabel\njust a sentence\n")
    with pytest.raises(
        DataError,
        match=r"expected at least 2 tab-separated fields in .*dev.tsv \(line 2\), found 1",
    ):
        load_dataset(f"glue-sst2:{folder}", "dev")
    (folder / "dev.tsv").unlink()
    with pytest.raises(
        DataError,
        match=r"expected the glue-sst2 file dev.tsv at one of: .*SST-2/dev.tsv, .*SST-2/SST-2/dev.tsv; found none",
    ):
        load_dataset(f"glue-sst2:{folder}", "test")


def test_unlabelled_test_file_is_not_the_test_split(tmp_path: Path) -> None:
    folder = make_glue_task(tmp_path, "sst2", n=6, n_dev=3)
    (folder / "dev.tsv").rename(folder / "dev.bak")
    (folder / "test.tsv").rename(folder / "dev.tsv")  # GLUE test files have no labels
    with pytest.raises(
        DataError, match=r"expected columns \['sentence', 'label'\] .*found \['index', 'sentence'\]"
    ):
        load_dataset(f"glue-sst2:{folder}", "test")
