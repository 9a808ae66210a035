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

from .._results import TidyResult
from ..errors import DataError, SpectralProbeError
from ..extract.reader import FeatureReader, ModelLike, label_models
from ..models import LoadedModel, load_model
from ._registry import SCORES, check_scores
from ._source import source_head_reason

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ModelRanking", "ModelOutputs", "rank_models", "score_outputs", "RANKING_COLUMNS"]

Progress = Callable[[int, int, str], None]
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
        from .._results import records

        return {"meta": self.meta, "table": records(self.table), "scores": records(self.scores)}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON (NaN becomes null), atomically."""
        from .._results import write_result_json

        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``ranking.csv`` (the table) and ``scores.csv`` (tidy) into ``directory``."""
        from .._results import write_tables_csv

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


def model_outputs(
    model: LoadedModel | nn.Module,
    data: FeatureReader | Any,
    *,
    progress: Callable[[], None] | None = None,
    **reading: Any,
) -> ModelOutputs:
    """One pass over every sample: penultimate features, labels and (if any) source probabilities.

    ``data`` is a :class:`~spectral_probe.extract.FeatureReader`, or a data spec or dataset
    read with ``batch_size=64`` (``reading``: reader settings). Every sample is read once, in
    order (``max_batches`` does not apply; ``max_samples`` picks a subset). The inputs stream
    through in batches; each batch's features and source probabilities (softmax per batch,
    float32) are written into arrays allocated once for all ``N`` samples, so the peak memory
    is ``N x (D + C_s)`` floats plus one batch: about 0.8 GB for N = 100,000 ImageNet features
    of D = 1280 (use ``max_samples`` to score a subset).
    """
    reader = FeatureReader.of(data, {"batch_size": 64}, **reading)
    n = len(reader.dataset)
    feats: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    labels = torch.empty(n, dtype=torch.int64)
    filled = 0
    with reader.open(model, every_sample=True) as stream:
        loaded = stream.loaded
        no_source = source_head_reason(loaded)
        head = (
            stream.extractor.model.get_submodule(loaded.head)
            if no_source is None and loaded.head
            else None
        )
        for batch, y in stream.labelled():
            f = batch["penultimate"]
            end = filled + f.shape[0]
            if feats is None:
                feats = torch.empty(n, *f.shape[1:], dtype=f.dtype)
            feats[filled:end] = f.cpu()
            if head is not None:
                with torch.inference_mode(), stream.extractor.autocast():
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
    data: FeatureReader | Any,
    *,
    scores: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    arch: str | None = None,
    progress: Progress | None = None,
    **reading: Any,
) -> ModelRanking:
    """Transferability scores of each model on ``data`` and their ranks.

    Args:
        models: model specs, :class:`~spectral_probe.models.LoadedModel`\\ s or modules, or
            ``{label: model}``; specs are loaded one at a time.
        data: a :class:`~spectral_probe.extract.FeatureReader`, or a data spec
            (``fashion-mnist``, ``imagefolder:/data/task``...) or dataset read with
            ``split="train"`` (the target task's training data) and ``batch_size=64``.
            Every sample is scored (``max_samples``: a seeded random subset of that many).
        scores: names from :data:`~spectral_probe.transferability.SCORES` (default: all).
        labels: names of the models in the results (default: their specs).
        arch: architecture spec for state-dict files without a sidecar.
        progress: called as ``progress(done, total, model)`` after each batch.
        **reading: :class:`~spectral_probe.extract.FeatureReader` settings (``max_samples``,
            ``batch_size``, ``image_size``, ``device``...), replacing the reader's.

    Raises:
        ConfigError: an unknown score, a bad batch size or sample count.
        DataError: a bad data spec or split.
    """
    names = check_scores(scores)
    reader = FeatureReader.of(data, {"split": "train", "batch_size": 64}, **reading)
    pairs = label_models(models, labels)
    if len(reader.dataset) < 2:
        raise DataError(f"expected at least 2 samples to score, found {len(reader.dataset)}")
    total, done = reader.n_batches(every_sample=True) * len(pairs), 0
    per_model: dict[str, list[dict[str, Any]]] = {}
    details: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for label, model in pairs:
        loaded = load_model(model, arch=arch) if isinstance(model, str) else model

        def tick(label: str = label) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, label)

        t0 = time.perf_counter()
        out = model_outputs(loaded, reader, progress=tick)
        seconds = time.perf_counter() - t0
        per_model[label] = score_outputs(out, names)
        details[label] = {
            "spec": loaded.spec if isinstance(loaded, LoadedModel) else type(loaded).__name__,
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
    return build_ranking(per_model, details, _meta(reader, names, details, started))


def _meta(
    reader: FeatureReader, names: list[str], details: dict[str, Any], started: float
) -> dict[str, Any]:
    from .. import __version__

    targets = np.asarray(reader.dataset.targets, dtype=np.int64)
    return {
        "data": reader.data_name,
        "split": reader.split_read,
        "n_samples": len(reader.dataset),
        "n_classes": len(np.unique(targets)),
        "max_samples": reader.max_samples,
        "seed": reader.seed,
        "batch_size": reader.batch_size,
        "image_size": reader.image_size,
        "interpolation": reader.interpolation,
        "device": str(reader.torch_device),
        "scores": names,
        "models": details,
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
