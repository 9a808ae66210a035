"""What a diagnostic report is asked to do, validated, with defaults sized to the device."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from .recommend import ALPHA, DEFAULT_METHOD, SEED_SD_FLOOR

__all__ = ["ReportSettings", "DEFAULT_METHODS", "DEFAULT_SEEDS"]

#: The candidates every report pilots: the paper's four, plus DELTA+BSS, the method with the
#: lowest fixed-policy regret on the paper's Table 2 (it wins 7 of its 20 cells; see
#: docs/validation.md). DELTA+BSS costs a frozen copy of the model and extra forwards per
#: step; plain DELTA (never best in Table 2) and TSVD are added on request with ``--method``.
DEFAULT_METHODS = ("l2", "l2+bss", "l2-sp", "l2-sp+bss", "delta+bss")

#: Pilot seeds of a report: three, the fewest that can give a high-confidence recommendation
#: (two seeds leave one degree of freedom: the best-of-5 critical t is 25.5). A fixed number,
#: not a sequential design: every pilot can run at once and resume, and the report states the
#: power these seeds give to detect a 1- and a 2-point lead (docs/report.md).
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class ReportSettings:
    """A diagnostic report for one pre-trained model and one target dataset.

    Attributes:
        model: pre-trained model spec.
        data: target data spec.
        methods: regularizers to pilot (at least two).
        rates: per-class sampling rates to pilot at; the recommendation is made at the last.
        seeds: pilot seeds, shared by every method (pairs the comparisons); three by default
            (:data:`DEFAULT_SEEDS`), and three or more are needed for a high-confidence
            recommendation. The report states the power this number of seeds gives.
        preset: fine-tuning preset of the pilots (``demo`` on CPU, ``paper`` on GPU).
        iterations: pilot length; ``None`` keeps the preset's.
        image_size: input side for the pilots; ``None`` keeps the preset's.
        val: validation share carved from the training split (pilots are judged on it).
        eval_max: evaluate pilots on at most this many validation/test images.
        spectrum_batches: batches of the feature spectra.
        finetuned: the user's own fine-tuned checkpoints, compared with the pre-trained model.
        compare_models: other pre-trained model specs, ranked against ``model`` by the
            transferability scores on the same training inputs.
        device: ``auto``, ``cpu`` or ``cuda``.
        alpha: one-sided level of the best-of-k corrected paired comparisons.
        seed_sd_floor: seed-to-seed standard deviation of one method's accuracy (in [0, 1])
            below which the measured spread is not believed, for any number of seeds; the
            validation split's binomial noise is added to it (docs/report.md).
        default_method: what the report recommends when the pilots show no detectable
            difference (the lowest-regret fixed policy of docs/validation.md).
        scaled_down: sentences saying what was scaled down (shown under caveats).
    """

    model: str
    data: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    rates: tuple[str, ...] = ("100%",)
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    preset: str = "demo"
    iterations: int | None = None
    image_size: int | None = None
    val: str = "10%"
    eval_max: int | None = 2000
    spectrum_batches: int = 8
    finetuned: tuple[str, ...] = ()
    compare_models: tuple[str, ...] = ()
    device: str = "auto"
    alpha: float = ALPHA
    seed_sd_floor: float = SEED_SD_FLOOR
    default_method: str = DEFAULT_METHOD
    scaled_down: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if len(set(self.methods)) < 2:
            raise ConfigError(
                f"expected at least two distinct methods to compare, found {list(self.methods)}"
            )
        if not self.rates:
            raise ConfigError("expected at least one sampling rate, found none")
        from ..data import parse_rate

        canonical = []
        for rate in self.rates:
            parsed = parse_rate(rate)  # DataError with one line for a bad rate
            canonical.append(str(parsed.count) if parsed.count is not None else str(parsed))
        object.__setattr__(self, "rates", tuple(canonical))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"expected distinct pilot seeds, found {list(self.seeds)}")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"expected iterations >= 1, found {self.iterations}")
        if self.spectrum_batches < 1:
            raise ConfigError(f"expected spectrum_batches >= 1, found {self.spectrum_batches}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"expected alpha in (0, 1), found {self.alpha}")
        if not 0 <= self.seed_sd_floor < 1:
            raise ConfigError(f"expected a seed-sd floor in [0, 1), found {self.seed_sd_floor}")
        if self.eval_max is not None and self.eval_max < 1:
            raise ConfigError(f"expected eval_max >= 1, found {self.eval_max}")

    @property
    def rate(self) -> str:
        """The rate the recommendation is made at (the last one)."""
        return self.rates[-1]

    def with_overrides(self, **changes: Any) -> ReportSettings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (saved in report.json)."""
        out = asdict(self)
        for key in ("methods", "rates", "seeds", "finetuned", "compare_models", "scaled_down"):
            out[key] = list(out[key])
        return out
