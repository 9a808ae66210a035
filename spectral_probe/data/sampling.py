r"""Per-class sampling rates and the validation split.

The paper fine-tunes on 15%, 30%, 50% and 100% of the training examples *of each
category*. Here a rate is either a fraction :math:`r \in (0, 1]` or a count per class, and
class :math:`c` with :math:`n_c` training images keeps

.. math::

    k_c = \lceil r \, n_c \rceil \quad \text{(fraction)}, \qquad k_c = k \quad \text{(count)}.

The product is computed exactly (the rate is read as a decimal, so 30 × 0.3 is 9, never
10 through float error). Rounding up reproduces the paper's released lists: CUB-200-2011
(5994 images: 194 classes of 30, 6 of 29) gives 1000/1800/3000 and FGVC Aircraft
(6667 images: 67 classes of 67, 33 of 66) gives 1067/2067/3367, both exactly; rounding to
nearest would give 994 and 1000 at 15%.

**Nesting.** Each class is shuffled once by a generator seeded with ``(seed, class)`` and
the first :math:`k_c` indices are kept, so for a fixed seed the 15% subset lies inside the
30% subset, which lies inside the 50% subset, and a count of 5 inside a count of 10.

**Validation.** :func:`split_train_val` carves a stratified validation set from the
training data with its own stream of the seed; rates then apply to what remains
(:func:`make_splits`), so the validation set is the same for every rate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import DataError

__all__ = [
    "SamplingRate",
    "parse_rate",
    "per_class_counts",
    "sample_per_class",
    "split_train_val",
    "check_min_per_class",
    "Splits",
    "make_splits",
]

_SAMPLE_STREAM = 0
_VAL_STREAM = 1


@dataclass(frozen=True)
class SamplingRate:
    """A per-class sampling rate: exactly one of ``fraction`` in (0, 1] or ``count`` >= 1."""

    fraction: Fraction | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.count is None):
            raise DataError(
                "expected exactly one of fraction or count, "
                f"found {self.fraction!r} and {self.count!r}"
            )
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise DataError(_RATE_ERROR.format(float(self.fraction)))
        if self.count is not None and self.count < 1:
            raise DataError(_RATE_ERROR.format(self.count))

    def per_class(self, n: int) -> int:
        """How many of a class's ``n`` samples are kept (before the count check)."""
        if self.count is not None:
            return self.count
        return math.ceil(self.fraction * n)  # type: ignore[operator]

    @property
    def is_full(self) -> bool:
        """True for a rate of 100%."""
        return self.fraction == 1

    def __str__(self) -> str:
        if self.count is not None:
            return f"{self.count}/class"
        pct = self.fraction * 100  # type: ignore[operator]
        return f"{pct.numerator}%" if pct.denominator == 1 else f"{float(pct):g}%"


_RATE_ERROR = "expected a sampling rate in (0, 1] or a per-class count >= 1, found {!r}"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_rate(value: str | float | int | Fraction | SamplingRate) -> SamplingRate:
    """Read a sampling rate from the CLI or code.

    Accepted: a fraction ``0.15`` / ``"0.15"`` / ``Fraction(3, 20)``, a percentage
    ``"15%"``, or a per-class count ``30`` / ``"30"``. An integer (or an integer string
    without a decimal point) is a count, so ``"1"`` is one image per class; write
    ``"1.0"`` or ``"100%"`` for everything.

    Example:
        >>> from spectral_probe.data import parse_rate
        >>> str(parse_rate("15%")), str(parse_rate("0.3")), str(parse_rate("30"))
        ('15%', '30%', '30/class')
    """
    if isinstance(value, SamplingRate):
        return value
    if isinstance(value, bool):
        raise DataError(_RATE_ERROR.format(value))
    if isinstance(value, (int, np.integer)):
        if value < 1:
            raise DataError(_RATE_ERROR.format(value))
        return SamplingRate(count=int(value))
    if isinstance(value, Fraction):
        frac = value
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise DataError(_RATE_ERROR.format(value))
        frac = Fraction(repr(float(value)))  # the decimal the user wrote, not the binary float
    elif isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        number = text[:-1].strip() if percent else text
        if not _NUMBER.match(number):
            raise DataError(_RATE_ERROR.format(value))
        if not percent and re.fullmatch(r"[+-]?\d+", number):
            return parse_rate(int(number))
        frac = Fraction(number) / (100 if percent else 1)
    else:
        raise DataError(_RATE_ERROR.format(value))
    if not 0 < frac <= 1:
        raise DataError(_RATE_ERROR.format(value))
    return SamplingRate(fraction=frac)


