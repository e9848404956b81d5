"""The address of the client behind a request: the one key of every per-address rate limit.

Without a proxy (`BEHIND_PROXY=false`, the default) it is the socket address,
REMOTE_ADDR; forwarding headers are ignored, since any client can send them.

Behind a proxy (`BEHIND_PROXY=true`) the hops are the addresses of
X-Forwarded-For followed by the socket address. Each trusted proxy
(`TRUSTED_PROXIES`: addresses and CIDR networks) appends the address it received
the request from, so the client is the right-most hop that is not a trusted
proxy: everything to its left was written by the client itself and is ignored.
A spoofed left-most value therefore changes nothing, and a malformed header is
read from the right as far as it is well formed, never raising.
django-ipware's parser (python-ipware) reads each hop: ports, brackets,
IPv4-mapped IPv6 and quoted values.

django-ratelimit reaches this function through RATELIMIT_IP_META_KEY, so every
`key="ip"` and `key="user_or_ip"` limit uses it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.http import HttpRequest
from python_ipware.modern.parsers import IpAddressType, IpNetworkType, parse_ip

# The key of a request whose address cannot be known (REMOTE_ADDR empty, as on a
# Unix socket without a proxy header): such requests share one rate-limit bucket.
UNKNOWN_CLIENT = "0.0.0.0"
# The header proxies write, as Django's request.META names it.
FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"
# Every hop of X-Forwarded-For beyond this many is ignored: no real chain has
# that many proxies, and it bounds the work a crafted header can cause.
MAX_HOPS = 32


def parse_trusted_proxies(values: Iterable[str]) -> tuple[IpNetworkType, ...]:
    """The networks of `values` (addresses or CIDRs, host bits allowed); ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or a CIDR network") from None
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _trusted_networks(values: tuple[str, ...]) -> tuple[IpNetworkType, ...]:
    return parse_trusted_proxies(values)


def _is_trusted(address: IpAddressType, networks: tuple[IpNetworkType, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address for `request`, as a plain IP string; never raises on a bad header.

    No proxy: the socket address. Behind a proxy: the right-most hop of
    X-Forwarded-For + socket address that is not in TRUSTED_PROXIES; when every
    hop is trusted, or a hop is malformed before an untrusted one is reached,
    the left-most trusted hop reached (a proxy's address, never a value the
    client wrote). `UNKNOWN_CLIENT` when there is no usable address at all.
    """
    remote_raw = request.META.get("REMOTE_ADDR")
    remote = parse_ip(remote_raw) if isinstance(remote_raw, str) else None
    if not settings.BEHIND_PROXY:
        return _plain(remote) if remote is not None else UNKNOWN_CLIENT
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    if remote is not None and not _is_trusted(remote, networks):
        # Not from a trusted proxy (a direct connection): its headers are the client's own.
        return _plain(remote)
    # A socket address that is not an IP (a Unix socket) can only be a local proxy's.
    header = request.META.get(FORWARDED_FOR)
    tokens = header.split(",")[-MAX_HOPS:] if isinstance(header, str) else []
    client = remote
    for token in reversed(tokens):
        hop = parse_ip(token)
        if hop is None:
            # A malformed hop ends the walk: the values left of it are not
            # reached, whatever they say.
            break
        client = hop
        if not _is_trusted(hop, networks):
            break
    return _plain(client) if client is not None else UNKNOWN_CLIENT


def _plain(address: IpAddressType) -> str:
    # Without an IPv6 zone (fe80::1%eth0): django-ratelimit masks the address
    # into a network, which cannot carry one.
    return str(address).partition("%")[0]


def check_proxy_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check of BEHIND_PROXY and TRUSTED_PROXIES (ids photoevent.E101, E102, W101)."""
    values = getattr(settings, "TRUSTED_PROXIES", [])
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        return [Error("TRUSTED_PROXIES must be a list of addresses or CIDR networks.", id="photoevent.E101")]
    try:
        networks = parse_trusted_proxies(values)
    except ValueError as exc:
        return [
            Error(
                f"TRUSTED_PROXIES: {exc}.",
                hint="List the reverse proxies' addresses or networks, e.g. 127.0.0.1,10.0.0.0/8.",
                id="photoevent.E101",
            )
        ]
    messages: list[CheckMessage] = []
    everything = [str(n) for n in networks if n.prefixlen == 0]
    if everything:
        messages.append(
            Error(
                f"TRUSTED_PROXIES trusts every address ({', '.join(everything)}): any client could then "
                "choose the address its rate limits count against.",
                hint="List only the reverse proxies' addresses or networks.",
                id="photoevent.E102",
            )
        )
    if settings.BEHIND_PROXY and not networks:
        messages.append(
            Warning(
                "BEHIND_PROXY is on but TRUSTED_PROXIES is empty: every request then counts as coming "
                "from the proxy itself, and all clients share one rate limit.",
                hint="Set TRUSTED_PROXIES to the reverse proxy's address.",
                id="photoevent.W101",
            )
        )
    return messages
