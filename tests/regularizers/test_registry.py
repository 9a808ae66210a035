"""The registry: names, defaults, '+' composition, routing and errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import (
    BSS,
    DELTA,
    EWC,
    L2,
    L2SP,
    TSVD,
    Regularizer,
    RegularizerSet,
    StepContext,
    build_regularizer,
    hyperparameters_of,
    list_regularizers,
    parse_method,
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


# ---------------------------------------------------------------------- parse_method

_NAMES = [info.name for info in list_regularizers()]
_HPS = sorted({h for info in list_regularizers() for h in info.hyperparameters})


def _from_text(value: Any, default: Any) -> Any:
    """A command-line string as the type of the default (bool, int, float)."""
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    if isinstance(default, bool):
        words = {"1": True, "true": True, "yes": True, "on": True}
        words |= {"0": False, "false": False, "no": False, "off": False}
        if value.strip().lower() not in words:
            raise ConfigError("not a bool")
        return words[value.strip().lower()]
    try:
        return type(default)(value.strip())
    except ValueError:
        raise ConfigError("not a number") from None


def _built_route(spec: str, **hparams: Any) -> dict[str, Any]:
    """The behaviour parse_method replaces: route the values, build each module, read it back.

    A transcription of the routing that ``build_regularizer`` did before it parsed through
    ``parse_method``; the values are what the built modules hold.
    """
    names = [part.strip().lower() for part in spec.split("+")]
    if spec.strip().lower() in ("", "none"):
        names = []
    classes = {c.name: c for c in (BSS, DELTA, EWC, L2, L2SP, TSVD)}
    for name in names:
        if name not in classes:
            raise ConfigError(f"unknown {name!r}")
    if len(set(names)) < len(names):
        raise ConfigError("repeated")
    signatures = {n: hyperparameters_of(classes[n]) for n in names}
    per_term: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in hparams.items():
        method, _, hp = key.rpartition(".")
        targets = [method] if method else [n for n in names if hp in signatures[n]]
        if (method and method not in names) or not targets:
            raise ConfigError(f"unknown {key!r}")
        if any(hp not in signatures[t] for t in targets):
            raise ConfigError(f"unknown {key!r}")
        for t in targets:
            per_term[t][hp] = _from_text(value, signatures[t][hp])
    modules = [classes[n](**per_term[n]) for n in names]
    return {f"{m.name}.{h}": getattr(m, h) for m in modules for h in signatures[m.name]}


_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-3, 8),
    st.booleans(),
    st.sampled_from(["0.5", "2", "x", "auto", "true", "batch", "layer1,fc", "empirical", ""]),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(st.sampled_from(_NAMES), min_size=0, max_size=3, unique=True),
    upper=st.booleans(),
    keys=st.lists(
        st.tuples(st.sampled_from(["", *_NAMES, "nope"]), st.sampled_from([*_HPS, "zz"])),
        max_size=3,
    ),
    values=st.lists(_value, min_size=3, max_size=3),
)
def test_parse_method_agrees_with_the_built_modules(names, upper, keys, values) -> None:
    """On every registered method and any hyperparameters: the same terms and values as the
    modules would hold, or a ConfigError where building them fails."""
    spec = "+".join(f" {n.upper() if upper else n} " for n in names) or "none"
    hp = {f"{t}.{h}" if t else h: v for (t, h), v in zip(keys, values)}
    try:
        expected = _built_route(spec, **hp)
    except (ConfigError, TypeError, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(ConfigError) as err:
            parse_method(spec, **hp)
        assert "\n" not in str(err.value)
        return
    method = parse_method(spec, **hp)
    assert method.names == tuple(names)
    assert method.spec == ("+".join(names) or "none")
    assert method.qualified() == expected
    built = method.build()
    assert built.names == list(names)
    assert {f"{t.name}.{h}": getattr(t, h) for t in built for h in hyperparameters_of(type(t))} == (
        expected
    )


def test_parse_method_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a module was built")

    monkeypatch.setattr(Regularizer, "__init__", refuse)
    with pytest.raises(AssertionError, match="a module was built"):
        build_regularizer("bss")  # the patch bites
    method = parse_method("delta+bss", **{"delta.layers": "layer1, fc", "k": "3"})
    assert method.hyperparameters["delta"]["layers"] == ("layer1", "fc")
    assert method.hyperparameters["bss"]["k"] == 3
    with pytest.raises(ConfigError, match=r"expected bss\.eta >= 0, found -1"):
        parse_method("bss", eta=-1)
    with pytest.raises(ConfigError, match="expected regularizers from"):
        parse_method("l2+nope")
    with pytest.raises(ConfigError, match="found 'k'"):
        parse_method("l2", k=1)
