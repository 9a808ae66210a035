"""Spectral evidence for the report: feature spectra and weight angles, from the library."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..analysis import (
    FeatureSimilarity,
    FeatureSpectra,
    WeightComparison,
    compare_features,
    compare_weights,
    feature_spectrum,
)
from ..analysis.fine_tunes import FineTuneComparison, gather_fine_tunes
from ..data import get_dataset_info, parse_data_spec
from ..extract import FeatureReader
from ..models import load_model
from ..plotting import block_of
from ..training import FinetuneConfig
from ..transferability import ModelRanking, rank_models
from .pilot import PilotRuns
from .settings import ReportSettings

__all__ = ["Evidence", "analysis_split", "gather_evidence", "top_layers"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Evidence:
    """What the spectra say.

    Attributes:
        split: the split the feature spectra were measured on.
        spectra: batch feature spectra on the target data of the pre-trained model
            (``pre-trained``), the seed-0 pilot of every method (``METHOD @ RATE``) and the
            L2 pilots at the other rates.
        weights: pre-trained vs the seed-0 L2 pilot, layer by layer.
        finetuned: pre-trained vs each of the user's own checkpoints.
        tail_energy: share of the energy in the smaller half of the pre-trained spectrum.
        top_layers: the layers whose alignment stands for "the top of the network".
        top_alignment: mean spectral-window alignment of those layers (L2 pilot).
        top_cos: mean index-matched |cos| over the leading 10% of those layers' indices.
        transferability: every transferability score of the pre-trained model on the same
            training inputs as the spectra (shown, not used by the rule).
        similarity: linear CKA (plain and debiased) of the pre-trained model and the pilot
            whose weights are compared, layer by layer on the same training inputs: the
            representation-space view of the weight angles (shown, not used by the rule).
        what_changed: what fine-tuning changed in each candidate's seed-0 pilot at the rate of
            interest, against the pre-trained weights: intruder dimensions and the update's
            structure, one row per candidate (``fine_tunes`` has a ``method`` column; shown,
            not used by the rule).
    """

    split: str
    spectra: FeatureSpectra
    weights: WeightComparison | None
    finetuned: dict[str, WeightComparison]
    tail_energy: float
    top_layers: list[str]
    top_alignment: float | None
    top_cos: float | None
    transferability: ModelRanking | None = None
    similarity: FeatureSimilarity | None = None
    what_changed: FineTuneComparison | None = None


def analysis_split(data: str) -> str:
    """``train``: the spectra are measured on training inputs only, never on the test split."""
    info = get_dataset_info(parse_data_spec(data).name)
    return "train" if "train" in info.splits else info.splits[0]


def top_layers(result: WeightComparison) -> list[str]:
    """The compared layers of the network's last block (e.g. ``layer4.2.*`` of a ResNet)."""
    names = [n for n in result.layers["layer"] if n in set(result.angles["layer"])]
    if not names:
        return []
    blocks = [block_of(n) for n in names]
    deep = [n for n, b in zip(names, blocks) if b != n]
    if not deep:
        return names[-3:]
    last = block_of(deep[-1])
    return [n for n, b in zip(names, blocks) if b == last]


def _mean(df: pd.DataFrame, layers: list[str], column: str) -> float | None:
    rows = df[df["layer"].isin(layers)][column].dropna()
    return float(rows.mean()) if len(rows) else None


def gather_evidence(
    settings: ReportSettings,
    pilots: PilotRuns,
    *,
    progress: Progress | None = None,
    spectrum_progress: Any = None,
) -> Evidence:
    """Feature spectra (pre-trained and pilots) and weight comparisons for the report."""
    say = progress or (lambda stage: None)
    resolved = FinetuneConfig(
        model=settings.model,
        data=settings.data,
        preset=settings.preset,
        image_size=settings.image_size,
    ).resolve()
    batch = int(resolved.batch_size or 32)
    split = analysis_split(settings.data)
    # one way of reading features for the spectra, the similarity and the scores
    reader = FeatureReader(
        settings.data,
        split=split,
        batch_size=batch,
        max_batches=settings.spectrum_batches,
        image_size=resolved.image_size,
        device=settings.device,
    )

    say("feature spectra of the pre-trained and pilot models")
    pretrained_model = load_model(settings.model)
    models: dict[str, Any] = {"pre-trained": pretrained_model}
    rate = settings.rate
    for method in settings.methods:
        models[f"{method} @ {rate}"] = pilots.run(
            method, rate, settings.seeds[0]
        ).model_path.as_posix()
    if len(settings.rates) > 1 and "l2" in settings.methods:
        for other in settings.rates[:-1]:
            models[f"l2 @ {other}"] = pilots.run(
                "l2", other, settings.seeds[0]
            ).model_path.as_posix()
    spectra = feature_spectrum(models, reader, dataset_spectrum=False, progress=spectrum_progress)
    tail = float(spectra.summary.set_index("model").loc["pre-trained", "small_half_energy"])

    weights = None
    top: list[str] = []
    top_alignment = top_cos = None
    base_method = "l2" if "l2" in settings.methods else settings.methods[0]
    say(f"weights: pre-trained vs the {base_method} pilot")
    tuned = load_model(pilots.run(base_method, rate, settings.seeds[0]).model_path.as_posix())
    weights = compare_weights(
        pretrained_model, tuned, device=settings.device, esd=True
    )  # + alpha profile
    top = top_layers(weights)
    top_alignment = _mean(weights.layers, top, "cos_window_mean")
    top_cos = _mean(weights.layers, top, "cos_top")

    say(f"representation similarity: pre-trained vs the {base_method} pilot")
    similarity = compare_features(
        pretrained_model,
        tuned,
        reader,
        metrics=("cka", "debiased-cka"),
        labels=("pre-trained", f"{base_method} @ {rate}"),
    )

    say("what changed: intruders and the update's structure of each candidate's pilot")
    what_changed = _what_changed(settings, pilots, pretrained_model, base_method, weights)

    finetuned = {}
    for path in settings.finetuned:
        say(f"weights: pre-trained vs {path}")
        finetuned[path] = compare_weights(pretrained_model, path, device=settings.device)
    if top_alignment is not None and not math.isfinite(top_alignment):
        top_alignment = None
    say(
        "transferability scores of the pre-trained model"
        + (" and the compared models" if settings.compare_models else "")
    )
    ranking = rank_models(
        {"pre-trained": pretrained_model, **{m: m for m in settings.compare_models}},
        reader,
        max_samples=batch * settings.spectrum_batches,  # every sample the spectra read
    )
    return Evidence(
        split,
        spectra,
        weights,
        finetuned,
        tail,
        top,
        top_alignment,
        top_cos,
        ranking,
        similarity,
        what_changed,
    )


def _what_changed(
    settings: ReportSettings,
    pilots: PilotRuns,
    pretrained: Any,
    base_method: str,
    base_weights: WeightComparison,
) -> FineTuneComparison:
    """Pre-trained vs the seed-0 pilot of every candidate at the rate of interest (the
    comparison already made for ``base_method`` is reused), one row per candidate."""
    runs = []
    for method in settings.methods:
        if method == base_method:
            runs.append(base_weights)
            continue
        path = pilots.run(method, settings.rate, settings.seeds[0]).model_path.as_posix()
        runs.append(compare_weights(pretrained, path, device=settings.device))
    result = gather_fine_tunes(runs)
    table = result.fine_tunes.assign(method=list(settings.methods))
    first = ["method", *[c for c in table.columns if c != "method"]]
    return dataclasses.replace(result, fine_tunes=table[first])
