"""Server-rendered pages for attendees and photographers."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode, urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import AuthenticationFailed

from gallery.api import join_event, my_matches, my_photo_list, photo_counts, visible_photo_ids, visible_photos
from gallery.authentication import CachedTokenAuthentication
from gallery.downloads import ZipEntry, safe_name, zip_stream
from gallery.models import (
    Event,
    EventVisibility,
    Match,
    Membership,
    Photo,
    PhotoStatus,
    is_photographer,
    profile_for,
    record_activity,
)
from gallery.qr import qr_png, qr_svg
from processing.backends.base import BackendError, NoFaceError
from processing.images import InvalidImage
from processing.pipeline import enrol_selfie, forget_attendee

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The session key that carries what was deleted to the confirmation page.
DELETED_KEY = "face-data-deleted"
BACKEND_DOWN = "The face-recognition service did not answer, so not everything could be deleted. Try again in a minute."


def _user(request: HttpRequest) -> User:
    """The logged-in user; only for views behind `login_required`."""
    return cast("User", request.user)


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def event_from_url(url: str) -> Event | None:
    """The event a local URL is about (join link, my photos, all photos), if any.

    Lets sign-up, consent and selfie pages name the event the guest came from.
    """
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return None
    if "event_id" in match.kwargs:
        return Event.objects.filter(pk=match.kwargs["event_id"]).first()
    if match.url_name == "gallery-join-link":
        return Event.objects.filter(code=str(match.kwargs["code"]).upper()).first()
    return None


def _default_next(user: Any) -> str:
    """Where a guest goes after consent or a selfie when no page asked: their only event, or home."""
    if user.is_authenticated:
        joined = list(Event.objects.filter(memberships__user=user).values_list("pk", flat=True)[:2])
        if len(joined) == 1:
            return reverse("gallery-my-photos", args=[joined[0]])
    return reverse("gallery-home")


def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {}
    if request.user.is_authenticated:
        context["joined"] = Event.objects.filter(memberships__user=request.user)
        context["is_photographer"] = is_photographer(request.user)
    return render(request, "gallery/home.html", context)


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request, reverse("gallery-home"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        profile_for(user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url)
    return render(
        request, "registration/signup.html", {"form": form, "next": next_url, "event": event_from_url(next_url)}
    )


@require_http_methods(["POST"])
def join_by_code(request: HttpRequest) -> HttpResponse:
    code = (request.POST.get("code") or "").strip().upper()
    if not Event.objects.filter(code=code).exists():
        messages.error(request, "No event has that code. Check it and try again.")
        return redirect("gallery-home")
    return redirect("gallery-join-link", code=code)


def join_link(request: HttpRequest, code: str) -> HttpResponse:
    """The link in the event's QR code: join, then straight on to consent and selfie the first time."""
    event = Event.objects.filter(code=code.upper()).first()
    if event is None:
        return render(request, "gallery/not_found.html", {"what": "event"}, status=404)
    if not request.user.is_authenticated:
        return render(request, "gallery/join.html", {"event": event})
    if event.owner_id == request.user.pk:
        return redirect("gallery-studio-event", event_id=event.pk)
    user = _user(request)
    first_time = not Membership.objects.filter(user=user, event=event).exists()
    join_event(user, event)
    my_url = reverse("gallery-my-photos", args=[event.pk])
    if first_time and not user.selfies.exists():
        # A new guest came to find their photos: skip the extra tap on my-photos.
        step = "gallery-selfie" if profile_for(user).has_consented else "gallery-consent"
        return redirect(_with_next(step, my_url))
    return redirect(my_url)


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        required=True, label="I agree that photoevent stores a face template from my selfie to find my photos."
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request, _default_next(request.user))
    form = ConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        profile = profile_for(_user(request))
        profile.face_consent_at = timezone.now()
        profile.save(update_fields=["face_consent_at"])
        return redirect(_with_next("gallery-selfie", next_url))
    event = event_from_url(next_url)
    return render(
        request,
        "gallery/consent.html",
        {
            "form": form,
            "next": next_url,
            "event": event,
            "browse_without": event is None or event.visibility == EventVisibility.ALL,
            "retention_days": settings.FACE_DATA_RETENTION_DAYS,
        },
    )


