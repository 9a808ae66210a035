"""rank_models: one extraction per model shared by every score, ranks, the source head."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch
from _fixtures.scores import make_task

from spectral_probe.data import load_dataset
from spectral_probe.extract import make_feature_loader
from spectral_probe.models import load_model
from spectral_probe.transferability import (
    SCORES,
    ModelOutputs,
    model_outputs,
    rank_models,
    score_outputs,
)
from spectral_probe.transferability._source import source_head_reason
from spectral_probe.transferability.rank import build_ranking


def _outputs(separation: float, with_source: bool) -> ModelOutputs:
    f, y = make_task(120, 6, 3, 0, separation=separation)
    probs = None
    if with_source:
        logits = np.random.default_rng(0).standard_normal((120, 5))
        logits[np.arange(120), y] += separation
        probs = torch.softmax(torch.as_tensor(logits), 1)
    return ModelOutputs(
        torch.as_tensor(f, dtype=torch.float32),
        torch.as_tensor(y),
        probs,
        None if with_source else "none here",
    )


def test_ranks_and_consensus_from_score_rows() -> None:
    per_model = {
        "good": score_outputs(_outputs(4.0, True)),
        "bad": score_outputs(_outputs(0.2, False)),
    }
    details = {
        m: {"feature_dim": 6, "n_samples": 120, "extract_seconds": 0.0, "source_head": m == "good"}
        for m in per_model
    }
    result = build_ranking(per_model, details, {"scores": list(SCORES)})
    table = result.table.set_index("model")
    for name in SCORES:
        assert table.loc["good", f"{name}_rank"] == 1
    assert math.isnan(table.loc["bad", "leep"]) and math.isnan(table.loc["bad", "leep_rank"])
    assert table.loc["bad", "logme_rank"] == 2
    assert table.loc["good", "consensus_rank"] == 1.0
    assert table.loc["bad", "consensus_rank"] == 2.0  # mean over the five feature scores it has
    skipped = result.scores.dropna(subset=["skipped"])
    assert set(skipped["score"]) == {"leep", "nce"} and set(skipped["skipped"]) == {"none here"}
    assert result.to_dict()["table"][0]["model"] == "good"


def test_a_score_that_rejects_the_data_is_skipped_with_its_reason() -> None:
    constant = ModelOutputs(torch.ones(30, 4), torch.arange(30) % 3, None, "no head")
    rows = {r["score"]: r for r in score_outputs(constant, ["logme", "nce"])}
    assert math.isnan(rows["logme"]["value"]) and "vary across samples" in rows["logme"]["skipped"]
    assert rows["nce"]["skipped"] == "no head"


@pytest.fixture(scope="module")
def lite0() -> Any:
    return load_model("bundled:efficientnet_lite0")


def test_source_probabilities_are_the_models_own_imagenet_outputs(
    lite0: Any, one_torch_thread: None
) -> None:
    data = load_dataset("digits", "test").subset(np.arange(6))
    out = model_outputs(lite0, data, batch_size=4, device=torch.device("cpu"), image_size=32)
    assert out.no_source is None and out.source_probs is not None
    assert tuple(out.source_probs.shape) == (6, 1000) and tuple(out.features.shape) == (6, 1280)
    loader = make_feature_loader(
        lite0, data, 6, device="cpu", image_size=32, shuffle=False, drop_last=False
    )
    inputs, labels = next(iter(loader))
    with torch.inference_mode():
        expected = torch.softmax(lite0.model(inputs).double(), 1)
    torch.testing.assert_close(out.source_probs.double(), expected, rtol=1e-4, atol=1e-6)
    assert out.labels.tolist() == labels.tolist()


def test_models_without_a_source_head_say_why() -> None:
    assert source_head_reason(load_model("timm:tf_efficientnet_lite0")) is not None
    assert "randomly initialised" in str(source_head_reason(load_model("torchvision:resnet18")))


def test_features_are_extracted_once_per_model_and_shared_by_every_score(
    lite0: Any, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    import spectral_probe.transferability.rank as rank

    seen: dict[str, list[int]] = {}
    for name, score in list(SCORES.items()):

        def spy(inputs: Any, labels: Any, _fn: Any = score.fn, _name: str = name) -> float:
            seen.setdefault(_name, []).append(id(inputs))
            return _fn(inputs, labels)

        monkeypatch.setitem(SCORES, name, dataclasses.replace(score, fn=spy))
    calls = []
    original = rank.model_outputs

    def counting(*args: Any, **kwargs: Any) -> ModelOutputs:
        calls.append(args[0])
        out = original(*args, **kwargs)
        seen.setdefault("features", []).append(id(out.features))
        return out

    monkeypatch.setattr(rank, "model_outputs", counting)
    result = rank_models(
        [lite0], "digits", split="test", max_samples=40, batch_size=20, image_size=32, device="cpu"
    )
    assert len(calls) == 1
    feature_ids = {seen[n][0] for n, s in SCORES.items() if s.needs == "features"}
    assert feature_ids == set(seen["features"])
    assert result.meta["n_samples"] == 40 and result.table["feature_dim"].tolist() == [1280]
    assert result.table["source_head"].tolist() == [True]


def test_values_equal_to_ten_digits_tie() -> None:
    rows = {
        "a": [{"score": "h_score", "value": 9.0, "seconds": 0.0, "skipped": None}],
        "b": [{"score": "h_score", "value": 9.0 * (1 + 1e-13), "seconds": 0.0, "skipped": None}],
        "c": [{"score": "h_score", "value": 8.5, "seconds": 0.0, "skipped": None}],
    }
    details = {
        m: {"feature_dim": 4, "n_samples": 10, "extract_seconds": 0.0, "source_head": False}
        for m in rows
    }
    table = build_ranking(rows, details, {"scores": ["h_score"]}).table
    assert table["h_score_rank"].tolist() == [1.0, 1.0, 3.0]
