"""The reproduction page from tiny real runs: numbers checked against NumPy, the page and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)

from spectral_probe.report.reproduction import measure_reproduction, select_runs
from spectral_probe.report.reproduction_page import write_reproduction_page
from spectral_probe.training import FinetuneConfig, finetune

RATES = ("30%", "100%")
SEEDS = (0, 1)


def _config(method: str, rate: str, seed: int) -> FinetuneConfig:
    return FinetuneConfig(
        model="tiny:cnn",
        data="digits",
        method=method,
        rate=rate,
        seed=seed,
        preset="paper",
        batch_size=16,
        iterations=6,
        lr_step=30,
        image_size=8,
        resize=8,
        ten_crop=False,
        augment="none",
        lr=0.1,
        log_every=2,
        checkpoint_every=100,
        eval_batch_size=256,
        eval_max=64,
        hp={"bss.eta": 0.1} if "bss" in method else {},
        device="cpu",
    )


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("reproduce")
    for method in ("l2", "l2+bss"):
        for rate in RATES:
            for seed in SEEDS:
                cfg = _config(method, rate, seed).resolve()
                finetune(cfg, root / cfg.run_id)
    return root


@pytest.fixture(scope="module")
def page(tiny_runs: Path, tmp_path_factory: pytest.TempPathFactory):
    rep = measure_reproduction(tiny_runs, max_batches=3)
    out = tmp_path_factory.mktemp("docs")
    paths = write_reproduction_page(rep, out, reduced="A test-sized run.")
    return rep, paths


def _head_features(run_path: str, batches: int) -> list[np.ndarray]:
    """Penultimate features of the run's checkpoint on the test batches, by a forward pre-hook."""
    from spectral_probe.data import load_dataset
    from spectral_probe.extract.feature_loader import make_feature_loader
    from spectral_probe.models import load_checkpoint

    loaded = load_checkpoint(Path(run_path) / "model.safetensors")
    model = loaded.model.eval()
    got: list[np.ndarray] = []
    handle = model.fc.register_forward_pre_hook(
        lambda m, args: got.append(args[0].detach().double().numpy())
    )
    loader = make_feature_loader(
        loaded,
        load_dataset("digits", "test"),
        16,
        device="cpu",
        image_size=8,
        seed=0,
        max_batches=batches,
    )
    with torch.no_grad():
        for inputs, _ in loader:
            model(inputs)
    handle.remove()
    return got


