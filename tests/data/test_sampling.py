"""Per-class sampling: counts (ceil rule), determinism, nesting, validation split."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.data import (
    SamplingRate,
    check_min_per_class,
    load_dataset,
    make_splits,
    parse_rate,
    per_class_counts,
    sample_per_class,
    split_train_val,
)
from spectral_probe.errors import DataError


def _targets(sizes: list[int]) -> np.ndarray:
    """Class c repeated sizes[c] times, interleaved so classes are not contiguous."""
    y = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])
    return np.random.default_rng(123).permutation(y)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15%", SamplingRate(fraction=Fraction(3, 20))),
        ("0.15", SamplingRate(fraction=Fraction(3, 20))),
        (0.15, SamplingRate(fraction=Fraction(3, 20))),
        ("100%", SamplingRate(fraction=Fraction(1))),
        ("1.0", SamplingRate(fraction=Fraction(1))),
        (1.0, SamplingRate(fraction=Fraction(1))),
        (" 12.5 % ", SamplingRate(fraction=Fraction(1, 8))),
        ("30", SamplingRate(count=30)),
        (30, SamplingRate(count=30)),
        ("1", SamplingRate(count=1)),
        (Fraction(1, 3), SamplingRate(fraction=Fraction(1, 3))),
    ],
)
def test_parse_rate(text: object, expected: SamplingRate) -> None:
    assert parse_rate(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [0, -3, 0.0, 1.5, "1.5", "0%", "150%", "abc", "", "nan", float("nan"), True, None, "-0.2"],
)
def test_parse_rate_rejects(bad: object) -> None:
    with pytest.raises(
        DataError, match=r"expected a sampling rate in \(0, 1\] or a per-class count >= 1, found"
    ):
        parse_rate(bad)  # type: ignore[arg-type]


def test_rate_str() -> None:
    assert [str(parse_rate(r)) for r in ("15%", "0.3", "12.5%", "7")] == [
        "15%",
        "30%",
        "12.5%",
        "7/class",
    ]


def test_counts_round_up_exactly() -> None:
    y = _targets([30, 29, 10, 1])
    assert per_class_counts(y, "30%") == {0: 9, 1: 9, 2: 3, 3: 1}  # 30*0.3 is 9, not 10
    assert per_class_counts(y, 0.15) == {0: 5, 1: 5, 2: 2, 3: 1}  # ceil(4.5), ceil(4.35), ceil(1.5)
    assert per_class_counts(y, "100%") == {0: 30, 1: 29, 2: 10, 3: 1}
    assert per_class_counts(y, 1) == {0: 1, 1: 1, 2: 1, 3: 1}


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        # CUB-200-2011 train: 194 classes of 30 and 6 of 29 -> the paper's 1000/1800/3000/5994
        ([30] * 194 + [29] * 6, {"15%": 1000, "30%": 1800, "50%": 3000, "100%": 5994}),
        # FGVC Aircraft trainval: 67 classes of 67, 33 of 66 -> 1067/2067/3367/6667
        ([67] * 67 + [66] * 33, {"15%": 1067, "30%": 2067, "50%": 3367, "100%": 6667}),
    ],
)
def test_paper_train_set_sizes(sizes: list[int], expected: dict[str, int]) -> None:
    y = _targets(sizes)
    for rate, n in expected.items():
        assert sample_per_class(y, rate, seed=0).size == n


def test_exact_per_class_counts_and_indices() -> None:
    y = _targets([12, 7, 20])
    idx = sample_per_class(y, "30%", seed=4)
    assert np.all(np.diff(idx) > 0)  # ascending, no duplicates
    assert np.bincount(y[idx]).tolist() == [math.ceil(0.3 * 12), math.ceil(0.3 * 7), 6]
    idx = sample_per_class(y, 5, seed=4)
    assert np.bincount(y[idx]).tolist() == [5, 5, 5]


def test_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    y = _targets([40, 40, 40])
    a, b = sample_per_class(y, "50%", 7), sample_per_class(list(y), "50%", 7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sample_per_class(y, "50%", 8))


def test_a_class_sample_does_not_depend_on_other_classes() -> None:
    y = np.array([0] * 20 + [1] * 20)
    y_more = np.array([0] * 20 + [1] * 20 + [2] * 9)
    a = sample_per_class(y, "30%", 3)
    b = sample_per_class(y_more, "30%", 3)
    assert np.array_equal(a, b[b < 40])


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=8),
    seed=st.integers(0, 2**31),
    r1=st.integers(1, 100),
    r2=st.integers(1, 100),
    count=st.integers(1, 60),
)
def test_nesting_property(sizes: list[int], seed: int, r1: int, r2: int, count: int) -> None:
    y = _targets(sizes)
    lo, hi = sorted((r1, r2))
    small = sample_per_class(y, f"{lo}%", seed)
    large = sample_per_class(y, f"{hi}%", seed)
    assert np.isin(small, large).all()
    full = sample_per_class(y, "100%", seed)
    assert np.array_equal(full, np.arange(y.size))
    k = min(count, *sizes)
    by_count = sample_per_class(y, k, seed)
    assert np.bincount(y[by_count], minlength=len(sizes)).tolist() == [k] * len(sizes)
    # a count and a fraction that keep the same number agree; smaller counts nest inside
    if k > 1:
        assert np.isin(sample_per_class(y, k - 1, seed), by_count).all()
    expected = [math.ceil(n * lo / 100) for n in sizes]
    assert np.bincount(y[small], minlength=len(sizes)).tolist() == expected


def test_count_larger_than_smallest_class_names_it() -> None:
    y = _targets([10, 3, 8])
    with pytest.raises(
        DataError,
        match=r"expected a per-class count of at most 3 \(the smallest class, 'b' \(class 1\)\), found 5",
    ):
        sample_per_class(y, 5, 0, classes=["a", "b", "c"])


def test_min_per_class_names_the_class() -> None:
    y = _targets([30, 5, 30])
    with pytest.raises(
        DataError,
        match=r"expected at least 2 images per class after sampling 15%, found 1 in 'gull' \(class 1\) \(5 images\)",
    ):
        sample_per_class(y, "15%", 0, min_per_class=2, classes=["auk", "gull", "tern"])
    assert sample_per_class(y, "30%", 0, min_per_class=2).size == 9 + 2 + 9
    with pytest.raises(
        DataError, match=r"expected at least 2 images per class in the sample, found 1 in 'gull'"
    ):
        check_min_per_class(y[sample_per_class(y, "15%", 0)], 2, classes=["auk", "gull", "tern"])
    with pytest.raises(DataError, match=r"found 0 in 'x' \(class 3\)"):
        check_min_per_class(y, 1, classes=["auk", "gull", "tern", "x"])


def test_bad_seed_and_targets() -> None:
    with pytest.raises(DataError, match="expected a non-negative integer seed, found -1"):
        sample_per_class([0, 1], "50%", -1)
    with pytest.raises(DataError, match="expected targets as a 1-d sequence of class indices"):
        sample_per_class([0.5, 1.0], "50%", 0)


def test_split_train_val_stratified_disjoint_deterministic() -> None:
    y = _targets([20, 11, 30])
    train, val = split_train_val(y, 0.1, seed=2)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.union1d(train, val), np.arange(y.size))
    assert np.bincount(y[val]).tolist() == [2, 2, 3]  # ceil(2.0), ceil(1.1), ceil(3.0)
    assert all(np.array_equal(a, b) for a, b in zip((train, val), split_train_val(y, 0.1, seed=2)))
    _, val_count = split_train_val(y, 4, seed=2)
    assert np.bincount(y[val_count]).tolist() == [4, 4, 4]
    for none in (0, 0.0, "0", "0%"):
        train0, val0 = split_train_val(y, none, seed=2)
        assert train0.size == y.size and val0.size == 0


def test_split_train_val_errors() -> None:
    y = _targets([5, 1])
    with pytest.raises(
        DataError,
        match=r"expected at least one training sample left .* found 1 samples in 'solo' \(class 1\)",
    ):
        split_train_val(y, 0.2, 0, classes=["many", "solo"])
    with pytest.raises(DataError, match=r"expected a validation fraction in \[0, 1\), found 1.0"):
        split_train_val(y, 1.0, 0)


def test_make_splits_val_fixed_across_rates_train_nested() -> None:
    y = _targets([40, 33, 25])
    splits = {r: make_splits(y, rate=r, val=0.2, seed=5) for r in ("15%", "30%", "50%", "100%")}
    vals = [s.val for s in splits.values()]
    assert all(np.array_equal(vals[0], v) for v in vals)
    rates = list(splits)
    for lo, hi in itertools.pairwise(rates):
        assert np.isin(splits[lo].train, splits[hi].train).all()
    for s in splits.values():
        assert np.intersect1d(s.train, s.val).size == 0
    rest = np.setdiff1d(np.arange(y.size), vals[0])
    assert np.array_equal(splits["100%"].train, rest)
    # the rate applies to what is left after validation: ceil(0.3 * (n - ceil(0.2 n)))
    expected = [math.ceil(0.3 * (n - math.ceil(0.2 * n))) for n in (40, 33, 25)]
    assert np.bincount(y[splits["30%"].train]).tolist() == expected


def test_no_overlap_between_train_val_test_files(layout_specs: dict[str, str]) -> None:
    train = load_dataset(layout_specs["cub200"], "train")
    test = load_dataset(layout_specs["cub200"], "test")
    s = make_splits(train.targets, rate="50%", val=1, seed=0, classes=train.classes)
    train_files = {train.paths[i] for i in s.train}
    val_files = {train.paths[i] for i in s.val}
    assert train_files and val_files
    assert not train_files & val_files
    assert not (train_files | val_files) & set(test.paths)
    sub = train.subset(s.train)
    assert sub.targets == [train.targets[i] for i in s.train]
