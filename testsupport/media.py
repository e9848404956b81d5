"""Reading a media answer whatever the storage: streamed by Django, or a redirect to S3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class MediaAnswer:
    """What the client finally receives for a media URL."""

    status: int
    headers: dict[str, str]
    body: bytes


def media_answer(response: Any) -> MediaAnswer:
    """Follow an S3 presigned redirect, or read the streamed file, as a browser would."""
    if response.status_code in (301, 302) and response["Location"].startswith("http"):
        fetched = requests.get(response["Location"], timeout=30)
        return MediaAnswer(fetched.status_code, {k.lower(): v for k, v in fetched.headers.items()}, fetched.content)
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return MediaAnswer(response.status_code, {k.lower(): v for k, v in response.items()}, body)