def _q(feats: list[np.ndarray]) -> tuple[float, float, np.ndarray]:
    """NumPy: mean sigma_i / sigma_1, mean smaller-half energy share, per-index mean sigma_i / sigma_1."""
    s = np.stack([np.linalg.svd(f, compute_uv=False) for f in feats])
    norm = s / s[:, :1]
    k = s.shape[1]
    half = s[:, k - k // 2 :] ** 2
    return float(norm.mean()), float((half.sum(1) / (s**2).sum(1)).mean()), norm.mean(0)


def test_the_runs_are_selected_with_their_cells(tiny_runs):
    runs = select_runs(tiny_runs)
    assert len(runs) == 8
    assert set(zip(runs["method"], runs["rate"], runs["seed"])) == {
        (m, r, s) for m in ("l2", "l2+bss") for r in RATES for s in SEEDS
    }
    assert set(runs.loc[runs["method"] == "l2+bss", "k"]) == {1} and set(runs["r"]) == {0}
    assert select_runs(tiny_runs / "nowhere").empty


def test_feature_numbers_match_numpy(page):
    rep, _ = page
    runs = rep.runs.set_index("run_id")
    q = {rid: _q(_head_features(runs.loc[rid, "path"], 3)) for rid in runs.index}

    def ratio(method: str, which: int) -> list[float]:
        out = []
        for seed in SEEDS:
            lo = runs[
                (runs["method"] == method) & (runs["rate"] == "30%") & (runs["seed"] == seed)
            ].index[0]
            hi = runs[
                (runs["method"] == method) & (runs["rate"] == "100%") & (runs["seed"] == seed)
            ].index[0]
            out.append(q[lo][which] / q[hi][which])
        return out

    for fig, which in (("1c", 0), ("1d", 1)):
        f = rep.finding(fig)
        expected = ratio("l2", which)
        assert f.numbers["ratio"] == pytest.approx(np.mean(expected), rel=1e-5)
        sd = np.std(expected, ddof=1)
        half = 12.706204736174703 * sd / math.sqrt(2)  # t_{0.975, 1}
        assert f.numbers["ratio_ci_high"] == pytest.approx(
            np.mean(expected) + half, rel=1e-4, abs=1e-9
        )
        assert f.provisional
    b = rep.finding("3b").table.set_index("rate")
    c = rep.finding("3c").table.set_index("rate")
    for rate in RATES:
        pairs = []
        for seed in SEEDS:
            ids = {
                m: runs[
                    (runs["method"] == m) & (runs["rate"] == rate) & (runs["seed"] == seed)
                ].index[0]
                for m in ("l2", "l2+bss")
            }
            pairs.append(
                (
                    q[ids["l2+bss"]][2][-1] / q[ids["l2"]][2][-1],
                    q[ids["l2+bss"]][1] / q[ids["l2"]][1],
                )
            )
        assert b.loc[rate, "ratio_smallest"] == pytest.approx(
            np.mean([p[0] for p in pairs]), rel=1e-5
        )
        assert c.loc[rate, "ratio_tail"] == pytest.approx(np.mean([p[1] for p in pairs]), rel=1e-5)


def test_weight_numbers_match_numpy(page):
    rep, _ = page
    f = rep.finding("1b")
    assert len(rep.weights) == 2 and f.numbers["rate"] == "100%" and f.numbers["n_seeds"] == 2
    table = f.table.set_index("layer")
    from spectral_probe.models import load_checkpoint, load_model

    tops, rests = [], []
    for run_id in rep.weights:
        path = rep.runs.set_index("run_id").loc[run_id, "path"]
        a = load_model("tiny:cnn").model.conv2.weight.detach().double().numpy().reshape(32, -1)
        b = (
            load_checkpoint(Path(path) / "model.safetensors")
            .model.conv2.weight.detach()
            .double()
            .numpy()
        )
        ua, ub = np.linalg.svd(a)[0], np.linalg.svd(b.reshape(32, -1))[0]
        cos = np.abs(np.sum(ua * ub, axis=0))
        tops.append(cos[:4].mean())  # ceil(10% of 32) = 4 leading indices
        rests.append(cos[4:].mean())
    assert table.loc["conv2", "top_index"] == pytest.approx(np.mean(tops), abs=1e-8)
    assert table.loc["conv2", "rest_index"] == pytest.approx(np.mean(rests), abs=1e-8)
    assert table.loc["conv1", "group"] == "lower" and table.loc["fc", "group"] == "higher"
    assert f.verdict in ("reproduced", "not reproduced", "reproduced only for stable indices")


def test_the_page_is_generated_from_the_numbers(page):
    rep, paths = page
    text = paths["page"].read_text()
    numbers = json.loads(paths["json"].read_text())
    assert [f["figure"] for f in numbers["findings"]] == ["1b", "1c", "1d", "3a", "3b", "3c", "3d"]
    for f in numbers["findings"]:
        expected = f["verdict"] + (" (provisional)" if f["verdict"] != "not yet run" else "")
        assert f"**{expected}**" in text
    assert numbers["findings"][3]["verdict"] == "not yet run"  # no TSVD runs
    assert "A test-sized run." in text and "## Honest limits" in text
    ratio = rep.finding("1d").numbers["ratio"]
    assert f"| ratio | {ratio:.4g} |" in text
    for name in ("fig1b.png", "fig1c.png", "fig1d.png", "fig3bc.png"):
        assert paths[name].stat().st_size > 1000 and f"(reproduction/{name})" in text


def test_an_empty_folder_gives_a_page_of_not_yet_run(tmp_path):
    rep = measure_reproduction(tmp_path / "none")
    assert {f.verdict for f in rep.findings} == {"not yet run"}
    paths = write_reproduction_page(rep, tmp_path / "docs")
    text = paths["page"].read_text()
    assert text.count("**not yet run**") == 7
    assert "spectral-probe sweep reproduce --executor local" in text
    assert "spectral-probe sweep reproduce-paper --executor slurm" in text


def test_figure_1b_reading_says_when_the_stability_correction_cannot_apply():
    import pandas as pd

    from spectral_probe.report.reproduction_numbers import Finding
    from spectral_probe.report.reproduction_page import _stability_reading

    numbers = {"gap_higher_index": 0.108, "gap_lower_index": 0.024, "contrast_stable": None,
               "contrast_window": 0.049}  # fmt: skip
    table = pd.DataFrame({"stable_share": [0.0, 0.04, 0.0, 0.11, 0.0]})
    text = _stability_reading(Finding("1b", "not reproduced", numbers=numbers, table=table))
    assert "contrast 0.084" in text and "cannot be applied" in text and "median of 0%" in text
    assert "window view" in text and "0.049" in text
    stable = _stability_reading(
        Finding("1b", "reproduced", numbers={**numbers, "contrast_stable": 0.2}, table=table)
    )
    assert "cannot be applied" not in stable and "0.200" in stable
