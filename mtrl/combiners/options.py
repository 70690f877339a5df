"""Checks shared by the methods' option dataclasses: each option class validates its own fields and names
the config key (`methods.<method>.<field>`) in its one-line error."""

from __future__ import annotations

from typing import Any

from mtrl.errors import ConfigError


def require_positive(method: str, options: Any, *fields: str) -> None:
    for name in fields:
        value = getattr(options, name)
        if not value > 0:
            raise ConfigError(f"config key 'methods.{method}.{name}' must be > 0, got {value!r}")


def require_non_negative(method: str, options: Any, *fields: str) -> None:
    for name in fields:
        value = getattr(options, name)
        if not value >= 0:
            raise ConfigError(f"config key 'methods.{method}.{name}' must be >= 0, got {value!r}")
