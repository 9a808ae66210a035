r"""``rank_models``: every transferability score for several models on one labelled dataset.

Each model's penultimate features (the input of its classifier head, as in
:mod:`spectral_probe.extract.features`) are extracted **once** on the same samples and shared
by every feature score; models with a trained source head also give its softmax outputs
(:math:`\operatorname{softmax}(\text{head}(f))`, the model's own ImageNet head) for LEEP and
their argmax for NCE. Models without one skip those scores with the reason recorded.

Per score, the models are ranked (1 = best: every score is higher-is-better; values equal to 10
significant digits tie, at the better rank); the consensus rank is the mean of a model's ranks
over the scores it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..analysis._results import TidyResult
from ..errors import ConfigError, DataError, SpectralProbeError
from ..extract.feature_loader import make_feature_loader
from ..extract.features import FeatureExtractor, resolve_device
from ..models import LoadedModel, load_model
from ._registry import SCORES, check_scores
from ._source import source_head_reason

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ModelRanking", "ModelOutputs", "rank_models", "score_outputs", "RANKING_COLUMNS"]

Progress = Callable[[int, int, str], None]
ModelLike = str | LoadedModel | nn.Module
RANKING_COLUMNS = (
    "model",
    "feature_dim",
    "n_samples",
    "extract_seconds",
    "source_head",
    "consensus_rank",
)


@dataclass(frozen=True)
class ModelOutputs:
    """What the scores read from one model on the dataset.

    Attributes:
        features: penultimate features ``(N, D)`` on the CPU, in the model's output dtype.
        labels: target labels ``(N,)``.
        source_probs: the source head's softmax ``(N, C_s)`` float32, or ``None``.
        no_source: why there is no source head (``None`` when there is one).
    """

    features: torch.Tensor
    labels: torch.Tensor
    source_probs: torch.Tensor | None
    no_source: str | None


def score_outputs(
    outputs: ModelOutputs, scores: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Run the scores on one model's outputs: ``[{score, value, seconds, skipped}]``.

    A score whose input is missing (no source head) or whose computation rejects the data
    (e.g. constant features) gets ``value`` NaN and the reason in ``skipped``.
    """
    rows = []
    for name in check_scores(scores):
        score = SCORES[name]
        inputs: Any
        if score.needs == "features":
            inputs = outputs.features
        elif outputs.source_probs is None:
            rows.append(
                {
                    "score": name,
                    "value": float("nan"),
                    "seconds": float("nan"),
                    "skipped": outputs.no_source,
                }
            )
            continue
        else:
            inputs = (
                outputs.source_probs
                if score.needs == "source_probs"
                else outputs.source_probs.argmax(1)
            )
        t0 = time.perf_counter()
        try:
            value, skipped = score.fn(inputs, outputs.labels), None
        except SpectralProbeError as exc:
            value, skipped = float("nan"), str(exc)
        rows.append(
            {"score": name, "value": value, "seconds": time.perf_counter() - t0, "skipped": skipped}
        )
    return rows


