"""``FinetuneConfig``: one fine-tuning run, validated, with the paper's defaults.

A config names the model, the data, the method (regularizers joined by ``+``), the sampling
rate and the seed; every optimisation field left at ``None`` comes from the preset
(:mod:`~spectral_probe.training.presets`). :meth:`FinetuneConfig.resolve` fills them in and
checks every value, raising :class:`~spectral_probe.errors.ConfigError` with one line; the
resolved config is what a run directory's ``config.json`` stores and what its run id hashes.

Example:
    >>> from spectral_probe.training import FinetuneConfig
    >>> cfg = FinetuneConfig(data="digits", method="l2+bss", rate="15%").resolve()
    >>> cfg.momentum, cfg.batch_size, cfg.hp["bss.eta"], cfg.hp["bss.k"]
    (0.95, 48, 0.001, 1)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePath
from typing import Any

from .._checks import check_float, check_int
from .._io import to_jsonable
from ..errors import ConfigError, DataError
from ._checks import check_bool, check_string, is_zero, toml_value
from .freeze import resolve_unfrozen
from .log_targets import check_loggers
from .presets import PRESET_FIELDS, get_preset
from .scenarios import apply_scenario

__all__ = [
    "FinetuneConfig",
    "OPERATIONAL_KEYS",
    "parse_hp",
    "parse_task_options",
    "parse_value",
    "config_diff",
]

#: Fields that change how a run is executed or logged, not what it computes: they are left
#: out of the run id and may differ when a run is resumed.
OPERATIONAL_KEYS = frozenset(
    {
        "device",
        "num_workers",
        "log_every",
        "checkpoint_every",
        "keep_train_state",
        "eval_batch_size",
        "spectrum",
        "log",
    }
)

_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("sgd", "adamw"),
    "schedule": ("step", "constant", "cosine", "linear"),
    "augment": ("paper", "none"),
    "head_init": ("normal", "default"),
    "select": ("last", "best"),
    "amp": ("auto", "off", "fp16", "bf16"),
    "channels_last": ("auto", "on", "off"),
}


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run. ``None`` fields take the preset's value (see :meth:`resolve`).

    Attributes:
        model: pre-trained model spec (``torchvision:resnet50:IMAGENET1K_V1``, ``bundled:...``).
        data: data spec (``cub200:/data/CUB_200_2011``, ``fashion-mnist``, ``digits``).
        method: regularizers joined by ``+`` (``l2``, ``l2-sp+bss``, ``delta+bss``, ``none``).
        rate: per-class sampling rate of the training set (``"15%"``, ``0.3``, ``30`` per class).
        seed: seed of the initialisation, the sampling, the data order and augmentation.
        preset: name of the preset filling the ``None`` fields (``paper``, ``released``, ``demo``).
        task: the task that builds model and data (``image-classification``).
        hp: regularizer hyperparameters, ``{"bss.eta": 0.001}`` (unqualified names go to
            every term that has them).
        optimizer: this and the other optimisation fields (``lr``, ``head_lr_ratio``,
            ``momentum``, ``nesterov``, ``weight_decay``, ``batch_size``, ``iterations``,
            ``schedule``, ``lr_step``, ``lr_gamma``, ``warmup``, ``image_size``, ``resize``,
            ``augment``, ``ten_crop``, ``head_init``, ``eval_batch_size``) are filled by the
            preset when ``None``; see :class:`~spectral_probe.training.Preset`.
        epochs: train for this many passes over the (sampled) training set instead of
            ``iterations``.
        val: validation share carved from the training split before sampling (fraction, or a
            count per class; 0 = none). Model selection only ever uses it.
        select: ``"last"`` (final weights, the paper's protocol) or ``"best"`` (best validation
            accuracy among the ``eval_every`` evaluations; needs ``val``).
        eval_every: evaluate on the validation split every this many iterations.
        eval_max: evaluate on at most this many validation/test images (a fixed subset).
        data_seed: seed of the sampling and validation split (default: ``seed``).
        log_every: iterations between ``metrics.jsonl`` lines.
        spectrum: log the singular values of the batch feature matrix at each log line.
        log: experiment trackers fed during the run: ``"tensorboard"``, ``"mlflow"``,
            ``"csv"`` (see :mod:`~spectral_probe.training.loggers`).
        checkpoint_every: iterations between training-state checkpoints.
        keep_train_state: keep the training-state checkpoint after a finished run.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: mixed precision on CUDA: ``auto`` (bf16 where supported, else fp16), ``fp16``,
            ``bf16`` or ``off``. Never on CPU.
        channels_last: ``auto`` (on for image models on CUDA, and on CPU for models with
            depthwise convolutions), ``on`` or ``off``.
        num_workers: data-loading worker processes.
        task_options: options of the task (the names its ``Task.options`` lists; see the task's
            documentation).
        lora: train a LoRA adapter instead of every weight: ``{"rank": 8}`` plus optional
            ``alpha``, ``rslora``, ``targets`` (see :mod:`~spectral_probe.training.lora`);
            empty: full fine-tuning.
        unfrozen_parameters: train only the parameters these patterns match (axolotl's
            ``unfrozen_parameters``, :mod:`~spectral_probe.training.freeze`) and the head; a
            string is the path of such a YAML file, read by :meth:`resolve`. ``()``: train all.
    """

    model: str = "torchvision:resnet50:IMAGENET1K_V1"
    data: str = ""
    method: str = "l2"
    rate: str | float | int = "100%"
    seed: int = 0
    preset: str = "paper"
    task: str = "image-classification"
    hp: Mapping[str, Any] = field(default_factory=dict)
    # -- from the preset when None
    optimizer: str | None = None
    lr: float | None = None
    head_lr_ratio: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    iterations: int | None = None
    schedule: str | None = None
    lr_step: int | None = None
    lr_gamma: float | None = None
    warmup: int | None = None
    image_size: int | None = None
    resize: int | None = None
    augment: str | None = None
    ten_crop: bool | None = None
    head_init: str | None = None
    eval_batch_size: int | None = None
    # -- protocol
    epochs: float | None = None
    val: str | float | int = 0
    select: str = "last"
    eval_every: int | None = None
    eval_max: int | None = None
    data_seed: int | None = None
    # -- logging and execution
    log_every: int = 50
    spectrum: bool = True
    log: tuple[str, ...] = ()
    checkpoint_every: int = 1000
    keep_train_state: bool = False
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    num_workers: int = 0
    task_options: Mapping[str, Any] = field(default_factory=dict)
    lora: Mapping[str, Any] = field(default_factory=dict)
    unfrozen_parameters: str | tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("hp", "task_options", "lora"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(f"expected {name} to be a table of key = value, found {value!r}")
            object.__setattr__(self, name, dict(value))
        if isinstance(self.log, (str, list, tuple)):  # TOML/JSON give lists, a bare name is one
            object.__setattr__(
                self, "log", (self.log,) if isinstance(self.log, str) else tuple(self.log)
            )
        if isinstance(self.unfrozen_parameters, list):  # TOML/JSON give lists
            object.__setattr__(self, "unfrozen_parameters", tuple(self.unfrozen_parameters))

    # ------------------------------------------------------------------ resolution

    @property
    def split_seed(self) -> int:
        """The seed of the per-class sample and the validation split: ``data_seed``, else ``seed``."""
        return self.seed if self.data_seed is None else self.data_seed

    def resolve(self) -> FinetuneConfig:
        """A copy with the preset's values filled in, hyperparameters complete, all checked.

        Raises:
            ConfigError: an unknown preset, method or hyperparameter, or a value out of range
                (one line naming the field, what was expected and what was found).
            DataError: a malformed sampling rate.
        """
        preset = get_preset(self.preset)
        values = preset.values()
        changes: dict[str, Any] = {}
        for key in PRESET_FIELDS:
            if key == "hp":
                continue
            if getattr(self, key) is None:
                # the run's length: the config's iterations or epochs, else the preset's
                if key == "iterations" and (
                    self.epochs is not None or values["epochs"] is not None
                ):
                    continue
                if key == "epochs" and self.iterations is not None:
                    continue
                changes[key] = values[key]
        changes["method"], changes["hp"] = _resolve_method(self.method, values["hp"], self.hp)
        changes["rate"] = _canonical_rate(self.rate, "rate")
        changes["val"] = 0 if is_zero(self.val) else _canonical_rate(self.val, "val")
        from .lora import resolve_lora

        changes["lora"] = resolve_lora(self.lora, changes["method"])
        changes["unfrozen_parameters"] = resolve_unfrozen(self.unfrozen_parameters)
        if changes["lora"] and changes["unfrozen_parameters"]:
            raise ConfigError(
                "expected either lora or unfrozen_parameters, found both (LoRA freezes every "
                "pre-trained weight)"
            )
        out = dataclasses.replace(self, **changes)
        out._check()
        return out

    def _check(self) -> None:
        check_string("model", self.model)
        check_string("data", self.data)
        check_int("seed", self.seed, 0)
        if self.data_seed is not None:
            check_int("data_seed", self.data_seed, 0)
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise ConfigError(
                    f"expected {key} in {list(choices)}, found {getattr(self, key)!r}"
                )
        check_float("lr", self.lr, 0, strict=True)
        check_float("head_lr_ratio", self.head_lr_ratio, 0, strict=True)
        check_float("momentum", self.momentum, 0)
        if self.momentum >= 1:  # type: ignore[operator]
            raise ConfigError(f"expected momentum in [0, 1), found {self.momentum!r}")
        check_float("weight_decay", self.weight_decay, 0)
        check_bool("nesterov", self.nesterov)
        check_bool("ten_crop", self.ten_crop)
        check_bool("spectrum", self.spectrum)
        check_bool("keep_train_state", self.keep_train_state)
        check_int("batch_size", self.batch_size, 1)
        if self.epochs is not None:
            check_float("epochs", self.epochs, 0, strict=True)
        else:
            check_int("iterations", self.iterations, 1)
        check_int("lr_step", self.lr_step, 1)
        check_float("lr_gamma", self.lr_gamma, 0, strict=True)
        if isinstance(self.warmup, float) and not 0 < self.warmup < 1:
            raise ConfigError(
                f"expected warmup as iterations (an integer >= 0) or a fraction in (0, 1), found {self.warmup!r}"
            )
        if not isinstance(self.warmup, float):
            check_int("warmup", self.warmup, 0)
        if (
            self.iterations is not None
            and not isinstance(self.warmup, float)
            and self.warmup >= self.iterations  # type: ignore[operator]
        ):
            raise ConfigError(
                f"expected warmup < iterations ({self.iterations}), found {self.warmup}"
            )
        check_int("image_size", self.image_size, 1)
        check_int("resize", self.resize, 1)
        if self.resize < self.image_size:  # type: ignore[operator]
            raise ConfigError(
                f"expected resize >= image_size ({self.image_size}), found {self.resize}"
            )
        check_int("eval_batch_size", self.eval_batch_size, 1)
        for key in ("eval_every", "eval_max"):
            if getattr(self, key) is not None:
                check_int(key, getattr(self, key), 1)
        check_int("log_every", self.log_every, 1)
        check_loggers(self.log)
        check_int("checkpoint_every", self.checkpoint_every, 1)
        check_int("num_workers", self.num_workers, 0)
        check_string("device", self.device)
        if self.select == "best" and is_zero(self.val):
            raise ConfigError(
                "expected a validation split (val > 0) to select the best iteration, found val = 0"
            )
        if self.select == "best" and self.eval_every is None:
            raise ConfigError("expected eval_every with select = 'best', found none")
        _check_batch_vs_spectrum(self.hp, self.batch_size)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ identity

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values."""
        return {f.name: to_jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FinetuneConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected a table of config keys, found {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"expected config keys from {sorted(known)}, found unknown {', '.join(map(repr, unknown))}"
            )
        return cls(**dict(data))

    def to_json(self) -> str:
        """The config as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def to_toml(self) -> str:
        """The config as TOML text (``None`` fields are left out; ``hp`` is a table)."""
        lines, tables = [], []
        for key, value in self.to_dict().items():
            if value is None:
                continue
            if isinstance(value, dict):
                if value:
                    tables.append((key, value))
                continue
            lines.append(f"{key} = {toml_value(value)}")
        for name, table in tables:
            lines.append(f"\n[{name}]")
            lines.extend(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_file(cls, path: str | Path) -> FinetuneConfig:
        """Read a config from ``.toml`` or ``.json`` (a run's ``config.json`` works too)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"expected a config file at {path}, found nothing")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".toml":
                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot parse {path}: {exc}") from None
        if isinstance(data, dict) and "config" in data and isinstance(data["config"], dict):
            data = data["config"]  # a run directory's config.json
        return cls.from_dict(data)

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        *,
        base: FinetuneConfig | None = None,
        scenario: str | None = None,
        resumed: bool = False,
    ) -> FinetuneConfig:
        """The resolved config of a command line: ``options`` over ``base``.

        Args:
            options: values given on the command line by config field name; ``None`` (or a
                ``False`` ``rslora``) is "not given". ``hp`` and ``task_options`` may be
                lists of ``NAME=VALUE`` texts (:func:`parse_hp`; task options are merged into
                the base's), ``log`` a list of names; ``lora_rank``, ``lora_alpha``,
                ``lora_targets`` and ``rslora`` make the ``lora`` table; an ``image_size``
                without a ``resize`` brings the paper's resize
                (:func:`~spectral_probe.data.resize_for`).
            base: the config the options override (a config file's, or the run being
                resumed); default: the field defaults.
            scenario: whose defaults fill task, preset, method and model where neither the
                options nor ``base`` chose them (:func:`~.scenarios.apply_scenario`; default:
                the one the data implies). Not applied to a resumed run.
            resumed: ``base`` is a run being continued (its data is kept, no scenario).

        Raises:
            ConfigError: no data, an unknown field, any check of :meth:`resolve`, or a task
                option the task does not take.
        """
        from ..data import resize_for

        base = base if base is not None else cls()
        given: dict[str, Any] = {
            k: str(v) if isinstance(v, PurePath) else v  # a file named on the command line
            for k, v in options.items()
            if v is not None and k != "rslora"
        }
        if options.get("rslora"):
            given["rslora"] = True
        lora = {k: given.pop(f"lora_{k}", None) for k in ("rank", "alpha", "targets")}
        lora["rslora"] = given.pop("rslora", None)
        if any(v is not None for v in lora.values()):  # checked (rank required) by resolve
            given["lora"] = {k: v for k, v in lora.items() if v is not None}
        if isinstance(given.get("image_size"), int):  # other values: resolve's check says so
            given.setdefault("resize", resize_for(given["image_size"]))
        if isinstance(given.get("hp"), Sequence):
            given["hp"] = parse_hp(given["hp"])
        if isinstance(given.get("task_options"), Sequence):
            given["task_options"] = {
                **base.task_options,
                **parse_task_options(given["task_options"]),
            }
        if "log" in given:
            given["log"] = tuple(given["log"])
        if not resumed:
            if not str(given.get("data") or base.data).strip():
                raise ConfigError(
                    "expected --data (e.g. --data cub200:/data/CUB_200_2011), found none"
                )
            given = apply_scenario(base, given, scenario)
        cfg = (base.with_overrides(**given) if given else base).resolve()
        from .tasks import get_task

        get_task(cfg.task).check_options(cfg.task_options)  # before any data or model loads
        return cfg

    def identity(self) -> dict[str, Any]:
        """The resolved fields that decide the result (all but :data:`OPERATIONAL_KEYS`; an empty
        ``lora`` or ``unfrozen_parameters`` is left out, so run ids from before them stay valid)."""
        d = self.resolve().to_dict()
        return {
            k: v
            for k, v in d.items()
            if k not in OPERATIONAL_KEYS and (k not in ("lora", "unfrozen_parameters") or v)
        }  # without them, the identity (and run id) of a full fine-tune is as before they existed

    @property
    def config_hash(self) -> str:
        """First 10 hex digits of the SHA-256 of :meth:`identity` (canonical JSON)."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def run_id(self) -> str:
        """A stable, readable directory name: ``DATA-METHOD-RATE-sSEED-HASH``."""
        cfg = self.resolve()
        data = cfg.data.partition(":")[0] or "data"
        rate = f"{cfg.rate}pc" if isinstance(cfg.rate, int) else str(cfg.rate).replace("%", "pct")
        lora = f"-lora{cfg.lora['rank']}" if cfg.lora else ""
        slug = f"{data}-{cfg.method}{lora}-{rate}-s{cfg.seed}"
        slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", slug)
        return f"{slug}-{cfg.config_hash}"

    def with_overrides(self, **changes: Any) -> FinetuneConfig:
        """A copy with ``changes`` applied (``hp`` entries are merged, not replaced)."""
        if "hp" in changes:
            changes["hp"] = {**self.hp, **dict(changes["hp"])}
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(
                f"expected config keys, found unknown {', '.join(map(repr, unknown))}"
            )
        return dataclasses.replace(self, **changes)


def config_diff(a: FinetuneConfig, b: FinetuneConfig, *, operational: bool = False) -> list[str]:
    """Keys whose resolved values differ, as ``"key: A != B"`` (hp entries as ``hp.NAME``)."""
    da, db = a.resolve().to_dict(), b.resolve().to_dict()
    out: list[str] = []
    for key in da:
        if not operational and key in OPERATIONAL_KEYS:
            continue
        va, vb = da[key], db[key]
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(
                f"{key}.{k}: {va.get(k)!r} != {vb.get(k)!r}"
                for k in sorted(set(va) | set(vb))
                if va.get(k) != vb.get(k)
            )
        elif va != vb:
            out.append(f"{key}: {va!r} != {vb!r}")
    return out


# ---------------------------------------------------------------------- hyperparameters


def parse_value(text: str) -> Any:
    """A command-line value: ``true``/``false``, an int, a float, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def _parse_pairs(items: Sequence[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected {what}, found {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def parse_hp(items: Sequence[str]) -> dict[str, Any]:
    """``["bss.eta=0.001", "k=2"]`` -> ``{"bss.eta": 0.001, "k": 2}``."""
    return _parse_pairs(items, "a hyperparameter as NAME=VALUE (e.g. bss.eta=0.001)")


def parse_task_options(items: Sequence[str]) -> dict[str, Any]:
    """``["max_length=64", "pool=mean"]`` -> ``{"max_length": 64, "pool": "mean"}`` (values as :func:`parse_value`)."""
    return _parse_pairs(items, "a task option as KEY=VALUE (e.g. max_length=64)")


def _resolve_method(
    method: str, preset_hp: Mapping[str, Any], user_hp: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The canonical method string and every hyperparameter of its terms, qualified, with its
    effective value: the user's, else the preset's (for the terms the method has), else the
    default. Parsed by :func:`~spectral_probe.regularizers.parse_method`; nothing is built."""
    from ..regularizers import parse_method

    names = parse_method(method).names
    chosen = {k: v for k, v in preset_hp.items() if k.partition(".")[0] in names}
    parsed = parse_method(method, **{**chosen, **dict(user_hp)})
    return parsed.spec, {k: to_jsonable(v) for k, v in parsed.qualified().items()}


def _check_batch_vs_spectrum(hp: Mapping[str, Any], batch: int) -> None:
    for key, what in (("bss.k", "bss.k"), ("tsvd.r", "tsvd.r")):
        k = hp.get(key)
        if isinstance(k, int) and batch <= k:
            raise ConfigError(
                f"expected a batch size > {what} (a b x d feature matrix has b singular values), "
                f"found batch size {batch} and {what} = {k}"
            )


def _canonical_rate(value: Any, name: str) -> str | int:
    """``"15%"`` for fractions, the integer for a count per class (both re-parse)."""
    from ..data import parse_rate

    try:
        parsed = parse_rate(value)
        return parsed.count if parsed.count is not None else str(parsed)
    except DataError as exc:
        raise ConfigError(f"{name}: {exc}") from None