class SelfieForm(forms.Form):
    selfie = forms.FileField(label="Your selfie")


def _found_in(user: User, event: Event | None) -> int:
    """How many photos the attendee is in: in `event` when they came from it, else overall."""
    if event is not None and Membership.objects.filter(user=user, event=event).exists():
        return my_matches(user, event).count()
    return Match.objects.filter(user=user, photo__status=PhotoStatus.DONE).values("photo").distinct().count()


@login_required
@require_http_methods(["GET", "POST"])
def selfie(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    next_url = _next_url(request, _default_next(user))
    profile = profile_for(user)
    if not profile.has_consented:
        return redirect(_with_next("gallery-consent", next_url))
    record_activity(user, profile)
    form = SelfieForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, faces_found = enrol_selfie(user, form.cleaned_data["selfie"])
        except NoFaceError:
            form.add_error("selfie", "No face found, try again in better light.")
        except InvalidImage as exc:
            form.add_error("selfie", f"That file did not work: {exc}. Try another photo.")
        except BackendError:
            form.add_error("selfie", "We could not check your selfie just now. Try again in a minute.")
        else:
            if faces_found > 1:
                messages.info(request, "Several faces: we used the largest.")
            found = _found_in(user, event_from_url(next_url))
            messages.success(request, f"Done: we found you in {found} photo{'s' if found != 1 else ''}.")
            return redirect(next_url)
    return render(request, "gallery/selfie.html", {"form": form, "next": next_url, "profile": profile})


def _member_event(request: HttpRequest, event_id: int) -> Event:
    event = Event.cached(event_id)
    if event is None or not event.can_view(request.user):
        raise Http404("Event not found")
    return event


@login_required
def my_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _member_event(request, event_id)
    user = _user(request)
    profile = profile_for(user)
    record_activity(user, profile)
    has_selfie = user.selfies.exists()
    matches = my_photo_list(user, event) if has_selfie else []
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
            "counts": photo_counts(event),
            "here": request.get_full_path(),
        },
    )


@login_required
def my_photos_zip(request: HttpRequest, event_id: int) -> HttpResponseBase:
    """All of my photos of an event as one ZIP, streamed while it is written."""
    event = _member_event(request, event_id)
    user = _user(request)
    record_activity(user)
    photos = [m.photo for m in my_matches(user, event).select_related("photo")]
    if not photos:
        messages.info(request, "There are no photos of you to download yet.")
        return redirect("gallery-my-photos", event_id=event.pk)
    entries = [
        ZipEntry(
            name=safe_name(index, photo.filename, PurePosixPath(photo.original.name or "").suffix or ".jpg"),
            file=photo.original,
            modified=timezone.localtime(photo.created_at),
            size=photo.size_bytes,
        )
        for index, photo in enumerate(photos, start=1)
    ]
    response = StreamingHttpResponse(zip_stream(entries), content_type="application/zip")
    filename = f"{slugify(event.name) or 'event'}-my-photos.zip"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def all_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _member_event(request, event_id)
    record_activity(request.user)
    page = Paginator(visible_photo_ids(request.user, event), 48).get_page(request.GET.get("page"))
    own_only = event.visibility == EventVisibility.OWN and not (
        request.user.is_staff or event.owner_id == request.user.pk
    )
    return render(
        request,
        "gallery/all_photos.html",
        {"event": event, "page": page, "own_only": own_only, "here": request.get_full_path()},
    )


