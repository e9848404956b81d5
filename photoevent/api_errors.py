"""One error shape for the whole API: {"detail": "..."} with a 4xx status."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext as _
from django_ratelimit.exceptions import Ratelimited
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from processing.services import BackendError

logger = logging.getLogger("photoevent.api")

RATE_LIMIT_RETRY_AFTER = 60
FACE_SERVICE_RETRY_AFTER = 30


def _flatten(data: Any) -> str:
    if isinstance(data, dict):
        if "detail" in data and len(data) == 1:
            return _flatten(data["detail"])
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in data.items())
    if isinstance(data, list):
        return " ".join(_flatten(item) for item in data)
    return str(data)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (which also turns Django's Http404 and PermissionDenied into 404 and 403), with one body shape."""
    if isinstance(exc, Ratelimited):
        return Response(
            {"detail": _("Too many requests, slow down and try again in a minute")},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(RATE_LIMIT_RETRY_AFTER)},
        )
    if isinstance(exc, BackendError):
        # The request was fine; the face service was not (timeout, throttling,
        # credentials). Nothing was stored, so the client can simply retry.
        logger.warning("Face service error during %s: %s", context.get("view"), exc)
        return Response(
            {"detail": _("The face service did not answer, try again in a minute")},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(FACE_SERVICE_RETRY_AFTER)},
        )
    response = drf_exception_handler(exc, context)
    if response is not None and not (isinstance(response.data, dict) and set(response.data) == {"detail"}):
        response.data = {"detail": _flatten(response.data)}
    elif response is not None:
        response.data = {"detail": str(response.data["detail"])}
    return response
