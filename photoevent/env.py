"""Strict readers of environment variables, for the settings.

Each helper returns the variable's value, or the default when it is unset,
and raises ImproperlyConfigured naming the variable when the value cannot be
what the setting needs: a typo in a deployment stops the start instead of
silently becoming a default. Nothing here depends on Django beyond that
exception, so code that runs before the settings (the data-folder
preparation) can use it too.
"""

from __future__ import annotations

import ipaddress
import os
import re

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
# django-ratelimit's rate syntax: a count per period, e.g. 100/m or 5/10s.
_RATE_PATTERN = re.compile(r"^\d+/\d*[smhd]$")


def env_str(name: str, default: str = "") -> str:
    """The variable as it is, or `default` when unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """1/0, true/false, yes/no or on/off, in any case; empty means false."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer within [minimum, maximum]; unset or empty gives `default`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """A number of at least `minimum`; unset or empty gives `default`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list, items stripped, empty items dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, compared in lower case."""
    value = env_str(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_rate(name: str, default: str) -> str:
    """A django-ratelimit rate such as 100/m."""
    value = env_str(name, default).strip()
    if not _RATE_PATTERN.match(value):
        raise ImproperlyConfigured(f"{name} must look like 100/m (count/period s, m, h or d), got {value!r}")
    return value


def env_networks(name: str, default: str) -> list[str]:
    """A comma-separated list of IP addresses or CIDR networks, each normalised (10.0.0.5/8 gives 10.0.0.0/8)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or CIDR networks (10.0.0.0/8), got {item!r}"
            ) from None
    return networks
