"""The registry: names, defaults, '+' composition, routing and errors."""

from __future__ import annotations

import pytest
import torch

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import (
    BSS,
    L2SP,
    RegularizerSet,
    StepContext,
    build_regularizer,
    list_regularizers,
)

from ._models import make_batches, tiny_net

PAPER_DEFAULTS = {
    "bss": {"eta": 0.001, "k": 1},
    "l2": {"alpha": 0.01},
    "l2-sp": {"alpha": 0.01, "beta": 0.01},
    "delta": {"gamma": 0.01, "kappa": 0.01, "temperature": 5.0, "attention_batches": 4},
    "tsvd": {"r": 1},
    "ewc": {"fisher": "true"},
}


def test_every_method_is_listed_with_its_defaults() -> None:
    infos = {info.name: info for info in list_regularizers()}
    assert sorted(infos) == sorted(PAPER_DEFAULTS)
    for name, defaults in PAPER_DEFAULTS.items():
        for key, value in defaults.items():
            assert infos[name].hyperparameters[key] == value
        assert infos[name].summary
    assert infos["bss"].needs_features and not infos["bss"].needs_loader
    assert infos["delta"].needs_loader and infos["ewc"].needs_loader


@pytest.mark.parametrize("name", [info.name for info in list_regularizers()])
def test_every_name_builds_with_defaults(name: str) -> None:
    reg = build_regularizer(name)
    assert isinstance(reg, RegularizerSet) and reg.names == [name]
    for key, value in next(
        i for i in list_regularizers() if i.name == name
    ).hyperparameters.items():
        if key != "layers":
            assert getattr(reg[name], key) == value


def test_composition_and_routing() -> None:
    reg = build_regularizer(" L2-SP + bss ", eta=0.5, **{"l2-sp.alpha": 0.2, "k": "2"})
    assert reg.names == ["l2-sp", "bss"] and "l2-sp+bss" in repr(reg)
    assert isinstance(reg["bss"], BSS) and reg["bss"].eta == 0.5 and reg["bss"].k == 2
    assert isinstance(reg["l2-sp"], L2SP) and reg["l2-sp"].alpha == 0.2
    both = build_regularizer("l2+l2-sp", alpha=0.3)  # a plain name goes to every term that has it
    assert both["l2"].alpha == 0.3 and both["l2-sp"].alpha == 0.3
    assert build_regularizer("bss", gather="true")["bss"].gather is True
    assert len(build_regularizer("none")) == 0


def test_composite_sums_penalties_with_breakdown() -> None:
    model = tiny_net()
    reg = build_regularizer("l2-sp+bss+tsvd", eta=1.0)
    reg.prepare(model, head="fc")
    with torch.no_grad():
        model.conv1.weight.add_(0.1)
    x, y = make_batches(1)[0]
    feats = {}
    model.fc.register_forward_pre_hook(lambda m, a: feats.setdefault("f", a[0]))
    ctx = StepContext(model, "fc", x, y, model(x), feats["f"])
    total, parts = reg(ctx)
    assert sorted(parts) == ["bss", "l2-sp"]  # tsvd adds no penalty
    want = reg["bss"].penalty(ctx) + reg["l2-sp"].penalty(ctx)
    assert total.item() == pytest.approx(want.item())
    assert reg.penalty(ctx).item() == pytest.approx(want.item())
    assert all(not v.requires_grad for v in parts.values()) and total.requires_grad
    empty_total, empty_parts = build_regularizer("none")(ctx)
    assert empty_total.item() == 0.0 and empty_parts == {}


@pytest.mark.parametrize(
    ("spec", "kwargs", "match"),
    [
        ("bss+foo", {}, "bss, delta, ewc, l2, l2-sp, tsvd"),
        ("bss+bss", {}, "once"),
        ("bss", {"alpha": 1.0}, "eta, gather, k, precision"),
        ("bss", {"l2.alpha": 1.0}, "bss.eta"),
        ("bss", {"k": "two"}, "bss.k to be a int"),
        ("bss", {"eta": -1.0}, "bss.eta >= 0"),
        ("tsvd", {"r": 0}, "tsvd.r"),
        (3, {}, "spec"),
    ],
)
def test_errors_are_one_line_config_errors(spec, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        build_regularizer(spec, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_head_names_the_modules() -> None:
    with pytest.raises(ConfigError, match="conv1, bn1, relu, layer1, layer2, pool, fc"):
        build_regularizer("l2-sp").prepare(tiny_net(), head="classifier")
