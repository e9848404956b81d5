"""Reports on face-service usage and the Rekognition cost model.

Built from the daily `FaceServiceUsage` rows that `processing.metrics` records
on the hot path. The staff API (/api/admin/aws-metrics and /costs), the admin
changelist and the monitoring page all call these same functions, so their
figures agree.

The cost model (what AWS bills, as of the Rekognition pricing page):

- **Image APIs, per call.** Every successful call of an image API is one
  billed image, whatever the number of faces in it or in the request. The
  face-search and storage APIs are Rekognition's "Group 1": IndexFaces,
  SearchFaces, SearchFacesByImage, SearchUsers, SearchUsersByImage,
  AssociateFaces and DisassociateFaces (one image per call, even for 100
  FaceIds). DetectFaces is "Group 2". Both groups cost the same per image in
  the first volume tier, so one price (AWS_PRICE_PER_IMAGE) serves both.
- **Free calls.** Collection and user management and listings are not image
  APIs: CreateCollection, DeleteCollection, ListCollections,
  DescribeCollection, ListFaces, DeleteFaces, CreateUser, DeleteUser and
  ListUsers. They are recorded (calls, errors, latency) but cost nothing.
- **Storage, per month.** Each face kept in a collection is billed as face
  metadata per month (AWS_PRICE_PER_FACE_MONTH), pro rata. Assumption: we
  count each Rekognition user vector as one more stored item at the same
  price. The pricing page lists face metadata storage only, so this is an
  upper bound by at most one item per attendee and event.
- Failed calls are not billed (recorded with `images=0`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Sum

from gallery.models import Event, Face
from processing.metrics import BUCKETS, COUNTERS, ORPHAN_SWEEP, today
from processing.models import LATENCY_BUCKETS_MS, FaceServiceUsage, RekognitionSelfieFace

# AWS's billing group of each Rekognition operation this application calls.
GROUP_1 = "group-1"
GROUP_2 = "group-2"
FREE = "free"
PRICING: dict[str, str] = {
    "IndexFaces": GROUP_1,
    "SearchFaces": GROUP_1,
    "SearchFacesByImage": GROUP_1,
    "SearchUsers": GROUP_1,
    "SearchUsersByImage": GROUP_1,
    "AssociateFaces": GROUP_1,
    "DisassociateFaces": GROUP_1,
    "DetectFaces": GROUP_2,
    "CreateCollection": FREE,
    "DeleteCollection": FREE,
    "ListCollections": FREE,
    "DescribeCollection": FREE,
    "ListFaces": FREE,
    "DeleteFaces": FREE,
    "CreateUser": FREE,
    "DeleteUser": FREE,
    "ListUsers": FREE,
}
# Calls AWS bills as one image each.
BILLED_OPERATIONS = frozenset(name for name, group in PRICING.items() if group != FREE)


def billed_images(operation: str) -> int:
    """Image units one successful call of `operation` is billed for (0 or 1)."""
    return 1 if operation in BILLED_OPERATIONS else 0


# --- Usage -------------------------------------------------------------------


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
    """Faces and user vectors we keep in each event's Rekognition collection, from our own records.

    Users: one per attendee whose selfie was indexed into the collection
    (the selfie face is the user's first associated face).
    """
    prefix = settings.AWS_REKOGNITION_COLLECTION_PREFIX
    photo_faces = dict(
        Face.objects.exclude(external_id="").values("event_id").annotate(n=Count("id")).values_list("event_id", "n")
    )
    indexed_selfies = RekognitionSelfieFace.objects.exclude(face_id="").values("event_id")
    selfie_faces = dict(indexed_selfies.annotate(n=Count("id")).values_list("event_id", "n"))
    users = dict(indexed_selfies.annotate(n=Count("selfie__user_id", distinct=True)).values_list("event_id", "n"))
    names = dict(Event.objects.filter(pk__in=set(photo_faces) | set(selfie_faces)).values_list("pk", "name"))
    return [
        {
            "event": event_id,
            "event_name": names.get(event_id, ""),
            "collection": f"{prefix}{event_id}",
            "photo_faces": photo_faces.get(event_id, 0),
            "selfie_faces": selfie_faces.get(event_id, 0),
            "faces": photo_faces.get(event_id, 0) + selfie_faces.get(event_id, 0),
            "users": users.get(event_id, 0),
        }
        for event_id in sorted(set(photo_faces) | set(selfie_faces))
    ]


def _windows() -> dict[str, date]:
    now = today()
    return {"today": now, "7d": now - timedelta(days=6), "30d": now - timedelta(days=29)}


def usage_summary() -> dict[str, Any]:
    """Calls, errors, throttles and latency per operation for today, 7 and 30 days.

    Also the faces we keep at AWS per collection, and the orphan faces the
    sweep deleted (faces at AWS that no row of ours refers to) per window.
    """
    windows = _windows()
    collections = faces_stored()
    sweep = FaceServiceUsage.objects.filter(backend="rekognition", operation=ORPHAN_SWEEP)
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
        "users_stored": sum(c["users"] for c in collections),
        "orphan_faces_deleted": {
            name: int(sweep.filter(day__gte=since).aggregate(n=Sum("faces_deleted"))["n"] or 0)
            for name, since in windows.items()
        },
    }


# --- Costs -------------------------------------------------------------------


def _money(value: float) -> float:
    return round(value, 6)


def cost_summary(days: int = 30) -> dict[str, Any]:
    """Estimated Rekognition cost per day, month, event and operation from the recorded calls.

    Image APIs cost AWS_PRICE_PER_IMAGE per billed image unit; stored faces
    and user vectors cost AWS_PRICE_PER_FACE_MONTH per item and month,
    estimated from what we keep now (AWS bills the months actually stored,
    pro rata). See the module docstring for which operations are billed.
    """
    price_image = settings.AWS_PRICE_PER_IMAGE
    price_face_month = settings.AWS_PRICE_PER_FACE_MONTH
    aws = FaceServiceUsage.objects.filter(backend="rekognition")
    since = today() - timedelta(days=days - 1)

    by_day = [
        {"day": row["day"].isoformat(), "images": row["n"], "image_cost": _money(row["n"] * price_image)}
        for row in aws.filter(day__gte=since).values("day").annotate(n=Sum("images")).order_by("day")
    ]
    by_operation = [
        {
            "operation": row["operation"],
            "pricing": PRICING.get(row["operation"], FREE),
            "calls": int(row["calls"] or 0),
            "images": int(row["n"] or 0),
            "image_cost": _money(int(row["n"] or 0) * price_image),
        }
        for row in aws.filter(day__gte=since)
        .exclude(operation=ORPHAN_SWEEP)
        .values("operation")
        .annotate(n=Sum("images"), calls=Sum("calls"))
        .order_by("operation")
    ]
    months: dict[str, int] = {}
    for row in aws.values("day").annotate(n=Sum("images")):
        month = row["day"].strftime("%Y-%m")
        months[month] = months.get(month, 0) + int(row["n"] or 0)
    collections = {c["event"]: c for c in faces_stored()}
    current_month = today().strftime("%Y-%m")
    faces_total = sum(c["faces"] for c in collections.values())
    users_total = sum(c["users"] for c in collections.values())
    stored_total = faces_total + users_total
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
    event_images = dict(aws.values("event_id").annotate(n=Sum("images")).values_list("event_id", "n"))
    event_ids = set(event_images) | set(collections)
    names = dict(Event.objects.filter(pk__in=event_ids).values_list("pk", "name"))
    by_event = []
    for event_id in sorted(event_ids):
        images = int(event_images.get(event_id, 0) or 0)
        faces = collections.get(event_id, {}).get("faces", 0)
        users = collections.get(event_id, {}).get("users", 0)
        by_event.append(
            {
                "event": event_id or None,
                "event_name": names.get(event_id, "" if event_id else "(no event)"),
                "images": images,
                "image_cost": _money(images * price_image),
                "faces_stored": faces,
                "users_stored": users,
                "storage_cost_per_month": _money((faces + users) * price_face_month),
            }
        )
    total_images = sum(int(n or 0) for n in event_images.values())
    return {
        "currency": "USD",
        "prices": {"per_image": price_image, "per_face_month": price_face_month},
        "billed_operations": sorted(BILLED_OPERATIONS),
        "days": days,
        "by_day": by_day,
        "by_operation": by_operation,
        "by_month": by_month,
        "by_event": by_event,
        "total": {
            "images": total_images,
            "image_cost": _money(total_images * price_image),
            "faces_stored": faces_total,
            "users_stored": users_total,
            "storage_cost_per_month": _money(stored_total * price_face_month),
        },
    }
