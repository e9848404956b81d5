"""The JSON API for photographers and attendees: thin views over `gallery.access`.

Lookups raise Django's `Http404` and `PermissionDenied` (see gallery.access for
the policy); DRF answers them as JSON 404 and 403.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import logout as end_session
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_ratelimit.decorators import ratelimit
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gallery import access
from gallery.accounts import RegisterForm
from gallery.guests import clean_email, create_guest, join_target, notifications, set_notifications
from gallery.models import (
    ApiToken,
    AttendeeProfile,
    CoPhotographer,
    Event,
    FaceGroup,
    PhotoStatus,
    is_photographer,
    profile_for,
    record_activity,
)
from gallery.ratelimits import (
    auth_rate_limit,
    join_rate_limit,
    rate_for,
    selfie_address_rate_limit,
    selfie_rate_limit,
    sign_in_link_rate_limit,
)
from gallery.tokens import issue_token, revoke_all_tokens, revoke_token
from gallery.uploads import QUEUE_FULL_RETRY_AFTER, Accepted, QueueFull, Rejected, accept_uploads
from gallery.watermarks import WatermarkForm, watermark_json
from processing.services import (
    MAX_LIVE_FRAMES,
    BackendError,
    InvalidImage,
    NoFaceError,
    PeopleEditError,
    UnusableSelfie,
    delete_account,
    delete_event,
    enrol_selfie,
    event_quality_report,
    forget_attendee,
    hide_face_group,
    issue_challenge,
    mark_me,
    mark_not_me,
    merge_face_groups,
    send_sign_in_link_later,
    set_watermark,
    split_face_group,
    undo_not_me,
    verify_live_selfie,
)


class IsPhotographer(BasePermission):
    """Photographer endpoints refuse everyone else with 403, before looking at any id."""

    message = gettext_lazy("Only photographers can do this")

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
        raise ValidationError({"detail": _("'%(key)s' is required") % {"key": key}})
    return value


class TokenView(APIView):
    """Log in: a new token for the right username and password (django-axes locks out repeated failures)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @method_decorator(auth_rate_limit())
    def post(self, request: Request) -> Response:
        username = _required_str(request.data, "username")
        password = _required_str(request.data, "password")
        user = authenticate(request._request, username=username, password=password)
        if user is None:
            raise ValidationError({"detail": _("Invalid username or password")})
        return Response({"token": issue_token(user)})


class RegisterView(APIView):
    """Open an account with the sign-up page's rules (gallery.accounts) and get its first token."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @method_decorator(auth_rate_limit())
    def post(self, request: Request) -> Response:
        username = _required_str(request.data, "username")
        password = _required_str(request.data, "password")
        email = _data(request).get("email") or ""
        if not isinstance(email, str):
            raise ValidationError({"detail": _("'email' must be a string")})
        form = RegisterForm({"username": username, "email": email, "password1": password, "password2": password})
        if not form.is_valid():
            raise ValidationError({"detail": " ".join(str(m) for errors in form.errors.values() for m in errors)})
        user = form.save()
        profile_for(user)
        return Response({"token": issue_token(user)}, status=status.HTTP_201_CREATED)


class LogoutView(APIView):
    """End the token this request carries (or the session, for a browser)."""

    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            revoke_token(request.auth)
        else:
            end_session(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """End every token of the caller's account, this one included."""

    def post(self, request: Request) -> Response:
        revoke_all_tokens(current_user(request))
        if not isinstance(request.auth, ApiToken):
            end_session(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FaceDataView(APIView):
    """`DELETE`: the face data page's button: every selfie and match goes, and consent is withdrawn."""

    def delete(self, request: Request) -> Response:
        forgotten = forget_attendee(current_user(request))
        return Response({"deleted": forgotten.__dict__})


class AccountView(APIView):
    """`DELETE`: the delete-account page: face data first, then the account, its tokens and all it owns.

    An account with a usable password confirms with it (`{"password": ...}`);
    a photographer deletes their events first, as on the page.
    """

    def delete(self, request: Request) -> Response:
        user = current_user(request)
        if user.has_usable_password():
            password = _data(request).get("password")
            if not isinstance(password, str) or not password:
                raise ValidationError({"detail": _("Confirm with your password in 'password'")})
            if not user.check_password(password):
                raise ValidationError({"detail": _("That is not your password.")})
        if access.photographer_events(user).exists():
            return Response(
                {"detail": _("Delete your events first: an account that owns events cannot be deleted")},
                status=status.HTTP_409_CONFLICT,
            )
        memberships = access.memberships_count(user)
        forgotten = delete_account(user)
        if not isinstance(request.auth, ApiToken):
            end_session(request._request)
        return Response({"deleted": {"account": user.get_username(), "memberships": memberships, **forgotten.__dict__}})


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "name": event.name,
        "date": event.date.isoformat() if event.date else None,
    }


