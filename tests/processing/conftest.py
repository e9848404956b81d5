"""Fixtures of the processing tests that talk to Rekognition through botocore's Stubber."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from processing import backends
from processing.backends import rekognition
from tests.processing.aws_stubs import RekognitionStub


@pytest.fixture
def fast_aws_settings(settings: Any, tmp_path: Any) -> None:
    """No backoff sleeps, locks under the test's folder, the one-machine limiter."""
    settings.AWS_RETRY_BASE_DELAY = 0.0
    settings.FACE_LIMIT_LOCK_DIR = tmp_path / "locks"
    settings.REDIS_URL = ""


@pytest.fixture
def aws(settings: Any, monkeypatch: pytest.MonkeyPatch, fast_aws_settings: None) -> Iterator[RekognitionStub]:
    """The Rekognition backend as FACE_BACKEND, answering from a Stubber instead of AWS."""
    stub = RekognitionStub(settings, monkeypatch)
    # The process-wide client and the FACE_BACKEND choice, as in production.
    monkeypatch.setattr(rekognition, "_client", stub.client)
    monkeypatch.setattr(rekognition, "_client_pid", os.getpid())
    settings.FACE_BACKEND = "rekognition"
    backends.get_backend.cache_clear()
    stub.backend = backends.get_backend()  # type: ignore[assignment]
    yield stub
    backends.get_backend.cache_clear()
