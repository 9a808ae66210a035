"""FinetuneConfig: preset values (paper and released code), validation, round trips, run ids."""

from __future__ import annotations

import json

import pytest

from spectral_probe.errors import ConfigError, SpectralProbeError
from spectral_probe.training import FinetuneConfig, config_diff, get_preset, list_presets, parse_hp
from spectral_probe.training.config import OPERATIONAL_KEYS


def test_paper_preset_is_section_5_1():
    cfg = FinetuneConfig(data="digits", method="l2+bss").resolve()
    # DIGEST.md: SGD momentum 0.95 (paper text), batch 48, new head at 10x, head lr 0.01,
    # lr x0.1 every 6000 iterations over 9000, 224 crops of 256x256, 10-crop test, eta 0.001, k 1
    assert (cfg.optimizer, cfg.momentum, cfg.batch_size) == ("sgd", 0.95, 48)
    assert (cfg.lr, cfg.head_lr_ratio, cfg.lr / cfg.head_lr_ratio) == (0.01, 10.0, 0.001)
    assert (cfg.schedule, cfg.lr_step, cfg.lr_gamma, cfg.iterations) == ("step", 6000, 0.1, 9000)
    assert (cfg.image_size, cfg.resize, cfg.ten_crop, cfg.augment) == (224, 256, True, "paper")
    assert (cfg.hp["bss.eta"], cfg.hp["bss.k"]) == (0.001, 1)
    assert cfg.weight_decay == 0.0 and cfg.select == "last" and cfg.val == 0


def test_released_preset_is_the_authors_code():
    cfg = FinetuneConfig(data="digits", method="l2+bss", preset="released").resolve()
    # BSS.py: SGD(momentum=0.9, weight_decay=0.0005), param lr 0.1/1 of init_lr 0.01
    assert cfg.momentum == 0.9
    assert cfg.hp["l2.alpha"] == 5e-4
    assert (cfg.lr, cfg.lr / cfg.head_lr_ratio, cfg.batch_size, cfg.iterations) == (
        0.01,
        0.001,
        48,
        9000,
    )
    assert cfg.head_init == "normal"


def test_preset_hp_only_for_terms_in_the_method():
    cfg = FinetuneConfig(data="digits", method="l2-sp", preset="released").resolve()
    assert "l2.alpha" not in cfg.hp and set(cfg.hp) == {"l2-sp.alpha", "l2-sp.beta"}


def test_user_values_beat_the_preset_and_hp_are_qualified():
    cfg = FinetuneConfig(
        data="digits",
        method="l2+bss",
        preset="released",
        momentum=0.5,
        hp={"eta": "0.01", "l2.alpha": 0.1},
    ).resolve()
    assert cfg.momentum == 0.5 and cfg.hp["bss.eta"] == 0.01 and cfg.hp["l2.alpha"] == 0.1


def test_every_preset_resolves():
    names = [p.name for p in list_presets()]
    assert {"paper", "released", "demo"} <= set(names)
    for name in names:
        FinetuneConfig(data="digits", preset=name).resolve()


def test_json_and_toml_round_trips(tmp_path):
    cfg = FinetuneConfig(
        data="digits", method="l2-sp+bss", rate=0.15, seed=3, hp={"bss.k": 2}
    ).resolve()
    assert FinetuneConfig.from_dict(json.loads(cfg.to_json())) == cfg
    (tmp_path / "c.toml").write_text(cfg.to_toml())
    assert FinetuneConfig.from_file(tmp_path / "c.toml") == cfg
    partial = FinetuneConfig(data="digits", lr=0.1)
    (tmp_path / "p.toml").write_text(partial.to_toml())
    assert FinetuneConfig.from_file(tmp_path / "p.toml").resolve() == partial.resolve()