class PhotographerEventsView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request) -> Response:
        events = access.studio_events(current_user(request))
        return Response({"results": [{**event_json(e), "code": e.code} for e in events]})

    def post(self, request: Request) -> Response:
        name = _required_str(request.data, "name").strip()[:200]
        raw_date = _data(request).get("date")
        date = None
        if raw_date not in (None, ""):
            try:
                date = datetime.date.fromisoformat(str(raw_date))
            except ValueError:
                raise ValidationError({"detail": _("'date' must be YYYY-MM-DD")}) from None
        event = Event.objects.create(owner=current_user(request), name=name, date=date)
        return Response({**event_json(event), "code": event.code}, status=status.HTTP_201_CREATED)


class PhotographerEventView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = access.contributor_event(request.user, event_id)
        link = request.build_absolute_uri(reverse("gallery-join-link", args=[event.code]))
        return Response({**event_json(event), "code": event.code, "link": link, "photos": access.photo_counts(event)})

    def delete(self, request: Request, event_id: int) -> Response:
        """Delete the event with its photos, faces and files (owner only); the face backend forgets it after."""
        delete_event(access.owned_event(request.user, event_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _co_photographer_json(row: CoPhotographer) -> dict[str, Any]:
    return {"username": row.user.username, "added_at": row.added_at.isoformat()}


class EventPhotographersView(APIView):
    """The event's co-photographers: any of its photographers lists them, the owner adds one by username."""

    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = access.contributor_event(request.user, event_id)
        rows = access.co_photographers(event)
        return Response({"owner": event.owner.username, "results": [_co_photographer_json(r) for r in rows]})

    def post(self, request: Request, event_id: int) -> Response:
        event = access.owned_event(request.user, event_id)
        username = _required_str(request.data, "username")
        try:
            row, created = access.add_co_photographer(event, username)
        except access.CannotAddPhotographer as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(_co_photographer_json(row), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class EventPhotographerView(APIView):
    """One co-photographer of the event; the owner removes them (their photos stay)."""

    permission_classes = [IsAuthenticated, IsPhotographer]

    def delete(self, request: Request, event_id: int, username: str) -> Response:
        event = access.owned_event(request.user, event_id)
        if not access.remove_co_photographer(event, username):
            raise Http404(_("%(username)s is not a photographer of this event") % {"username": username})
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventQualityView(APIView):
    """How well the event's faces could be matched (processing.quality.event_quality_report)."""

    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        return Response(event_quality_report(access.owned_event(request.user, event_id)))


def _job_json(accepted: Accepted) -> dict[str, Any]:
    photo = accepted.photo
    job: dict[str, Any] = {
        "index": accepted.index,
        "filename": accepted.filename,
        "job_id": str(photo.job_id),
        "photo_id": photo.pk,
        "status": photo.status,
        "duplicate": accepted.duplicate,
    }
    if photo.filename != accepted.filename:
        job["stored_filename"] = photo.filename
    return job


def _rejected_json(rejected: Rejected) -> dict[str, Any]:
    return {"index": rejected.index, "filename": rejected.filename, "error": rejected.error}


class UploadPhotosView(APIView):
    """Accept photos for an event; each verdict names the file's `index` among the `photos` parts."""

    permission_classes = [IsAuthenticated, IsPhotographer]

    @method_decorator(ratelimit(group="upload", key="user", rate=rate_for("upload"), method="POST", block=True))
    def post(self, request: Request, event_id: int) -> Response:
        event = access.contributor_event(request.user, event_id)
        uploads = request.FILES.getlist("photos")
        if not uploads:
            raise ValidationError({"detail": _("Send one or more files in the multipart field 'photos'")})
        try:
            accepted, rejected = accept_uploads(event, current_user(request), uploads)
        except QueueFull:
            return Response(
                {"detail": _("Queue is full, try again later")},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)},
            )
        body: dict[str, Any] = {
            "jobs": [_job_json(a) for a in sorted(accepted, key=lambda a: a.index)],
            "rejected": [_rejected_json(r) for r in sorted(rejected, key=lambda r: r.index)],
        }
        if not accepted:
            body["detail"] = _("No acceptable photo in the upload: %(reasons)s") % {
                "reasons": "; ".join(f"{r.filename}: {r.error}" for r in rejected)
            }
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_202_ACCEPTED)


