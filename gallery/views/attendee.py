"""The guest's pages: joining an event, consent, selfie, my photos, all photos and one photo."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from gallery import access
from gallery.downloads import ZipEntry, safe_name, zip_stream
from gallery.guests import MAX_CODE_LENGTH, create_guest, join_target, start_guest_session
from gallery.models import (
    ArchiveStatus,
    CorrectionKind,
    Event,
    EventVisibility,
    Membership,
    Photo,
    is_photographer,
    profile_for,
    record_activity,
)
from gallery.qr import qr_svg_inline
from gallery.ratelimits import join_rate_limit, selfie_rate_limit
from gallery.serving import file_response, full_size_download
from gallery.views.common import default_next, event_from_url, next_url, page_user, with_next
from processing.services import (
    BackendError,
    InvalidImage,
    NoFaceError,
    UnusableSelfie,
    current_archive,
    enrol_selfie,
    mark_me,
    mark_not_me,
    request_archive,
    undo_not_me,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PHOTOS_PER_PAGE = 48
# The waiting page reloads itself this often without JavaScript; with it, it polls faster.
ARCHIVE_PAGE_REFRESH_SECONDS = 10


def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {}
    if request.user.is_authenticated:
        context["joined"] = access.joined_events(request.user)
        context["is_photographer"] = is_photographer(request.user)
    return render(request, "gallery/home.html", context)


@require_http_methods(["POST"])
@join_rate_limit()
def join_by_code(request: HttpRequest) -> HttpResponse:
    """The home page's code form: on to the event's page, which has the join button."""
    code = (request.POST.get("code") or "").strip().upper()[:MAX_CODE_LENGTH]
    if join_target(request.user, code).event is None:
        messages.error(request, _("No event has that code. Check it and try again."))
        return redirect("gallery-home")
    return redirect("gallery-join-link", code=code)


@require_http_methods(["GET", "POST"])
@join_rate_limit()
def join_link(request: HttpRequest, code: str) -> HttpResponse:
    """The event's page, where its link and QR code lead: its name and a join button.

    GET only shows (a link from another site must not make anyone join); the
    button POSTs. A visitor without an account becomes a guest on the spot: no
    username, no password, straight on to consent, selfie and my photos.
    An unknown code renders the same page, after the same query, with a 404.
    """
    target = join_target(request.user, code)
    event = target.event
    if request.method == "POST" and event is not None:
        if event.owner_id == request.user.pk:
            return redirect("gallery-studio-event", event_id=event.pk)
        if not request.user.is_authenticated:
            start_guest_session(request, create_guest())
        user = page_user(request)
        access.join_event(user, event)
        my_url = reverse("gallery-my-photos", args=[event.pk])
        if not target.is_member and not user.selfies.exists():
            # A new guest came to find their photos: skip the extra tap on my-photos.
            step = "gallery-selfie" if profile_for(user).has_consented else "gallery-consent"
            return redirect(with_next(step, my_url))
        return redirect(my_url)
    context = {
        "event": event,
        "is_member": target.is_member,
        "is_owner": event is not None and event.owner_id == request.user.pk,
        "code": code,
    }
    return render(request, "gallery/join.html", context, status=200 if event is not None else 404)


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        required=True,
        label=gettext_lazy("I agree that photoevent stores a face template from my selfie to find my photos."),
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    target = next_url(request, default_next(request.user))
    form = ConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        profile = profile_for(page_user(request))
        profile.face_consent_at = timezone.now()
        profile.save(update_fields=["face_consent_at"])
        return redirect(with_next("gallery-selfie", target))
    event = event_from_url(target, request.user)
    return render(
        request,
        "gallery/consent.html",
        {
            "form": form,
            "next": target,
            "event": event,
            "browse_without": event is None or event.visibility == EventVisibility.ALL,
            "retention_days": settings.FACE_DATA_RETENTION_DAYS,
        },
    )


class SelfieForm(forms.Form):
    selfie = forms.FileField(label=gettext_lazy("Your selfie"))


@login_required
@require_http_methods(["GET", "POST"])
@selfie_rate_limit()
def selfie(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    target = next_url(request, default_next(user))
    profile = profile_for(user)
    if not profile.has_consented:
        return redirect(with_next("gallery-consent", target))
    record_activity(user, profile)
    form = SelfieForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            _selfie, faces_found = enrol_selfie(user, form.cleaned_data["selfie"])
        except UnusableSelfie as exc:
            form.add_error("selfie", str(exc))
        except NoFaceError:
            form.add_error("selfie", _("No face found, try again in better light."))
        except InvalidImage as exc:
            form.add_error("selfie", _("That file did not work: %(reason)s. Try another photo.") % {"reason": exc})
        except BackendError:
            form.add_error("selfie", _("We could not check your selfie just now. Try again in a minute."))
        else:
            if faces_found > 1:
                messages.info(request, _("Several faces: we used the largest."))
            found = access.found_in_count(user, event_from_url(target, user))
            messages.success(
                request,
                ngettext("Done: we found you in %(count)d photo.", "Done: we found you in %(count)d photos.", found)
                % {"count": found},
            )
            return redirect(target)
    return render(request, "gallery/selfie.html", {"form": form, "next": target, "profile": profile})


@login_required
@require_http_methods(["GET"])
def live_selfie(request: HttpRequest) -> HttpResponse:
    """The camera page of the live selfie; static/js/liveness.js talks to the API from it."""
    user = page_user(request)
    target = next_url(request, default_next(user))
    if not profile_for(user).has_consented:
        return redirect(with_next("gallery-consent", target))
    event = event_from_url(target, user)
    context: dict[str, Any] = {"next": target, "event": event, "join_url": "", "qr_svg": ""}
    if event is not None:
        # Without a camera here, the guest goes on with the phone: the event's own join link.
        join_url = request.build_absolute_uri(reverse("gallery-join-link", args=[event.code]))
        title = _("QR code that opens %(event)s on a phone") % {"event": event.name}
        context.update(join_url=join_url, qr_svg=mark_safe(qr_svg_inline(join_url, title)))  # segno escapes the title
    return render(request, "gallery/live_selfie.html", context)


@login_required
def my_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    user = page_user(request)
    event = access.member_event(user, event_id)
    profile = profile_for(user)
    record_activity(user, profile)
    has_selfie = user.selfies.exists()
    matches = access.my_photo_list(user, event) if has_selfie else []
    membership = Membership.objects.filter(user=user, event=event).first()
    # Read the previous visit before recording this one: "new" is relative to it.
    previous = membership.record_visit() if membership is not None else None
    new_ids = {m.photo_id for m in matches if previous and m.finished_at and m.finished_at > previous}
    return render(
        request,
        "gallery/my_photos.html",
        {
            "event": event,
            "matches": matches,
            "new_ids": new_ids,
            "new_count": len(new_ids),
            "profile": profile,
            "has_selfie": has_selfie,
            "needs_live_selfie": access.needs_live_selfie(user, event),
            "counts": access.photo_counts(event),
            "here": request.get_full_path(),
            "hidden_count": len(access.hidden_photo_ids(user, event)) if has_selfie else 0,
            "review": access.photos_to_review(user, event) if has_selfie else [],
        },
    )


@login_required
def my_photos_zip(request: HttpRequest, event_id: int) -> HttpResponseBase:
    """All of my photos of an event as one ZIP.

    Up to ZIP_STREAM_MAX_BYTES of originals it is streamed while written: a
    few seconds of a web worker. A larger one is built on the queue into
    storage and served like a photo (`file_response`: S3 redirect, proxy, or
    stream); until it is ready the guest is sent to the page that waits for it.
    """
    user = page_user(request)
    event = access.member_event(user, event_id)
    record_activity(user)
    photos = access.my_photo_files(user, event)
    if not photos:
        messages.info(request, _("There are no photos of you to download yet."))
        return redirect("gallery-my-photos", event_id=event.pk)
    # Guests of a watermarked event get the watermarked copies (gallery.serving).
    downloads = [(photo, download) for photo in photos if (download := full_size_download(user, photo, event))]
    entries = [
        ZipEntry(
            name=safe_name(index, download.filename, PurePosixPath(download.file.name or "").suffix or ".jpg"),
            file=download.file,
            modified=timezone.localtime(photo.created_at),
            size=download.size,
        )
        for index, (photo, download) in enumerate(downloads, start=1)
    ]
    filename = f"{slugify(event.name) or 'event'}-my-photos.zip"
    limit = settings.ZIP_STREAM_MAX_BYTES
    # The originals' sizes measure the transfer (a watermarked copy is about as large).
    if limit and sum(photo.size_bytes for photo, _ in downloads) <= limit:
        response: HttpResponseBase = StreamingHttpResponse(zip_stream(entries), content_type="application/zip")
        response["Content-Disposition"] = content_disposition_header(True, filename)
    else:
        archive = request_archive(user, event, entries, [photo.pk for photo, _ in downloads])
        if archive.status != ArchiveStatus.READY:
            return redirect("gallery-my-photos-archive", event_id=event.pk)
        response = file_response(archive.file, content_type="application/zip", download=True, filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def my_photos_archive(request: HttpRequest, event_id: int) -> HttpResponse:
    """The page that waits for a ZIP built on the queue; static/js/archive-status.js polls for it."""
    user = page_user(request)
    event = access.member_event(user, event_id)
    archive = current_archive(user, event)
    if archive is None:
        return redirect("gallery-my-photos", event_id=event.pk)
    waiting = archive.status in (ArchiveStatus.PENDING, ArchiveStatus.BUILDING)
    return render(
        request,
        "gallery/archive.html",
        {
            "event": event,
            "archive": archive,
            "waiting": waiting,
            "ready": archive.status == ArchiveStatus.READY,
            "photo_count": len(archive.photo_ids),
            "refresh_seconds": ARCHIVE_PAGE_REFRESH_SECONDS,
        },
    )


@login_required
def my_photos_archive_status(request: HttpRequest, event_id: int) -> JsonResponse:
    """`{"status": ...}` of the guest's ZIP of the event, for the waiting page's polling."""
    user = page_user(request)
    event = access.member_event(user, event_id)
    archive = current_archive(user, event)
    if archive is None:
        return JsonResponse({"detail": _("No ZIP was requested for this event.")}, status=404)
    response = JsonResponse({"status": archive.status})
    response["Cache-Control"] = "private, no-store"
    return response


def _may_correct(user: User, event: Event) -> bool:
    """Whether `user` can say "not me" or "that's me" in `event`: a guest who agreed to face matching."""
    return access.is_member(user, event) and profile_for(user).has_consented


@login_required
def all_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    user = page_user(request)
    event = access.member_event(user, event_id)
    record_activity(user)
    page = Paginator(access.visible_photo_ids(user, event), PHOTOS_PER_PAGE).get_page(request.GET.get("page"))
    may_correct = _may_correct(user, event)
    mine = {m.photo_id for m in access.my_photo_list(user, event)} if may_correct else set()
    return render(
        request,
        "gallery/all_photos.html",
        {
            "event": event,
            "page": page,
            "own_only": access.sees_only_own_photos(user, event),
            "needs_live_selfie": access.needs_live_selfie(user, event),
            "here": request.get_full_path(),
            "may_correct": may_correct,
            "mine": mine,
        },
    )


@login_required
def photo_page(request: HttpRequest, photo_id: int) -> HttpResponse:
    """One photo at web size: previous and next in the list it came from, download, share, corrections."""
    user = page_user(request)
    photo = access.visible_photo(user, photo_id)
    record_activity(user)
    event = photo.event
    is_mine = access.is_my_photo(user, photo)
    listing = request.GET.get("from")
    if listing not in access.PHOTO_LISTS:
        listing = "mine" if is_mine else "all"
    back = next_url(
        request, reverse("gallery-my-photos" if listing == "mine" else "gallery-all-photos", args=[event.pk])
    )
    listed = access.photo_list_ids(user, event, listing)
    previous_id, next_id, position = access.neighbours(listed, photo.pk)
    query = urlencode({"from": listing, "next": back})
    if is_mine:
        alt = _("Photo from %(event)s, one you are in") % {"event": event.name}
    else:
        alt = _("Photo from %(event)s") % {"event": event.name}
    may_correct = _may_correct(user, event)
    hidden = may_correct and access.correction_kind(user, photo) == CorrectionKind.NOT_ME
    faces = access.photo_faces(photo) if may_correct and not (is_mine or hidden) else []
    return render(
        request,
        "gallery/photo.html",
        {
            "photo": photo,
            "event": event,
            "alt": alt,
            "back": back,
            "here": request.get_full_path(),
            "query": query,
            "previous_id": previous_id,
            "next_id": next_id,
            "position": position,
            "total": len(listed),
            "is_mine": is_mine,
            "may_correct": may_correct,
            "hidden": hidden,
            "faces": faces,
        },
    )


@login_required
def hidden_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    """The photos the guest said they are not in, each with a button that undoes it."""
    user = page_user(request)
    event = access.member_event(user, event_id)
    record_activity(user)
    return render(
        request,
        "gallery/hidden_photos.html",
        {"event": event, "photo_ids": access.hidden_photo_ids(user, event), "here": request.get_full_path()},
    )


def _back(request: HttpRequest, photo: Photo) -> str:
    return next_url(request, reverse("gallery-my-photos", args=[photo.event_id]))


@login_required
@require_POST
def photo_not_me(request: HttpRequest, photo_id: int) -> HttpResponse:
    """ "Not me": the photo leaves my photos at once and for good (undone from the hidden photos)."""
    user = page_user(request)
    photo = access.correctable_photo(user, photo_id)
    raw = request.POST.get("face_id") or ""
    # The face an "Is this you?" showed, when the guest was not matched in the photo.
    face = access.photo_faces_by_id(photo).get(int(raw)) if raw.isdigit() else None
    mark_not_me(user, photo, face)
    messages.success(request, _("Hidden from your photos. You can bring it back from your hidden photos."))
    return redirect(_back(request, photo))


@login_required
@require_POST
def photo_not_me_undo(request: HttpRequest, photo_id: int) -> HttpResponse:
    """Undo a "not me": the photo is matched again like any other."""
    user = page_user(request)
    photo = access.correctable_photo(user, photo_id)
    undo_not_me(user, photo)
    messages.success(request, _("The photo is no longer hidden."))
    return redirect(next_url(request, reverse("gallery-hidden-photos", args=[photo.event_id])))


@login_required
@require_POST
def photo_me(request: HttpRequest, photo_id: int) -> HttpResponse:
    """ "That's me": add the photo to my photos; with several faces the guest picks theirs on the photo page."""
    user = page_user(request)
    photo = access.correctable_photo(user, photo_id)
    raw = request.POST.get("face_id") or ""
    try:
        face = access.chosen_face(photo, int(raw) if raw.isdigit() else None)
    except access.FaceChoiceError as exc:
        messages.info(request, str(exc))
        back = next_url(request, reverse("gallery-all-photos", args=[photo.event_id]))
        query = urlencode({"from": request.POST.get("from") or "all", "next": back})
        return redirect(f"{reverse('gallery-photo', args=[photo.pk])}?{query}#faces")
    mark_me(user, photo, face)
    if request.POST.get("review"):
        messages.success(request, _("Thank you: the photo is in your photos."))
    else:
        messages.success(request, _("Added to your photos."))
    return redirect(next_url(request, reverse("gallery-my-photos", args=[photo.event_id])))
