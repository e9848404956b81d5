"""The JSON API for photographers and attendees."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django_ratelimit.decorators import ratelimit
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gallery.caching import cached
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
from gallery.uploads import QueueFull, accept_uploads
from processing.backends.base import NoFaceError
from processing.images import InvalidImage
from processing.pipeline import enrol_selfie, refresh_member_matches

QUEUE_FULL_RETRY_AFTER = 30


def rate_for(name: str) -> Any:
    """A django-ratelimit rate callable reading RATE_LIMITS at request time."""

    def rate(group: str, request: Any) -> str:
        return str(settings.RATE_LIMITS[name])

    return rate


class IsPhotographer(BasePermission):
    message = "Only photographers can do this"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_photographer(request.user)


def current_user(request: Request) -> User:
    """The authenticated user; views using it require authentication."""
    user = request.user
    assert isinstance(user, User), "view requires an authenticated user"
    return user


def _data(request: Request) -> Any:
    """The request body as a mapping; a JSON list or scalar counts as empty."""
    data = request.data
    return data if hasattr(data, "get") else {}


def _required_str(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) or hasattr(data, "getlist") else None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"detail": f"'{key}' is required"})
    return value


class TokenView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @method_decorator(ratelimit(group="auth", key="ip", rate=rate_for("auth"), method="POST", block=True))
    def post(self, request: Request) -> Response:
        username = _required_str(request.data, "username")
        password = _required_str(request.data, "password")
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            raise ValidationError({"detail": "Invalid username or password"})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class RegisterView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @method_decorator(ratelimit(group="auth", key="ip", rate=rate_for("auth"), method="POST", block=True))
    def post(self, request: Request) -> Response:
        username = _required_str(request.data, "username").strip()
        password = _required_str(request.data, "password")
        email = _data(request).get("email") or ""
        if not isinstance(email, str):
            raise ValidationError({"detail": "'email' must be a string"})
        user_model = get_user_model()
        if len(username) > 150:
            raise ValidationError({"detail": "Username is too long (150 characters at most)"})
        if user_model.objects.filter(username__iexact=username).exists():
            raise ValidationError({"detail": "That username is taken"})
        candidate = user_model(username=username, email=email)
        try:
            validate_password(password, candidate)
        except DjangoValidationError as exc:
            raise ValidationError({"detail": " ".join(exc.messages)}) from None
        user = user_model.objects.create_user(username=username, email=email, password=password)
        profile_for(user)
        token = Token.objects.create(user=user)
        return Response({"token": token.key}, status=status.HTTP_201_CREATED)


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "name": event.name,
        "date": event.date.isoformat() if event.date else None,
    }


def photo_counts(event: Event) -> dict[str, int]:
    counts = dict(
        Photo.objects.filter(event=event).values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    result = {s.value: counts.get(s.value, 0) for s in PhotoStatus}
    return {"total": sum(result.values()), **result}


class PhotographerEventsView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request) -> Response:
        events = Event.objects.filter(owner=current_user(request))
        return Response({"results": [{**event_json(e), "code": e.code} for e in events]})

    def post(self, request: Request) -> Response:
        name = _required_str(request.data, "name").strip()[:200]
        raw_date = _data(request).get("date")
        date = None
        if raw_date not in (None, ""):
            try:
                date = datetime.date.fromisoformat(str(raw_date))
            except ValueError:
                raise ValidationError({"detail": "'date' must be YYYY-MM-DD"}) from None
        event = Event.objects.create(owner=current_user(request), name=name, date=date)
        return Response({**event_json(event), "code": event.code}, status=status.HTTP_201_CREATED)


def owned_event(request: Request, event_id: int) -> Event:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        raise NotFound("Event not found")
    if event.owner_id != request.user.pk and not request.user.is_staff:
        raise PermissionDenied("This is not your event")
    return event


class PhotographerEventView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = owned_event(request, event_id)
        link = request.build_absolute_uri(reverse("gallery-join-link", args=[event.code]))
        return Response({**event_json(event), "code": event.code, "link": link, "photos": photo_counts(event)})


class UploadPhotosView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    @method_decorator(ratelimit(group="upload", key="user", rate=rate_for("upload"), method="POST", block=True))
    def post(self, request: Request, event_id: int) -> Response:
        event = owned_event(request, event_id)
        uploads = request.FILES.getlist("photos")
        if not uploads:
            raise ValidationError({"detail": "Send one or more files in the multipart field 'photos'"})
        try:
            accepted, rejected = accept_uploads(event, current_user(request), uploads)
        except QueueFull:
            return Response(
                {"detail": "Queue is full, try again later"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)},
            )
        body = {
            "jobs": [
                {
                    "job_id": str(a.photo.job_id),
                    "photo_id": a.photo.pk,
                    "filename": a.photo.filename,
                    "status": a.photo.status,
                    "duplicate": a.duplicate,
                }
                for a in accepted
            ],
            "rejected": [{"filename": r.filename, "error": r.error} for r in rejected],
        }
        if not accepted:
            body["detail"] = "No acceptable photo in the upload: " + "; ".join(
                f"{r.filename}: {r.error}" for r in rejected
            )
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_202_ACCEPTED)


class EventPhotosView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = owned_event(request, event_id)
        photos = Photo.objects.filter(event=event).order_by("-created_at", "-id")
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in PhotoStatus.values:
                raise ValidationError({"detail": f"'status' must be one of {', '.join(PhotoStatus.values)}"})
            photos = photos.filter(status=status_filter)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(photos, request, view=self) or []
        return paginator.get_paginated_response(
            [
                {"id": p.pk, "filename": p.filename, "status": p.status, "faces": p.face_count, "error": p.error}
                for p in page
            ]
        )


class JoinEventView(APIView):
    def post(self, request: Request) -> Response:
        code = _required_str(request.data, "code").strip().upper()
        event = Event.objects.filter(code=code).first()
        if event is None:
            raise NotFound("No event with that code")
        join_event(current_user(request), event)
        return Response({"event": event_json(event)})


def join_event(user: Any, event: Event) -> Membership:
    """Make `user` a member of `event` and bring their matches up to date."""
    membership, created = Membership.objects.get_or_create(user=user, event=event)
    if created and profile_for(user).has_consented:
        refresh_member_matches(user, event)
    return membership


class SelfieView(APIView):
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("selfie")
        if upload is None:
            raise ValidationError({"detail": "Send the selfie in the multipart field 'selfie'"})
        if str(_data(request).get("consent", "true")).lower() in {"false", "0", "no"}:
            raise ValidationError({"detail": "A selfie is only stored with consent to face matching"})
        if upload.size and upload.size > settings.MAX_UPLOAD_MB * 1024 * 1024:
            raise ValidationError({"detail": f"The selfie is larger than {settings.MAX_UPLOAD_MB} MB"})
        profile = profile_for(current_user(request))
        record_activity(current_user(request), profile)
        if not profile.has_consented:
            # An API client that uploads a selfie is asking for face matching;
            # the consent text is part of the API documentation.
            profile.face_consent_at = timezone.now()
            profile.save(update_fields=["face_consent_at"])
        try:
            _, faces_found = enrol_selfie(current_user(request), upload)
        except InvalidImage as exc:
            raise ValidationError({"detail": str(exc)}) from None
        except NoFaceError:
            raise ValidationError({"detail": "No face found in the selfie"}) from None
        return Response({"faces_found": faces_found})


def member_event(request: Request) -> Event:
    """The event named by ?event=, or the only one the attendee joined."""
    raw = request.query_params.get("event")
    if raw in (None, ""):
        joined = list(Event.objects.filter(memberships__user=current_user(request))[:2])
        if len(joined) != 1:
            raise ValidationError({"detail": "Say which event with ?event=<id>" if joined else "Join an event first"})
        return joined[0]
    try:
        event_id = int(str(raw))
    except ValueError:
        raise ValidationError({"detail": "'event' must be an event id"}) from None
    event = Event.cached(event_id)
    if event is None:
        raise NotFound("Event not found")
    if not event.can_view(request.user):
        raise PermissionDenied("Join this event first")
    return event


_URL_PLACEHOLDER = 987654321


@functools.cache
def _photo_file_paths(script_prefix: str) -> dict[str, tuple[str, str]]:
    """The photo file URL paths, split around the photo id, per JSON key."""
    paths = {}
    for key, variant in (("thumbnail_url", "thumbnail"), ("url", "web"), ("original_url", "original")):
        head, tail = reverse("gallery-photo-file", args=[_URL_PLACEHOLDER, variant]).split(str(_URL_PLACEHOLDER), 1)
        paths[key] = (head, tail)
    return paths


def photo_json_builder(request: Request) -> Callable[[int], dict[str, Any]]:
    """A function giving a photo's JSON item; URLs are resolved once per process, not per photo."""
    origin = request.build_absolute_uri("/")[:-1]
    urls = {key: (origin + head, tail) for key, (head, tail) in _photo_file_paths(get_script_prefix()).items()}

    def photo_json(photo_id: int) -> dict[str, Any]:
        return {"id": photo_id, **{key: f"{head}{photo_id}{tail}" for key, (head, tail) in urls.items()}}

    return photo_json


