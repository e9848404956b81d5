"""The staff admin. Deletions go through `processing.services`, so the face backend forgets what they delete.

The admin deletes one object inside a transaction of its own (`delete_view`);
the services then call the backend after that transaction commits.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from gallery.models import (
    AlertDelivery,
    AlertSettings,
    AttendeeProfile,
    Event,
    Face,
    Match,
    MatchCorrection,
    Membership,
    Photo,
    PhotoArchive,
    PhotoStatus,
    Selfie,
)
from processing import services

logger = logging.getLogger("gallery.admin")


def _after_commit_or_log(action: Any, *args: Any) -> None:
    """Run a deletion that calls the face backend first, once the admin's transaction is over.

    A backend failure leaves the data in place (the service deletes nothing
    then); it is logged for staff to try again.
    """

    def run() -> None:
        try:
            action(*args)
        except services.BackendError:
            logger.exception("Admin deletion of %s postponed: the face backend did not answer", args)

    transaction.on_commit(run)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "owner", "date", "visibility", "created_at"]
    search_fields = ["name", "code", "owner__username"]
    list_filter = ["visibility"]

    def delete_model(self, request: HttpRequest, obj: Event) -> None:
        services.delete_event(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        for event in queryset:
            services.delete_event(event)


class FaceInline(admin.TabularInline):
    model = Face
    extra = 0
    fields = ("left", "top", "width", "height", "confidence", "external_id")
    readonly_fields = fields
    can_delete = False


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["filename", "event", "status", "attempts", "face_count", "duration", "short_error", "created_at"]
    list_filter = ["status", "event"]
    search_fields = ["filename", "sha256", "job_id"]
    readonly_fields = [
        "job_id",
        "event",
        "filename",
        "sha256",
        "format",
        "size_bytes",
        "width",
        "height",
        "status",
        "attempts",
        "error",
        "face_count",
        "unindexed_reasons",
        "enqueued_at",
        "started_at",
        "finished_at",
        "failed_at",
        "processing_ms",
        "worker",
        "preview",
    ]
    exclude = ["original", "thumbnail", "web", "claim", "uploaded_by", "next_attempt_at"]
    inlines = [FaceInline]
    actions = ["retry_failed", "reprocess"]

    @admin.display(description=_("Duration"))
    def duration(self, photo: Photo) -> str:
        return f"{number_format(photo.processing_ms / 1000, 1)} s" if photo.processing_ms is not None else "-"

    @admin.display(description=_("Error"))
    def short_error(self, photo: Photo) -> str:
        return (photo.error[:80] + "…") if len(photo.error) > 80 else photo.error

    @admin.display(description=_("Faces"))
    def preview(self, photo: Photo) -> SafeString | str:
        if not photo.thumbnail:
            return "-"
        # Boxes drawn in an SVG laid over the photo (static/css/admin.css):
        # geometry in attributes, since the Content-Security-Policy refuses
        # inline style attributes.
        boxes = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}"></rect>',
            (
                (round(f.left * 100, 2), round(f.top * 100, 2), round(f.width * 100, 2), round(f.height * 100, 2))
                for f in photo.faces.all()
            ),
        )
        url = reverse("gallery-photo-file", args=[photo.pk, "web"])
        return format_html(
            '<div class="photo-preview"><img src="{}" alt="">'
            '<svg viewBox="0 0 100 100" preserveAspectRatio="none" aria-hidden="true">{}</svg></div>',
            url,
            boxes,
        )

    def delete_model(self, request: HttpRequest, obj: Photo) -> None:
        services.delete_photo(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Photo]) -> None:
        for photo in queryset.select_related("event"):
            services.delete_photo(photo)

    @admin.action(description=_("Retry selected failed photos"))
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Photo]) -> None:
        count = sum(services.requeue_photo(p, only_failed=True) for p in queryset.filter(status=PhotoStatus.FAILED))
        self.message_user(request, _requeued(count))

    @admin.action(description=_("Reprocess selected photos"))
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Photo]) -> None:
        count = sum(services.requeue_photo(p, only_failed=False) for p in queryset)
        self.message_user(request, _requeued(count))


def _requeued(count: int) -> str:
    return ngettext("%(count)d photo re-queued.", "%(count)d photos re-queued.", count) % {"count": count}


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "event", "joined_at"]
    list_filter = ["event"]
    search_fields = ["user__username"]


@admin.register(Selfie)
class SelfieAdmin(admin.ModelAdmin):
    list_display = ["user", "faces_found", "created_at"]
    search_fields = ["user__username"]
    exclude = ["embedding"]

    def delete_model(self, request: HttpRequest, obj: Selfie) -> None:
        _after_commit_or_log(services.delete_selfie, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Selfie]) -> None:
        failed = 0
        for selfie in queryset:
            try:
                services.delete_selfie(selfie)
            except services.BackendError:
                failed += 1
        if failed:
            self.message_user(request, _backend_down(failed), messages.ERROR)


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ["user", "event", "photo", "similarity"]
    list_filter = ["event"]
    search_fields = ["user__username"]
    raw_id_fields = ["photo", "face", "user"]


@admin.register(MatchCorrection)
class MatchCorrectionAdmin(admin.ModelAdmin):
    """Guests' "not me" and "that's me", read-only: they change matches only through the services."""

    list_display = ["user", "event", "photo", "kind", "face", "created_at"]
    list_filter = ["kind", "event"]
    search_fields = ["user__username"]
    raw_id_fields = ["photo", "face", "user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MatchCorrection | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: MatchCorrection | None = None) -> bool:
        return False


admin.site.register(AttendeeProfile)


def _backend_down(count: int) -> str:
    return ngettext(
        "The face service did not answer: %(count)d was not deleted; try again.",
        "The face service did not answer: %(count)d were not deleted; try again.",
        count,
    ) % {"count": count}


class AccountAdmin(UserAdmin):
    """Django's user admin, deleting accounts with their face data at the backend too."""

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        _after_commit_or_log(services.delete_account, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        failed = 0
        for user in queryset:
            try:
                services.delete_account(user)
            except services.BackendError:
                failed += 1
        if failed:
            self.message_user(request, _backend_down(failed), messages.ERROR)


admin.site.unregister(User)
admin.site.register(User, AccountAdmin)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    """The digest emails about new photos: staff see which failed and why, and can send them again."""

    list_display = ["created_at", "user", "email", "photo_count", "status", "attempts", "sent_at", "short_error"]
    list_filter = ["status"]
    search_fields = ["email", "user__username"]
    readonly_fields = [
        "user",
        "email",
        "photo_count",
        "events",
        "questions",
        "status",
        "attempts",
        "error",
        "next_attempt_at",
        "created_at",
        "sent_at",
    ]
    actions = ["send_again"]

    @admin.display(description=_("Error"))
    def short_error(self, delivery: AlertDelivery) -> str:
        return delivery.error[:80]

    @admin.action(description=_("Send the selected digests again"))
    def send_again(self, request: HttpRequest, queryset: QuerySet[AlertDelivery]) -> None:
        count = sum(services.retry_alert_delivery(pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            ngettext("%(count)d digest queued again.", "%(count)d digests queued again.", count) % {"count": count},
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


admin.site.register(AlertSettings)


@admin.register(PhotoArchive)
class PhotoArchiveAdmin(admin.ModelAdmin):
    """The guests' ZIPs built on the queue: staff see which failed and why (a guest's new request retries)."""

    list_display = ["created_at", "user", "event", "photo_count", "status", "attempts", "size_bytes", "short_error"]
    list_filter = ["status"]
    search_fields = ["user__username", "event__name"]
    readonly_fields = [
        "user",
        "event",
        "photos_key",
        "photo_ids",
        "status",
        "file",
        "size_bytes",
        "attempts",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]

    @admin.display(description=_("Photos"))
    def photo_count(self, archive: PhotoArchive) -> int:
        return len(archive.photo_ids)

    @admin.display(description=_("Error"))
    def short_error(self, archive: PhotoArchive) -> str:
        return archive.error[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
