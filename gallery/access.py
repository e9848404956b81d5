"""Who may see and change what, and the queries behind it: one layer for the API and the pages.

The policy (docs/SECURITY.md): an object the caller may not know about is a 404,
so that ids do not leak; a known object the caller may not change is a 403.
An event is known to its owner, its co-photographers, its members and staff
(`Event.can_view`); the owner and staff change it, co-photographers upload to
it and follow it (`contributor_event`); a
photo is known to whoever may see it (`can_see_photo`). Lookups raise Django's
`Http404` and `PermissionDenied`: the pages render them as error pages, and the
API's exception handler turns them into JSON 404 and 403.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connections, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from gallery.caching import cached
from gallery.models import (
    CoPhotographer,
    CorrectionKind,
    Event,
    EventVisibility,
    Face,
    FaceGroup,
    Match,
    MatchCorrection,
    Membership,
    Photo,
    PhotoStatus,
    Selfie,
    is_photographer,
    profile_for,
    review_cache_keys,
)
from processing.services import refresh_member_matches, review_questions

AnyUser = AbstractBaseUser | AnonymousUser


# --- Events --------------------------------------------------------------------


def _may_change(user: AnyUser, event: Event) -> bool:
    return bool(getattr(user, "is_staff", False) or event.owner_id == user.pk)


def owned_event(user: AnyUser, event_id: int) -> Event:
    """The event `user` owns (or any event, for staff).

    Raises `Http404` if there is no such event or `user` may not know it exists,
    `PermissionDenied` if `user` knows it (a member) but may not change it.
    Read from the database, not the event cache: the owner's pages change the event.
    """
    event = Event.objects.filter(pk=event_id).first()
    if event is None or not event.can_view(user):
        raise Http404(_("Event not found"))
    if not _may_change(user, event):
        raise PermissionDenied(_("Only the event's photographer can do this"))
    return event


def _may_contribute(user: AnyUser, event: Event) -> bool:
    return _may_change(user, event) or event.is_co_photographer(user)


def contributor_event(user: AnyUser, event_id: int) -> Event:
    """The event `user` may upload to and follow: its owner, a co-photographer, or staff.

    Raises `Http404` if there is no such event or `user` may not know it exists,
    `PermissionDenied` if `user` knows it (a member) but is none of these.
    Read from the database, not the event cache, like `owned_event`.
    """
    event = Event.objects.filter(pk=event_id).first()
    if event is None or not event.can_view(user):
        raise Http404(_("Event not found"))
    if not _may_contribute(user, event):
        raise PermissionDenied(_("Only the event's photographers can do this"))
    return event


def is_event_owner(user: AnyUser, event: Event) -> bool:
    """Whether `user` may change `event` (its settings, its co-photographers, deleting it)."""
    return _may_change(user, event)


class CannotAddPhotographer(ValueError):
    """The username does not name a photographer who could be added; the message says why."""


def co_photographers(event: Event) -> QuerySet[CoPhotographer]:
    """The event's co-photographers with their users, in the order they were added."""
    return CoPhotographer.objects.filter(event=event).select_related("user")


def add_co_photographer(event: Event, username: str) -> tuple[CoPhotographer, bool]:
    """Let the photographer named `username` upload to `event`; returns the row and whether it is new.

    Raises `CannotAddPhotographer` for an unknown user, one who is not a
    photographer, or the owner.
    """
    user = User.objects.filter(username__iexact=username.strip()).first()
    if user is None or not is_photographer(user):
        raise CannotAddPhotographer(_("No photographer with the username %(username)s") % {"username": username})
    if user.pk == event.owner_id:
        raise CannotAddPhotographer(_("The event's owner is already its photographer"))
    try:
        with transaction.atomic():
            return CoPhotographer.objects.get_or_create(event=event, user=user)
    except IntegrityError:
        # The same request, twice at once: the other one added it.
        return CoPhotographer.objects.get(event=event, user=user), False


def remove_co_photographer(event: Event, username: str) -> bool:
    """Take `username` off the event's co-photographers; False if they were not one. Their photos stay."""
    deleted, _rows = CoPhotographer.objects.filter(event=event, user__username__iexact=username).delete()
    return deleted > 0


