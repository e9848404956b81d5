from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy
from knox.models import AbstractAuthToken

from gallery.caching import forget_on_commit
from gallery.formats import extension_for

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PHOTOGRAPHERS_GROUP = "photographers"
# No 0/O/1/I/L: codes are read aloud and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
EMBEDDING_DTYPE = np.float32
# AttendeeProfile.last_active_at only feeds the retention purge (counted in
# days), so writing it at most once an hour keeps requests free of writes.
ACTIVITY_RESOLUTION = timedelta(hours=1)
# Pages read events through the cache. Every change drops the cached row, so
# this only bounds how long a row stays stale when a page loaded it while the
# change was being committed.
EVENT_ROW_TTL_S = 10


def new_event_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_photographer(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return user.groups.filter(name=PHOTOGRAPHERS_GROUP).exists()  # type: ignore[attr-defined]


class EventVisibility(models.TextChoices):
    ALL = "all", gettext_lazy("Guests see all photos")
    OWN = "own", gettext_lazy("Guests see only their own photos")


class WatermarkPosition(models.TextChoices):
    TOP_LEFT = "top-left", gettext_lazy("Top left")
    TOP_RIGHT = "top-right", gettext_lazy("Top right")
    CENTER = "center", gettext_lazy("Centre")
    BOTTOM_LEFT = "bottom-left", gettext_lazy("Bottom left")
    BOTTOM_RIGHT = "bottom-right", gettext_lazy("Bottom right")


def _watermark_logo_path(instance: Event, filename: str) -> str:
    return f"events/{instance.pk}/watermark/{uuid.uuid4().hex}.png"


def membership_cache_key(event_id: int, user_id: int) -> str:
    return f"member:{event_id}:{user_id}"


def review_cache_keys(event_id: int, user_id: int) -> list[str]:
    """The cached "Is this you?" questions of a guest in an event, with and without faces matched to nobody."""
    return [f"my-review:v1:{event_id}:{user_id}:{missed}" for missed in (0, 1)]


def event_cache_key(event_id: int) -> str:
    return f"event:{event_id}"


def activity_cache_key(user_id: int) -> str:
    return f"active:{user_id}"


def forget_cached_events(*event_ids: int) -> None:
    forget_on_commit(*(event_cache_key(event_id) for event_id in event_ids))


class Event(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="events", verbose_name=gettext_lazy("owner")
    )
    name = models.CharField(max_length=200, verbose_name=gettext_lazy("name"))
    date = models.DateField(null=True, blank=True, verbose_name=gettext_lazy("date"))
    code = models.CharField(max_length=16, unique=True, default=new_event_code, verbose_name=gettext_lazy("code"))
    visibility = models.CharField(
        max_length=8,
        choices=EventVisibility.choices,
        default=EventVisibility.ALL,
        verbose_name=gettext_lazy("visibility"),
    )
    # Bumped whenever the event's photos or matches change; cache keys include it.
    content_version = models.PositiveBigIntegerField(default=0, verbose_name=gettext_lazy("content version"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))

    # The watermark on web renditions and on guests' downloads: text, a PNG logo
    # (the logo wins when both are set), or neither for no watermark.
    watermark_text = models.CharField(max_length=100, blank=True, verbose_name=gettext_lazy("watermark text"))
    watermark_logo = models.FileField(
        upload_to=_watermark_logo_path, max_length=255, blank=True, verbose_name=gettext_lazy("watermark logo")
    )
    watermark_position = models.CharField(
        max_length=16,
        choices=WatermarkPosition.choices,
        default=WatermarkPosition.BOTTOM_RIGHT,
        verbose_name=gettext_lazy("watermark position"),
    )
    watermark_opacity = models.FloatField(
        default=0.5,
        help_text=gettext_lazy("0 (invisible) to 1 (opaque)."),
        verbose_name=gettext_lazy("watermark opacity"),
    )
    watermark_size = models.FloatField(
        default=0.25,
        help_text=gettext_lazy("Width of the mark as a fraction of the image's width."),
        verbose_name=gettext_lazy("watermark size"),
    )
    # Bumped on every watermark change; a photo whose renditions carry an older
    # version is re-rendered by the queue.
    watermark_version = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("watermark version"))
    # With a watermark set, guests download the watermarked full-size copy
    # unless this is on. Without a watermark there is nothing to protect and
    # guests get the original as before.
    guests_get_originals = models.BooleanField(
        default=False, verbose_name=gettext_lazy("guests download the originals")
    )

    class Meta:
        verbose_name = gettext_lazy("event")
        verbose_name_plural = gettext_lazy("events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def has_watermark(self) -> bool:
        return bool(self.watermark_logo or self.watermark_text.strip())

    @classmethod
    def cached(cls, event_id: int) -> Event | None:
        """The event, read through the cache (see EVENT_ROW_TTL_S); None if there is none."""
        key = event_cache_key(event_id)
        event: Event | None = cache.get(key)
        if event is None:
            event = cls.objects.filter(pk=event_id).order_by().first()
            if event is not None:
                cache.set(key, event, EVENT_ROW_TTL_S)
        return event

    def can_view(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        """Whether `user` may see this event's photos at all."""
        if not user.is_authenticated:
            return False
        if user.is_staff or self.owner_id == user.pk:  # type: ignore[attr-defined]
            return True
        # Only a membership is cached: joining must count at once, and leaving
        # drops the key (gallery.signals).
        key = membership_cache_key(self.pk, user.pk)
        if cache.get(key):
            return True
        is_member = self.memberships.filter(user_id=user.pk).exists()
        if is_member:
            cache.set(key, True, settings.CACHE_TTL_USER_DATA)
            return True
        # Not cached: a removed co-photographer must lose the event at once.
        return self.is_co_photographer(user)

    def is_co_photographer(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        """Whether the owner added `user` to this event as a co-photographer."""
        return user.is_authenticated and self.co_photographers.filter(user_id=user.pk).exists()

    def bump_version(self) -> None:
        Event.objects.filter(pk=self.pk).update(content_version=models.F("content_version") + 1)
        forget_cached_events(self.pk)


class Membership(models.Model):
    """An attendee who joined an event."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=gettext_lazy("guest"),
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="memberships", verbose_name=gettext_lazy("event")
    )
    joined_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("joined at"))
    last_seen_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("last visit at"))

    class Meta:
        verbose_name = gettext_lazy("membership")
        verbose_name_plural = gettext_lazy("memberships")
        constraints = [models.UniqueConstraint(fields=["user", "event"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.event_id}"

    def record_visit(self, now: datetime | None = None) -> datetime | None:
        """Mark the attendee's my-photos visit; returns the previous visit time (None on the first)."""
        previous = self.last_seen_at
        self.last_seen_at = now or timezone.now()
        Membership.objects.filter(pk=self.pk).update(last_seen_at=self.last_seen_at)
        return previous


class CoPhotographer(models.Model):
    """A photographer the event's owner added: they upload and follow the event, not change it."""

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="co_photographers", verbose_name=gettext_lazy("event")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="co_photographed_events",
        verbose_name=gettext_lazy("co-photographer"),
    )
    added_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("added at"))

    class Meta:
        verbose_name = gettext_lazy("co-photographer")
        verbose_name_plural = gettext_lazy("co-photographers")
        ordering = ["added_at", "id"]
        constraints = [models.UniqueConstraint(fields=["event", "user"], name="co_photographer_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} photographs {self.event_id}"


class AttendeeProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendee", verbose_name=gettext_lazy("user")
    )
    face_consent_at = models.DateTimeField(
        null=True, blank=True, verbose_name=gettext_lazy("consent to face matching given at")
    )
    last_active_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("last active at"))

    class Meta:
        verbose_name = gettext_lazy("guest profile")
        verbose_name_plural = gettext_lazy("guest profiles")

    def __str__(self) -> str:
        return f"profile of {self.user_id}"

    @property
    def has_consented(self) -> bool:
        return self.face_consent_at is not None


def profile_for(user: User) -> AttendeeProfile:
    profile, _ = AttendeeProfile.objects.get_or_create(user=user)
    return profile


def record_activity(user: AbstractBaseUser | AnonymousUser, profile: AttendeeProfile | None = None) -> None:
    """Note that an attendee used the site, at most one write an hour.

    Once the time is known to be within the hour, the cache remembers it until
    the hour is over, so the usual case costs no query. Pass the `profile`
    when the caller has it, to spare the read.
    """
    if not user.is_authenticated:
        return
    key = activity_cache_key(user.pk)
    if cache.get(key):
        return
    now = timezone.now()
    cutoff = now - ACTIVITY_RESOLUTION
    last_active: datetime | None
    if profile is not None:
        last_active = profile.last_active_at
    else:
        # A read, so that busy pages do not queue a write per request behind the workers.
        last_active = AttendeeProfile.objects.filter(user_id=user.pk).values_list("last_active_at", flat=True).first()
    if last_active is not None and last_active >= cutoff:
        cache.set(key, True, (last_active - cutoff).total_seconds())
        return
    if profile is not None:
        profile.last_active_at = now
    # Conditional, so concurrent requests write once and a fresh row is left alone.
    if AttendeeProfile.objects.filter(user_id=user.pk, last_active_at__lt=cutoff).update(last_active_at=now):
        cache.set(key, True, ACTIVITY_RESOLUTION.total_seconds())


def _selfie_path(instance: Selfie, filename: str) -> str:
    return f"selfies/{instance.user_id}/{uuid.uuid4().hex}.jpg"


class Selfie(models.Model):
    """The reference face of an attendee. The newest one is the one in use."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="selfies", verbose_name=gettext_lazy("guest")
    )
    image = models.FileField(upload_to=_selfie_path, max_length=255, verbose_name=gettext_lazy("image"))
    embedding = models.BinaryField(null=True, blank=True, verbose_name=gettext_lazy("face template"))
    external_id = models.CharField(max_length=64, blank=True, verbose_name=gettext_lazy("external id"))
    faces_found = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("faces found"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))
    # Set when the selfie came from a passed live check (processing/liveness.py),
    # not from an uploaded still; "own photos only" events require it.
    live_verified_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("verified live at"))

    class Meta:
        verbose_name = gettext_lazy("selfie")
        verbose_name_plural = gettext_lazy("selfies")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"selfie {self.pk} of {self.user_id}"

    @property
    def vector(self) -> np.ndarray | None:
        if self.embedding is None:
            return None
        return np.frombuffer(bytes(self.embedding), dtype=EMBEDDING_DTYPE)


class PhotoStatus(models.TextChoices):
    QUEUED = "queued", gettext_lazy("Queued")
    PROCESSING = "processing", gettext_lazy("Processing")
    DONE = "done", gettext_lazy("Done")
    FAILED = "failed", gettext_lazy("Failed")


def _photo_path(instance: Photo, filename: str) -> str:
    # The client's filename is display text only and never part of a path.
    return f"events/{instance.event_id}/originals/{uuid.uuid4().hex}{extension_for(instance.format)}"


class Photo(models.Model):
    """An event photo and its processing job; the job state lives here."""

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="photos", verbose_name=gettext_lazy("event")
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, verbose_name=gettext_lazy("uploaded by")
    )
    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name=gettext_lazy("job id"))
    original = models.FileField(upload_to=_photo_path, max_length=255, verbose_name=gettext_lazy("original file"))
    thumbnail = models.FileField(max_length=255, blank=True, verbose_name=gettext_lazy("thumbnail"))
    web = models.FileField(max_length=255, blank=True, verbose_name=gettext_lazy("web rendition"))
    # The full-size JPEG with the event's watermark, which guests download
    # instead of the original; empty when the event has no watermark.
    watermarked = models.FileField(max_length=255, blank=True, verbose_name=gettext_lazy("watermarked rendition"))
    # The event's watermark_version the web and watermarked renditions were made with.
    watermark_version = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("watermark version"))
    filename = models.CharField(
        max_length=255,
        help_text=gettext_lazy("The client's file name, for display only."),
        verbose_name=gettext_lazy("file name"),
    )
    sha256 = models.CharField(max_length=64, verbose_name=gettext_lazy("SHA-256 digest"))
    format = models.CharField(max_length=8, verbose_name=gettext_lazy("file format"))
    size_bytes = models.PositiveBigIntegerField(default=0, verbose_name=gettext_lazy("size (bytes)"))
    width = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("width"))
    height = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("height"))

    status = models.CharField(
        max_length=16, choices=PhotoStatus.choices, default=PhotoStatus.QUEUED, verbose_name=gettext_lazy("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("attempts"))
    error = models.TextField(blank=True, verbose_name=gettext_lazy("error"))
    face_count = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("face count"))
    unindexed_reasons = models.JSONField(
        default=list, blank=True, verbose_name=gettext_lazy("why faces were not indexed")
    )
    enqueued_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("queued at"))
    # Last time a task carrying this photo went to the broker.
    dispatched_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("sent to the broker at"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("next attempt at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("finished at"))
    failed_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("failed at"))
    processing_ms = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=gettext_lazy("processing time (ms)")
    )
    # Set by the worker that claimed the photo; only that worker may finish it.
    claim = models.UUIDField(null=True, blank=True, editable=False, verbose_name=gettext_lazy("claim token"))
    worker = models.CharField(max_length=64, blank=True, verbose_name=gettext_lazy("worker"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))

    class Meta:
        verbose_name = gettext_lazy("photo")
        verbose_name_plural = gettext_lazy("photos")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "sha256"], name="photo_unique_per_event")]
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="photo_status_enqueued"),
            models.Index(fields=["event", "status"], name="photo_event_status"),
            models.Index(fields=["status", "finished_at"], name="photo_status_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} [{self.status}]"


class FaceGroup(models.Model):
    """One person of an event as the event-wide grouping of faces sees them (processing/people.py).

    Stored by the event's refresh task, never computed in a request. The
    photographer's edits (merge, split, hide) lock the faces concerned, and
    locked faces keep their group through every regrouping.
    """

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="face_groups", verbose_name=gettext_lazy("event")
    )
    # A hidden group (the photographer, someone who asked not to be found) is never matched to a guest.
    hidden = models.BooleanField(default=False, verbose_name=gettext_lazy("hidden from guests"))
    # A face the photographer moved out of a group: it takes no other face, so
    # the group it left does not follow it (a merge opens it again).
    closed = models.BooleanField(default=False, verbose_name=gettext_lazy("closed to other faces"))
    face_count = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("face count"))
    photo_count = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("photo count"))
    cover_face = models.ForeignKey(
        "Face",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=gettext_lazy("cover face"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))

    class Meta:
        verbose_name = gettext_lazy("face group")
        verbose_name_plural = gettext_lazy("face groups")
        indexes = [models.Index(fields=["event", "-photo_count", "id"], name="facegroup_event_size")]

    def __str__(self) -> str:
        return f"group {self.pk} of event {self.event_id} ({self.photo_count} photos)"


class Face(models.Model):
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="faces", verbose_name=gettext_lazy("photo"))
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="faces", verbose_name=gettext_lazy("event"))
    group = models.ForeignKey(
        FaceGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="faces",
        verbose_name=gettext_lazy("group"),
    )
    # Set by the photographer's edits: the face stays in `group` whatever the regrouping finds.
    group_locked = models.BooleanField(default=False, verbose_name=gettext_lazy("locked in its group"))
    # Box as fractions of the upright image, so it fits every rendition.
    left = models.FloatField(verbose_name=gettext_lazy("left edge"))
    top = models.FloatField(verbose_name=gettext_lazy("top edge"))
    width = models.FloatField(verbose_name=gettext_lazy("width"))
    height = models.FloatField(verbose_name=gettext_lazy("height"))
    embedding = models.BinaryField(null=True, blank=True, verbose_name=gettext_lazy("face template"))
    external_id = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=gettext_lazy("external id"))
    confidence = models.FloatField(default=0.0, verbose_name=gettext_lazy("confidence"))
    # 0..1 from size, sharpness and detector score; weak faces need stronger
    # evidence to match (processing.detection). 1 for faces indexed before it.
    quality = models.FloatField(default=1.0, verbose_name=gettext_lazy("quality"))

    class Meta:
        verbose_name = gettext_lazy("face")
        verbose_name_plural = gettext_lazy("faces")
        indexes = [models.Index(fields=["event", "id"], name="face_event")]

    def __str__(self) -> str:
        return f"face {self.pk} in photo {self.photo_id}"

    @property
    def vector(self) -> np.ndarray | None:
        if self.embedding is None:
            return None
        return np.frombuffer(bytes(self.embedding), dtype=EMBEDDING_DTYPE)


class Match(models.Model):
    """An attendee found in a photo, materialised so that my-photos is one query."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="matches", verbose_name=gettext_lazy("guest")
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="matches", verbose_name=gettext_lazy("event")
    )
    photo = models.ForeignKey(
        Photo, on_delete=models.CASCADE, related_name="matches", verbose_name=gettext_lazy("photo")
    )
    face = models.ForeignKey(Face, on_delete=models.CASCADE, related_name="matches", verbose_name=gettext_lazy("face"))
    similarity = models.FloatField(verbose_name=gettext_lazy("similarity"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))

    class Meta:
        verbose_name = gettext_lazy("match")
        verbose_name_plural = gettext_lazy("matches")
        constraints = [models.UniqueConstraint(fields=["user", "photo"], name="match_unique_user_photo")]
        indexes = [models.Index(fields=["user", "event", "-similarity"], name="match_user_event")]

    def __str__(self) -> str:
        return f"user {self.user_id} in photo {self.photo_id}"


