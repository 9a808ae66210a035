"""score_layers on directories written by transformers, against Spectrum's own procedure.

The reference for the scores is ``spectrum.py`` of cognitivecomputations/spectrum at commit
``0ed1756bc4a7920249860bcd0a32b551bcdf6d1f``: it loads the model in fp32, walks
``named_modules()`` for modules with a ``weight``, takes ``torch.linalg.svdvals`` and types each
module by what follows the first all-digit part of its name. The top-P% rule is its
``generate_unfrozen_params_yaml``: ``int(len(layers) * top_percent / 100)`` per type, sorted by
score descending.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _fixtures.llama import save_tiny_llama, tiny_llama

from spectral_probe.analysis.select import (
    SCORES,
    score_layers,
    select_top,
    suggested_rank,
    weight_type,
)
from spectral_probe.errors import ConfigError
from spectral_probe.sources import open_source
from spectral_probe.spectral import esd_metrics, mp_median

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    root = tmp_path_factory.mktemp("sel")
    model = save_tiny_llama(root / "bf16", dtype=torch.bfloat16)
    return root / "bf16", model


def spectrum_procedure(
    model: torch.nn.Module, dtype: torch.dtype = torch.float32
) -> dict[str, dict[str, float | str]]:
    """Spectrum's loop: fp32 weights of every module with a weight, svdvals, its SNR rule."""
    out: dict[str, dict[str, float | str]] = {}
    for name, module in model.named_modules():
        if not hasattr(module, "weight") or module.weight is None:
            continue
        weights = module.weight.detach().to(dtype)
        if weights.ndim < 2:
            weights = weights.unsqueeze(0)
        S = torch.linalg.svdvals(weights)
        sigma = (torch.quantile(S, 0.75) - torch.quantile(S, 0.25)) / 1.349
        n, m = weights.shape[-2:]
        beta = n / m if n < m else m / n
        threshold = sigma * np.sqrt((1 + np.sqrt(beta)) ** 2)
        signal_mask = threshold < S
        signal = S[signal_mask].sum() if signal_mask.any() else torch.tensor(0.0, dtype=dtype)
        noise = S[~signal_mask].sum() if (~signal_mask).any() else torch.tensor(1.0, dtype=dtype)
        snr = signal / noise if noise != 0 else float("inf")
        parts = name.split(".")
        index = next((i for i, p in enumerate(parts) if p.isdigit()), -1)
        wtype = ".".join(parts[index + 1 :]) if index != -1 else name
        out[name] = {"snr": float(snr / S[0]), "type": wtype}
    return out


def test_snr_equals_spectrum_procedure(llama):
    path, model = llama
    with open_source(str(path)) as src:
        result = score_layers(src, top_percent=50)
    got = result.spectrum_json()
    expected = spectrum_procedure(model)
    exact = spectrum_procedure(model, torch.float64)
    assert set(got) == set(expected)
    for name, ref in expected.items():
        assert got[name]["type"] == ref["type"]
        assert got[name]["snr"] == pytest.approx(ref["snr"], rel=1e-4)
        assert got[name]["snr"] == pytest.approx(exact[name]["snr"], rel=1e-6)
    assert got["model.layers.0.input_layernorm"]["snr"] == pytest.approx(1.0)


def test_workers_do_not_change_scores(llama):
    path, _ = llama
    with open_source(str(path)) as src:
        one = score_layers(src, score="mp", workers=1).scores
        two = score_layers(src, score="mp", workers=3).scores
    assert list(one["name"]) == list(two["name"])
    np.testing.assert_array_equal(one["score"].to_numpy(), two["score"].to_numpy())


@pytest.mark.parametrize("percent", [25, 50, 60, 100])
def test_yaml_lists_exactly_the_top_percent_per_type(llama, percent):
    path, model = llama
    with open_source(str(path)) as src:
        result = score_layers(src, top_percent=percent)
    expected = spectrum_procedure(model)
    by_type: dict[str, list[tuple[str, float]]] = {}
    for name, info in expected.items():
        by_type.setdefault(str(info["type"]), []).append((name, float(info["snr"])))
    lines = result.unfrozen_parameters_yaml().splitlines()
    assert lines[:3] == [
        "unfrozen_parameters:",
        "- ^lm_head.weight$",
        "- ^model.embed_tokens.weight$",
    ]
    listed: dict[str, list[str]] = {}
    current = None
    for line in lines[3:]:
        if line.startswith("# "):
            current = line[2:].removesuffix(" layers")
            listed[current] = []
        else:
            listed[current].append(line[2:])
    assert set(listed) == set(by_type)
    for wtype, layers in by_type.items():
        keep = int(len(layers) * percent / 100)
        top = sorted(layers, key=lambda x: x[1], reverse=True)[:keep]
        # same set; the order may differ only where two scores are equal to 1e-4
        assert set(listed[wtype]) == {n for n, _ in top}, wtype
    no_embed = result.unfrozen_parameters_yaml(embeddings=False).splitlines()
    assert "- ^lm_head.weight$" not in no_embed and len(no_embed) == len(lines) - 2


