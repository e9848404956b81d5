"""Recording and aggregating face-service calls, and estimating what they cost.

`face_call()` is the single gate for a call to a face service: it takes a slot
from the concurrency limiter, times the call and adds it to the day's
`FaceServiceUsage` row of its event, backend and operation. The summaries feed
the staff API and the admin page.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Sum
from django.db.models.functions import Greatest
from django.utils import timezone

from processing.limits import SlotTimeout, get_limiter
from processing.models import LATENCY_BUCKETS_MS, FaceServiceUsage, RekognitionSelfieFace, bucket_field

logger = logging.getLogger("processing.metrics")

# Calls AWS bills per image (Group 1 and 2 image APIs); the rest are free.
BILLED_OPERATIONS = frozenset({"IndexFaces", "SearchFaces", "SearchFacesByImage", "DetectFaces"})
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


# --- Summaries -------------------------------------------------------------


def _percentile_from_buckets(buckets: list[int], max_ms: int, fraction: float) -> float | None:
    """The upper bound of the bucket holding the `fraction` quantile (capped at the max seen)."""
    total = sum(buckets)
    if not total:
        return None
    rank = fraction * total
    cumulative = 0
    for index, count in enumerate(buckets):
        cumulative += count
        if cumulative >= rank and count:
            bound = LATENCY_BUCKETS_MS[index] if index < len(LATENCY_BUCKETS_MS) else max_ms
            return float(min(bound, max_ms))
    return float(max_ms)


def _operation_rows(since: date) -> list[dict[str, Any]]:
    sums = {name: Sum(name) for name in (*COUNTERS, *BUCKETS)}
    # Plain dicts: the annotation names are built from COUNTERS and BUCKETS.
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in FaceServiceUsage.objects.filter(day__gte=since)
        .values("backend", "operation")
        .annotate(**sums, max_ms=Max("latency_ms_max"))
        .order_by("backend", "operation")
    ]
    result = []
    for row in rows:
        max_ms = int(row["max_ms"] or 0)
        buckets = [int(row[name] or 0) for name in BUCKETS]
        calls = int(row["calls"] or 0)
        result.append(
            {
                "backend": row["backend"],
                "operation": row["operation"],
                **{name: int(row[name] or 0) for name in COUNTERS if name not in ("latency_ms_sum", "wait_ms_sum")},
                "latency_ms": {
                    "avg": round(int(row["latency_ms_sum"] or 0) / calls, 1) if calls else None,
                    "p50": _percentile_from_buckets(buckets, max_ms, 0.5),
                    "p95": _percentile_from_buckets(buckets, max_ms, 0.95),
                    "max": max_ms if calls else None,
                },
                "avg_wait_ms": round(int(row["wait_ms_sum"] or 0) / calls, 1) if calls else None,
            }
        )
    return result


def faces_stored() -> list[dict[str, Any]]:
    """Faces we keep in each event's Rekognition collection, from our own records."""
    from gallery.models import Event, Face

    prefix = settings.AWS_REKOGNITION_COLLECTION_PREFIX
    photo_faces = dict(
        Face.objects.exclude(external_id="").values("event_id").annotate(n=Count("id")).values_list("event_id", "n")
    )
    selfie_faces = dict(
        RekognitionSelfieFace.objects.exclude(face_id="")
        .values("event_id")
        .annotate(n=Count("id"))
        .values_list("event_id", "n")
    )
    names = dict(Event.objects.filter(pk__in=set(photo_faces) | set(selfie_faces)).values_list("pk", "name"))
    return [
        {
            "event": event_id,
            "event_name": names.get(event_id, ""),
            "collection": f"{prefix}{event_id}",
            "photo_faces": photo_faces.get(event_id, 0),
            "selfie_faces": selfie_faces.get(event_id, 0),
            "faces": photo_faces.get(event_id, 0) + selfie_faces.get(event_id, 0),
        }
        for event_id in sorted(set(photo_faces) | set(selfie_faces))
    ]


def usage_summary() -> dict[str, Any]:
    """Calls, errors, throttles and latency per operation for today, 7 and 30 days."""
    now = today()
    windows = {"today": now, "7d": now - timedelta(days=6), "30d": now - timedelta(days=29)}
    collections = faces_stored()
    return {
        "backend": settings.FACE_BACKEND,
        "concurrency": {
            "rekognition_limit": settings.AWS_CONCURRENT_REQUESTS,
            "local_limit": settings.LOCAL_FACE_CONCURRENCY,
            "shared_via": "redis" if settings.REDIS_URL else "lock files",
        },
        "windows": {
            name: {"since": since.isoformat(), "operations": _operation_rows(since)} for name, since in windows.items()
        },
        "collections": collections,
        "faces_stored": sum(c["faces"] for c in collections),
    }


def _money(value: float) -> float:
    return round(value, 6)


def cost_summary(days: int = 30) -> dict[str, Any]:
    """Estimated Rekognition cost per day, month and event from the recorded calls.

    Image APIs cost AWS_PRICE_PER_IMAGE per billed image unit; stored faces
    cost AWS_PRICE_PER_FACE_MONTH per face and month, estimated from the faces
    we keep now (AWS bills the face-months actually stored, pro rata).
    """
    price_image = settings.AWS_PRICE_PER_IMAGE
    price_face_month = settings.AWS_PRICE_PER_FACE_MONTH
    aws = FaceServiceUsage.objects.filter(backend="rekognition")
    since = today() - timedelta(days=days - 1)

    by_day = [
        {"day": row["day"].isoformat(), "images": row["n"], "image_cost": _money(row["n"] * price_image)}
        for row in aws.filter(day__gte=since).values("day").annotate(n=Sum("images")).order_by("day")
    ]
    months: dict[str, int] = {}
    for row in aws.values("day").annotate(n=Sum("images")):
        month = row["day"].strftime("%Y-%m")
        months[month] = months.get(month, 0) + int(row["n"] or 0)
    collections = {c["event"]: c for c in faces_stored()}
    current_month = today().strftime("%Y-%m")
    stored_total = sum(c["faces"] for c in collections.values())
    by_month = [
        {
            "month": month,
            "images": n,
            "image_cost": _money(n * price_image),
            # Only the running month gets a storage estimate: we know today's faces, not last month's.
            "storage_cost_estimate": _money(stored_total * price_face_month) if month == current_month else None,
        }
        for month, n in sorted(months.items())
    ]
    from gallery.models import Event

    event_images = dict(aws.values("event_id").annotate(n=Sum("images")).values_list("event_id", "n"))
    event_ids = set(event_images) | set(collections)
    names = dict(Event.objects.filter(pk__in=event_ids).values_list("pk", "name"))
    by_event = []
    for event_id in sorted(event_ids):
        images = int(event_images.get(event_id, 0) or 0)
        faces = collections.get(event_id, {}).get("faces", 0)
        by_event.append(
            {
                "event": event_id or None,
                "event_name": names.get(event_id, "" if event_id else "(no event)"),
                "images": images,
                "image_cost": _money(images * price_image),
                "faces_stored": faces,
                "storage_cost_per_month": _money(faces * price_face_month),
            }
        )
    total_images = sum(int(n or 0) for n in event_images.values())
    return {
        "currency": "USD",
        "prices": {"per_image": price_image, "per_face_month": price_face_month},
        "days": days,
        "by_day": by_day,
        "by_month": by_month,
        "by_event": by_event,
        "total": {
            "images": total_images,
            "image_cost": _money(total_images * price_image),
            "faces_stored": stored_total,
            "storage_cost_per_month": _money(stored_total * price_face_month),
        },
    }
