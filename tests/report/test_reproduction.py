"""The reproduction page from tiny real runs: per-run numbers checked against NumPy, the data
file's round trip, the page from runs and from data, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)
from scipy import stats

from spectral_probe._io import to_jsonable
from spectral_probe.errors import ConfigError
from spectral_probe.report.reproduction import (
    measure_reproduction,
    reproduction_from_data,
    select_runs,
)
from spectral_probe.report.reproduction_data import ReproductionData, export_reproduction_data
from spectral_probe.report.reproduction_page import (
    render_reproduction_markdown,
    write_reproduction_page,
)
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
        log_every=1,
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
        (m, r, s) for m, r in [("l2", r) for r in RATES] + [("l2+bss", r) for r in RATES]
        for s in SEEDS
    }  # fmt: skip
    assert set(runs.loc[runs["method"] == "l2+bss", "k"]) == {1} and set(runs["r"]) == {0}
    assert select_runs(tiny_runs / "nowhere").empty


def test_the_data_holds_the_runs_numbers(page, tiny_runs):
    rep, _ = page
    runs = rep.runs.set_index("run_id")
    assert len(runs) == 8 and set(runs["iterations"]) == {6}
    row = runs.iloc[0]
    final = json.loads((tiny_runs / row.name / "final.json").read_text())
    assert row["error"] == pytest.approx(100 - 100 * final["test_accuracy"])
    assert row["test_n"] == 64 and row["epochs"] > 0
    recs = [
        json.loads(x) for x in (tiny_runs / row.name / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [r["loss_task"] for r in recs if "loss_task" in r]
    assert row["loss_last_tenth"] == pytest.approx(losses[-1], rel=1e-6)  # 6 lines: a tenth is 1


def test_feature_numbers_match_numpy(page):
    rep, _ = page
    runs = rep.runs.set_index("run_id")
    q = {rid: _q(_head_features(_path(page, rid), 3)) for rid in runs.index}
    for rid in runs.index:
        assert runs.loc[rid, "q_all"] == pytest.approx(q[rid][0], rel=1e-5)
        assert runs.loc[rid, "q_tail"] == pytest.approx(q[rid][1], rel=1e-5)

    def cell(method: str, rate: str, seed: int) -> str:
        sel = runs[(runs["method"] == method) & (runs["rate"] == rate) & (runs["seed"] == seed)]
        return str(sel.index[0])

    for fig, which in (("1c", 0), ("1d", 1)):
        f = rep.finding(fig)
        ratios = [q[cell("l2", "30%", s)][which] / q[cell("l2", "100%", s)][which] for s in SEEDS]
        assert f.numbers["ratio"] == pytest.approx(stats.gmean(ratios), rel=1e-5)
        half = 12.706204736174703 * np.std(np.log(ratios), ddof=1) / math.sqrt(2)  # t_{0.975, 1}
        assert f.numbers["ratio_ci_high"] == pytest.approx(
            math.exp(np.mean(np.log(ratios)) + half), rel=1e-4
        )
        assert f.provisional
    c = rep.finding("3c").table.set_index("rate")
    b = rep.finding("3b").table.set_index("rate")
    for rate in RATES:
        ids = [(cell("l2", rate, s), cell("l2+bss", rate, s)) for s in SEEDS]
        smallest = [q[bss][2][-1] / q[l2][2][-1] for l2, bss in ids]
        tail = [q[bss][1] / q[l2][1] for l2, bss in ids]
        assert b.loc[rate, "ratio_b"] == pytest.approx(stats.gmean(smallest), rel=1e-5)
        assert c.loc[rate, "ratio_tail"] == pytest.approx(stats.gmean(tail), rel=1e-5)


def _path(page, run_id: str) -> str:
    rep, _ = page
    return str(Path(rep.meta["runs_dir"]) / run_id)


def test_weight_numbers_match_numpy(page):
    rep, _ = page
    f = rep.finding("1b")
    assert f.numbers["rate"] == "100%" and f.numbers["n_seeds"] == 2 and len(f.runs) == 2
    table = f.table.set_index("layer")
    from spectral_probe.models import load_checkpoint, load_model

    tops, rests = [], []
    for run_id in f.runs:
        a = load_model("tiny:cnn").model.conv2.weight.detach().double().numpy().reshape(32, -1)
        ckpt = load_checkpoint(Path(_path(page, run_id)) / "model.safetensors")
        b = ckpt.model.conv2.weight.detach().double().numpy()
        ua, ub = np.linalg.svd(a)[0], np.linalg.svd(b.reshape(32, -1))[0]
        cos = np.abs(np.sum(ua * ub, axis=0))
        tops.append(cos[:4].mean())  # ceil(10% of 32) = 4 leading indices
        rests.append(cos[4:].mean())
    assert table.loc["conv2", "top_index"] == pytest.approx(np.mean(tops), abs=1e-7)
    assert table.loc["conv2", "rest_index"] == pytest.approx(np.mean(rests), abs=1e-7)
    assert table.loc["conv1", "group"] == "lower" and table.loc["fc", "group"] == "higher"
    assert f.verdict in ("reproduced", "inconclusive", "contradicted")


def test_the_data_file_round_trips_and_decides_the_same(page, tmp_path):
    rep, _ = page
    path = rep.data.write(tmp_path / "data.json")
    assert path.stat().st_size < 60_000  # kilobytes, no checkpoints
    again = ReproductionData.read(path)
    assert again.to_dict() == rep.data.to_dict()
    rep2 = reproduction_from_data(again)
    assert to_jsonable(rep2.to_dict()) == to_jsonable(rep.to_dict())  # NaN as None
    files = {f: [] for f in ("1b", "1c", "1d", "3a", "3b", "3c", "3d")}
    kw = dict(assets="reproduction", command="x", source="reproduction/data/d.json")
    assert render_reproduction_markdown(rep, files, **kw) == render_reproduction_markdown(
        rep2, files, **kw
    )


def test_a_bad_data_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="expected .* to have format"):
        ReproductionData.read(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="expected JSON"):
        ReproductionData.read(bad)
    with pytest.raises(ConfigError, match="found nothing"):
        ReproductionData.read(tmp_path / "missing.json")
    d = ReproductionData().to_dict()
    d["runs"]["columns"] = d["runs"]["columns"][:-1]
    with pytest.raises(ConfigError, match="'runs' table"):
        ReproductionData.from_dict(d)


def test_the_page_is_generated_from_the_numbers(page):
    rep, paths = page
    text = paths["page"].read_text()
    numbers = json.loads(paths["json"].read_text())
    assert [f["figure"] for f in numbers["findings"]] == ["1b", "1c", "1d", "3a", "3b", "3c", "3d"]
    for f in numbers["findings"]:
        expected = f["verdict"] + (" (provisional)" if f["verdict"] != "not yet run" else "")
        assert f"**{expected}**" in text
        assert f["verdict"] in ("reproduced", "inconclusive", "contradicted", "not yet run")
    assert numbers["findings"][3]["verdict"] == "not yet run"  # no TSVD runs
    assert "A test-sized run." in text and "## Honest limits" in text
    assert "## Numbers withdrawn" in text and "(one effect with 1(c))" in text
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


def test_export_and_page_from_data_through_the_cli(tiny_runs, tmp_path):
    from spectral_probe_cli.main import app
    from typer.testing import CliRunner

    cli = CliRunner()
    data = tmp_path / "data.json"
    res = cli.invoke(app, ["reproduce-export", str(tiny_runs), "--out", str(data),
                           "--max-batches", "3", "--reduced", "Tiny."])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert ReproductionData.read(data).meta["reduced"] == "Tiny."
    res = cli.invoke(app, ["reproduce-page", "--from", str(data), "--out", str(tmp_path / "docs")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "docs" / "reproduction.md").read_text()
    assert f"reproduce-page --from {data}" in text and "Tiny. Every verdict" in text
    res = cli.invoke(app, ["reproduce-page", "--from", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "found nothing" in res.output
    res = cli.invoke(app, ["reproduce-page"])
    assert res.exit_code == 2 and "neither" in res.output
    assert export_reproduction_data(tmp_path / "none").runs.empty