def test_run_id_is_stable_and_ignores_operational_keys():
    a = FinetuneConfig(data="digits", method="l2+bss", rate="15%")
    assert a.run_id == FinetuneConfig(data="digits", method="l2+bss", rate=0.15).run_id
    assert a.run_id == a.with_overrides(device="cpu", num_workers=4, log_every=7).run_id
    assert a.run_id != a.with_overrides(seed=1).run_id
    assert a.run_id != a.with_overrides(hp={"bss.k": 2}).run_id
    assert a.run_id.startswith("digits-l2+bss-15pct-s0-")
    assert {"device", "num_workers"} <= OPERATIONAL_KEYS


def test_config_diff_names_keys():
    a = FinetuneConfig(data="digits", method="l2+bss")
    diff = config_diff(a, a.with_overrides(lr=0.5, hp={"bss.eta": 0.1}))
    assert sorted(diff) == ["hp.bss.eta: 0.001 != 0.1", "lr: 0.01 != 0.5"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"method": "l3"}, "found 'l3'"),
        ({"method": "bss", "hp": {"alpha": 1.0}}, "found 'alpha'"),
        ({"method": "l2+bss", "batch_size": 1}, "batch size > bss.k"),
        (
            {"method": "bss", "batch_size": 4, "hp": {"bss.k": 4}},
            "found batch size 4 and bss.k = 4",
        ),
        ({"rate": 1.5}, "sampling rate"),
        ({"preset": "nope"}, "expected a preset"),
        ({"select": "best"}, "val > 0"),
        ({"momentum": 1.0}, "momentum in [0, 1)"),
        ({"lr": -1.0}, "lr > 0"),
        ({"iterations": 0}, "iterations to be an integer >= 1"),
        ({"image_size": 224, "resize": 200}, "resize >= image_size"),
        ({"amp": "fp8"}, "expected amp in"),
        ({"data": ""}, "data to be a non-empty string"),
    ],
)
def test_bad_values_are_one_line_errors(changes, fragment):
    base = {"data": "digits", **changes}
    with pytest.raises(SpectralProbeError) as info:
        FinetuneConfig(**base).resolve()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match="found unknown 'learning_rate'"):
        FinetuneConfig.from_dict({"data": "digits", "learning_rate": 0.1})


def test_parse_hp():
    assert parse_hp(["bss.eta=0.001", "k=2", "gather=true", "precision=float32"]) == {
        "bss.eta": 0.001,
        "k": 2,
        "gather": True,
        "precision": "float32",
    }
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_hp(["bss.eta"])


def test_get_preset_unknown():
    with pytest.raises(ConfigError, match="expected a preset in"):
        get_preset("fast")


def _methods() -> list[str]:
    from spectral_probe.regularizers import list_regularizers
    from spectral_probe.training import SCENARIOS

    names = [r.name for r in list_regularizers()]
    pairs = [f"{a}+{b}" for a in names for b in names if a != b]
    return ["none", *names, *pairs, *(s["method"] for s in SCENARIOS.values())]


def _built_hp(method: str, preset_hp: dict, user_hp: dict) -> tuple[str, dict]:
    """What resolve gave before it parsed through parse_method: the modules built with the
    preset's values for the method's terms and the user's, then read back."""
    from spectral_probe._io import to_jsonable
    from spectral_probe.regularizers import build_regularizer, hyperparameters_of

    names = build_regularizer(method).names
    chosen = {k: v for k, v in preset_hp.items() if k.partition(".")[0] in names}
    regs = build_regularizer(method, **{**chosen, **user_hp})
    hp = {
        f"{t.name}.{h}": to_jsonable(getattr(t, h))
        for t in regs
        for h in hyperparameters_of(type(t))
    }
    return "+".join(regs.names) or "none", hp