def _mp_reference(s: np.ndarray, rows: int, cols: int) -> float:
    beta = min(rows, cols) / max(rows, cols)
    sigma = np.median(s) / math.sqrt(mp_median(beta))
    edge = sigma * (1 + math.sqrt(beta))
    return float((s[s > edge] ** 2).sum() / (s**2).sum())


def _omega(beta: float) -> float:
    lam = math.sqrt(2 * (beta + 1) + 8 * beta / (beta + 1 + math.sqrt(beta**2 + 14 * beta + 1)))
    return lam / math.sqrt(mp_median(beta))


def test_other_scores_against_numpy(llama):
    path, model = llama
    modules = dict(model.named_modules())
    with open_source(str(path)) as src:
        mp = score_layers(src, score="mp").scores.set_index("name")
        gd = score_layers(src, score="gavish-donoho").scores.set_index("name")
        alpha = score_layers(src, score="alpha", layers=r"mlp").scores.set_index("name")
    assert (mp["rows"] > 1).all()  # 1-D weights are not scored by these
    for name in ["model.layers.1.mlp.down_proj", "model.layers.2.self_attn.k_proj"]:
        w = modules[name].weight.detach().double().numpy()
        s = np.linalg.svd(w, compute_uv=False)
        rows, cols = w.shape
        assert mp.loc[name, "score"] == pytest.approx(_mp_reference(s, rows, cols), rel=1e-9)
        tau = _omega(min(rows, cols) / max(rows, cols)) * np.median(s)
        gd_ref = (s[s > tau] ** 2).sum() / (s**2).sum()
        assert gd.loc[name, "score"] == pytest.approx(gd_ref, rel=1e-9)
    w = modules["model.layers.1.mlp.down_proj"].weight.detach().double()
    ref = esd_metrics(np.linalg.svd(w.numpy(), compute_uv=False) ** 2, *w.shape, mp=False)
    assert alpha.loc["model.layers.1.mlp.down_proj", "score"] == pytest.approx(
        ref["alpha"], rel=1e-6
    )
    assert set(alpha.index) == {
        n for n in modules if re.search("mlp", n) and "." in n and hasattr(modules[n], "weight")
    }


def test_lower_is_signal_scores_select_the_smallest():
    import pandas as pd

    frame = pd.DataFrame(
        {"name": list("abcd"), "type": ["t"] * 4, "score": [0.3, 0.1, float("nan"), 0.2]}
    )
    low = select_top(frame, 50, higher_is_signal=False).scores
    assert list(low.loc[low["selected"], "name"]) == ["b", "d"]
    high = select_top(frame, 50).scores
    assert list(high.loc[high["selected"], "name"]) == ["a", "d"]
    assert not select_top(frame, 20).scores["selected"].any()  # int(4 * 0.2) = 0, as Spectrum
    assert not SCORES["alpha"].higher_is_signal and SCORES["snr"].higher_is_signal


def test_suggested_ranks():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    v, _ = np.linalg.qr(rng.standard_normal((60, 40)))
    s = np.r_[[50.0, 30.0, 20.0], np.full(37, 1.0)]
    w = torch.from_numpy((u * s) @ v.T)
    sv = torch.from_numpy(np.linalg.svd(w.numpy(), compute_uv=False))
    assert suggested_rank(sv, 40, 60, "gavish-donoho", 64) == 3
    energy = np.cumsum(s**2) / (s**2).sum()
    assert suggested_rank(sv, 40, 60, "energy:0.99", 64) == int(np.searchsorted(energy, 0.99) + 1)
    assert suggested_rank(sv, 40, 60, "energy:1.0", 8) == 8
    with pytest.raises(ConfigError, match="energy:F"):
        suggested_rank(sv, 40, 60, "energy:2", 8)