def uploads_per_photographer(event: Event) -> list[dict[str, Any]]:
    """The event's photos per uploader, most first: ``{"username", "total", "done", "failed"}``.

    Photos whose uploader's account is gone count under an empty username.
    """
    rows = (
        Photo.objects.filter(event=event)
        .values("uploaded_by__username")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(status=PhotoStatus.DONE)),
            failed=Count("id", filter=Q(status=PhotoStatus.FAILED)),
        )
        .order_by("-total", "uploaded_by__username")
    )
    return [
        {
            "username": row["uploaded_by__username"] or "",
            "total": row["total"],
            "done": row["done"],
            "failed": row["failed"],
        }
        for row in rows
    ]


def member_event(user: AnyUser, event_id: int) -> Event:
    """The event whose photos `user` may see: owner, member or staff; `Http404` for anyone else."""
    event = Event.cached(event_id)
    if event is None or not event.can_view(user):
        raise Http404(_("Event not found"))
    return event


def event_by_code(code: str) -> Event | None:
    """The event a join code names (case-insensitive), if any: knowing the code lets one join."""
    return Event.objects.filter(code=code.strip().upper()).first()


def joined_events(user: AnyUser) -> QuerySet[Event]:
    """The events `user` joined as a guest."""
    if not user.is_authenticated:
        return Event.objects.none()
    return Event.objects.filter(memberships__user_id=user.pk)


def is_member(user: AnyUser, event: Event) -> bool:
    """Whether `user` joined `event` as a guest."""
    return user.is_authenticated and Membership.objects.filter(user_id=user.pk, event=event).exists()


def photographer_events(user: AnyUser) -> QuerySet[Event]:
    """The events `user` owns, newest first."""
    return Event.objects.filter(owner_id=user.pk)


def studio_events(user: AnyUser) -> QuerySet[Event]:
    """The events `user` photographs: those they own and those they were added to, newest first."""
    return Event.objects.filter(Q(owner_id=user.pk) | Q(co_photographers__user_id=user.pk)).distinct()


def join_event(user: User, event: Event) -> Membership:
    """Make `user` a member of `event` and bring their matches up to date."""
    membership, created = Membership.objects.get_or_create(user=user, event=event)
    if created and profile_for(user).has_consented:
        refresh_member_matches(user, event)
    return membership


def set_visibility(event: Event, visibility: str) -> None:
    """Change what guests of `event` can browse; cached photo lists follow at once."""
    event.visibility = visibility
    event.save(update_fields=["visibility"])
    event.bump_version()


