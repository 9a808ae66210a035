"""compare-weights shows intruder dimensions and the update's structure: counts equal peft's detector."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from spectral_probe_cli.main import app
from typer.testing import CliRunner

from spectral_probe.analysis.update import update_structure

from ..sources.conftest import tiny_llama

TARGETS = ["q_proj", "v_proj", "up_proj", "down_proj"]
#: lora_B multipliers per (layer index, target): large ones make intruders, small ones none
BOOST = {(0, "q_proj"): 40.0, (0, "up_proj"): 25.0, (1, "down_proj"): 30.0, (1, "v_proj"): 0.01}


def _peft_model():  # type: ignore[no-untyped-def]
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, init_lora_weights=False)
    model = get_peft_model(tiny_llama(), config)
    with torch.no_grad():
        for name, module in model.named_modules():
            hit = re.search(r"layers\.(\d+)\.\w+\.(\w+)$", name)
            if hit and hasattr(module, "lora_B"):
                factor = BOOST.get((int(hit.group(1)), hit.group(2)), 1.0)
                module.lora_B["default"].weight.mul_(factor)
    return model


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("intruders")
    tiny_llama().save_pretrained(root / "base")
    _peft_model().save_pretrained(root / "adapter")
    return {"base": root / "base", "adapter": root / "adapter"}


def _peft_counts(k: int, epsilon: float) -> dict[str, int]:
    """peft's own detector on the live model: {canonical layer name: count}."""
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    logs: list[str] = []
    reduce_intruder_dimension(
        _peft_model(), top_k=k, threshold_epsilon=epsilon, logging_sink=logs.append
    )
    counts = {}
    for line in logs:
        name, _, tail = line.partition(": ")
        layer = re.search(r"(layers\.\d+\..*)$", name)
        if layer:
            hit = re.search(r"Intruders: (\d+)", tail)
            counts[layer.group(1)] = int(hit.group(1)) if hit else 0
    return counts


def _compare(runner: CliRunner, dirs: dict[str, Path], *extra: str) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(
        app, ["compare-weights", str(dirs["base"]), str(dirs["adapter"]), "--json", "-q", *extra]
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("k", "epsilon"), [(10, 0.5), (6, 0.7)])
def test_counts_equal_peft(
    runner: CliRunner, dirs: dict[str, Path], k: int, epsilon: float
) -> None:
    pytest.importorskip("peft")
    out = _compare(
        runner, dirs, "--intruder-k", str(k), "--intruder-epsilon", str(epsilon), "--layers", "proj"
    )
    assert out["meta"]["intruder_k"] == k and out["meta"]["intruder_epsilon"] == epsilon
    ours = {r["layer"]: r["intruders"] for r in out["layers"] if r["lora_rank"] is not None}
    peft = _peft_counts(k, epsilon)
    assert ours == {name: peft[name] for name in ours}
    assert len(ours) == 8 and sum(ours.values()) > 0 and min(ours.values()) == 0  # not vacuous
    for row in out["layers"]:  # the indices and their sigma agree with the counts
        assert len(row["intruder_indices"]) == row["intruders"] == len(row["intruder_sigma"])
        assert all(1 <= i <= k for i in row["intruder_indices"])