@login_required
def photo_page(request: HttpRequest, photo_id: int) -> HttpResponse:
    """One photo at web size, with its download link: where a thumbnail tap leads."""
    photo = Photo.objects.select_related("event").filter(pk=photo_id).first()
    if photo is None or not can_see_photo(request.user, photo):
        raise Http404("Photo not found")
    record_activity(request.user)
    event = photo.event
    is_mine = Match.objects.filter(user=_user(request), photo=photo).exists()
    back = _next_url(request, reverse("gallery-my-photos" if is_mine else "gallery-all-photos", args=[event.pk]))
    alt = f"Photo from {event.name}" + (", one you are in" if is_mine else "")
    return render(request, "gallery/photo.html", {"photo": photo, "event": event, "alt": alt, "back": back})


# --- Face data and account ---------------------------------------------------


def _remember_deleted(request: HttpRequest, **facts: Any) -> None:
    request.session[DELETED_KEY] = facts


@login_required
@require_http_methods(["GET", "POST"])
def face_data(request: HttpRequest) -> HttpResponse:
    """What face data we hold, and the button that deletes it (and withdraws consent)."""
    user = _user(request)
    if request.method == "POST":
        try:
            forgotten = forget_attendee(user)
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-face-data")
        _remember_deleted(request, account=None, **forgotten.__dict__)
        return redirect("gallery-deleted")
    profile = profile_for(user)
    matches = Match.objects.filter(user=user)
    context = {
        "profile": profile,
        "selfies": user.selfies.count(),
        "matches": matches.count(),
        "events": matches.values("event").distinct().count(),
    }
    return render(request, "gallery/face_data.html", context)


class DeleteAccountForm(forms.Form):
    password = forms.CharField(label="Your password, to confirm", widget=forms.PasswordInput)

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """Delete the account: face data first (backends included), then the user and all it owns."""
    user = _user(request)
    owns_events = Event.objects.filter(owner=user).exists()
    form = DeleteAccountForm(user, request.POST or None)
    if request.method == "POST" and not owns_events and form.is_valid():
        try:
            forgotten = forget_attendee(user)
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-delete-account")
        memberships = Membership.objects.filter(user=user).count()
        username = user.username
        with transaction.atomic():
            user.delete()
        logout(request)
        _remember_deleted(request, account=username, memberships=memberships, **forgotten.__dict__)
        return redirect("gallery-deleted")
    return render(request, "gallery/delete_account.html", {"form": form, "owns_events": owns_events})


def deleted(request: HttpRequest) -> HttpResponse:
    """Says exactly what the face-data or account deletion removed."""
    facts = request.session.pop(DELETED_KEY, None)
    if facts is None:
        return redirect("gallery-home")
    return render(request, "gallery/deleted.html", {"facts": facts})


# --- Studio --------------------------------------------------------------------


class EventForm(forms.Form):
    name = forms.CharField(max_length=200)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(
        choices=EventVisibility.choices, widget=forms.RadioSelect, label="What guests can browse"
    )


@login_required
@require_http_methods(["GET", "POST"])
def studio(request: HttpRequest) -> HttpResponse:
    if not is_photographer(request.user):
        raise Http404("Not a photographer")
    form = EventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        event = Event.objects.create(owner=_user(request), **form.cleaned_data)
        return redirect("gallery-studio-event", event_id=event.pk)
    events = Event.objects.filter(owner_id=request.user.pk)
    return render(request, "gallery/studio.html", {"form": form, "events": events})


def _owned_event(request: HttpRequest, event_id: int) -> Event:
    """The event if the user owns it or is staff; 404 otherwise, so ids do not leak."""
    event = get_object_or_404(Event, pk=event_id)
    if event.owner_id != request.user.pk and not request.user.is_staff:
        raise Http404("Event not found")
    return event


def _join_url(request: HttpRequest, event: Event) -> str:
    return request.build_absolute_uri(reverse("gallery-join-link", args=[event.code]))


@login_required
def studio_event(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _owned_event(request, event_id)
    failed = Photo.objects.filter(event=event, status=PhotoStatus.FAILED)[:50]
    page = Paginator(Photo.objects.filter(event=event).order_by("-created_at", "-id"), 48).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "gallery/studio_event.html",
        {
            "event": event,
            "counts": photo_counts(event),
            "failed": failed,
            "link": _join_url(request, event),
            "page": page,
            "visibility_form": VisibilityForm(initial={"visibility": event.visibility}),
        },
    )


