"""Error pages: a rate-limited browser gets a friendly 429 page, not a bare 403."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.defaults import permission_denied as default_permission_denied
from django_ratelimit.exceptions import Ratelimited

from photoevent.api_errors import RATE_LIMIT_RETRY_AFTER


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 403 page: a friendly 429 for rate limits, Django's page for refusals."""
    if isinstance(exception, Ratelimited):
        response = render(request, "ratelimited.html", status=429)
        response["Retry-After"] = str(RATE_LIMIT_RETRY_AFTER)
        return response
    return default_permission_denied(request, exception)
