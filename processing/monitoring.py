"""Queue and service figures for staff: one function feeds the API and the admin page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_q.status import Stat

from gallery.caching import cache_stats
from gallery.models import Photo, PhotoStatus


def _percentile(values: list[int], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return float(ordered[index])


def cluster_workers() -> list[dict[str, Any]]:
    clusters = []
    for stat in Stat.get_all():
        clusters.append(
            {
                "cluster_id": str(stat.cluster_id),
                "host": stat.host,
                "status": stat.status,
                "workers": len(stat.workers),
                "uptime_s": round(stat.uptime(), 1),
            }
        )
    return clusters


def queue_stats() -> dict[str, Any]:
    now = timezone.now()
    counts = dict(Photo.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    by_status = {s.value: counts.get(s.value, 0) for s in PhotoStatus}
    waiting = by_status[PhotoStatus.QUEUED] + by_status[PhotoStatus.PROCESSING]
    oldest = (
        Photo.objects.filter(status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING])
        .order_by("enqueued_at")
        .values_list("enqueued_at", flat=True)
        .first()
    )
    done_last_hour = Photo.objects.filter(status=PhotoStatus.DONE, finished_at__gte=now - timedelta(hours=1))
    done_5 = done_last_hour.filter(finished_at__gte=now - timedelta(minutes=5)).count()
    durations = [
        ms
        for ms in done_last_hour.order_by("-finished_at").values_list("processing_ms", flat=True)[:1000]
        if ms is not None
    ]
    clusters = cluster_workers()
    return {
        "counts": by_status,
        "waiting": waiting,
        "max_size": settings.PHOTO_QUEUE_MAX_SIZE,
        "oldest_waiting_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "photos_per_minute": {"last_5_min": round(done_5 / 5, 2), "last_60_min": round(done_last_hour.count() / 60, 2)},
        "processing_ms": {
            "avg": round(sum(durations) / len(durations), 1) if durations else None,
            "p95": _percentile(durations, 0.95),
        },
        "failures_last_hour": Photo.objects.filter(
            status=PhotoStatus.FAILED, failed_at__gte=now - timedelta(hours=1)
        ).count(),
        "workers_alive": sum(c["workers"] for c in clusters),
        "clusters": clusters,
        "cache": cache_stats(),
    }


def job_json(photo: Photo) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "job_id": str(photo.job_id),
        "photo_id": photo.pk,
        "status": photo.status,
        "event": photo.event_id,
        "filename": photo.filename,
        "attempts": photo.attempts,
        "error": photo.error,
        "faces": photo.face_count,
        "enqueued_at": iso(photo.enqueued_at),
        "started_at": iso(photo.started_at),
        "finished_at": iso(photo.finished_at),
        "failed_at": iso(photo.failed_at),
    }