def test_structure_equals_the_factored_record(runner: CliRunner, dirs: dict[str, Path]) -> None:
    """Every number beside the counts equals analysis.update_structure from peft's own factors
    (LAPACK SVDs of W0 and W; the adapter's update from its factors)."""
    out = _compare(runner, dirs, "--layers", "proj")
    model = _peft_model()
    rows = {r["layer"]: r for r in out["layers"]}
    checked = 0
    for name, module in model.named_modules():
        hit = re.search(r"(layers\.\d+\.\w+\.\w+)$", name)
        if not (hit and hasattr(module, "lora_B")):
            continue
        w0 = module.base_layer.weight.detach()
        b = module.lora_B["default"].weight.detach()
        a = module.lora_A["default"].weight.detach()
        rec = update_structure(w0, lora=(b, a, module.scaling["default"]))
        row = rows[hit.group(1)]
        assert row["intruders"] == rec.intruders and row["intruders_right"] == rec.intruders_right
        assert [i - 1 for i in row["intruder_indices"]] == list(rec.intruder_indices)
        np.testing.assert_allclose(row["intruder_sigma"], rec.intruder_sigma, rtol=1e-6)
        # B is the float32 merge (as peft's merge_and_unload): vectors of close singular
        # values move by ~1e-5 against the float64 record
        np.testing.assert_allclose(row["intruder_max_cos"], rec.intruder_max_cos, atol=1e-4)
        assert row["subspace_rank"] == rec.subspace_rank == 4
        for ours, theirs in [
            ("update_rank_90", "rank_90"),
            ("update_rank_99", "rank_99"),
            ("update_gd_rank", "gd_rank"),
        ]:
            assert row[ours] == getattr(rec, theirs), ours
        for ours, theirs in [
            ("update_stable_rank", "stable_rank"),
            ("update_effective_rank", "effective_rank"),
            ("top_energy", "top_energy"),
            ("bottom_energy", "bottom_energy"),
            ("top_energy_left", "top_energy_left"),
            ("top_energy_right", "top_energy_right"),
            ("bottom_energy_left", "bottom_energy_left"),
            ("bottom_energy_right", "bottom_energy_right"),
            ("chance_energy", "chance_energy"),
            ("update_rel_norm", "rel_norm"),
            ("update_sigma1", "norm_2"),
        ]:
            assert row[ours] == pytest.approx(getattr(rec, theirs), rel=1e-6, abs=1e-9), ours
        checked += 1
    assert checked == 8


