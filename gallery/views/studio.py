"""The photographer's studio: their events, the QR code to share, what guests see, deletions."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from gallery import access
from gallery.formats import accept_attribute, accepted_names
from gallery.models import Event, EventVisibility, PhotoStatus, is_photographer
from gallery.qr import qr_png, qr_svg
from gallery.ratelimits import rate_for
from gallery.uploads import QUEUE_FULL_RETRY_AFTER, QueueFull, accept_uploads
from gallery.views.common import BACKEND_DOWN, page_user
from gallery.watermarks import WatermarkForm
from processing.services import (
    BackendError,
    PeopleEditError,
    delete_event,
    delete_photo,
    event_quality_report,
    hide_face_group,
    merge_face_groups,
    set_watermark,
    split_face_group,
)

PHOTOS_PER_PAGE = 48
FAILED_SHOWN = 50


class EventForm(forms.Form):
    name = forms.CharField(max_length=200, label=gettext_lazy("Name"))
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=gettext_lazy("Date"))


class PhotographerForm(forms.Form):
    username = forms.CharField(max_length=150, label=gettext_lazy("Photographer's username"))


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(
        choices=EventVisibility.choices, widget=forms.RadioSelect, label=gettext_lazy("What guests can browse")
    )


@login_required
@require_http_methods(["GET", "POST"])
def studio(request: HttpRequest) -> HttpResponse:
    if not is_photographer(request.user):
        raise Http404(_("Not a photographer"))
    form = EventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        event = Event.objects.create(owner=page_user(request), **form.cleaned_data)
        return redirect("gallery-studio-event", event_id=event.pk)
    events = access.studio_events(request.user).select_related("owner")
    return render(request, "gallery/studio.html", {"form": form, "events": events})


def _join_url(request: HttpRequest, event: Event) -> str:
    return request.build_absolute_uri(reverse("gallery-join-link", args=[event.code]))


@login_required
def studio_event(request: HttpRequest, event_id: int) -> HttpResponse:
    """The event for its photographers: share, upload, progress, photos; settings for the owner only."""
    return _event_page(request, access.contributor_event(request.user, event_id))


def _upload_texts() -> dict[str, str]:
    """The browser uploader's words, in the page's language, as `data-` attributes of the page.

    static/js/studio-upload.js reads them and fills the placeholders; keys are
    lower-case words, as `dataset` gives them back.
    """
    return {
        "waiting": _("Waiting"),
        "sending": _("Sending…"),
        "accepted": _("Accepted"),
        "duplicate": _("Already in the event"),
        "rejected": _("Rejected: %(reason)s"),
        "retryin": _("Server busy, retrying in %(seconds)s s"),
        "networkretry": _("Connection lost, retrying in %(seconds)s s"),
        "failed": _("Not sent: %(reason)s"),
        "network": _("the connection failed"),
        "summary": _("%(done)s of %(total)s files answered: %(accepted)s accepted, %(rejected)s rejected"),
        "finished": _("Upload finished. Refresh the page to see the photos."),
        "leave": _("Photos are still being sent. Leave the page?"),
    }


def _event_page(request: HttpRequest, event: Event, status: int = 200) -> HttpResponse:
    failed = access.event_photos(event, PhotoStatus.FAILED)[:FAILED_SHOWN]
    page = Paginator(access.event_photos(event), PHOTOS_PER_PAGE).get_page(request.GET.get("page"))
    is_owner = access.is_event_owner(request.user, event)
    return render(
        request,
        "gallery/studio_event.html",
        {
            "event": event,
            "is_owner": is_owner,
            "counts": access.photo_counts(event),
            "failed": failed,
            "link": _join_url(request, event),
            "page": page,
            "per_photographer": access.uploads_per_photographer(event),
            "co_photographers": access.co_photographers(event),
            "photographer_form": PhotographerForm() if is_owner else None,
            "visibility_form": VisibilityForm(initial={"visibility": event.visibility}) if is_owner else None,
            "watermark_form": WatermarkForm.for_event(event) if is_owner else None,
            "people": access.event_people(event)[:PEOPLE_PREVIEW] if is_owner else [],
            "accept": accept_attribute(),
            "accepted_names": accepted_names(),
            "upload_texts": _upload_texts(),
        },
        status=status,
    )


PEOPLE_PREVIEW = 12
PEOPLE_PER_PAGE = 48


@login_required
def studio_event_quality(request: HttpRequest, event_id: int) -> HttpResponse:
    """How well the event's faces could be matched: the honest numbers, for the owner.

    A page of its own, not a panel of the event page: the report reads every
    face of the event, which the event page, opened often, should not pay for.
    """
    event = access.owned_event(request.user, event_id)
    return render(request, "gallery/studio_quality.html", {"event": event, "report": event_quality_report(event)})


@login_required
@require_http_methods(["GET", "POST"])
def studio_event_people(request: HttpRequest, event_id: int) -> HttpResponse:
    """The event's people: groups largest first; hide, show, merge, and a group's faces to move one out."""
    event = access.owned_event(request.user, event_id)
    if request.method == "POST":
        return _edit_people(request, event)
    page = Paginator(access.event_people(event), PEOPLE_PER_PAGE).get_page(request.GET.get("page"))
    group = None
    raw_group = request.GET.get("group", "")
    if raw_group.isdigit():
        group = access.event_face_group(event, int(raw_group))
    faces = group.faces.order_by("id")[:PEOPLE_PER_PAGE] if group else []
    return render(request, "gallery/studio_people.html", {"event": event, "page": page, "group": group, "faces": faces})


def _edit_people(request: HttpRequest, event: Event) -> HttpResponse:
    action = request.POST.get("action", "")
    raw_group, raw_other = request.POST.get("group", ""), request.POST.get("other", "")
    raw_face = request.POST.get("face", "")
    if not raw_group.isdigit():
        messages.error(request, _("Choose a group."))
        return redirect("gallery-studio-event-people", event_id=event.pk)
    group = access.event_face_group(event, int(raw_group))
    try:
        if action in ("hide", "show"):
            hide_face_group(event, group, action == "hide")
            messages.success(request, _("Hidden: never matched to a guest.") if action == "hide" else _("Shown."))
        elif action == "merge" and raw_other.isdigit() and int(raw_other) != group.pk:
            merge_face_groups(event, group, access.event_face_group(event, int(raw_other)))
            messages.success(request, _("Merged."))
        elif action == "split" and raw_face.isdigit():
            face = access.event_face(event, int(raw_face))
            if face.group_id != group.pk:
                raise PeopleEditError(_("That face is not in this group."))
            split_face_group(event, group, face)
            messages.success(request, _("Moved out into a group of its own."))
        else:
            messages.error(request, _("Say what to do: hide, show, merge with another group, or move a face out."))
    except PeopleEditError as exc:
        messages.error(request, str(exc))
    return redirect("gallery-studio-event-people", event_id=event.pk)


@login_required
@require_http_methods(["GET", "POST"])
def studio_event_watermark(request: HttpRequest, event_id: int) -> HttpResponse:
    """The watermark form: shown on the event page, and on its own page again when it has errors."""
    event = access.owned_event(request.user, event_id)
    form = WatermarkForm.for_event(event, request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            if set_watermark(event, form.settings()):
                messages.success(request, _("Watermark saved. The photos are being updated."))
            else:
                messages.success(request, _("Saved."))
            return redirect("gallery-studio-event", event_id=event.pk)
        return render(request, "gallery/studio_watermark.html", {"event": event, "watermark_form": form}, status=400)
    return render(request, "gallery/studio_watermark.html", {"event": event, "watermark_form": form})


@login_required
@require_POST
@ratelimit(group="upload", key="user", rate=rate_for("upload"), method="POST", block=True)
def studio_event_upload(request: HttpRequest, event_id: int) -> HttpResponse:
    """The upload form without JavaScript: the same checks and storage as the API's upload.

    Answers with the event page and a message per refused file; 400 when no
    file was acceptable, 503 when the queue is full.
    """
    event = access.contributor_event(request.user, event_id)
    uploads = request.FILES.getlist("photos")
    if not uploads:
        messages.error(request, _("Choose one or more photos to send."))
        return _event_page(request, event, status=400)
    try:
        accepted, rejected = accept_uploads(event, page_user(request), uploads)
    except QueueFull:
        messages.error(request, _("The processing queue is full. Send the photos again in a few minutes."))
        response = _event_page(request, event, status=503)
        response["Retry-After"] = str(QUEUE_FULL_RETRY_AFTER)
        return response
    new = sum(1 for a in accepted if not a.duplicate)
    duplicates = len(accepted) - new
    if new:
        messages.success(
            request,
            ngettext("%(count)d photo received.", "%(count)d photos received.", new) % {"count": new},
        )
    if duplicates:
        messages.info(
            request,
            ngettext(
                "%(count)d photo was already in the event.", "%(count)d photos were already in the event.", duplicates
            )
            % {"count": duplicates},
        )
    for refused in sorted(rejected, key=lambda r: r.index):
        messages.error(
            request, _("%(filename)s refused: %(reason)s") % {"filename": refused.filename, "reason": refused.error}
        )
    if not accepted:
        return _event_page(request, event, status=400)
    return redirect("gallery-studio-event", event_id=event.pk)


@login_required
@require_POST
def studio_event_photographers(request: HttpRequest, event_id: int) -> HttpResponse:
    """Add a co-photographer by username (owner only)."""
    event = access.owned_event(request.user, event_id)
    form = PhotographerForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a photographer's username."))
        return redirect("gallery-studio-event", event_id=event.pk)
    try:
        row, created = access.add_co_photographer(event, form.cleaned_data["username"])
    except access.CannotAddPhotographer as exc:
        messages.error(request, str(exc))
    else:
        if created:
            messages.success(request, _("%(username)s can now upload to this event.") % {"username": row.user.username})
        else:
            messages.info(request, _("%(username)s was already a photographer here.") % {"username": row.user.username})
    return redirect("gallery-studio-event", event_id=event.pk)


@login_required
@require_POST
def studio_event_photographer_remove(request: HttpRequest, event_id: int, username: str) -> HttpResponse:
    """Remove a co-photographer (owner only); the photos they sent stay."""
    event = access.owned_event(request.user, event_id)
    if not access.remove_co_photographer(event, username):
        raise Http404(_("%(username)s is not a photographer of this event") % {"username": username})
    messages.success(request, _("%(username)s can no longer upload to this event.") % {"username": username})
    return redirect("gallery-studio-event", event_id=event.pk)


@login_required
def studio_event_qr(request: HttpRequest, event_id: int, kind: str) -> HttpResponse:
    """The join link's QR code as PNG or SVG; `?download=1` makes it a file to save."""
    event = access.contributor_event(request.user, event_id)
    link = _join_url(request, event)
    if kind == "svg":
        title = _("QR code: join %(event)s") % {"event": event.name}
        body, content_type = qr_svg(link, title=title), "image/svg+xml"
    else:
        body, content_type = qr_png(link), "image/png"
    response = HttpResponse(body, content_type=content_type)
    if request.GET.get("download"):
        filename = f"{slugify(event.name) or 'event'}-{event.code}-qr.{kind}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_POST