# --- Guests' email and alerts ----------------------------------------------------


class AlertSettings(models.Model):
    """An attendee's choice about news of new photos, and where the digest stands.

    The address itself is the user's `email`. `notified_until` is the watermark:
    matches created after it (and after the attendee's last look at my photos)
    are the news of the next digest.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="alert_settings",
        verbose_name=gettext_lazy("guest"),
    )
    enabled = models.BooleanField(default=False, verbose_name=gettext_lazy("alerts enabled"))
    notified_until = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("notified until"))
    last_sent_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("last sent at"))
    # Set while a digest task is scheduled, so that a burst of matches schedules one.
    scheduled_for = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("scheduled for"))
    # The language the attendee used when they asked for alerts; the digest is written in it.
    language = models.CharField(max_length=16, blank=True, verbose_name=gettext_lazy("language"))

    class Meta:
        verbose_name = gettext_lazy("alert settings")
        verbose_name_plural = gettext_lazy("alert settings")

    def __str__(self) -> str:
        return f"alerts of {self.user_id}"


class AlertStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending")
    SENDING = "sending", gettext_lazy("Sending")
    SENT = "sent", gettext_lazy("Sent")
    RETRYING = "retrying", gettext_lazy("Retrying")
    FAILED = "failed", gettext_lazy("Failed")


class AlertDelivery(models.Model):
    """One digest email about new photos, with its sending state (staff see it in the admin)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="alert_deliveries",
        verbose_name=gettext_lazy("guest"),
    )
    email = models.EmailField(verbose_name=gettext_lazy("email address"))
    photo_count = models.PositiveIntegerField(verbose_name=gettext_lazy("photo count"))
    # {"<event id>": <new photos>} at the time the digest was made.
    events = models.JSONField(default=dict, verbose_name=gettext_lazy("new photos per event"))
    # {"<event id>": <matches the guest is asked "Is this you?" about>} at that time, so
    # that the email reminds them; events without a question are left out.
    questions = models.JSONField(default=dict, blank=True, verbose_name=gettext_lazy("questions waiting per event"))
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.PENDING, verbose_name=gettext_lazy("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("attempts"))
    error = models.TextField(blank=True, verbose_name=gettext_lazy("error"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("next attempt at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("sent at"))

    class Meta:
        verbose_name = gettext_lazy("alert delivery")
        verbose_name_plural = gettext_lazy("alert deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="alertdelivery_status")]

    def __str__(self) -> str:
        return f"digest {self.pk} to {self.user_id} [{self.status}]"


class CorrectionKind(models.TextChoices):
    NOT_ME = "not_me", gettext_lazy("Not me")
    ME = "me", gettext_lazy("That's me")


class MatchCorrection(models.Model):
    """An attendee's word on a photo: they are not in it ("not me"), or one face of it is theirs ("that's me").

    Keyed on the photo, not on the face: re-processing a photo replaces its
    Face rows, and a correction must outlive that. The face's box (fractions
    of the upright image, like `Face`) is kept so that the pipeline re-attaches
    `face` to the new face that overlaps it most (`processing.corrections`);
    `face` is null while no face of the photo matches the box, and for a "not
    me" on a photo the attendee had no match in.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="match_corrections",
        verbose_name=gettext_lazy("guest"),
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="match_corrections", verbose_name=gettext_lazy("event")
    )
    photo = models.ForeignKey(
        Photo, on_delete=models.CASCADE, related_name="match_corrections", verbose_name=gettext_lazy("photo")
    )
    face = models.ForeignKey(
        Face,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="match_corrections",
        verbose_name=gettext_lazy("face"),
    )
    kind = models.CharField(max_length=8, choices=CorrectionKind.choices, verbose_name=gettext_lazy("kind"))
    left = models.FloatField(null=True, blank=True, verbose_name=gettext_lazy("left edge"))
    top = models.FloatField(null=True, blank=True, verbose_name=gettext_lazy("top edge"))
    width = models.FloatField(null=True, blank=True, verbose_name=gettext_lazy("width"))
    height = models.FloatField(null=True, blank=True, verbose_name=gettext_lazy("height"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))

    class Meta:
        verbose_name = gettext_lazy("match correction")
        verbose_name_plural = gettext_lazy("match corrections")
        constraints = [models.UniqueConstraint(fields=["user", "photo"], name="match_correction_unique_user_photo")]
        indexes = [models.Index(fields=["user", "event", "kind"], name="match_correction_user_event")]

    def __str__(self) -> str:
        return f"{self.kind} by user {self.user_id} on photo {self.photo_id}"


class ArchiveStatus(models.TextChoices):
    PENDING = "pending", gettext_lazy("Pending")
    BUILDING = "building", gettext_lazy("Building")
    READY = "ready", gettext_lazy("Ready")
    FAILED = "failed", gettext_lazy("Failed")


def _archive_path(instance: PhotoArchive, filename: str) -> str:
    # Under the event's folder, so that deleting the event leaves nothing behind.
    return f"events/{instance.event_id}/archives/{uuid.uuid4().hex}.zip"


class PhotoArchive(models.Model):
    """A guest's photos of an event as one ZIP, built on the queue into storage.

    `photos_key` names the set of files (see `archive_key`): asking again for
    the same set reuses the archive, a different set makes a new one.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="photo_archives",
        verbose_name=gettext_lazy("guest"),
    )
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="photo_archives", verbose_name=gettext_lazy("event")
    )
    photos_key = models.CharField(max_length=64, verbose_name=gettext_lazy("photo set key"))
    photo_ids = models.JSONField(default=list, verbose_name=gettext_lazy("photo ids"))
    # What goes into the ZIP, chosen when it was asked for: name, stored file, size, date.
    entries = models.JSONField(default=list, verbose_name=gettext_lazy("ZIP entries"))
    status = models.CharField(
        max_length=16, choices=ArchiveStatus.choices, default=ArchiveStatus.PENDING, verbose_name=gettext_lazy("status")
    )
    file = models.FileField(upload_to=_archive_path, max_length=255, blank=True, verbose_name=gettext_lazy("ZIP file"))
    size_bytes = models.PositiveBigIntegerField(default=0, verbose_name=gettext_lazy("size (bytes)"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=gettext_lazy("attempts"))
    error = models.TextField(blank=True, verbose_name=gettext_lazy("error"))
    # Set by the worker that claimed the build; only that worker may finish it.
    claim = models.UUIDField(null=True, blank=True, editable=False, verbose_name=gettext_lazy("claim token"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=gettext_lazy("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=gettext_lazy("finished at"))

    class Meta:
        verbose_name = gettext_lazy("photo archive")
        verbose_name_plural = gettext_lazy("photo archives")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "event", "photos_key"], name="photo_archive_unique_set"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="photo_archive_status_created")]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.event_id} {len(self.photo_ids)} photos [{self.status}]"


def archive_key(file_names: list[str]) -> str:
    """The name of a set of stored files: the same names in any order give the same key.

    Stored files are never rewritten (a new watermark makes new files), so
    their names say what the ZIP holds; the event's content version is left
    out on purpose, since it moves with every photo processed for anyone and
    would rebuild unchanged ZIPs.
    """
    text = "\n".join(sorted(set(file_names)))
    return hashlib.sha256(text.encode()).hexdigest()


class ApiToken(AbstractAuthToken):
    """An API token, stored as django-rest-knox stores it: a digest, never the token itself.

    `password_fingerprint` ties the token to the password it was issued under
    (gallery.tokens): like Django's session auth hash, a password change by any
    path ends every token issued before it.
    """

    password_fingerprint = models.CharField(max_length=64, verbose_name=gettext_lazy("password fingerprint"))

    class Meta:
        verbose_name = gettext_lazy("API token")
        verbose_name_plural = gettext_lazy("API tokens")

    def __str__(self) -> str:
        return f"API token of user {self.user_id}, expires {self.expiry}"