def my_matches(user: Any, event: Event) -> QuerySet[Match]:
    return Match.objects.filter(user=user, event=event, photo__status=PhotoStatus.DONE).order_by(
        "-similarity", "photo_id"
    )


@dataclass(frozen=True)
class MyPhoto:
    photo_id: int
    similarity: float
    finished_at: datetime.datetime | None


def my_photo_list(user: Any, event: Event) -> list[MyPhoto]:
    """The attendee's photos in `event`, best match first; cached, for the API and the pages."""
    key = f"my-photos:{event.pk}:{event.content_version}:{user.pk}"
    return cached(
        key,
        settings.CACHE_TTL_USER_PHOTOS,
        lambda: [
            MyPhoto(*row) for row in my_matches(user, event).values_list("photo_id", "similarity", "photo__finished_at")
        ],
    )


class MyPhotosView(APIView):
    @method_decorator(ratelimit(group="my-photos", key="user_or_ip", rate=rate_for("my-photos"), block=True))
    def get(self, request: Request) -> Response:
        event = member_event(request)
        record_activity(current_user(request))
        photo_json = photo_json_builder(request)
        photos = [
            {**photo_json(mine.photo_id), "similarity": mine.similarity}
            for mine in my_photo_list(current_user(request), event)
        ]
        return Response({"event": event.pk, "photos": photos})


