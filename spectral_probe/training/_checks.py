"""Small value checks of the config (one-line ConfigErrors; numbers: :mod:`spectral_probe._checks`)
and a TOML value writer."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError

__all__ = ["is_zero", "check_string", "check_bool", "toml_value"]


def is_zero(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and value == 0
    ) or value in ("0", "0%")


def check_string(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected {name} to be a non-empty string, found {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"expected {name} to be true or false, found {value!r}")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} as TOML")
