"""One error shape for the whole API: {"detail": "..."} with a 4xx status.

`exception_handler` is DRF's handler for errors raised in API views; the
`bad_request` and `not_found` handlers (photoevent.urls' handler400 and
handler404) give the same shape to API errors Django answers itself, such as a
body refused while it is read (`RequestDataTooBig`, `TooManyFilesSent`,
`TooManyFieldsSent`) or an unknown /api/ address.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
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


API_PREFIX = "/api/"


def refused_body(exc: Exception) -> tuple[str, int] | None:
    """The message and status for a request body Django refused while reading it; None for other errors."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        return _("The request body is too large (%(limit)d MB at most outside files)") % {"limit": limit}, 413
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return _("Too many files in one request (%(limit)d at most)") % {"limit": limit}, 400
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return _("Too many fields in one request (%(limit)d at most)") % {"limit": limit}, 400
    if isinstance(exc, SuspiciousOperation):
        return _("The request could not be read"), 400
    return None


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 handler: JSON on the API (413 for a body too large), Django's page elsewhere."""
    refused = refused_body(exception)
    if not _is_api(request) or refused is None:
        return defaults.bad_request(request, exception)
    message, status_code = refused
    return JsonResponse({"detail": message}, status=status_code)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 handler: JSON for an unknown /api/ address, the site's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": _("Not found")}, status=404)
    return defaults.page_not_found(request, exception)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (which also turns Django's Http404 and PermissionDenied into 404 and 403), with one body shape."""
    refused = refused_body(exc)
    if refused is not None:
        message, status_code = refused
        return Response({"detail": message}, status=status_code)
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
