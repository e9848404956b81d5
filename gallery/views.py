"""Server-rendered pages for attendees and photographers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from gallery.api import join_event, my_matches, photo_counts, visible_photos
from gallery.models import Event, Match, Photo, PhotoStatus, is_photographer, profile_for
from processing.backends.base import NoFaceError
from processing.images import InvalidImage
from processing.pipeline import enrol_selfie


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


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
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@require_http_methods(["POST"])
def join_by_code(request: HttpRequest) -> HttpResponse:
    code = (request.POST.get("code") or "").strip().upper()
    if not Event.objects.filter(code=code).exists():
        messages.error(request, "No event has that code. Check it and try again.")
        return redirect("gallery-home")
    return redirect("gallery-join-link", code=code)


def join_link(request: HttpRequest, code: str) -> HttpResponse:
    event = Event.objects.filter(code=code.upper()).first()
    if event is None:
        return render(request, "gallery/not_found.html", {"what": "event"}, status=404)
    if not request.user.is_authenticated:
        return render(request, "gallery/join.html", {"event": event})
    join_event(request.user, event)
    return redirect("gallery-my-photos", event_id=event.pk)


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        required=True, label="I agree that photoevent stores a face template from my selfie to find my photos."
    )


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request, reverse("gallery-selfie"))
    form = ConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        profile = profile_for(request.user)  # type: ignore[arg-type]
        profile.face_consent_at = timezone.now()
        profile.save(update_fields=["face_consent_at"])
        return redirect(f"{reverse('gallery-selfie')}?next={next_url}")
    return render(request, "gallery/consent.html", {"form": form, "next": next_url})


class SelfieForm(forms.Form):
    selfie = forms.FileField(label="Your selfie")


@login_required
@require_http_methods(["GET", "POST"])
def selfie(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request, reverse("gallery-home"))
    profile = profile_for(request.user)  # type: ignore[arg-type]
    if not profile.has_consented:
        return redirect(f"{reverse('gallery-consent')}?next={next_url}")
    form = SelfieForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, faces_found = enrol_selfie(request.user, form.cleaned_data["selfie"])  # type: ignore[arg-type]
        except NoFaceError:
            form.add_error("selfie", "No face found. Try again in better light, facing the camera.")
        except InvalidImage as exc:
            form.add_error("selfie", f"That file did not work: {exc}.")
        else:
            found = Match.objects.filter(user=request.user).values("photo").distinct().count()
            if faces_found > 1:
                messages.info(request, "Several faces: we used the largest.")
            messages.success(request, f"Done: we found you in {found} photo{'s' if found != 1 else ''}.")
            return redirect(next_url)
    return render(request, "gallery/selfie.html", {"form": form, "next": next_url, "profile": profile})


def _member_event(request: HttpRequest, event_id: int) -> Event:
    event = get_object_or_404(Event, pk=event_id)
    if not event.can_view(request.user):
        raise Http404("Event not found")
    return event


@login_required
def my_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _member_event(request, event_id)
    profile = profile_for(request.user)  # type: ignore[arg-type]
    has_selfie = request.user.selfies.exists()  # type: ignore[union-attr]
    matches = list(my_matches(request.user, event)) if has_selfie else []
    return render(
        request,
        "gallery/my_photos.html",
        {
            "event": event,
            "matches": matches,
            "profile": profile,
            "has_selfie": has_selfie,
            "counts": photo_counts(event),
            "here": request.get_full_path(),
        },
    )


@login_required
def all_photos(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _member_event(request, event_id)
    page = Paginator(visible_photos(request.user, event), 48).get_page(request.GET.get("page"))
    return render(request, "gallery/all_photos.html", {"event": event, "page": page})


class EventForm(forms.Form):
    name = forms.CharField(max_length=200)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


@login_required
@require_http_methods(["GET", "POST"])
def studio(request: HttpRequest) -> HttpResponse:
    if not is_photographer(request.user):
        raise Http404("Not a photographer")
    form = EventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        event = Event.objects.create(owner=request.user, **form.cleaned_data)
        return redirect("gallery-studio-event", event_id=event.pk)
    events = Event.objects.filter(owner=request.user)
    return render(request, "gallery/studio.html", {"form": form, "events": events})


@login_required
def studio_event(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    if event.owner_id != request.user.pk and not request.user.is_staff:
        raise Http404("Event not found")
    failed = Photo.objects.filter(event=event, status=PhotoStatus.FAILED)[:50]
    link = request.build_absolute_uri(reverse("gallery-join-link", args=[event.code]))
    return render(
        request,
        "gallery/studio_event.html",
        {"event": event, "counts": photo_counts(event), "failed": failed, "link": link},
    )


VARIANTS = {"thumbnail": "thumbnail", "web": "web", "original": "original"}


def can_see_photo(user: Any, photo: Photo) -> bool:
    event = photo.event
    if not event.can_view(user):
        return False
    if user.is_staff or event.owner_id == user.pk:
        return True
    return photo.status == PhotoStatus.DONE and visible_photos(user, event).filter(pk=photo.pk).exists()


def photo_file(request: HttpRequest, photo_id: int, variant: str) -> HttpResponseBase:
    if variant not in VARIANTS:
        raise Http404("Unknown rendition")
    photo = Photo.objects.select_related("event").filter(pk=photo_id).first()
    if photo is None or not can_see_photo(request.user, photo):
        raise Http404("Photo not found")
    file = getattr(photo, VARIANTS[variant])
    if not file:
        raise Http404("This rendition is not ready yet")
    download = variant == "original"
    response = FileResponse(
        file.open("rb"),
        as_attachment=download,
        filename=photo.filename if download else None,
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
