"""Face-service bookkeeping: daily usage aggregates and selfie faces stored at AWS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

# Upper bounds (ms) of the latency histogram buckets; a last bucket takes the rest.
# Enough resolution for a p50/p95 estimate from aggregated rows.
LATENCY_BUCKETS_MS: tuple[int, ...] = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


def bucket_field(index: int) -> str:
    """The column of histogram bucket `index` (len(LATENCY_BUCKETS_MS) is the overflow)."""
    return f"latency_b{index}"


def bucket_verbose_name(index: int) -> _StrPromise:
    """The label of histogram bucket `index`: the calls whose latency falls between its bounds."""
    if index == 0:
        return format_lazy(_("calls up to {high} ms"), high=LATENCY_BUCKETS_MS[0])
    if index == len(LATENCY_BUCKETS_MS):
        return format_lazy(_("calls over {low} ms"), low=LATENCY_BUCKETS_MS[-1])
    return format_lazy(
        _("calls over {low} ms, up to {high} ms"), low=LATENCY_BUCKETS_MS[index - 1], high=LATENCY_BUCKETS_MS[index]
    )


class FaceServiceUsage(models.Model):
    """Face-service calls aggregated per UTC day, event, backend and operation.

    One row per combination keeps the table small (a few rows per event and day)
    while staying exact for counts and costs; latency percentiles come from the
    fixed histogram buckets. `event_id` is a plain number, not a foreign key, so
    the cost history survives the deletion of the event; 0 means no event (a
    selfie check before any event is involved).
    """

    day = models.DateField(verbose_name=_("day"))
    event_id = models.BigIntegerField(default=0, verbose_name=_("event id"))
    backend = models.CharField(max_length=16, verbose_name=_("backend"))
    operation = models.CharField(max_length=40, verbose_name=_("operation"))

    calls = models.PositiveBigIntegerField(default=0, verbose_name=_("calls"))
    errors = models.PositiveBigIntegerField(default=0, verbose_name=_("errors"))
    throttles = models.PositiveBigIntegerField(default=0, verbose_name=_("throttles"))
    # Calls that never started because no concurrency slot freed up in time.
    slot_timeouts = models.PositiveBigIntegerField(default=0, verbose_name=_("slot timeouts"))
    # Retries botocore made inside successful calls (ResponseMetadata.RetryAttempts).
    retries = models.PositiveBigIntegerField(default=0, verbose_name=_("retries"))
    # Billed image units: one per successful call of an image API. Errors are not billed.
    images = models.PositiveBigIntegerField(default=0, verbose_name=_("billed images"))
    faces_indexed = models.PositiveBigIntegerField(default=0, verbose_name=_("faces indexed"))
    faces_searched = models.PositiveBigIntegerField(default=0, verbose_name=_("faces searched"))
    faces_matched = models.PositiveBigIntegerField(default=0, verbose_name=_("faces matched"))
    faces_deleted = models.PositiveBigIntegerField(default=0, verbose_name=_("faces deleted"))

    latency_ms_sum = models.PositiveBigIntegerField(default=0, verbose_name=_("total latency (ms)"))
    latency_ms_max = models.PositiveBigIntegerField(default=0, verbose_name=_("maximum latency (ms)"))
    wait_ms_sum = models.PositiveBigIntegerField(default=0, verbose_name=_("total wait (ms)"))
    latency_b0 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(0))
    latency_b1 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(1))
    latency_b2 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(2))
    latency_b3 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(3))
    latency_b4 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(4))
    latency_b5 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(5))
    latency_b6 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(6))
    latency_b7 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(7))
    latency_b8 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(8))
    latency_b9 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(9))
    latency_b10 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(10))
    latency_b11 = models.PositiveBigIntegerField(default=0, verbose_name=bucket_verbose_name(11))

    class Meta:
        verbose_name = _("face service usage")
        verbose_name_plural = _("face service usage")
        ordering = ["-day", "event_id", "backend", "operation"]
        constraints = [
            models.UniqueConstraint(fields=["day", "event_id", "backend", "operation"], name="face_usage_unique_key")
        ]
        indexes = [models.Index(fields=["event_id", "day"], name="face_usage_event_day")]

    def __str__(self) -> str:
        return f"{self.day} event {self.event_id} {self.backend}.{self.operation}: {self.calls} calls"


class RekognitionSelfieFace(models.Model):
    """A selfie's face indexed into one event's Rekognition collection.

    The selfie is indexed (ExternalImageId ``selfie-<user id>``) into the
    collection of every event its owner joined, so that the faces of a new photo
    can be searched against it there; this table says which FaceId to delete
    when the selfie goes, and makes indexing idempotent.
    """

    selfie = models.ForeignKey(
        "gallery.Selfie", on_delete=models.CASCADE, related_name="rekognition_faces", verbose_name=_("selfie")
    )
    event = models.ForeignKey(
        "gallery.Event", on_delete=models.CASCADE, related_name="rekognition_selfie_faces", verbose_name=_("event")
    )
    face_id = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("Empty: Rekognition found no indexable face."),
        verbose_name=_("Rekognition face id"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("Rekognition selfie face")
        verbose_name_plural = _("Rekognition selfie faces")
        constraints = [models.UniqueConstraint(fields=["selfie", "event"], name="rekognition_selfie_face_unique")]

    def __str__(self) -> str:
        return f"selfie {self.selfie_id} in event {self.event_id}: {self.face_id or '-'}"
