from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from gallery.models import AttendeeProfile, Event, Face, Match, Membership, Photo, PhotoStatus, Selfie


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "owner", "date", "visibility", "created_at"]
    search_fields = ["name", "code", "owner__username"]
    list_filter = ["visibility"]


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

    @admin.display(description="Duration")
    def duration(self, photo: Photo) -> str:
        return f"{photo.processing_ms / 1000:.1f} s" if photo.processing_ms is not None else "-"

    @admin.display(description="Error")
    def short_error(self, photo: Photo) -> str:
        return (photo.error[:80] + "…") if len(photo.error) > 80 else photo.error

    @admin.display(description="Faces")
    def preview(self, photo: Photo) -> SafeString | str:
        if not photo.thumbnail:
            return "-"
        boxes = "".join(
            format_html(
                '<div style="position:absolute;left:{}%;top:{}%;width:{}%;height:{}%;border:2px solid #0f0"></div>',
                round(f.left * 100, 2),
                round(f.top * 100, 2),
                round(f.width * 100, 2),
                round(f.height * 100, 2),
            )
            for f in photo.faces.all()
        )
        url = reverse("gallery-photo-file", args=[photo.pk, "web"])
        return format_html(
            '<div style="position:relative;display:inline-block;max-width:480px">'
            '<img src="{}" style="width:100%" alt="">{}</div>',
            url,
            format_html(boxes) if boxes else "",
        )

    @admin.action(description="Retry selected failed photos")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Photo]) -> None:
        from processing.tasks import requeue_photo

        count = sum(requeue_photo(p, only_failed=True) for p in queryset.filter(status=PhotoStatus.FAILED))
        self.message_user(request, f"{count} photos re-queued.")

    @admin.action(description="Reprocess selected photos")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Photo]) -> None:
        from processing.tasks import requeue_photo

        count = sum(requeue_photo(p, only_failed=False) for p in queryset)
        self.message_user(request, f"{count} photos re-queued.")


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


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ["user", "event", "photo", "similarity"]
    list_filter = ["event"]
    search_fields = ["user__username"]
    raw_id_fields = ["photo", "face", "user"]


admin.site.register(AttendeeProfile)
