"""Strict parsers for option values that come from the command line or the environment.

The client has its own small copy rather than the server's helpers: it is
installed without Django and must not import it. Each parser raises
`ValueError` with a short reason; `setting` turns that into a `ConfigError`
that names where the bad value came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(Exception):
    """An option or environment variable is missing or has a value that cannot be used."""


def positive_int(raw: str) -> int:
    """An integer of at least 1."""
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def positive_float(raw: str) -> float:
    """A number greater than 0."""
    value = float(raw)
    if not value > 0:
        raise ValueError("must be more than 0")
    return value


def non_negative_float(raw: str) -> float:
    """A number of at least 0."""
    value = float(raw)
    if not value >= 0:
        raise ValueError("must not be negative")
    return value


def flag(raw: str) -> bool:
    """A yes/no value: 1/0, true/false, yes/no, on/off (an empty value is no)."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be 1/0, true/false, yes/no")


def setting(
    options: Mapping[str, Any],
    key: str,
    env: str,
    parse: Callable[[str], T],
    default: T,
    environ: Mapping[str, str] | None = None,
) -> T:
    """The option `key`'s value, else the environment variable `env`'s, else `default`, parsed and checked.

    A value that is not a string (a caller passing `once=True` directly) is
    taken as it is. An empty string counts as unset.
    """
    environ = os.environ if environ is None else environ
    raw = options.get(key)
    source = f"--{key.replace('_', '-')}"
    if raw is None:
        raw = environ.get(env)
        source = env
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    if not isinstance(raw, str):
        return raw  # type: ignore[no-any-return]
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid value {raw!r} ({exc})") from None
