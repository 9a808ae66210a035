r"""Which matrices to fine-tune, and at what adapter rank: per-matrix scores from the weights alone.

:func:`score_layers` streams the weights of a :class:`~spectral_probe.sources.TensorSource` (a
transformers directory, sharded safetensors, a state dict): one tensor is read, its singular
values taken (:func:`~spectral_probe.spectral.singular_values`, float64), and it is dropped;
no model is built. Every matrix gets a score (:data:`SCORES`) and a suggested adapter rank
(:func:`suggested_rank`); the top ``P`` percent of each weight type are selected.

Names and types follow Spectrum (``spectrum.py`` of cognitivecomputations/spectrum, commit
``0ed1756``): a matrix is named by its module (the stored tensor name without ``.weight``), its
*type* is what follows the first all-digit part of that name (``model.layers.3.mlp.down_proj``
is ``mlp.down_proj``), or the whole name when there is none (``model.embed_tokens``,
``lm_head``); each type keeps ``int(count * P / 100)`` matrices, the highest-scoring first (the
same floor as Spectrum). Spectrum matches a type as a substring of module names, so a type
that is part of another module's name is scored twice; here each tensor has exactly one type.
A tied ``lm_head`` is not stored, so it is not scored (Spectrum lists it, with the embedding's
score).

The result writes Spectrum's ``snr.json`` layout, axolotl's ``unfrozen_parameters`` YAML and a
PEFT ``LoraConfig`` dictionary (:class:`LayerSelection`).
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor

from .._results import TidyResult, records, write_result_json, write_tables_csv
from ..errors import ConfigError
from ..spectral.blocked import blocked_singular_values
from ..spectral.esd import esd_metrics
from ..spectral.rank import (
    aspect_ratio,
    energy_rank,
    gavish_donoho_rank,
    gavish_donoho_threshold,
    mp_median,
    mp_singular_edges,
)
from ..spectral.snr import spectrum_snr
from ..spectral.svd import singular_values

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SCORES",
    "SELECT_COLUMNS",
    "LayerScore",
    "LayerSelection",
    "score_layers",
    "check_options",
    "select_top",
    "suggested_rank",
    "weight_type",
    "layer_index",
    "mp_noise_sigma",
    "update_spectrum",
]

Progress = Callable[[int, int, str], None]


class _Source(Protocol):
    """What :func:`score_layers` reads (:class:`spectral_probe.sources.TensorSource`)."""

    label: str

    def names(self) -> list[str]: ...
    def shape(self, name: str) -> tuple[int, ...]: ...
    def dtype(self, name: str) -> torch.dtype: ...
    def load(self, name: str) -> Tensor: ...


@dataclass(frozen=True)
class LayerScore:
    """One score of :data:`SCORES`.

    Attributes:
        name: the ``--score`` choice.
        fn: ``fn(s, rows, cols)`` of the singular values ``s`` (float64, descending).
        higher_is_signal: whether a larger value means more structure (the top matrices are
            the largest values when true, the smallest when false).
        matrices_only: 1-D weights (norm scales) are skipped; only Spectrum's SNR scores them.
        formula: one line for the docs and ``--help``.
    """

    name: str
    fn: Callable[[Tensor, int, int], float]
    higher_is_signal: bool
    matrices_only: bool
    formula: str


@functools.lru_cache(maxsize=256)
def _mp_median(beta: float) -> float:
    return mp_median(beta)


def _energy_above(s: Tensor, tau: float) -> float:
    """Share of :math:`\\sum s_i^2` carried by the values above ``tau`` (NaN for a zero matrix)."""
    energy = s.square()
    total = float(energy.sum())
    return float(energy[s > tau].sum()) / total if total > 0 else math.nan


def mp_noise_sigma(s: Tensor, rows: int, cols: int) -> float:
    """Marchenko-Pastur scale of a spectrum: :math:`s_{\\text{med}} / \\sqrt{\\mu_\\beta}`.

    The median of all :math:`\\min(m, n)` singular values matched to the median of the
    Marchenko-Pastur law (Gavish & Donoho 2014, eq. 5): robust to the few large signal values
    that inflate a mean or a standard deviation.
    """
    beta = aspect_ratio((rows, cols))
    return float(s.median()) / math.sqrt(_mp_median(beta))


def _mp_score(s: Tensor, rows: int, cols: int) -> float:
    beta = aspect_ratio((rows, cols))
    edge = mp_singular_edges(beta, mp_noise_sigma(s, rows, cols))[1]
    return _energy_above(s, edge)


def _gd_score(s: Tensor, rows: int, cols: int) -> float:
    return _energy_above(s, gavish_donoho_threshold(s, (rows, cols)))


def _esd(key: str) -> Callable[[Tensor, int, int], float]:
    def fn(s: Tensor, rows: int, cols: int) -> float:
        value = esd_metrics(s.square(), rows, cols, mp=key == "mp_softrank")[key]
        return float(value)

    return fn


def _snr(s: Tensor, rows: int, cols: int) -> float:
    return spectrum_snr(s, rows, cols)


#: The scores of ``select-layers --score``; the CLI's choices and the docs iterate over them.
SCORES: dict[str, LayerScore] = {
    score.name: score
    for score in (
        LayerScore(
            "snr",
            _snr,
            True,
            False,
            "Spectrum: sum(s > tau) / sum(s <= tau) / s_max, tau = IQR(s)/1.349 (1 + sqrt(beta))",
        ),
        LayerScore(
            "mp",
            _mp_score,
            True,
            True,
            "energy share above the Marchenko-Pastur edge sigma (1 + sqrt(beta)), "
            "sigma = median(s) / sqrt(MP median)",
        ),
        LayerScore(
            "gavish-donoho",
            _gd_score,
            True,
            True,
            "energy share above Gavish-Donoho's optimal threshold omega(beta) median(s)",
        ),
        LayerScore(
            "mp-soft-rank",
            _esd("mp_softrank"),
            False,
            True,
            "WeightWatcher's MP soft rank: fitted bulk edge / lambda_max (lower: more signal)",
        ),
        LayerScore(
            "alpha",
            _esd("alpha"),
            False,
            True,
            "power-law exponent of the ESD tail (lower: heavier tail, more learned structure)",
        ),
    )
}

SELECT_COLUMNS = {
    "name": "module name (the stored tensor name without .weight), as Spectrum names it",
    "tensor": "the stored tensor name",
    "type": "weight type: what follows the first all-digit part of the name",
    "layer": "block number (the first all-digit part), empty outside blocks",
    "depth": "position of the tensor in depth order",
    "rows": "rows of the matrix (1 for a 1-D weight)",
    "cols": "columns of the matrix",
    "score": "the chosen score (see meta.score)",
    "rank": "suggested adapter rank (matrices only)",
    "full_rank": "min(rows, cols)",
    "selected": "among the top percent of its type",
}


def layer_index(name: str) -> int | None:
    """The first all-digit part of a dotted name (the block number), or ``None``.

    Example:
        >>> layer_index("model.layers.12.mlp.down_proj"), layer_index("lm_head")
        (12, None)
    """
    for part in name.split("."):
        if part.isdigit():
            return int(part)
    return None


def weight_type(name: str) -> str:
    """Spectrum's weight type of a module name: what follows its first all-digit part.

    Example:
        >>> weight_type("model.layers.3.self_attn.q_proj"), weight_type("model.embed_tokens")
        ('self_attn.q_proj', 'model.embed_tokens')
    """
    parts = name.split(".")
    index = next((i for i, part in enumerate(parts) if part.isdigit()), -1)
    return ".".join(parts[index + 1 :]) if index != -1 else name


def _parse_rank_rule(rule: str) -> tuple[str, float]:
    if rule == "gavish-donoho":
        return rule, 0.0
    if rule.startswith("energy:"):
        try:
            fraction = float(rule.split(":", 1)[1])
        except ValueError:
            fraction = math.nan
        if 0.0 < fraction <= 1.0:
            return "energy", fraction
    raise ConfigError(f"expected --rank gavish-donoho or energy:F with F in (0, 1], found {rule!r}")


def suggested_rank(s: Tensor, rows: int, cols: int, rule: str, max_rank: int) -> int:
    """Adapter rank from a spectrum: ``gavish-donoho`` (values above the optimal threshold) or
    ``energy:F`` (smallest k holding the fraction F of :math:`\\sum s_i^2`), within
    ``[1, max_rank]``.

    Example:
        >>> suggested_rank(torch.tensor([3.0, 1.0, 1.0]), 3, 3, "energy:0.9", 64)
        2
    """
    kind, fraction = _parse_rank_rule(rule)
    if kind == "energy":
        k = energy_rank(s, fraction)
    else:
        k = gavish_donoho_rank(s, (rows, cols))
    return int(min(max(k, 1), max_rank, rows, cols))


def update_spectrum(w: Tensor, w0: Tensor) -> Tensor:
    r"""Singular values of :math:`\Delta W = W - W_0` with the storage rounding of ``w`` zeroed.

    Storing :math:`W` in its dtype moves each entry by at most :math:`\epsilon/2` of itself, so
    the rounding adds a matrix of spectral norm at most :math:`\epsilon \|W\|_F / 2`: singular
    values of :math:`\Delta W` at or below that bound cannot be told from rounding and are set
    to zero (then a low-rank update's median is zero, and Gavish-Donoho's rule counts the rest).
    LAPACK's SVD (not the Gram route, whose floor is :math:`\sqrt{\epsilon_{64}}\,\sigma_1`).

    Example:
        >>> w0 = torch.zeros(3, 3)
        >>> update_spectrum(torch.diag(torch.tensor([2.0, 1e-9, 0.0])), w0)  # 1e-9 < eps32 * 2 / 2
        tensor([2., 0., 0.], dtype=torch.float64)
    """
    floor = float(torch.finfo(w.dtype).eps) / 2 * float(w.to(torch.float64).norm())
    s = singular_values(w.to(torch.float64) - w0.to(torch.float64), method="svd")
    return torch.where(s > floor, s, torch.zeros_like(s))


def _module_name(stored: str) -> str:
    return stored[: -len(".weight")] if stored.endswith(".weight") else stored


def _candidates(
    source: _Source, score: LayerScore, pattern: re.Pattern[str] | None
) -> list[tuple[str, str]]:
    """``(canonical, stored)`` names of the weights to score, in depth order."""
    stored_of = getattr(source, "stored_name", None)
    out = []
    for name in source.names():
        stored = stored_of(name) if stored_of is not None else name
        if not stored.endswith(".weight"):
            continue
        ndim = len(source.shape(name))
        if ndim not in (1, 2) or (ndim == 1 and score.matrices_only):
            continue
        if not source.dtype(name).is_floating_point:
            continue
        if pattern is not None and not pattern.search(_module_name(stored)):
            continue
        out.append((name, stored))
    return out


def _check_base(source: _Source, base: _Source, todo: list[tuple[str, str]]) -> None:
    known = set(base.names())
    for name, stored in todo:
        if name not in known:
            raise ConfigError(f"expected --base {base.label} to hold {stored}, found it missing")
        if tuple(base.shape(name)) != tuple(source.shape(name)):
            raise ConfigError(
                f"expected {stored} of shape {tuple(source.shape(name))} in --base {base.label}, "
                f"found {tuple(base.shape(name))}"
            )


def _compile(regex: str | None) -> re.Pattern[str] | None:
    if regex is None:
        return None
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ConfigError(
            f"expected a valid regular expression for --layers, found {regex!r}: {exc}"
        ) from None


def check_options(
    *,
    score: str = "snr",
    top_percent: float = 50.0,
    rank: str = "gavish-donoho",
    max_rank: int = 64,
) -> None:
    """Raise :class:`~spectral_probe.errors.ConfigError` (one line) for an option out of range.

    Example:
        >>> check_options(score="snr", top_percent=150)
        Traceback (most recent call last):
        ...
        spectral_probe.errors.ConfigError: expected --top-percent in (0, 100], found 150
    """
    if score not in SCORES:
        raise ConfigError(f"expected --score one of {', '.join(SCORES)}, found {score!r}")
    if not (isinstance(top_percent, int | float) and 0.0 < top_percent <= 100.0):
        raise ConfigError(f"expected --top-percent in (0, 100], found {top_percent}")
    _parse_rank_rule(rank)
    if max_rank < 1:
        raise ConfigError(f"expected --max-rank >= 1, found {max_rank}")


def score_layers(
    source: _Source,
    *,
    score: str = "snr",
    top_percent: float = 50.0,
    layers: str | None = None,
    rank: str = "gavish-donoho",
    max_rank: int = 64,
    base: _Source | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> LayerSelection:
    """Score every weight of ``source``, suggest a rank per matrix and select the top percent.

    Args:
        source: a tensor source (:func:`spectral_probe.sources.open_source`).
        score: one of :data:`SCORES` (default ``snr``, Spectrum's).
        top_percent: percent of each weight type to select, in (0, 100].
        layers: regular expression (``re.search``) over module names; default every weight
            (``*.weight``, 1-D or 2-D; 1-D only for ``snr``).
        rank: ``gavish-donoho`` or ``energy:F`` (:func:`suggested_rank`).
        max_rank: cap of the suggested ranks.
        base: the pre-trained weights ``source`` was fine-tuned from. With it the suggested
            rank is that of the update :math:`\\Delta W = W - W_0` (the rank the fine-tune
            actually used, as mergekit's ``extract_lora`` reads it; a low-rank update's
            median singular value is zero and Gavish-Donoho then counts its numerical rank);
            the scores stay those of ``source``. Names pair canonically.
        workers: CPU threads, one matrix each (default ``torch.get_num_threads()``).
        progress: called as ``progress(done, total, name)``.

    Raises:
        ConfigError: an unknown score, a percent outside (0, 100], a rank rule that is not
            one, a regex that is invalid or matches no weight, a weight that ``base`` lacks
            or holds in another shape.
    """
    import pandas as pd

    check_options(score=score, top_percent=top_percent, rank=rank, max_rank=max_rank)
    spec = SCORES[score]
    todo = _candidates(source, spec, _compile(layers))
    if not todo:
        what = f"matching --layers {layers!r}" if layers is not None else "(*.weight, 1-D or 2-D)"
        raise ConfigError(f"expected weights {what} in {source.label}, found none")
    if base is not None:
        _check_base(source, base, todo)
    workers = torch.get_num_threads() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"expected workers >= 1, found {workers}")
    started = time.perf_counter()

    def one(item: tuple[str, str]) -> dict[str, Any]:
        name, stored = item
        w = source.load(name)
        if w.ndim == 1:
            w = w.unsqueeze(0)
        rows, cols = int(w.shape[0]), int(w.shape[1])
        module = _module_name(stored)
        row = {
            "name": module,
            "tensor": stored,
            "type": weight_type(module),
            "layer": layer_index(module),
            "rows": rows,
            "cols": cols,
            "score": math.nan,  # NaN/Inf weights keep their row, unscored
            "rank": None,
            "full_rank": min(rows, cols),
        }
        if not bool(torch.isfinite(w).all()):
            return row
        s = blocked_singular_values(w)
        s_rank = s
        if base is not None and rows > 1:
            s_rank = update_spectrum(w, base.load(name).reshape(w.shape))
        del w
        row["score"] = spec.fn(s, rows, cols)
        if rows > 1 and bool(torch.isfinite(s_rank).all()):
            row["rank"] = suggested_rank(s_rank, rows, cols, rank, max_rank)
        return row

    results: list[dict[str, Any] | None] = [None] * len(todo)
    order = sorted(range(len(todo)), key=lambda i: -math.prod(source.shape(todo[i][0])))
    previous = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)  # one LAPACK thread per matrix, several matrices at once
    try:
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = {pool.submit(one, todo[i]): i for i in order}
            for done, future in enumerate(as_completed(futures), start=1):
                i = futures[future]
                results[i] = future.result()
                if progress is not None:
                    progress(done, len(todo), todo[i][1])
    finally:
        torch.set_num_threads(previous)
    frame = pd.DataFrame(results)
    frame.insert(4, "depth", np.arange(len(frame)))
    frame["layer"] = frame["layer"].astype("Int64")
    frame["rank"] = frame["rank"].astype("Int64")
    from .. import __version__

    meta = {
        "model": source.label,
        "score": score,
        "higher_is_signal": spec.higher_is_signal,
        "formula": spec.formula,
        "options": {
            "top_percent": top_percent,
            "layers": layers,
            "rank": rank,
            "max_rank": max_rank,
            "rank_of": "model" if base is None else f"model - {base.label}",
        },
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    return select_top(frame, top_percent, higher_is_signal=spec.higher_is_signal, meta=meta)


def _type_order(types: Sequence[str]) -> list[str]:
    """Spectrum's ``sort_weight_types``: by the first dotted part, then by the whole type."""
    return sorted(dict.fromkeys(types), key=lambda t: (t.split(".")[0], t))


def select_top(
    frame: pd.DataFrame,
    top_percent: float,
    *,
    higher_is_signal: bool = True,
    meta: dict[str, Any] | None = None,
) -> LayerSelection:
    """Mark the top ``int(count * top_percent / 100)`` rows of each ``type`` by ``score``.

    Ties keep depth order (a stable sort, as Spectrum's ``sorted``); NaN scores come last.
    """
    if not 0.0 < top_percent <= 100.0:
        raise ConfigError(f"expected --top-percent in (0, 100], found {top_percent}")
    frame = frame.copy()
    selected = np.zeros(len(frame), dtype=bool)
    for _, group in frame.groupby("type", sort=False):
        keep = int(len(group) * top_percent / 100)
        key = group["score"].astype(float).to_numpy()
        key = np.where(np.isnan(key), -np.inf if higher_is_signal else np.inf, key)
        order = np.argsort(-key if higher_is_signal else key, kind="stable")
        selected[group.index.to_numpy()[order[:keep]]] = True
    frame["selected"] = selected
    return LayerSelection(frame, dict(meta or {}) | {"top_percent": top_percent})


@dataclass(frozen=True)
class LayerSelection(TidyResult):
    """Result of :func:`score_layers`.

    Attributes:
        scores: one row per weight, in depth order: :data:`SELECT_COLUMNS`.
        meta: model, score, options, timing and versions.
    """

    scores: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    main_table: ClassVar[str] = "scores"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``scores`` (one row per weight)."""
        return {"scores": self.scores}

    def selected(self) -> pd.DataFrame:
        """The selected rows, types in Spectrum's order, best first within a type."""
        import pandas as pd

        higher = bool(self.meta.get("higher_is_signal", True))
        chosen = self.scores[self.scores["selected"]]
        parts = [
            chosen[chosen["type"] == wtype].sort_values(
                "score", ascending=not higher, kind="stable"
            )
            for wtype in _type_order(list(self.scores["type"]))
        ]
        return pd.concat(parts) if parts else chosen

    def spectrum_json(self) -> dict[str, dict[str, Any]]:
        """Spectrum's ``snr_results_*.json`` layout: ``{name: {"snr": score, "type": type}}``.

        The key is ``snr`` whatever the score (so Spectrum's own tools read the file);
        ``meta.score`` in ``results.json`` says which it is.
        """
        return {
            row.name: {"snr": float(row.score), "type": str(row.type)}
            for row in self.scores.itertuples(index=False)
        }

    def unfrozen_parameters_yaml(self, *, embeddings: bool = True) -> str:
        """axolotl's ``unfrozen_parameters`` list: the selected modules, grouped by type.

        As Spectrum writes it: with ``embeddings`` the two lines ``^lm_head.weight$`` and
        ``^model.embed_tokens.weight$`` first, then ``# TYPE layers`` and one module name per
        line (axolotl matches them as regular expressions against parameter names).
        """
        lines = ["unfrozen_parameters:"]
        if embeddings:
            lines += ["- ^lm_head.weight$", "- ^model.embed_tokens.weight$"]
        chosen = self.selected()
        for wtype in _type_order(list(self.scores["type"])):
            lines.append(f"# {wtype} layers")
            lines += [f"- {name}" for name in chosen.loc[chosen["type"] == wtype, "name"]]
        return "\n".join(lines) + "\n"

    def peft_config(self, *, lora_alpha: int | None = None) -> dict[str, Any]:
        """A dictionary that ``peft.LoraConfig(**d)`` accepts, targeting the selected matrices.

        ``target_modules`` lists the selected 2-D matrices inside numbered blocks by full
        module name (peft matches a name exactly or as a dotted suffix), ``layers_to_transform``
        their block numbers, and ``rank_pattern`` the suggested rank of each (the name escaped,
        so that peft's ``(.*\\.)?(KEY)$`` match finds exactly that module). ``r`` is the
        largest suggested rank; ``lora_alpha`` defaults to it.
        """
        chosen = self.scores[
            self.scores["selected"] & (self.scores["rows"] > 1) & self.scores["layer"].notna()
        ]
        ranks = {str(n): int(r) for n, r in zip(chosen["name"], chosen["rank"])}
        r = max(ranks.values(), default=8)
        return {
            "peft_type": "LORA",
            "r": r,
            "lora_alpha": r if lora_alpha is None else lora_alpha,
            "target_modules": sorted(ranks, key=list(chosen["name"]).index),
            "layers_to_transform": sorted({int(x) for x in chosen["layer"]}),
            "rank_pattern": {re.escape(n): k for n, k in ranks.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: meta and one record per weight."""
        return {"meta": self.meta, "scores": records(self.scores)}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``scores.csv``."""
        return write_tables_csv(directory, self.tables())