@pytest.mark.parametrize("preset", [p.name for p in list_presets()])
def test_resolve_gives_what_the_built_modules_hold(preset):
    """Every registered method (alone and in pairs) and every scenario's, under every preset:
    the same canonical method and hyperparameters as building the modules gave."""
    checked = 0
    for method in _methods():
        for user in ({}, {"eta": "0.5"}, {"bss.k": 2, "alpha": 0.3}):
            try:
                expected = _built_hp(method, dict(get_preset(preset).hp), user)
            except ConfigError as exc:  # the same error, without building anything
                message = str(exc)
                with pytest.raises(ConfigError) as err:
                    FinetuneConfig(data="digits", method=method, preset=preset, hp=user).resolve()
                assert str(err.value) == message
                continue
            cfg = FinetuneConfig(
                data="digits", method=method.upper(), preset=preset, hp=user, batch_size=64
            ).resolve()
            assert (cfg.method, cfg.hp) == expected, (method, user)
            checked += 1
    assert checked > 40


def test_resolve_and_sweep_cells_build_no_module(monkeypatch, tmp_path):
    from spectral_probe.regularizers import Regularizer
    from spectral_probe.training import load_sweep

    def refuse(self, *args, **kwargs):
        raise AssertionError("a module was built")

    monkeypatch.setattr(Regularizer, "__init__", refuse)
    cfg = FinetuneConfig(data="digits", method="delta+bss", hp={"k": 2}).resolve()
    assert cfg.hp["bss.k"] == 2 and cfg.run_id
    path = tmp_path / "s.toml"
    path.write_text(
        '[sweep]\nname = "s"\n[base]\ndata = "digits"\n[grid]\n'
        'method = ["l2", "l2+bss", "delta"]\n[grid.hp]\n"bss.k" = [1, 2]\n',
        encoding="utf-8",
    )
    assert [c.method for c in load_sweep(path).configs()] == ["l2", "l2+bss", "l2+bss", "delta"]


def test_from_options_builds_the_command_line_config():
    cfg = FinetuneConfig.from_options(
        {
            "data": "digits",
            "method": "l2+bss",
            "image_size": 64,
            "hp": ["bss.k=2"],
            "lora_rank": 4,
            "rslora": True,
            "lr": None,  # not given: the preset's
            "log": ["csv"],
        }
    )
    assert (cfg.image_size, cfg.resize) == (64, 73)  # the paper's 256/224 ratio
    assert cfg.hp["bss.k"] == 2 and cfg.log == ("csv",)
    assert cfg.lora["rank"] == 4 and cfg.lora["rslora"] is True
    assert cfg.lr == get_preset("paper").lr
    plain = FinetuneConfig.from_options({"data": "digits", "rslora": False})
    assert plain.lora == {} and plain.method == "l2" and plain.resize == 256
    assert plain.run_id == FinetuneConfig(data="digits").run_id


def test_from_options_scenario_base_and_resume():
    glue = FinetuneConfig.from_options(
        {"data": "glue-sst2:/nowhere", "task_options": ["pool=mean"]}
    )
    assert (glue.task, glue.method, glue.task_options) == (
        "text-classification",
        "none",
        {"pool": "mean"},
    )
    base = FinetuneConfig(data="digits", method="l2-sp", task_options={})
    kept = FinetuneConfig.from_options({"seed": 3}, base=base)
    assert (kept.method, kept.seed, kept.data) == ("l2-sp", 3, "digits")  # the base's choice kept
    with pytest.raises(ConfigError, match="expected --data"):
        FinetuneConfig.from_options({"method": "l2"})
    resumed = FinetuneConfig.from_options({}, base=base.resolve(), resumed=True)
    assert resumed == base.resolve()
    with pytest.raises(ConfigError, match="scenario"):
        FinetuneConfig.from_options({"data": "digits"}, scenario="nope")
    with pytest.raises(ConfigError, match="nope"):
        FinetuneConfig.from_options({"data": "digits", "nope": 1})
    with pytest.raises(ConfigError, match="max_length"):
        FinetuneConfig.from_options({"data": "digits", "task_options": ["max_length=3"]})