def visible_photos(user: Any, event: Event) -> QuerySet[Photo]:
    """The processed photos of `event` that `user` may browse."""
    photos = Photo.objects.filter(event=event, status=PhotoStatus.DONE).order_by("-created_at", "-id")
    if sees_only_own_photos(user, event):
        photos = photos.filter(Q(matches__user=user))
    return photos


def sees_only_own_photos(user: Any, event: Event) -> bool:
    return event.visibility == EventVisibility.OWN and not (user.is_staff or event.owner_id == user.pk)


def visible_photo_ids(user: Any, event: Event) -> list[int]:
    """Ids of `visible_photos`, newest first; cached per event (per user if restricted)."""
    viewer = user.pk if sees_only_own_photos(user, event) else "all"
    key = f"all-photos:{event.pk}:{event.content_version}:{event.visibility}:{viewer}"
    return cached(
        key,
        settings.CACHE_TTL_EVENT_DATA,
        lambda: list(visible_photos(user, event).values_list("id", flat=True)),
    )


class AllPhotosView(APIView):
    def get(self, request: Request) -> Response:
        event = member_event(request)
        record_activity(current_user(request))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(visible_photo_ids(current_user(request), event), request, view=self) or []  # type: ignore[arg-type]
        photo_json = photo_json_builder(request)
        response = paginator.get_paginated_response([photo_json(photo_id) for photo_id in page])
        response.data["event"] = event.pk
        return response
