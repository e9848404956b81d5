"""Settings of guests, sign-in links, alerts and email: defaults, refusals and the email check."""

from __future__ import annotations

import runpy
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from gallery.checks import check_email_backend
from photoevent import settings as project_settings

NAMES = ("GUEST_SESSION_DAYS", "ALERT_MIN_INTERVAL", "ALERT_DAYS", "EMAIL_BACKEND", "SITE_URL", "SIGN_IN_LINK_MINUTES")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def load() -> dict[str, Any]:
    return runpy.run_path(project_settings.__file__)


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    values = load()
    assert values["GUEST_SESSION_DAYS"] == 30
    assert values["ALERT_MIN_INTERVAL"] == 30
    assert values["ALERT_DAYS"] == 14
    assert values["SESAME_MAX_AGE"] == 15 * 60
    assert values["SESAME_ONE_TIME"] is True
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.parametrize(
    ("raw", "backend"),
    [
        ("smtp", "django.core.mail.backends.smtp.EmailBackend"),
        ("anymail.backends.mailgun.EmailBackend", "anymail.backends.mailgun.EmailBackend"),
    ],
)
def test_email_backend_names(clean_env: pytest.MonkeyPatch, raw: str, backend: str) -> None:
    clean_env.setenv("EMAIL_BACKEND", raw)
    assert load()["EMAIL_BACKEND"] == backend


def test_anymail_settings_come_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ANYMAIL_MAILGUN_API_KEY", "key-123")
    assert load()["ANYMAIL"]["MAILGUN_API_KEY"] == "key-123"


@pytest.mark.parametrize(
    ("name", "raw"),
    [("SITE_URL", "example.com"), ("SITE_URL", "ftp://x"), ("GUEST_SESSION_DAYS", "0"), ("ALERT_MIN_INTERVAL", "x")],
)
def test_bad_values_stop_startup(clean_env: pytest.MonkeyPatch, name: str, raw: str) -> None:
    clean_env.setenv(name, raw)
    with pytest.raises(ImproperlyConfigured, match=name):
        load()


def test_an_email_backend_that_does_not_exist_is_a_system_check_error(settings: Any) -> None:
    assert check_email_backend(None) == []
    settings.EMAIL_BACKEND = "anymail.backends.nosuchprovider.EmailBackend"
    assert [message.id for message in check_email_backend(None)] == ["gallery.E010"]
