"""What guards the login and sign-up endpoints, besides django-axes's lockout itself.

- `lockout_response`: the answer to a locked-out login (AXES_LOCKOUT_CALLABLE):
  429 with Retry-After, JSON `{"detail"}` on the API, a page saying when to come back elsewhere.
- `SmallLoginBodyMiddleware`: refuses a body above LOGIN_MAX_BODY_BYTES to the
  login and sign-up endpoints with 413, from its Content-Length, before
  anything reads or spools it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

API_PREFIX = "/api/"
# The login and sign-up endpoints, by URL name.
LOGIN_URL_NAMES = ("login", "signup", "admin:login", "api-auth-token", "api-auth-register")


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _retry_after() -> int:
    cool_off = settings.AXES_COOLOFF_TIME
    return int(cool_off.total_seconds()) if cool_off is not None else 3600


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """The answer to a login refused by django-axes: 429, with when to try again."""
    retry_after = _retry_after()
    minutes = max(1, retry_after // 60)
    if _is_api(request):
        message = ngettext(
            "Too many failed logins, try again in %(minutes)d minute",
            "Too many failed logins, try again in %(minutes)d minutes",
            minutes,
        ) % {"minutes": minutes}
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@functools.cache
def _login_paths() -> frozenset[str]:
    # Resolved once per process: the URLconf and script prefix do not change while it runs.
    return frozenset(reverse(name) for name in LOGIN_URL_NAMES)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class SmallLoginBodyMiddleware:
    """Refuses, with 413, a request body above LOGIN_MAX_BODY_BYTES sent to a login or sign-up endpoint."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.LOGIN_MAX_BODY_BYTES
        if _content_length(request) > limit and request.path in _login_paths():
            message = _("The request is too large (%(limit)d KB at most here)") % {"limit": limit // 1024}
            if _is_api(request):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