def _class_name(c: int, classes: Sequence[str] | None) -> str:
    if classes is not None and 0 <= c < len(classes):
        return f"{classes[c]!r} (class {c})"
    return f"class {c}"


def _as_targets(targets: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(targets)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DataError(
            f"expected targets as a 1-d sequence of class indices, "
            f"found dtype {arr.dtype} with shape {arr.shape}"
        )
    if arr.size and arr.min() < 0:
        raise DataError(f"expected non-negative class indices, found {int(arr.min())}")
    return arr.astype(np.int64, copy=False)


def _class_order(members: np.ndarray, seed: int, stream: int, c: int) -> np.ndarray:
    """``members`` shuffled by a generator that depends only on ``(seed, stream, c)``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), stream, int(c)]))
    return members[rng.permutation(members.size)]


def _is_zero(value: object) -> bool:
    """True for 0, 0.0, "0", "0.0", "0%": no validation set."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating, Fraction)):
        return bool(value == 0)
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        return bool(_NUMBER.match(text)) and float(text) == 0
    return False


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"expected a non-negative integer seed, found {seed!r}")
    return int(seed)


def per_class_counts(
    targets: Sequence[int] | np.ndarray,
    rate: str | float | int | Fraction | SamplingRate,
    *,
    classes: Sequence[str] | None = None,
) -> dict[int, int]:
    """``{class: number kept}`` for every class present in ``targets`` (ceil rule).

    Raises:
        DataError: a count larger than a class's size (names the smallest such class).
    """
    parsed = parse_rate(rate)
    arr = _as_targets(targets)
    present, sizes = np.unique(arr, return_counts=True)
    out: dict[int, int] = {}
    for c, n in zip(present.tolist(), sizes.tolist(), strict=True):
        k = parsed.per_class(n)
        if k > n:
            smallest = int(present[np.argmin(sizes)])
            raise DataError(
                f"expected a per-class count of at most {int(sizes.min())} (the smallest "
                f"class, {_class_name(smallest, classes)}), found {parsed.count}"
            )
        out[c] = k
    return out


def check_min_per_class(
    targets: Sequence[int] | np.ndarray,
    min_count: int,
    *,
    classes: Sequence[str] | None = None,
    what: str = "the sample",
) -> None:
    """Raise a :class:`DataError` naming the first class of ``classes`` with fewer than
    ``min_count`` entries in ``targets`` (absent classes count as 0 when ``classes`` is given).
    """
    arr = _as_targets(targets)
    n_classes = len(classes) if classes is not None else (int(arr.max()) + 1 if arr.size else 0)
    counts = np.bincount(arr, minlength=n_classes)
    low = np.flatnonzero(counts < min_count)
    if low.size:
        c = int(low[np.argmin(counts[low])])
        raise DataError(
            f"expected at least {min_count} images per class in {what}, "
            f"found {int(counts[c])} in {_class_name(c, classes)}"
        )


