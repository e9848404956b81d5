"""Recording face-service calls on the hot path.

`face_call()` is the single gate for a call to a face service: it takes a slot
from the concurrency limiter, times the call and adds it to the day's
`FaceServiceUsage` row of its event, backend and operation. The reports built
from these rows (usage, latency percentiles, costs) live in `processing.costs`.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from processing.limits import SlotTimeout, get_limiter
from processing.models import LATENCY_BUCKETS_MS, FaceServiceUsage, bucket_field

logger = logging.getLogger("processing.metrics")

# The operation name under which the orphan sweep records the faces it deleted
# (one row per collection and day; not an AWS operation, so never billed).
ORPHAN_SWEEP = "SweepOrphanFaces"
COUNTERS = (
    "calls",
    "errors",
    "throttles",
    "slot_timeouts",
    "retries",
    "images",
    "faces_indexed",
    "faces_searched",
    "faces_matched",
    "faces_deleted",
    "latency_ms_sum",
    "wait_ms_sum",
)
BUCKETS = tuple(bucket_field(i) for i in range(len(LATENCY_BUCKETS_MS) + 1))


@dataclass
class CallRecord:
    """What the caller learns about one call; filled in inside `face_call`."""

    images: int = 0
    faces_indexed: int = 0
    faces_searched: int = 0
    faces_matched: int = 0
    faces_deleted: int = 0
    retries: int = 0
    throttled: bool = False
    # Set by the caller for an error it expects and handles (e.g. "already exists").
    expected_error: bool = False


def today() -> date:
    # AWS bills by UTC day; timezone.now() is UTC with USE_TZ.
    return timezone.now().date()


def record_call(
    backend: str,
    operation: str,
    event_id: int | None,
    *,
    latency_ms: float = 0.0,
    wait_ms: float = 0.0,
    errored: bool = False,
    throttled: bool = False,
    slot_timeout: bool = False,
    images: int = 0,
    faces_indexed: int = 0,
    faces_searched: int = 0,
    faces_matched: int = 0,
    faces_deleted: int = 0,
    retries: int = 0,
    day: date | None = None,
) -> None:
    """Add one call to its daily aggregate row. Never raises: metrics must not fail a job."""
    latency = max(0, round(latency_ms))
    values = {
        "calls": 0 if slot_timeout else 1,
        "errors": int(errored),
        "throttles": int(throttled),
        "slot_timeouts": int(slot_timeout),
        "retries": retries,
        # AWS does not bill failed calls.
        "images": 0 if errored else images,
        "faces_indexed": faces_indexed,
        "faces_searched": faces_searched,
        "faces_matched": faces_matched,
        "faces_deleted": faces_deleted,
        "latency_ms_sum": 0 if slot_timeout else latency,
        "wait_ms_sum": max(0, round(wait_ms)),
    }
    if not slot_timeout:
        values[BUCKETS[bisect.bisect_left(LATENCY_BUCKETS_MS, latency)]] = 1
    key = {"day": day or today(), "event_id": event_id or 0, "backend": backend, "operation": operation}
    increments: dict[str, Any] = {name: F(name) + value for name, value in values.items() if value}
    increments["latency_ms_max"] = Greatest(F("latency_ms_max"), latency)
    try:
        # One short transaction (IMMEDIATE on SQLite, so no lock-upgrade
        # deadlock); a savepoint when the caller is already in one, so that a
        # failure here leaves the caller's transaction usable.
        with transaction.atomic():
            if FaceServiceUsage.objects.filter(**key).update(**increments):
                return
            try:
                with transaction.atomic():
                    FaceServiceUsage.objects.create(**key, **values, latency_ms_max=latency)
            except IntegrityError:
                # Another process created the row between our UPDATE and INSERT.
                FaceServiceUsage.objects.filter(**key).update(**increments)
    except Exception:  # metrics must never fail the call they describe (logged with exc_info)
        logger.warning("Could not record a %s.%s call", backend, operation, exc_info=True)


@contextmanager
def face_call(backend: str, operation: str, event_id: int | None, *, images: int = 0) -> Iterator[CallRecord]:
    """Hold a concurrency slot for one face-service call and record it.

    The block makes exactly one call. An exception out of the block records an
    error (and a throttle if the caller set `record.throttled`), unless the
    caller marked it `expected_error`.
    """
    record = CallRecord(images=images)
    waited = time.monotonic()
    try:
        slot = get_limiter(backend).slot()
        slot.__enter__()
    except SlotTimeout:
        record_call(
            backend,
            operation,
            event_id,
            wait_ms=(time.monotonic() - waited) * 1000,
            slot_timeout=True,
            throttled=True,
        )
        raise
    started = time.monotonic()
    wait_ms = (started - waited) * 1000
    errored = False
    try:
        yield record
    except BaseException:
        errored = not record.expected_error
        raise
    finally:
        latency_ms = (time.monotonic() - started) * 1000
        slot.__exit__(None, None, None)
        record_call(
            backend,
            operation,
            event_id,
            latency_ms=latency_ms,
            wait_ms=wait_ms,
            errored=errored,
            throttled=record.throttled,
            images=0 if record.expected_error else record.images,
            faces_indexed=record.faces_indexed,
            faces_searched=record.faces_searched,
            faces_matched=record.faces_matched,
            faces_deleted=record.faces_deleted,
            retries=record.retries,
        )
