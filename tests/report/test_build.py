"""build_report / render_report end to end on a tiny model, and the output folder rules."""

from __future__ import annotations

import json

import pytest

from spectral_probe.errors import DataError, ModelSpecError, OutputError
from spectral_probe.report import build_report, check_pilot_data
from spectral_probe.report.outdir import MARKER, prepare_output

from .conftest import tiny_settings


def test_report_content(tiny_report):
    _, paths, _ = tiny_report
    payload = json.loads(paths["json"].read_text())
    assert payload["format"] == "spectral-probe-report"
    assert payload["recommendation"]["method"] in {"l2", "l2+bss", "l2-sp"}
    assert payload["recommendation"]["confidence"] in {"high", "medium", "low"}
    assert set(payload["recommendations"]) == {"50%", "100%"}
    assert len(payload["pilots"]) == 3 * 2 * 2
    assert all(0 <= p["val_accuracy"] <= 1 for p in payload["pilots"])
    assert payload["evidence"]["top_layers"] and 0 <= payload["evidence"]["tail_energy"] <= 1
    assert payload["commands"][0].startswith("spectral-probe report --model tiny:cnn")
    ranking = payload["recommendation"]["ranking"]
    assert ranking[0]["mean"] == max(r["mean"] for r in ranking)


def test_every_figure_and_format_is_written(tiny_report):
    _, paths, out = tiny_report
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == sorted(
        [
            "pilot_accuracy.png",
            "error_vs_rate.png",
            "feature_spectra.png",
            "feature_spectra_half.png",
            "spectrum_over_time.png",
            "corresponding_angles.png",
            "angle_heatmap.png",
            "alpha_profile.png",
            "cka_by_depth.png",
        ]
    )
    assert "α profile (weights only" in paths["markdown"].read_text()
    assert "Representation similarity (linear CKA" in paths["markdown"].read_text()
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == len(figures)  # self-contained
    assert 'id="recommendation"' in html and "Caveats" in html and "A test-sized report." in html
    md = paths["markdown"].read_text()
    assert md.count("](figures/") == len(figures) and "## Reproduce" in md


def test_rerun_reuses_finished_pilots(tiny_report):
    report, _, out = tiny_report
    again = build_report(report.settings, out)
    assert again.pilots.table["reused"].all()
    assert (
        again.pilots.table["val_accuracy"].tolist() == report.pilots.table["val_accuracy"].tolist()
    )


def test_output_folder_rules(tmp_path, tiny_report):
    _, _, finished = tiny_report
    settings = tiny_settings()
    assert prepare_output(tmp_path / "new", settings) == "new"
    with pytest.raises(OutputError, match="found a finished report .* --overwrite"):
        prepare_output(finished, settings)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="found other files"):
        prepare_output(other, settings)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / MARKER).write_text("{}")
    (unfinished / "pilots").mkdir()
    assert prepare_output(unfinished, settings) == "resume"


def test_overwrite_keeps_pilots(tmp_path, tiny_report):
    import shutil

    _, _, finished = tiny_report
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    assert prepare_output(copy, tiny_settings(), overwrite=True) == "overwrite"
    assert not (copy / "index.html").exists() and not (copy / "figures").exists()
    assert any((copy / "pilots").iterdir())


def test_bad_inputs():
    with pytest.raises(DataError, match="dataset too small for the pilot splits|expected at least"):
        check_pilot_data(tiny_settings(rates=("1",)))
    with pytest.raises(ModelSpecError):
        build_report(tiny_settings(model="tiny-nope:cnn"), "/tmp/never-written")
    with pytest.raises(Exception, match="at least two distinct methods"):
        tiny_settings(methods=("l2",))


def test_spectra_on_training_inputs_and_rule_settings_recorded(tiny_report):
    _, paths, _ = tiny_report
    payload = json.loads(paths["json"].read_text())
    assert payload["evidence"]["split"] == "train"  # never the test split
    assert payload["evidence"]["decides"] is False
    s = payload["settings"]
    assert {"alpha", "seed_sd_floor", "default_method"} <= set(s)
    rec = payload["recommendation"]
    assert rec["outcome"] in {"best", "default", "best-untested"}
    assert all("p_best" in row and "p_adj" in row for row in rec["ranking"])
    assert "No detectable difference" in paths["html"].read_text() or rec["outcome"] != "default"


