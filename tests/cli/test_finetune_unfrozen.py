"""``finetune --unfrozen-parameters``: the YAML that ``select-layers`` writes, end to end."""

from __future__ import annotations

import torch
from _fixtures.cli import one_line_error
from safetensors.torch import load_file, save_file
from spectral_probe_cli.main import app
from training import _tiny  # noqa: F401  (the tiny model source: tests/training/_tiny.py)

from spectral_probe.models import load_model

TINY = ["--model", "tiny:cnn", "--data", "digits", "--batch-size", "32", "--image-size", "8"]
TINY += ["--lr", "0.1", "--single-crop", "--iterations", "3", "-q"]


def test_select_layers_yaml_trains_only_its_layers_and_the_head(runner, tmp_path):
    before = {k: v.contiguous() for k, v in load_model("tiny:cnn").model.state_dict().items()}
    save_file(before, str(tmp_path / "tiny.safetensors"))
    args = ["select-layers", str(tmp_path / "tiny.safetensors"), "--top-percent", "100"]
    sel = runner.invoke(app, [*args, "--no-figures", "-q", "--out", str(tmp_path / "sel")])
    assert sel.exit_code == 0, sel.output
    yaml_file = tmp_path / "sel" / "unfrozen_parameters.yaml"
    assert "- bn1" in yaml_file.read_text()  # the convs are 4-D: select-layers scores bn1 only
    res = runner.invoke(
        app,
        [
            "finetune",
            *TINY,
            "--run-dir",
            str(tmp_path / "r"),
            "--unfrozen-parameters",
            str(yaml_file),
        ],
    )
    assert res.exit_code == 0, res.output
    after = load_file(str(tmp_path / "r" / "model.safetensors"))
    for name in ("conv1.weight", "conv2.weight", "conv2.bias"):
        assert torch.equal(after[name], before[name]), name
    for name in ("bn1.weight", "bn1.bias", "fc.weight", "fc.bias"):
        assert not torch.equal(after[name], before[name]), name


def test_bad_unfrozen_files_are_one_line_and_write_nothing(runner, tmp_path):
    none_match = tmp_path / "other.yaml"
    none_match.write_text("unfrozen_parameters:\n- ^lm_head.weight$\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("unfrozen_parameters: []\n")
    for path, fragment in (
        (tmp_path / "missing.yaml", "found nothing"),
        (empty, "found list (empty)"),
        (none_match, "found none matched by '^lm_head.weight$'"),
    ):
        out = tmp_path / "runs"
        res = runner.invoke(
            app, ["finetune", *TINY, "--out", str(out), "--unfrozen-parameters", str(path)]
        )
        assert fragment in one_line_error(res)
        assert not out.exists() or not any(out.iterdir())