@login_required
def studio_event_qr(request: HttpRequest, event_id: int, kind: str) -> HttpResponse:
    """The join link's QR code as PNG or SVG; `?download=1` makes it a file to save."""
    event = _owned_event(request, event_id)
    link = _join_url(request, event)
    if kind == "svg":
        body, content_type = qr_svg(link, title=f"QR code: join {event.name}"), "image/svg+xml"
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
    event = _owned_event(request, event_id)
    form = VisibilityForm(request.POST)
    if form.is_valid():
        event.visibility = form.cleaned_data["visibility"]
        event.save(update_fields=["visibility"])
        event.bump_version()
        messages.success(request, f"Saved: {event.get_visibility_display().lower()}.")
    else:
        messages.error(request, "Choose what guests can browse.")
    return redirect("gallery-studio-event", event_id=event.pk)


@login_required
@require_http_methods(["GET", "POST"])
def studio_photo_delete(request: HttpRequest, photo_id: int) -> HttpResponse:
    """Confirm, then delete one photo; its faces (backend too), matches and files go with it."""
    photo = get_object_or_404(Photo.objects.select_related("event"), pk=photo_id)
    event = _owned_event(request, photo.event_id)
    if request.method == "POST":
        try:
            with transaction.atomic():
                photo.delete()
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-studio-photo-delete", photo_id=photo_id)
        event.bump_version()
        messages.success(request, f"Deleted {photo.filename} and its faces.")
        return redirect("gallery-studio-event", event_id=event.pk)
    return render(request, "gallery/studio_photo_delete.html", {"photo": photo, "event": event})


@login_required
@require_http_methods(["GET", "POST"])
def studio_event_delete(request: HttpRequest, event_id: int) -> HttpResponse:
    """Confirm, then delete a whole event with its photos, faces, matches and files."""
    event = _owned_event(request, event_id)
    if request.method == "POST":
        name = event.name
        try:
            with transaction.atomic():
                event.delete()
        except BackendError:
            messages.error(request, BACKEND_DOWN)
            return redirect("gallery-studio-event-delete", event_id=event_id)
        messages.success(request, f"Deleted the event {name} with all its photos and faces.")
        return redirect("gallery-studio")
    context = {"event": event, "counts": photo_counts(event), "guests": event.memberships.count()}
    return render(request, "gallery/studio_event_delete.html", context)


# --- Files -----------------------------------------------------------------------

VARIANTS = {"thumbnail": "thumbnail", "web": "web", "original": "original"}


def can_see_photo(user: Any, photo: Photo) -> bool:
    event = photo.event
    if not event.can_view(user):
        return False
    if user.is_staff or event.owner_id == user.pk:
        return True
    return photo.status == PhotoStatus.DONE and visible_photos(user, event).filter(pk=photo.pk).exists()


def media_user(request: HttpRequest) -> Any:
    """The session user, or the user of an API token: API clients fetch the URLs the API gives them."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = CachedTokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        return request.user
    return found[0] if found else request.user


def photo_file(request: HttpRequest, photo_id: int, variant: str) -> HttpResponseBase:
    if variant not in VARIANTS:
        raise Http404("Unknown rendition")
    photo = Photo.objects.select_related("event").filter(pk=photo_id).first()
    if photo is None or not can_see_photo(media_user(request), photo):
        raise Http404("Photo not found")
    file = getattr(photo, VARIANTS[variant])
    if not file:
        raise Http404("This rendition is not ready yet")
    download = variant == "original"
    response = FileResponse(
        file.open("rb"),
        as_attachment=download,
        filename=photo.filename if download else "",
        content_type=_content_type(photo, variant),
    )
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _content_type(photo: Photo, variant: str) -> str:
    if variant != "original":
        return "image/jpeg"
    return {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(
        photo.format, "application/octet-stream"
    )