def sample_per_class(
    targets: Sequence[int] | np.ndarray,
    rate: str | float | int | Fraction | SamplingRate,
    seed: int = 0,
    *,
    min_per_class: int = 1,
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    r"""Stratified, seeded, nested sample of ``rate`` of each class.

    Args:
        targets: class index of each sample, shape ``(n,)``.
        rate: fraction in (0, 1], ``"15%"``, or a count per class (see :func:`parse_rate`).
        seed: the sampling seed; the same seed gives the same (and nested) subsets.
        min_per_class: fail if any class keeps fewer than this many samples.
        classes: class names, only for error messages.

    Returns:
        ``ndarray`` of shape ``(sum_c k_c,)``, the kept indices into ``targets``, ascending,
        where :math:`k_c = \lceil r\,n_c \rceil` for a fraction and :math:`k` for a count.

    Raises:
        DataError: bad rate or seed, a count above the smallest class, or a class that keeps
            fewer than ``min_per_class`` samples.

    Example:
        >>> import numpy as np
        >>> from spectral_probe.data import sample_per_class
        >>> y = np.repeat([0, 1], 10)
        >>> small, large = sample_per_class(y, "15%", 0), sample_per_class(y, "30%", 0)
        >>> len(small), len(large), bool(np.isin(small, large).all())
        (4, 6, True)
    """
    seed = _check_seed(seed)
    arr = _as_targets(targets)
    counts = per_class_counts(arr, rate, classes=classes)
    if classes is not None and min_per_class > 0:
        check_min_per_class(arr, 1, classes=classes, what="the data to sample from")
    for c, k in counts.items():
        if k < min_per_class:
            n = int((arr == c).sum())
            raise DataError(
                f"expected at least {min_per_class} images per class after sampling "
                f"{parse_rate(rate)}, found {k} in {_class_name(c, classes)} ({n} images)"
            )
    chosen = [
        _class_order(np.flatnonzero(arr == c), seed, _SAMPLE_STREAM, c)[:k]
        for c, k in counts.items()
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def split_train_val(
    targets: Sequence[int] | np.ndarray,
    val: str | float | int | Fraction | SamplingRate,
    seed: int = 0,
    *,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Stratified train/validation split of a training set.

    Class :math:`c` gives :math:`\lceil v\,n_c \rceil` samples (or ``v`` samples for a
    count) to validation and keeps the rest, at least one, for training. ``val=0`` gives an
    empty validation set. The shuffle uses a stream of ``seed`` separate from
    :func:`sample_per_class`'s.

    Returns:
        ``(train_idx, val_idx)``: disjoint ascending index arrays covering ``targets``.

    Raises:
        DataError: a fraction outside [0, 1), or a class left with no training sample.
    """
    seed = _check_seed(seed)
    arr = _as_targets(targets)
    if _is_zero(val):
        return np.arange(arr.size, dtype=np.int64), np.empty(0, dtype=np.int64)
    parsed = parse_rate(val)
    if parsed.is_full:
        raise DataError(f"expected a validation fraction in [0, 1), found {val!r}")
    train_parts, val_parts = [], []
    for c in np.unique(arr).tolist():
        members = np.flatnonzero(arr == c)
        k = parsed.per_class(members.size)
        if k >= members.size:
            raise DataError(
                f"expected at least one training sample left after taking {parsed} for "
                f"validation, found {members.size} samples in {_class_name(c, classes)}"
            )
        order = _class_order(members, seed, _VAL_STREAM, c)
        val_parts.append(order[:k])
        train_parts.append(order[k:])
    empty = np.empty(0, dtype=np.int64)
    train_idx = np.sort(np.concatenate(train_parts)) if train_parts else empty
    val_idx = np.sort(np.concatenate(val_parts)) if val_parts else empty
    return train_idx, val_idx


@dataclass(frozen=True)
class Splits:
    """Index arrays into one training set: ``train`` (after the rate) and ``val``."""

    train: np.ndarray
    val: np.ndarray


def make_splits(
    targets: Sequence[int] | np.ndarray,
    *,
    rate: str | float | int | Fraction | SamplingRate = 1.0,
    val: str | float | int | Fraction | SamplingRate = 0,
    seed: int = 0,
    min_per_class: int = 1,
    classes: Sequence[str] | None = None,
) -> Splits:
    """Carve ``val`` from the training set, then sample ``rate`` of each class of the rest.

    The validation set depends only on ``(targets, val, seed)``, not on ``rate``; the
    training subsets are nested across rates for a fixed seed.
    """
    rest, val_idx = split_train_val(targets, val, seed, classes=classes)
    arr = _as_targets(targets)
    picked = sample_per_class(arr[rest], rate, seed, min_per_class=min_per_class, classes=classes)
    return Splits(train=rest[picked], val=val_idx)