@dataclass(frozen=True)
class ModelRanking(TidyResult):
    """Scores and ranks of several models on one dataset.

    Attributes:
        table: one row per model (in the given order): ``model``, ``feature_dim``,
            ``n_samples``, ``extract_seconds``, ``source_head``, then per score ``SCORE``,
            ``SCORE_rank`` and ``SCORE_seconds``, and ``consensus_rank``.
        scores: tidy, one row per (model, score): ``value``, ``rank``, ``seconds``, ``skipped``.
        meta: data, split, samples, classes, seed, device, the scores, per-model details.
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    meta: dict[str, Any]

    main_table: ClassVar[str] = "ranking"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``ranking`` (one row per model) and ``scores`` (one row per model and score)."""
        return {"ranking": self.table, "scores": self.scores}

    @property
    def score_names(self) -> list[str]:
        """The scores computed, in order."""
        return list(self.meta["scores"])

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        from ..analysis._results import records

        return {"meta": self.meta, "table": records(self.table), "scores": records(self.scores)}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON (NaN becomes null), atomically."""
        from ..analysis._results import write_result_json

        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``ranking.csv`` (the table) and ``scores.csv`` (tidy) into ``directory``."""
        from ..analysis._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def build_ranking(
    per_model: Mapping[str, list[dict[str, Any]]],
    details: Mapping[str, dict[str, Any]],
    meta: dict[str, Any],
) -> ModelRanking:
    """Tables of a :class:`ModelRanking` from each model's :func:`score_outputs` rows."""
    import pandas as pd

    tidy = pd.DataFrame(
        [{"model": m, **row} for m, rows in per_model.items() for row in rows],
        columns=["model", "score", "value", "seconds", "skipped"],
    )
    # values equal to 10 significant digits tie (e.g. an H-score at its ceiling C - 1 for every model)
    rounded = tidy["value"].map(lambda v: float(f"{v:.10g}"))
    tidy["rank"] = rounded.groupby(tidy["score"]).rank(ascending=False, method="min")
    tidy = tidy[["model", "score", "value", "rank", "seconds", "skipped"]]
    table = pd.DataFrame(
        [{"model": m, **{k: details[m][k] for k in RANKING_COLUMNS[1:-1]}} for m in per_model]
    )
    for name in meta["scores"]:
        part = tidy[tidy["score"] == name].set_index("model")
        table[name] = table["model"].map(part["value"])
        table[f"{name}_rank"] = table["model"].map(part["rank"])
        table[f"{name}_seconds"] = table["model"].map(part["seconds"])
    table["consensus_rank"] = table["model"].map(tidy.groupby("model")["rank"].mean())
    return ModelRanking(table=table, scores=tidy.reset_index(drop=True), meta=meta)


def _subset(dataset: Any, max_samples: int | None, seed: int) -> Any:
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples < 2:
        raise ConfigError(f"expected max_samples >= 2, found {max_samples}")
    picked = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:max_samples])
    return dataset.subset(picked)


def model_outputs(
    loaded: LoadedModel,
    dataset: Any,
    *,
    batch_size: int,
    device: torch.device,
    image_size: int | None = None,
    interpolation: str | None = None,
    num_workers: int = 0,
    max_length: int = 128,
    progress: Callable[[], None] | None = None,
) -> ModelOutputs:
    """One pass over ``dataset``: penultimate features, labels and (if any) source probabilities.

    The inputs stream through in batches; each batch's features and source probabilities
    (softmax per batch, float32) are written into arrays allocated once for all ``N`` samples,
    so the peak memory is ``N x (D + C_s)`` floats plus one batch: about 0.8 GB for
    N = 100,000 ImageNet features of D = 1280 (use ``max_samples`` to score a subset).
    """
    no_source = source_head_reason(loaded)
    n = len(dataset)
    feats: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    labels = torch.empty(n, dtype=torch.int64)
    filled = 0
    with FeatureExtractor(loaded, None, device=device) as fx:
        head = fx.model.get_submodule(loaded.head) if no_source is None and loaded.head else None
        loader = make_feature_loader(
            fx.loaded,
            dataset,
            batch_size,
            device=device,
            image_size=image_size,
            interpolation=interpolation,
            shuffle=False,
            drop_last=False,
            num_workers=num_workers,
            max_length=max_length,
            channels_last=fx.channels_last,
        )
        for inputs, y in loader:
            f = fx(inputs)["penultimate"]
            end = filled + f.shape[0]
            if feats is None:
                feats = torch.empty(n, *f.shape[1:], dtype=f.dtype)
            feats[filled:end] = f.cpu()
            if head is not None:
                with torch.inference_mode(), fx.autocast():
                    p = torch.softmax(head(f).float(), dim=1).cpu()
                if probs is None:
                    probs = torch.empty(n, p.shape[1], dtype=torch.float32)
                probs[filled:end] = p
            labels[filled:end] = torch.as_tensor(y)
            filled = end
            if progress is not None:
                progress()
    if feats is None or filled != n:
        raise DataError(f"expected {n} samples from the loader, found {filled}")
    return ModelOutputs(feats, labels, probs, no_source)