def test_blocked_route_and_tables(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the row-block Grams (as for large matrices) the counts and shares are the same;
    --out writes intruders.csv and sweep.csv, the terminal gets one intruder line."""
    import spectral_probe.analysis.weights as weights

    plain = _compare(runner, dirs, "--layers", "proj")
    monkeypatch.setattr(weights, "BLOCKED_ELEMENTS", 1)
    blocked = _compare(runner, dirs, "--layers", "proj")
    for p, q in zip(plain["layers"], blocked["layers"], strict=True):
        assert (p["intruders"], p["intruders_right"]) == (q["intruders"], q["intruders_right"])
        for col in ("top_energy", "bottom_energy_left", "top_energy_right", "update_gd_rank"):
            assert q[col] == pytest.approx(p[col], rel=1e-5, abs=1e-8), col
    out = tmp_path / "cw"
    res = runner.invoke(
        app,
        ["compare-weights", str(dirs["base"]), str(dirs["adapter"]), "--out", str(out), "-q"],
        terminal_width=200,
    )
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("intruders (k=10"))
    total = sum(r["intruders"] for r in plain["layers"])
    assert f"{total} left" in line
    for name in ("intruders_by_depth.png", "update_energy.png", "intruder_sweep.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    table = pd.read_csv(out / "intruders.csv")
    assert set(table["side"]) == {"left", "right"}
    sweep = pd.read_csv(out / "sweep.csv")
    model = sweep[(sweep["layer"] == "(model)") & (sweep["side"] == "left")]
    assert int(model.loc[np.isclose(model["epsilon"], 0.5), "intruders"].iloc[0]) == total
    assert model["intruders"].is_monotonic_increasing


def test_top_skips_intruders_with_a_note(runner: CliRunner, dirs: dict[str, Path]) -> None:
    out = _compare(runner, dirs, "--layers", "q_proj", "--top", "3")
    assert "intruders" not in out["layers"][0]
    assert any("skipped with --top" in note for note in out["meta"]["notes"])


def test_bad_intruder_options_are_one_line(runner: CliRunner, dirs: dict[str, Path]) -> None:
    for args, words in (
        (["--intruder-epsilon", "0"], "--intruder-epsilon in (0, 1]"),
        (["--intruder-k", "-1"], "--intruder-k >= 0"),
        (["--subspace-rank", "0"], "--subspace-rank >= 1"),
    ):
        res = runner.invoke(
            app, ["compare-weights", str(dirs["base"]), str(dirs["adapter"]), "-q", *args]
        )
        assert res.exit_code == 2 and words in res.output, res.output


def _reference(lam: float):  # type: ignore[no-untyped-def]
    """peft's own mitigation of the same adapter: the model with its 'intruder_reduced' adapter."""
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    model = _peft_model()
    reduce_intruder_dimension(model, mitigation_lambda=lam, logging_sink=None)
    return model


def test_scale_intruders_writes_an_adapter_peft_loads_and_a_merged_model(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    import transformers as tr
    from peft import PeftModel

    fixed, merged = tmp_path / "fixed", tmp_path / "merged"
    res = runner.invoke(
        app,
        [
            "compare-weights",
            str(dirs["base"]),
            str(dirs["adapter"]),
            "-q",
            "--scale-intruders",
            "0.75",
            "--write-adapter",
            str(fixed),
            "--write-merged",
            str(merged),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "intruders scaled by λ = 0.75" in res.output
    base = tr.AutoModelForCausalLM.from_pretrained(dirs["base"])
    loaded = PeftModel.from_pretrained(base, fixed)  # peft loads the written adapter
    ref = _reference(0.75)
    ids = torch.arange(12)[None]
    ref.set_adapter("intruder_reduced")
    with torch.no_grad():
        want = ref(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
        torch.testing.assert_close(got, want, atol=2e-4, rtol=1e-4)  # peft's own mitigation
        model = tr.AutoModelForCausalLM.from_pretrained(merged)  # transformers loads it
        torch.testing.assert_close(model(input_ids=ids).logits, got, atol=2e-4, rtol=1e-4)
        plain = PeftModel.from_pretrained(
            tr.AutoModelForCausalLM.from_pretrained(dirs["base"]), dirs["adapter"]
        )
        assert not torch.allclose(plain(input_ids=ids).logits, got, atol=1e-3)  # it changed
    record = json.loads((fixed / "intruders.json").read_text())
    assert record["meta"]["lambda"] == 0.75 and any(r["scaled"] for r in record["layers"])


def test_scale_intruders_on_a_full_fine_tune(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    """A full fine-tune (the merged adapter as a plain model directory): W' written as such;
    --write-adapter needs an adapter; bad options are one line (exit 2), nothing written."""
    import transformers as tr

    from spectral_probe.spectral import detect_intruders

    full = tmp_path / "full"
    _peft_model().merge_and_unload().save_pretrained(full)
    out = tmp_path / "scaled"
    res = runner.invoke(
        app,
        ["compare-weights", str(dirs["base"]), str(full), "-q", "--scale-intruders", "0.5",
         "--write-merged", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    name = "model.layers.0.self_attn.q_proj.weight"
    w0 = tr.AutoModelForCausalLM.from_pretrained(dirs["base"]).state_dict()[name].double()
    w = tr.AutoModelForCausalLM.from_pretrained(full).state_dict()[name].double()
    new = tr.AutoModelForCausalLM.from_pretrained(out).state_dict()[name].double()
    found, _, s, _ = detect_intruders(w0, w)
    assert found.count > 0
    s_new = torch.linalg.svdvals(new)
    expect = s.clone()
    expect[found.indices] *= 0.5
    torch.testing.assert_close(s_new, expect.sort(descending=True).values, atol=1e-5, rtol=1e-5)
    for args, words in (
        (["--write-adapter", str(tmp_path / "x")], "expected a peft adapter as MODEL_B"),
        (["--write-merged", str(out)], "new or empty directory"),
        ([], "--write-merged DIR or --write-adapter DIR"),
    ):
        res = runner.invoke(
            app,
            [
                "compare-weights",
                str(dirs["base"]),
                str(full),
                "-q",
                "--scale-intruders",
                "0.75",
                *args,
            ],
        )
        assert res.exit_code == 2 and words in res.output, res.output
    assert not (tmp_path / "x").exists()
    res = runner.invoke(
        app,
        ["compare-weights", str(dirs["base"]), str(full), "--write-merged", str(tmp_path / "y")],
    )
    assert res.exit_code == 2 and "--scale-intruders LAMBDA" in res.output


def test_several_fine_tunes_of_one_base(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    """compare-weights BASE FT1 FT2: one row per fine-tune, each equal to its own two-model run."""
    full = tmp_path / "full"
    _peft_model().merge_and_unload().save_pretrained(full)
    args = ["--layers", "proj"]
    many = _compare(runner, dirs, str(full), *args)  # BASE ADAPTER FULL
    assert [r["fine_tune"] for r in many["fine_tunes"]] == [1, 2]
    single = [_compare(runner, dirs, *args)]
    res = runner.invoke(
        app, ["compare-weights", str(dirs["base"]), str(full), "--json", "-q", *args]
    )
    single.append(json.loads(res.stdout))
    for row, run, alone in zip(many["fine_tunes"], many["runs"], single, strict=True):
        counts = [r["intruders"] for r in alone["layers"]]
        assert row["intruders"] == sum(counts) and row["layers"] == len(alone["layers"])
        assert [r["intruders"] for r in run["layers"]] == counts
    assert (
        many["fine_tunes"][0]["adapter_layers"] == 8
        and many["fine_tunes"][1]["adapter_layers"] is None
    )
    # the adapter and its float32 merge saved as a model: the same intruders
    assert many["fine_tunes"][0]["intruders"] == many["fine_tunes"][1]["intruders"] > 0
    out = tmp_path / "cw"
    res = runner.invoke(
        app,
        ["compare-weights", str(dirs["base"]), str(dirs["adapter"]), str(full), "--out", str(out),
         *args],
        terminal_width=200,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "2 fine-tunes" in res.output
    table = pd.read_csv(out / "fine_tunes.csv")
    assert len(table) == 2 and set(pd.read_csv(out / "layers.csv")["fine_tune"]) == {1, 2}
    for name in ("fine_tunes_intruders.png", "fine_tunes_top_energy.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    res = runner.invoke(
        app,
        ["compare-weights", str(dirs["base"]), str(dirs["adapter"]), str(full),
         "--scale-intruders", "0.75", "--write-merged", str(tmp_path / "m")],
    )  # fmt: skip
    assert res.exit_code == 2 and "one fine-tune with --scale-intruders" in res.output


def test_gpt2_conv1d_counts_equal_peft(runner: CliRunner, tmp_path: Path) -> None:
    """GPT-2 stores Conv1D weights (in, out) and peft's LoRA there is fan_in_fan_out: the counts
    are still peft's (both read the (out, in) matrix)."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    from ..sources.conftest import tiny_gpt2

    tiny_gpt2().save_pretrained(tmp_path / "base")
    torch.manual_seed(3)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
        init_lora_weights=False,
    )  # fmt: skip
    model = get_peft_model(tiny_gpt2(), config)
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith("h.0.attn.c_attn"):
                module.lora_B["default"].weight.mul_(30.0)
    model.save_pretrained(tmp_path / "adapter")
    logs: list[str] = []
    reduce_intruder_dimension(model, logging_sink=logs.append)
    peft = {}
    for line in logs:
        hit = re.search(r"(h\.\d+\.\w+\.\w+): (?:Intruders: (\d+)|No intruders)", line)
        if hit:
            peft[hit.group(1)] = int(hit.group(2) or 0)
    res = runner.invoke(
        app, ["compare-weights", str(tmp_path / "base"), str(tmp_path / "adapter"), "--json", "-q"]
    )
    assert res.exit_code == 0, res.output
    ours = {r["layer"]: r["intruders"] for r in json.loads(res.stdout)["layers"] if r["lora_rank"]}
    assert ours == peft and len(ours) == 4 and sum(ours.values()) > 0


def test_gpt2_conv1d_adapter_mitigation_equals_peft(runner: CliRunner, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    from ..sources.conftest import tiny_gpt2

    tiny_gpt2().save_pretrained(tmp_path / "base")

    def adapted():  # type: ignore[no-untyped-def]
        torch.manual_seed(3)
        config = LoraConfig(
            r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True,
            init_lora_weights=False,
        )  # fmt: skip
        model = get_peft_model(tiny_gpt2(), config)
        with torch.no_grad():
            for name, module in model.named_modules():
                if name.endswith("h.0.attn.c_attn"):
                    module.lora_B["default"].weight.mul_(30.0)
        return model

    adapted().save_pretrained(tmp_path / "adapter")
    ref = adapted()
    reduce_intruder_dimension(ref, logging_sink=None)
    ref.set_adapter("intruder_reduced")
    res = runner.invoke(
        app,
        ["compare-weights", str(tmp_path / "base"), str(tmp_path / "adapter"), "-q",
         "--scale-intruders", "0.75", "--write-adapter", str(tmp_path / "fixed")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    loaded = PeftModel.from_pretrained(tiny_gpt2(), tmp_path / "fixed")
    ids = torch.arange(10)[None]
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(input_ids=ids).logits, ref(input_ids=ids).logits, atol=2e-4, rtol=1e-4
        )
        plain = PeftModel.from_pretrained(tiny_gpt2(), tmp_path / "adapter")
        assert not torch.allclose(
            plain(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-3
        )