def photo_counts(event: Event) -> dict[str, int]:
    """The event's photos per status, with their total."""
    counts = dict(
        Photo.objects.filter(event=event).values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    result = {s.value: counts.get(s.value, 0) for s in PhotoStatus}
    return {"total": sum(result.values()), **result}


def event_photos(event: Event, status: str | None = None) -> QuerySet[Photo]:
    """All of the event's photos, for its photographer, newest first; only `status` ones if given."""
    photos = Photo.objects.filter(event=event).order_by("-created_at", "-id")
    return photos.filter(status=status) if status else photos


# --- Photos --------------------------------------------------------------------


def sees_only_own_photos(user: AnyUser, event: Event) -> bool:
    """Whether `user` browses only the photos they are in ("own photos only" events)."""
    return event.visibility == EventVisibility.OWN and not _may_change(user, event)


def needs_live_selfie(user: AnyUser, event: Event) -> bool:
    """Whether `user`'s photos of `event` stay hidden until they take a live selfie.

    In an "own photos only" event a still selfie could be anyone's photo, so a
    guest sees the photos they are in only once their current (newest) selfie
    passed the live check (processing/liveness.py). Not cached: one query, on
    such events only, and it must follow a new selfie at once.
    """
    if not sees_only_own_photos(user, event):
        return False
    if not user.is_authenticated:
        return True
    newest = Selfie.objects.filter(user_id=int(user.pk)).order_by("-created_at", "-pk")
    return newest.values_list("live_verified_at", flat=True).first() is None


def visible_photos(user: AnyUser, event: Event) -> QuerySet[Photo]:
    """The processed photos of `event` that `user` may browse, newest first."""
    photos = Photo.objects.filter(event=event, status=PhotoStatus.DONE).order_by("-created_at", "-id")
    if sees_only_own_photos(user, event):
        if needs_live_selfie(user, event):
            return photos.none()
        # A photo the guest hid with "not me" stays theirs to see, so that they can undo it.
        hidden = MatchCorrection.objects.filter(Q(user_id=user.pk), event=event, kind=CorrectionKind.NOT_ME)
        photos = photos.filter(Q(matches__user_id=user.pk) | Q(pk__in=hidden.values("photo_id"))).distinct()
    return photos


def visible_photo_ids(user: AnyUser, event: Event) -> list[int]:
    """Ids of `visible_photos`, newest first; cached per event (per user if restricted)."""
    if needs_live_selfie(user, event):
        return []
    viewer = user.pk if sees_only_own_photos(user, event) else "all"
    key = f"all-photos:{event.pk}:{event.content_version}:{event.visibility}:{viewer}"
    return cached(
        key,
        settings.CACHE_TTL_EVENT_DATA,
        lambda: list(visible_photos(user, event).values_list("id", flat=True)),
    )


def can_see_photo(user: AnyUser, photo: Photo) -> bool:
    """Whether `user` may see `photo` (and so know that it exists)."""
    event = photo.event
    if not event.can_view(user):
        return False
    if _may_change(user, event):
        return True
    # Where guests browse every photo, `visible_photos` is the event's done
    # photos, which `photo` is: no query. Each download asks this first.
    if photo.status == PhotoStatus.DONE and (
        not sees_only_own_photos(user, event) or visible_photos(user, event).filter(pk=photo.pk).exists()
    ):
        return True
    # Last, so that guests' photo requests spend no query on it.
    return event.is_co_photographer(user)


def visible_photo(user: AnyUser, photo_id: int) -> Photo:
    """The photo, with its event, if `user` may see it; `Http404` otherwise."""
    photo = Photo.objects.select_related("event").filter(pk=photo_id).first()
    if photo is None or not can_see_photo(user, photo):
        raise Http404(_("Photo not found"))
    return photo


# What a download reads of its photo: integers and text, which come from every
# database as Python wants them, so the row needs none of the ORM's converters.
_DOWNLOAD_FIELDS = {
    "id",
    "event_id",
    "status",
    "original",
    "thumbnail",
    "web",
    "watermarked",
    "format",
    "filename",
    "size_bytes",
}


def _photo_for_download(photo_id: int) -> Photo | None:
    """The photo with the fields a download reads (any other loads when asked for), without its event.

    None if there is none. The ORM spends ten times longer building
    `Photo.objects.filter(pk=...)` than the database takes to answer it; this
    is the same model instance from one plain query by primary key.
    """
    connection = connections[Photo.objects.db]
    quote = connection.ops.quote_name
    # In the model's order, which `from_db` expects.
    fields = [field for field in Photo._meta.concrete_fields if field.attname in _DOWNLOAD_FIELDS]
    columns = ", ".join(quote(str(field.column)) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {quote(Photo._meta.db_table)} WHERE {quote('id')} = %s", [photo_id])
        row = cursor.fetchone()
    return Photo.from_db(connection.alias, [field.attname for field in fields], row) if row else None


def downloadable_photo(user: AnyUser, photo_id: int) -> Photo:
    """`visible_photo` for the media requests: the event read through the cache, as the photo lists read it.

    Every download (a thumbnail, the web size, a full size) asks this before
    the proxy sends the file, hundreds of times a second when guests scroll:
    the photo is one query by primary key, its event, the membership and the
    token come from the cache (`Event.cached`, `Event.can_view`, the token
    authentication). `Http404` if there is no such photo or `user` may not see it.
    """
    photo = _photo_for_download(photo_id)
    event = Event.cached(photo.event_id) if photo is not None else None
    if photo is None or event is None:
        raise Http404(_("Photo not found"))
    photo.event = event
    if not can_see_photo(user, photo):
        raise Http404(_("Photo not found"))
    return photo


def owned_photo(user: AnyUser, photo_id: int) -> Photo:
    """A photo of an event `user` owns (any photo, for staff).

    `Http404` if there is no such photo or `user` may not see it,
    `PermissionDenied` if `user` sees it but may not change it.
    """
    photo = visible_photo(user, photo_id)
    if not _may_change(user, photo.event):
        raise PermissionDenied(_("Only the event's photographer can do this"))
    return photo


def is_my_photo(user: User, photo: Photo) -> bool:
    """Whether `user` was found in `photo`."""
    return Match.objects.filter(user=user, photo=photo).exists()


# --- My photos -----------------------------------------------------------------


def my_matches(user: User, event: Event) -> QuerySet[Match]:
    """The attendee's matches among the processed photos of `event`, best first."""
    if needs_live_selfie(user, event):
        return Match.objects.none()
    return Match.objects.filter(user=user, event=event, photo__status=PhotoStatus.DONE).order_by(
        "-similarity", "photo_id"
    )


@dataclass(frozen=True)
class MyPhoto:
    """One photo the attendee is in, and their face in it."""

    photo_id: int
    similarity: float
    finished_at: datetime.datetime | None
    face_id: int


def my_photo_list(user: User, event: Event) -> list[MyPhoto]:
    """The attendee's photos in `event`, best match first; cached."""
    if needs_live_selfie(user, event):
        return []
    key = f"my-photos:v2:{event.pk}:{event.content_version}:{user.pk}"
    return cached(
        key,
        settings.CACHE_TTL_USER_PHOTOS,
        lambda: [
            MyPhoto(*row)
            for row in my_matches(user, event).values_list("photo_id", "similarity", "photo__finished_at", "face_id")
        ],
    )


# How long the "Is this you?" questions are kept. They read the event's
# descriptors, so they are not recomputed at every new photo of a live event
# (the content version), only after this long or when the guest answers or
# changes their selfie (gallery.signals drops them then).
REVIEW_REFRESH_SECONDS = 60


def photos_to_review(user: User, event: Event) -> list[tuple[int, int]]:
    """The faces the guest is asked "Is this you?" about, as (photo id, face id), in asking order; cached."""
    if needs_live_selfie(user, event):
        return []
    # A stranger's photo never opens in "own photos only" events: only the guest's own matches are asked about.
    missed = not sees_only_own_photos(user, event)
    key = review_cache_keys(event.pk, user.pk)[int(missed)]
    return cached(key, REVIEW_REFRESH_SECONDS, lambda: review_questions(user, event, missed=missed))


def my_photo_files(user: User, event: Event) -> list[Photo]:
    """The attendee's photos in `event` as rows with their files, best match first (for downloads)."""
    return [match.photo for match in my_matches(user, event).select_related("photo")]


def found_in_count(user: User, event: Event | None) -> int:
    """How many photos the attendee is in: in `event` if they joined it, else across all events."""
    if event is not None and is_member(user, event):
        return my_matches(user, event).count()
    return Match.objects.filter(user=user, photo__status=PhotoStatus.DONE).values("photo").distinct().count()


def face_data_summary(user: User) -> dict[str, Any]:
    """What face data is held about `user`: consent, selfies, matches and the events they are in."""
    matches = Match.objects.filter(user=user)
    return {
        "profile": profile_for(user),
        "selfies": user.selfies.count(),
        "matches": matches.count(),
        "events": matches.values("event").distinct().count(),
    }


def memberships_count(user: User) -> int:
    """How many events `user` joined."""
    return Membership.objects.filter(user=user).count()


# --- People of an event (processing/people.py stores the groups) ----------------


def event_people(event: Event) -> QuerySet[FaceGroup]:
    """The event's face groups, largest first, each with `enrolled`: whether a guest's matches fall in it."""
    return _with_enrolled(FaceGroup.objects.filter(event=event, face_count__gt=0)).order_by("-photo_count", "id")


def _with_enrolled(groups: QuerySet[FaceGroup]) -> QuerySet[FaceGroup]:
    return groups.annotate(enrolled=Exists(Match.objects.filter(face__group_id=OuterRef("pk"))))


def event_face_group(event: Event, group_id: int) -> FaceGroup:
    """One of the event's face groups, with `enrolled`; `Http404` if the event has no such group."""
    group = _with_enrolled(FaceGroup.objects.filter(event=event, pk=group_id)).first()
    if group is None:
        raise Http404(_("Group not found"))
    return group


def event_face(event: Event, face_id: int) -> Face:
    """One of the event's faces; `Http404` if the event has no such face."""
    face = Face.objects.filter(event=event, pk=face_id).select_related("photo").first()
    if face is None:
        raise Http404(_("Face not found"))
    return face


def owned_face(user: AnyUser, face_id: int) -> Face:
    """A face of a photo `user` owns (see `owned_photo`), with its photo."""
    face = Face.objects.filter(pk=face_id).select_related("photo").first()
    if face is None:
        raise Http404(_("Face not found"))
    owned_photo(user, face.photo_id)
    return face


# --- Corrections and the photo page ---------------------------------------------


def correctable_photo(user: User, photo_id: int) -> Photo:
    """A photo `user` may say "not me" or "that's me" about: one they see, in an event they joined.

    `Http404` if they may not see it; `PermissionDenied` if they see it but
    are not a guest of its event (its photographer, staff) or have not agreed
    to face matching.
    """
    photo = visible_photo(user, photo_id)
    if not is_member(user, photo.event):
        raise PermissionDenied(_("Only the event's guests can do this"))
    if not profile_for(user).has_consented:
        raise PermissionDenied(_("Agree to face matching first"))
    return photo


def photo_faces(photo: Photo) -> list[Face]:
    """The faces found in `photo`, left to right."""
    return list(Face.objects.filter(photo=photo).order_by("left", "top", "pk"))


def photo_face(user: AnyUser, photo_id: int, face_id: int) -> tuple[Photo, Face]:
    """A face of a photo `user` may see; `Http404` otherwise."""
    photo = visible_photo(user, photo_id)
    face = Face.objects.filter(pk=face_id, photo=photo).first()
    if face is None:
        raise Http404(_("Face not found"))
    return photo, face


def hidden_photo_ids(user: User, event: Event) -> list[int]:
    """The photos of `event` the attendee said they are not in, most recently hidden first."""
    return list(
        MatchCorrection.objects.filter(
            user=user, event=event, kind=CorrectionKind.NOT_ME, photo__status=PhotoStatus.DONE
        )
        .order_by("-created_at", "-pk")
        .values_list("photo_id", flat=True)
    )


def correction_kind(user: User, photo: Photo) -> str | None:
    """The attendee's correction on `photo` ("not_me" or "me"), if any."""
    return MatchCorrection.objects.filter(user=user, photo=photo).values_list("kind", flat=True).first()


# The photo lists a photo page can step through.
PHOTO_LISTS = ("mine", "all")


def photo_list_ids(user: User, event: Event, listing: str) -> list[int]:
    """The ids of the photo list named `listing` ("mine" or "all"), in the order its page shows them."""
    if listing == "mine":
        return [mine.photo_id for mine in my_photo_list(user, event)]
    return visible_photo_ids(user, event)


def neighbours(ids: list[int], photo_id: int) -> tuple[int | None, int | None, int]:
    """The previous and next ids around `photo_id` in `ids`, and its 1-based position (0 if not there)."""
    try:
        index = ids.index(photo_id)
    except ValueError:
        return None, None, 0
    previous = ids[index - 1] if index > 0 else None
    following = ids[index + 1] if index + 1 < len(ids) else None
    return previous, following, index + 1


class FaceChoiceError(ValueError):
    """The face a "that's me" names is missing or not in the photo; the message says what to do."""


def photo_faces_by_id(photo: Photo) -> dict[int, Face]:
    """The faces of `photo` by id."""
    return {face.pk: face for face in photo_faces(photo)}


def chosen_face(photo: Photo, face_id: int | None) -> Face:
    """The face of `photo` a "that's me" names: `face_id`, or the photo's only face.

    Raises `FaceChoiceError` when the photo has no face, when it has several
    and none is named, or when `face_id` is not one of them.
    """
    faces = photo_faces(photo)
    if face_id is not None:
        for face in faces:
            if face.pk == face_id:
                return face
        raise FaceChoiceError(_("That face is not in this photo"))
    if not faces:
        raise FaceChoiceError(_("No face was found in this photo"))
    if len(faces) > 1:
        raise FaceChoiceError(_("This photo shows several people: say which face is yours"))
    return faces[0]