def rank_models(
    models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike],
    data: Any,
    *,
    split: str = "train",
    scores: Sequence[str] | None = None,
    max_samples: int | None = None,
    batch_size: int = 64,
    image_size: int | None = None,
    interpolation: str | None = None,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    arch: str | None = None,
    device: str | torch.device | None = "auto",
    num_workers: int = 0,
    max_length: int = 128,
    progress: Progress | None = None,
) -> ModelRanking:
    """Transferability scores of each model on ``data`` and their ranks.

    Args:
        models: model specs, :class:`~spectral_probe.models.LoadedModel`\\ s or modules, or
            ``{label: model}``; specs are loaded one at a time.
        data: a data spec (``fashion-mnist``, ``imagefolder:/data/task``...) or a dataset.
        split: the split to score on (the target task's training data by default).
        scores: names from :data:`~spectral_probe.transferability.SCORES` (default: all).
        max_samples: score a seeded random subset of this many samples.
        batch_size: samples per forward pass.
        image_size: input side in pixels (default: each model's own).
        interpolation: resizing filter for every model (default: each model's own).
        seed: seed of the subset.
        labels: names of the models in the results (default: their specs).
        arch: architecture spec for state-dict files without a sidecar.
        device: ``auto``, ``cpu`` or ``cuda``.
        num_workers: loader processes for image files.
        max_length: text: truncate token sequences to this length.
        progress: called as ``progress(done, total, model)`` after each batch.

    Raises:
        ConfigError: an unknown score, a bad batch size or sample count.
        DataError: a bad data spec or split.
    """
    from ..analysis.features import _labelled
    from ..data import DataSpec, load_dataset

    names = check_scores(scores)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"expected a batch size >= 1, found {batch_size!r}")
    pairs = _labelled(models, labels)
    dataset = load_dataset(data, split) if isinstance(data, (str, DataSpec)) else data
    dataset = _subset(dataset, max_samples, seed)
    if len(dataset) < 2:
        raise DataError(f"expected at least 2 samples to score, found {len(dataset)}")
    dev = resolve_device(device)
    per_batch = -(-len(dataset) // batch_size)
    total, done = per_batch * len(pairs), 0
    per_model: dict[str, list[dict[str, Any]]] = {}
    details: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for label, model in pairs:
        loaded = load_model(model, arch=arch) if isinstance(model, str) else model
        if not isinstance(loaded, LoadedModel):
            from ..extract.features import _as_loaded

            loaded = _as_loaded(loaded)

        def tick(label: str = label) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, label)

        t0 = time.perf_counter()
        out = model_outputs(
            loaded,
            dataset,
            batch_size=batch_size,
            device=dev,
            image_size=image_size,
            interpolation=interpolation,
            num_workers=num_workers,
            max_length=max_length,
            progress=tick,
        )
        seconds = time.perf_counter() - t0
        per_model[label] = score_outputs(out, names)
        details[label] = {
            "spec": loaded.spec,
            "feature_dim": int(out.features.shape[1]),
            "n_samples": int(out.features.shape[0]),
            "extract_seconds": seconds,
            "source_head": out.no_source is None,
            "no_source_reason": out.no_source,
            "source_classes": None if out.source_probs is None else int(out.source_probs.shape[1]),
        }
        if isinstance(model, str):
            loaded.model.to("cpu")
            del loaded, out
    from .. import __version__

    targets = np.asarray(dataset.targets, dtype=np.int64)
    meta = {
        "data": str(data) if isinstance(data, str) else getattr(data, "name", type(data).__name__),
        "split": getattr(dataset, "split", split),
        "n_samples": len(dataset),
        "n_classes": len(np.unique(targets)),
        "max_samples": max_samples,
        "seed": seed,
        "batch_size": batch_size,
        "image_size": image_size,
        "interpolation": interpolation,
        "device": str(dev),
        "scores": names,
        "models": details,
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    return build_ranking(per_model, details, meta)