def test_transferability_section_scores_the_reports_model(tiny_report):
    _, paths, _ = tiny_report
    section = json.loads(paths["json"].read_text())["evidence"]["transferability"]
    row = section["table"][0]
    assert row["model"] == "pre-trained" and row["n_samples"] == section["meta"]["n_samples"] > 0
    assert row["logme"] is not None and row["leep"] is None  # a made-up model has no source head
    skipped = {r["score"]: r["skipped"] for r in section["scores"]}
    assert skipped["leep"] and "source model" in skipped["leep"] and skipped["logme"] is None
    md = paths["markdown"].read_text()
    assert "## Transferability" in md and "| logme |" in md and "| leep | skipped (" in md
    assert "<h2>Transferability</h2>" in paths["html"].read_text()


def test_caveat_when_transferability_has_fewer_samples_than_dimensions(tiny_report):
    from dataclasses import replace

    from spectral_probe.report.render import caveats

    report, _, _ = tiny_report
    ranking = report.evidence.transferability
    (model,) = ranking.meta["models"]
    said = [c for c in caveats(report) if c.startswith("Transferability scores come from")]
    n, d = ranking.meta["models"][model]["n_samples"], ranking.meta["models"][model]["feature_dim"]
    assert bool(said) == (n <= d)
    wide = {**ranking.meta, "models": {model: {**ranking.meta["models"][model], "feature_dim": n}}}
    narrowed = replace(
        report, evidence=replace(report.evidence, transferability=replace(ranking, meta=wide))
    )
    (line,) = [c for c in caveats(narrowed) if c.startswith("Transferability scores come from")]
    assert f"from {n} inputs against {n} feature dimensions" in line


def test_compare_models_ranks_them_beside_the_report_model(tmp_path):
    settings = tiny_settings(
        methods=("l2", "l2+bss"), rates=("100%",), seeds=(0,), compare_models=("tiny:cnn",)
    )
    prepare_output(tmp_path, settings)
    report = build_report(settings, tmp_path)
    from spectral_probe.report import render_report

    paths = render_report(report, tmp_path)
    table = report.evidence.transferability.table
    assert list(table["model"]) == ["pre-trained", "tiny:cnn"]
    md, html = paths["markdown"].read_text(), paths["html"].read_text()
    assert "Ranking against the compared models" in md and "| tiny:cnn |" in md
    assert 'id="model-ranking"' in html
    # the per-score table stays the report model's own: one row per score
    assert sum(line.startswith("| logme |") for line in md.splitlines()) == 1
    payload = json.loads(paths["json"].read_text())
    assert "--compare-models tiny:cnn" in payload["commands"][0]
    assert payload["settings"]["compare_models"] == ["tiny:cnn"]


def test_what_changed_section_for_every_candidate(tiny_report, tmp_path):
    """Intruders and the update's structure of each candidate's seed-0 pilot, in the three
    formats; each row is compare_weights of the pre-trained model and that pilot."""
    import dataclasses

    from spectral_probe.analysis import compare_weights
    from spectral_probe.models import load_model
    from spectral_probe.report import render_report

    report, paths, _ = tiny_report
    s = report.settings
    wc = report.evidence.what_changed
    assert wc is not None and list(wc.fine_tunes["method"]) == list(s.methods)
    pretrained = load_model(s.model)
    for i, method in enumerate(s.methods):
        pilot = report.pilots.run(method, s.rate, s.seeds[0]).model_path.as_posix()
        alone = compare_weights(pretrained, pilot).layers
        row = wc.fine_tunes.iloc[i]
        assert row["intruders"] == int(alone["intruders"].sum())
        assert row["layers"] == int((alone["status"] == "ok").sum())
        assert row["update_effective_rank"] == pytest.approx(
            alone["update_effective_rank"].mean(), rel=1e-9
        )
    payload = json.loads(paths["json"].read_text())["evidence"]["what_changed"]
    assert payload["decides"] is False and payload["rate"] == s.rate
    assert [c["method"] for c in payload["candidates"]] == list(s.methods)
    md = paths["markdown"].read_text()
    assert "## What changed" in md and "Shown, not used by the rule" in md
    assert all(f"\n| {m} | " in md for m in s.methods)
    html = paths["html"].read_text()
    assert 'id="what-changed"' in html and html.count('<td class="l">l2-sp</td>') >= 1
    # without it (an older report object), no section and null in the JSON
    bare = dataclasses.replace(
        report, evidence=dataclasses.replace(report.evidence, what_changed=None)
    )
    other = render_report(bare, tmp_path)
    assert "What changed" not in other["markdown"].read_text()
    assert json.loads(other["json"].read_text())["evidence"]["what_changed"] is None