class EventPhotosView(APIView):
    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = access.contributor_event(request.user, event_id)
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in PhotoStatus.values:
            raise ValidationError(
                {"detail": _("'status' must be one of %(choices)s") % {"choices": ", ".join(PhotoStatus.values)}}
            )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(access.event_photos(event, status_filter), request, view=self) or []
        return paginator.get_paginated_response(
            [
                {"id": p.pk, "filename": p.filename, "status": p.status, "faces": p.face_count, "error": p.error}
                for p in page
            ]
        )


def _percent(value: Any) -> Any:
    """A fraction from the API as the form's percent; anything else goes to the form to be refused."""
    if isinstance(value, bool):
        return value
    try:
        return round(float(value) * 100)
    except (TypeError, ValueError):
        return value


class EventWatermarkView(APIView):
    """`GET` / `PUT /api/photographer/events/{id}/watermark` (JSON or multipart with a `logo` PNG file).

    Fields: `text`, `position` (top-left, top-right, center, bottom-left,
    bottom-right), `opacity` and `size` (fractions, size of the image's width),
    `guests_get_originals`, `clear_logo`; a field left out keeps its value.
    Only the event's owner (or staff). A change to what is drawn re-renders the
    event's photos through the queue: the answer says so in `rerendering`.
    """

    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = access.owned_event(request.user, event_id)
        return Response(watermark_json(event))

    def put(self, request: Request, event_id: int) -> Response:
        event = access.owned_event(request.user, event_id)
        body = _data(request)
        form = WatermarkForm.for_event(event)
        merged: dict[str, Any] = {**form.initial}
        for key in ("text", "position", "guests_get_originals", "clear_logo"):
            if key in body:
                merged[key] = body.get(key)
        for key in ("opacity", "size"):
            if key in body:
                merged[key] = _percent(body.get(key))
        form = WatermarkForm(merged, request.FILES)
        if not form.is_valid():
            errors = {field: [str(e) for e in messages] for field, messages in form.errors.items()}
            detail = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
            return Response({"detail": detail, "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        rerendering = set_watermark(event, form.settings())
        return Response({**watermark_json(event), "rerendering": rerendering})


# --- People of the event (processing/people.py) ----------------------------------

GROUP_FACES_SHOWN = 200


def _person_json(request: Request, group: FaceGroup) -> dict[str, Any]:
    crop = reverse("gallery-face-crop", args=[group.cover_face_id]) if group.cover_face_id else None
    return {
        "id": group.pk,
        "photo_count": group.photo_count,
        "face_count": group.face_count,
        "face_crop_url": request.build_absolute_uri(crop) if crop else None,
        "enrolled": bool(getattr(group, "enrolled", False)),
        "hidden": group.hidden,
    }


def _int_field(data: Any, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError({"detail": _("'%(key)s' must be an id") % {"key": key}})
    try:
        return int(value)
    except ValueError:
        raise ValidationError({"detail": _("'%(key)s' must be an id") % {"key": key}}) from None


class EventPeopleView(APIView):
    """`GET /api/photographer/events/{id}/people`: the event's face groups, largest first, paginated.

    The groups are stored by the event's refresh task; a photo's faces join
    them shortly after it is processed.
    """

    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int) -> Response:
        event = access.owned_event(request.user, event_id)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(access.event_people(event), request, view=self) or []  # type: ignore[arg-type]
        return paginator.get_paginated_response([_person_json(request, group) for group in page])


class EventPersonView(APIView):
    """`GET` / `POST /api/photographer/events/{id}/people/{group}`: one group, and the photographer's edits.

    POST bodies: `{"action": "merge", "group": <id>}` puts that group's faces in
    this one; `{"action": "split", "face": <id>}` moves a face out into a group
    of its own (the answer is that new group); `{"action": "hide"}` and
    `{"action": "show"}`. Every edit holds through later regroupings.
    """

    permission_classes = [IsAuthenticated, IsPhotographer]

    def get(self, request: Request, event_id: int, group_id: int) -> Response:
        event = access.owned_event(request.user, event_id)
        group = access.event_face_group(event, group_id)
        faces = group.faces.order_by("id")[:GROUP_FACES_SHOWN]
        return Response(
            {
                **_person_json(request, group),
                "faces": [
                    {
                        "id": face.pk,
                        "photo_id": face.photo_id,
                        "face_crop_url": request.build_absolute_uri(reverse("gallery-face-crop", args=[face.pk])),
                    }
                    for face in faces
                ],
            }
        )

    def post(self, request: Request, event_id: int, group_id: int) -> Response:
        event = access.owned_event(request.user, event_id)
        group = access.event_face_group(event, group_id)
        data = _data(request)
        action = data.get("action")
        try:
            if action == "merge":
                other = access.event_face_group(event, _int_field(data, "group"))
                if other.pk == group.pk:
                    raise ValidationError({"detail": _("A group cannot be merged with itself")})
                group = merge_face_groups(event, group, other)
            elif action == "split":
                face = access.event_face(event, _int_field(data, "face"))
                if face.group_id != group.pk:
                    raise ValidationError({"detail": _("That face is not in this group")})
                group = split_face_group(event, group, face)
            elif action in ("hide", "show"):
                hide_face_group(event, group, action == "hide")
            else:
                raise ValidationError({"detail": _("'action' must be merge, split, hide or show")})
        except PeopleEditError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(_person_json(request, access.event_face_group(event, group.pk)))


class JoinEventView(APIView):
    """Join an event by its code; rate-limited per user and per address like the pages."""

    @method_decorator(join_rate_limit())
    def post(self, request: Request) -> Response:
        target = join_target(request.user, _required_str(request.data, "code"))
        if target.event is None:
            raise Http404(_("No event with that code"))
        access.join_event(current_user(request), target.event)
        return Response({"event": event_json(target.event)})


class GuestView(APIView):
    """`POST /api/guests` {"code"}: a guest attendee of that event, with no password, and its token."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @method_decorator(auth_rate_limit())
    @method_decorator(join_rate_limit())
    def post(self, request: Request) -> Response:
        target = join_target(request.user, _required_str(request.data, "code"))
        if target.event is None:
            raise Http404(_("No event with that code"))
        user = create_guest()
        access.join_event(user, target.event)
        return Response({"token": issue_token(user), "event": event_json(target.event)}, status=status.HTTP_201_CREATED)


class NotificationsView(APIView):
    """`GET`/`PUT /api/me/notifications` {"email", "alerts"}: the address for sign-in links and alerts."""

    def get(self, request: Request) -> Response:
        current = notifications(current_user(request))
        return Response({"email": current.email, "alerts": current.alerts})

    def put(self, request: Request) -> Response:
        data = _data(request)
        user = current_user(request)
        try:
            email = clean_email(data.get("email", user.email))
        except DjangoValidationError as exc:
            raise ValidationError({"detail": " ".join(exc.messages)}) from None
        alerts = data.get("alerts", False)
        if not isinstance(alerts, bool):
            raise ValidationError({"detail": _("'alerts' must be true or false")})
        if alerts and not email:
            raise ValidationError({"detail": _("Alerts need an email address.")})
        saved = set_notifications(user, email, alerts)
        return Response({"email": saved.email, "alerts": saved.alerts})


class SignInLinkView(APIView):
    """`POST /api/auth/email-link` {"email"}: 202 whether or not an account has the address."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @method_decorator(auth_rate_limit())
    @method_decorator(sign_in_link_rate_limit())
    def post(self, request: Request) -> Response:
        try:
            email = clean_email(_required_str(request.data, "email"))
        except DjangoValidationError as exc:
            raise ValidationError({"detail": " ".join(exc.messages)}) from None
        send_sign_in_link_later(email)
        return Response(
            {"detail": _("If an account has this address, a sign-in link is on its way to it.")},
            status=status.HTTP_202_ACCEPTED,
        )


class SelfieView(APIView):
    @method_decorator(selfie_rate_limit())
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("selfie")
        if upload is None:
            raise ValidationError({"detail": _("Send the selfie in the multipart field 'selfie'")})
        if str(_data(request).get("consent", "true")).lower() in {"false", "0", "no"}:
            raise ValidationError({"detail": _("A selfie is only stored with consent to face matching")})
        if upload.size and upload.size > settings.MAX_UPLOAD_MB * 1024 * 1024:
            raise ValidationError(
                {"detail": _("The selfie is larger than %(limit)s MB") % {"limit": settings.MAX_UPLOAD_MB}}
            )
        user = current_user(request)
        profile = profile_for(user)
        record_activity(user, profile)
        # An API client that uploads a selfie is asking for face matching; the
        # consent text is part of the API documentation. It is given before the
        # enrolment, which matches only consenting attendees, and taken back
        # if the selfie is refused: consent is kept only with an accepted selfie.
        consented_now = None
        if not profile.has_consented:
            consented_now = timezone.now()
            profile.face_consent_at = consented_now
            profile.save(update_fields=["face_consent_at"])
        try:
            _selfie, faces_found = enrol_selfie(user, upload)
        except (InvalidImage, NoFaceError, BackendError) as exc:
            if consented_now is not None:
                AttendeeProfile.objects.filter(user=user, face_consent_at=consented_now).update(face_consent_at=None)
            if isinstance(exc, InvalidImage | UnusableSelfie):
                # An unusable selfie's message says what to fix (closer, steadier, better light).
                raise ValidationError({"detail": str(exc)}) from None
            if isinstance(exc, NoFaceError):
                raise ValidationError({"detail": _("No face found in the selfie")}) from None
            raise
        return Response({"faces_found": faces_found})


def attendee_event(request: Request) -> Event:
    """The event named by ?event=, or the only one the attendee joined; 404 if they may not see it."""
    raw = request.query_params.get("event")
    user = current_user(request)
    if raw in (None, ""):
        joined = list(access.joined_events(user)[:2])
        if len(joined) != 1:
            message = _("Say which event with ?event=<id>") if joined else _("Join an event first")
            raise ValidationError({"detail": message})
        return joined[0]
    try:
        event_id = int(str(raw))
    except ValueError:
        raise ValidationError({"detail": _("'event' must be an event id")}) from None
    return access.member_event(user, event_id)


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


def face_url_builder(request: Request) -> Callable[[int, int], str]:
    """A function giving the URL of a photo's thumbnail around one face, resolved once per call."""
    origin = request.build_absolute_uri("/")[:-1]
    path = reverse("gallery-photo-face", args=[_URL_PLACEHOLDER, _URL_PLACEHOLDER + 1])
    head, rest = path.split(str(_URL_PLACEHOLDER), 1)
    middle, tail = rest.split(str(_URL_PLACEHOLDER + 1), 1)

    def face_url(photo_id: int, face_id: int) -> str:
        return f"{origin}{head}{photo_id}{middle}{face_id}{tail}"

    return face_url


class MyPhotosView(APIView):
    @method_decorator(ratelimit(group="my-photos", key="user_or_ip", rate=rate_for("my-photos"), block=True))
    def get(self, request: Request) -> Response:
        event = attendee_event(request)
        user = current_user(request)
        record_activity(user)
        photo_json = photo_json_builder(request)
        face_url = face_url_builder(request)
        photos = [
            {
                **photo_json(mine.photo_id),
                "similarity": mine.similarity,
                "face_id": mine.face_id,
                "face_thumbnail_url": face_url(mine.photo_id, mine.face_id),
            }
            for mine in access.my_photo_list(user, event)
        ]
        live_selfie_required = access.needs_live_selfie(user, event)
        # The photos to ask "Is this you?" about: answer with photos/{id}/me (and the face_id) or not-me.
        review = [
            {"photo_id": photo_id, "face_id": face_id, "face_thumbnail_url": face_url(photo_id, face_id)}
            for photo_id, face_id in access.photos_to_review(user, event)
        ]
        return Response(
            {"event": event.pk, "photos": photos, "review": review, "live_selfie_required": live_selfie_required}
        )


class AllPhotosView(APIView):
    def get(self, request: Request) -> Response:
        event = attendee_event(request)
        user = current_user(request)
        record_activity(user)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(access.visible_photo_ids(user, event), request, view=self) or []  # type: ignore[arg-type]
        photo_json = photo_json_builder(request)
        response = paginator.get_paginated_response([photo_json(photo_id) for photo_id in page])
        response.data["event"] = event.pk
        return response


# --- Live selfie (processing/liveness.py) ----------------------------------------


class SelfieChallengeView(APIView):
    """`POST /api/me/selfie/challenge`: ``{"nonce", "poses", "instructions", "expires_at"}``.

    One frame per pose is to be sent back, in order, before `expires_at`;
    `instructions` are the poses in words, in the request's language.
    """

    @method_decorator(
        ratelimit(group="live-selfie", key="user", rate=rate_for("live-selfie"), method="POST", block=True)
    )
    def post(self, request: Request) -> Response:
        user = current_user(request)
        if not profile_for(user).has_consented:
            raise ValidationError({"detail": _("Agree to face matching before taking a selfie.")})
        return Response(issue_challenge(user.pk).as_json())


class LiveSelfieView(APIView):
    """`POST /api/me/selfie/live`, multipart: ``nonce`` and ``frames`` (one file per pose, in order).

    200 ``{"verified": true}``: the front frame is now the live-verified selfie.
    400 ``{"detail", "code", "frame"}``: why not, in words and as a code, and the
    frame at fault if one is; a new challenge is needed for the next attempt.
    """

    @method_decorator(
        ratelimit(group="live-selfie-check", key="user", rate=rate_for("live-selfie"), method="POST", block=True)
    )
    @method_decorator(selfie_address_rate_limit())
    def post(self, request: Request) -> Response:
        user = current_user(request)
        nonce = _data(request).get("nonce")
        frames = request.FILES.getlist("frames")
        if not isinstance(nonce, str) or not nonce:
            raise ValidationError({"detail": _("Send the challenge's nonce in the field 'nonce'.")})
        if not frames or len(frames) > MAX_LIVE_FRAMES:
            raise ValidationError(
                {"detail": _("Send one to %(limit)d pictures in the field 'frames'.") % {"limit": MAX_LIVE_FRAMES}}
            )
        if not profile_for(user).has_consented:
            raise ValidationError({"detail": _("Agree to face matching before taking a selfie.")})
        record_activity(user)
        result = verify_live_selfie(user, nonce, frames)
        if not result.verified:
            return Response(
                {"detail": result.message, "code": result.code, "frame": result.frame},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"verified": True})


def face_box_json(face: Any) -> dict[str, Any]:
    """A face's id and box, as fractions of the photo's width and height."""
    return {
        "id": face.pk,
        "box": {"left": face.left, "top": face.top, "width": face.width, "height": face.height},
    }


class PhotoNotMeView(APIView):
    """`POST` (`{"face_id"}` optional): "not me", the photo leaves my photos for good; `DELETE`: undo it."""

    def post(self, request: Request, photo_id: int) -> Response:
        user = current_user(request)
        photo = access.correctable_photo(user, photo_id)
        raw = _data(request).get("face_id")
        face = None
        if raw not in (None, ""):
            # The face a review question showed, when the member was not matched in the photo.
            face = access.photo_faces_by_id(photo).get(int(str(raw))) if str(raw).isdigit() else None
            if face is None:
                raise ValidationError({"detail": _("That face is not in this photo")})
        mark_not_me(user, photo, face)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def delete(self, request: Request, photo_id: int) -> Response:
        user = current_user(request)
        undo_not_me(user, access.correctable_photo(user, photo_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PhotoMeView(APIView):
    """`POST {"face_id"}`: "that's me", the face is mine; `face_id` may be left out when the photo has one face."""

    def post(self, request: Request, photo_id: int) -> Response:
        user = current_user(request)
        photo = access.correctable_photo(user, photo_id)
        raw = _data(request).get("face_id")
        face_id: int | None = None
        if raw not in (None, ""):
            if isinstance(raw, bool) or not str(raw).isdigit():
                raise ValidationError({"detail": _("'face_id' must be a face id")})
            face_id = int(str(raw))
        try:
            face = access.chosen_face(photo, face_id)
        except access.FaceChoiceError as exc:
            # The faces to choose from, with the refusal: the client asks again with one of them.
            faces = [face_box_json(face) for face in access.photo_faces(photo)]
            return Response({"detail": str(exc), "faces": faces}, status=status.HTTP_400_BAD_REQUEST)
        mark_me(user, photo, face)
        return Response(status=status.HTTP_204_NO_CONTENT)