def studio_event_visibility(request: HttpRequest, event_id: int) -> HttpResponse:
    event = access.owned_event(request.user, event_id)
    form = VisibilityForm(request.POST)
    if form.is_valid():
        access.set_visibility(event, form.cleaned_data["visibility"])
        messages.success(request, _("Saved: %(choice)s.") % {"choice": event.get_visibility_display().lower()})
    else:
        messages.error(request, _("Choose what guests can browse."))
    return redirect("gallery-studio-event", event_id=event.pk)


@login_required
@require_http_methods(["GET", "POST"])
def studio_photo_delete(request: HttpRequest, photo_id: int) -> HttpResponse:
    """Confirm, then delete one photo; its faces (backend too), matches and files go with it."""
    photo = access.owned_photo(request.user, photo_id)
    event = photo.event
    if request.method == "POST":
        try:
            delete_photo(photo)
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-studio-photo-delete", photo_id=photo_id)
        messages.success(request, _("Deleted %(filename)s and its faces.") % {"filename": photo.filename})
        return redirect("gallery-studio-event", event_id=event.pk)
    return render(request, "gallery/studio_photo_delete.html", {"photo": photo, "event": event})


@login_required
@require_http_methods(["GET", "POST"])
def studio_event_delete(request: HttpRequest, event_id: int) -> HttpResponse:
    """Confirm, then delete a whole event with its photos, faces, matches and files."""
    event = access.owned_event(request.user, event_id)
    if request.method == "POST":
        name = event.name
        try:
            delete_event(event)
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-studio-event-delete", event_id=event_id)
        messages.success(request, _("Deleted the event %(name)s with all its photos and faces.") % {"name": name})
        return redirect("gallery-studio")
    context = {"event": event, "counts": access.photo_counts(event), "guests": event.memberships.count()}
    return render(request, "gallery/studio_event_delete.html", context)