def test_peft_config_builds_the_adapter_it_describes(llama):
    peft = pytest.importorskip("peft")
    path, _ = llama
    with open_source(str(path)) as src:
        result = score_layers(src, top_percent=50, rank="energy:0.5", max_rank=16)
    config = result.peft_config()
    chosen = result.scores[result.scores["selected"] & (result.scores["rows"] > 1)]
    in_blocks = chosen[chosen["layer"].notna()]
    assert config["target_modules"] == list(in_blocks["name"])
    model = peft.get_peft_model(tiny_llama(), peft.LoraConfig(**config))
    adapted = {
        name.removeprefix("base_model.model."): module.lora_A["default"].weight.shape[0]
        for name, module in model.named_modules()
        if hasattr(module, "lora_A") and "default" in module.lora_A
    }
    assert adapted == dict(zip(in_blocks["name"], in_blocks["rank"].astype(int)))
    assert len(set(adapted.values())) > 1  # the per-matrix ranks differ, so rank_pattern acted


def test_weight_type_rule():
    assert weight_type("model.layers.0.mlp.experts.3.w1") == "mlp.experts.3.w1"
    assert weight_type("lm_head") == "lm_head"


def test_bad_input_is_one_line(llama):
    path, _ = llama
    with open_source(str(path)) as src:
        with pytest.raises(ConfigError, match="--score one of snr"):
            score_layers(src, score="svd")
        for percent in (0, -5, 100.5):
            with pytest.raises(ConfigError, match=r"--top-percent in \(0, 100\]"):
                score_layers(src, top_percent=percent)
        with pytest.raises(ConfigError, match="matching --layers 'nothing'.*found none"):
            score_layers(src, layers="nothing")
        with pytest.raises(ConfigError, match="valid regular expression"):
            score_layers(src, layers="(")


def test_base_gives_the_rank_of_the_update(tmp_path):
    """A fine-tune whose update has rank 3 on two matrices: the suggested rank is 3 there."""
    base = tiny_llama()
    base.save_pretrained(tmp_path / "base", max_shard_size="40KB")
    tuned = tiny_llama()
    g = torch.Generator().manual_seed(5)
    updated = ["model.layers.1.mlp.down_proj", "model.layers.2.self_attn.q_proj"]
    modules = dict(tuned.named_modules())
    with torch.no_grad():
        for name in updated:
            w = modules[name].weight
            w.add_(
                0.05
                * torch.randn(w.shape[0], 3, generator=g)
                @ torch.randn(3, w.shape[1], generator=g)
            )
    tuned.save_pretrained(tmp_path / "tuned", max_shard_size="40KB")
    with open_source(str(tmp_path / "tuned")) as src, open_source(str(tmp_path / "base")) as b:
        result = score_layers(src, base=b, layers="mlp|self_attn", top_percent=100)
        plain = score_layers(src, layers="mlp|self_attn", top_percent=100)
    ranks = dict(zip(result.scores["name"], result.scores["rank"]))
    assert all(ranks[n] == 3 for n in updated)
    assert all(r == 1 for n, r in ranks.items() if n not in updated)  # no update: at least 1
    # the scores are the model's own, with or without a base
    np.testing.assert_array_equal(result.scores["score"], plain.scores["score"])
    assert result.meta["options"]["rank_of"].startswith("model - ")


def test_base_must_hold_every_scored_weight(tmp_path):
    tiny_llama().save_pretrained(tmp_path / "a")
    tiny_llama(layers=2).save_pretrained(tmp_path / "b")
    match = "expected --base .* to hold model.layers.2"
    with (
        open_source(str(tmp_path / "a")) as src,
        open_source(str(tmp_path / "b")) as b,
        pytest.raises(ConfigError, match=match),
    ):
        score_layers(src, base=b)


def test_non_finite_weights_keep_an_unscored_row():
    from spectral_probe.sources import StateDictSource

    bad = torch.randn(8, 12)
    bad[2, 3] = float("nan")
    weights = {"model.layers.0.mlp.up_proj.weight": torch.randn(8, 12),
               "model.layers.1.mlp.up_proj.weight": bad}  # fmt: skip
    result = score_layers(StateDictSource(weights, "sd"), top_percent=50)
    rows = result.scores.set_index("name")
    assert math.isnan(rows.loc["model.layers.1.mlp.up_proj", "score"])
    assert rows.loc["model.layers.1.mlp.up_proj", "rank"] is pd.NA
    assert list(result.scores.loc[result.scores["selected"], "name"]) == [
        "model.layers.0.mlp.up_proj"
    ]
