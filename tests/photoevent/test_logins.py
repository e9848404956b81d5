"""Every login is throttled (django-axes) per address and per username, the admin's included; login bodies are small."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.django_db

PASSWORD = "Pass-word-1234"
LIMIT = 10  # settings.AXES_FAILURE_LIMIT's default, LOGIN_FAILURE_LIMIT


@pytest.fixture(autouse=True)
def no_address_limit(settings):
    # The per-address rate limit of django-ratelimit would answer 429 first.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "10000/m"}


def api_login(client, username, password, address="10.0.0.1"):
    return client.post(
        "/api/auth/token", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def test_the_right_password_is_refused_after_too_many_wrong_ones(anon_client, attendee):
    statuses = [api_login(anon_client, "attendee", "wrong").status_code for _ in range(LIMIT)]
    assert set(statuses[: LIMIT - 1]) == {400}
    locked = api_login(anon_client, "attendee", PASSWORD)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert "failed logins" in locked.json()["detail"]


def test_a_username_is_locked_whatever_the_address(anon_client, attendee):
    for n in range(LIMIT):
        api_login(anon_client, "attendee", "wrong", address=f"10.0.1.{n}")
    assert api_login(anon_client, "attendee", PASSWORD, address="10.0.2.1").status_code == 429


def test_an_address_is_locked_whatever_the_username(anon_client, attendee):
    for n in range(LIMIT):
        api_login(anon_client, f"someone-{n}", "wrong", address="10.0.3.1")
    assert api_login(anon_client, "attendee", PASSWORD, address="10.0.3.1").status_code == 429
    assert api_login(anon_client, "attendee", PASSWORD, address="10.0.3.2").status_code == 200


def test_the_login_page_is_locked_too(client, attendee):
    statuses = [client.post("/login/", {"username": "attendee", "password": "wrong"}).status_code for _ in range(LIMIT)]
    assert statuses == [200] * (LIMIT - 1) + [429], "the failure that reaches the limit is already refused"
    response = client.post("/login/", {"username": "attendee", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert b"15 minutes" in response.content


def test_a_huge_body_to_the_login_page_is_refused_before_it_is_read(client):
    # The test client's input holds only these bytes: reading the announced
    # 150 MB would fail, so a 413 shows that nothing read the body.
    response = client.generic(
        "POST",
        "/login/",
        b"username=x&password=y",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(150 * 1024 * 1024),
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/signup/", "/admin/login/", "/api/auth/register"])
def test_every_login_and_signup_endpoint_caps_its_body(client, path):
    response = client.post(path, {"username": "x", "password": "y" * 20_000})
    assert response.status_code == 413


@pytest.mark.slow
def test_the_admin_login_of_a_live_server_locks_out_a_burst_of_wrong_passwords(start_server, staff):
    server = start_server(LOGIN_FAILURE_LIMIT="5", RATE_LIMIT_AUTH="10000/m")
    session = requests.Session()
    url = f"{server.url}/admin/login/"

    def attempt(password: str) -> requests.Response:
        page = session.get(url, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        data = {"username": "staff", "password": password, "csrfmiddlewaretoken": token.group(1), "next": "/admin/"}
        return session.post(url, data=data, headers={"Referer": url}, allow_redirects=False, timeout=10)

    wrong = [attempt("wrong").status_code for _ in range(5)]
    assert wrong == [200] * 4 + [429]
    assert attempt(PASSWORD).status_code == 429, "the right password is refused during the lockout"


@pytest.mark.slow
def test_a_live_server_answers_413_to_a_150_mb_login_body_before_receiving_it(start_server, settings):
    server = start_server()
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {150 * 1024 * 1024}\r\n\r\n".encode()
            + b"username=x&password=y"
        )
        status_line = sock.recv(200).split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"413"
    assert not list(Path(settings.FILE_UPLOAD_TEMP_DIR).iterdir()), "nothing was spooled"
