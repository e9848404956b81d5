"""The client address behind every per-address rate limit (photoevent.client_ip)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.utils.module_loading import import_string

from photoevent.client_ip import UNKNOWN_CLIENT, check_proxy_settings, client_ip
from photoevent.env import env_networks
from testsupport.processes import Proc
from testsupport.users import create_user

PASSWORD = "Pass-word-1234"


def request_from(remote: str | None, forwarded: str | None = None) -> Any:
    request = RequestFactory().get("/")
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    if remote is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote
    return request


@pytest.fixture
def behind_proxy(settings: Any) -> Any:
    settings.BEHIND_PROXY = True
    settings.TRUSTED_PROXIES = ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]
    return settings


def test_without_proxy_headers_are_ignored(settings: Any) -> None:
    settings.BEHIND_PROXY = False
    assert client_ip(request_from("203.0.113.9", "6.6.6.1")) == "203.0.113.9"


def test_without_proxy_an_empty_socket_address_is_the_unknown_client(settings: Any) -> None:
    settings.BEHIND_PROXY = False
    assert client_ip(request_from("")) == UNKNOWN_CLIENT
    assert client_ip(request_from(None)) == UNKNOWN_CLIENT


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        # The proxy appended the client; the left part is whatever the client sent.
        ("198.51.100.7", "198.51.100.7"),
        ("6.6.6.1, 198.51.100.7", "198.51.100.7"),
        ("spoofed, 198.51.100.7", "198.51.100.7"),
        # A trusted hop (a second proxy) is skipped.
        ("198.51.100.7, 10.0.0.1", "198.51.100.7"),
        ("6.6.6.1, 198.51.100.7, 10.1.2.3, 10.0.0.1", "198.51.100.7"),
        # Ports, brackets and IPv4-mapped IPv6 are read as the address.
        ("198.51.100.7:51234", "198.51.100.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        # Every hop trusted: the left-most trusted hop reached.
        ("10.0.0.2, 10.0.0.1", "10.0.0.2"),
        # A malformed hop ends the walk; nothing left of it is believed.
        ("6.6.6.1, nonsense", "127.0.0.1"),
        ("6.6.6.1, not-an-ip, 10.0.0.1", "10.0.0.1"),
        ("[::1", "127.0.0.1"),
        (",,,", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("\x00\xff", "127.0.0.1"),
        ("9" * 5000, "127.0.0.1"),
    ],
)
def test_behind_proxy_the_client_is_the_right_most_untrusted_hop(
    behind_proxy: Any, forwarded: str, expected: str
) -> None:
    assert client_ip(request_from("127.0.0.1", forwarded)) == expected


def test_behind_proxy_no_header_gives_the_socket_address(behind_proxy: Any) -> None:
    assert client_ip(request_from("127.0.0.1")) == "127.0.0.1"


def test_a_direct_connection_from_an_untrusted_address_is_not_believed(behind_proxy: Any) -> None:
    # Someone who reaches the server without the proxy chooses nothing by sending the header.
    assert client_ip(request_from("203.0.113.50", "198.51.100.7")) == "203.0.113.50"


def test_a_very_long_chain_is_read_from_the_right_only(behind_proxy: Any) -> None:
    forwarded = ", ".join(["10.0.0.9"] * 10_000 + ["198.51.100.7"])
    assert client_ip(request_from("127.0.0.1", forwarded)) == "198.51.100.7"


def test_django_ratelimit_keys_on_client_ip(settings: Any) -> None:
    assert import_string(settings.RATELIMIT_IP_META_KEY) is client_ip


def test_trusted_proxies_env_is_parsed_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.5/8, ::1 ,192.0.2.1")
    assert env_networks("TRUSTED_PROXIES", "") == ["10.0.0.0/8", "::1/128", "192.0.2.1/32"]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.example.com")
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        env_networks("TRUSTED_PROXIES", "")


def check_ids(settings: Any) -> list[str]:
    return [str(message.id) for message in check_proxy_settings()]


def test_check_accepts_the_defaults(settings: Any) -> None:
    assert check_ids(settings) == []


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        (["10.0.0.0/33"], ["photoevent.E101"]),
        (["proxy.example.com"], ["photoevent.E101"]),
        ("10.0.0.0/8", ["photoevent.E101"]),
        (["0.0.0.0/0"], ["photoevent.E102"]),
        (["::/0", "10.0.0.0/8"], ["photoevent.E102"]),
        ([], ["photoevent.W101"]),
    ],
)
def test_check_refuses_nonsense(settings: Any, trusted: Any, expected: list[str]) -> None:
    settings.BEHIND_PROXY = True
    settings.TRUSTED_PROXIES = trusted
    assert check_ids(settings) == expected


def test_the_check_is_registered(settings: Any) -> None:
    from django.core import checks

    settings.BEHIND_PROXY = True
    settings.TRUSTED_PROXIES = ["0.0.0.0/0"]
    assert "photoevent.E102" in [m.id for m in checks.run_checks(tags=[checks.Tags.security])]


# --- Against a real server ---------------------------------------------------


def live_token(server: Proc, settings: Any, username: str) -> str:
    """A new user's API token, asked of the server as a client would."""
    # With the hashers the server uses (the tests' fast one is theirs only).
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    create_user(username, password=PASSWORD)
    response = requests.post(
        f"{server.url}/api/auth/token", json={"username": username, "password": PASSWORD}, timeout=60
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def test_proxy_headers_on_a_live_server_never_500_and_cannot_evade_a_limit(
    start_server: Callable[..., Proc], settings: Any
) -> None:
    server = start_server(
        BEHIND_PROXY="true", RATE_LIMIT_SELFIE_IP="3/m", RATE_LIMIT_SELFIE="1000/m", RATE_LIMIT_AUTH="1000/m"
    )
    token = live_token(server, settings, "guest")
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"

    def selfie(forwarded: str | None) -> int:
        headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
        # No file: a 400, after the limits have counted the attempt.
        return session.post(f"{server.url}/api/me/selfie", headers=headers, timeout=30).status_code

    # A new spoofed left-most value on every request: the proxy-appended hop decides.
    statuses = [selfie(f"{uuid.uuid4()}, 6.6.{n}.1, 198.51.100.7") for n in range(4)]
    assert statuses == [400, 400, 400, 429], server.log[-3000:]
    # Another client behind the same proxy has its own count.
    assert selfie("6.6.6.6, 198.51.100.8") == 400
    # What the attacker sent, and no header at all: never a 500.
    for forwarded in ["6.6.6.1, 10.0.0.1", None, "garbage", "[::1", ",", "1.2.3.4:99999", "9" * 4000]:
        status = selfie(forwarded)
        assert status in (400, 429), (forwarded, status, server.log[-3000:])
    assert "Traceback" not in server.log
