"""Guests: attendees who came in through an event's code, without a username or password.

A guest is an ordinary user whose password is unusable; the session that
`start_guest_session` opens is what keeps them signed in (GUEST_SESSION_DAYS).
They may add an email address (sign-in links, alerts) and set a password later.
Shared by the pages and the API, like `gallery.access`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from gallery.models import CODE_ALPHABET, AlertSettings, Event, Membership, profile_for

GUEST_USERNAME_PREFIX = "guest-"
GUEST_USERNAME_LENGTH = 8
# The longest code `Event.code` holds: longer input cannot name an event.
MAX_CODE_LENGTH = 16
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


def is_guest(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` is signed in without a password of their own."""
    return bool(user.is_authenticated and not user.has_usable_password())


def create_guest() -> User:
    """A new attendee account with a generated username and no usable password."""
    user_model = get_user_model()
    for _attempt in range(5):
        suffix = "".join(secrets.choice(CODE_ALPHABET) for _ in range(GUEST_USERNAME_LENGTH)).lower()
        try:
            with transaction.atomic():
                user: User = user_model.objects.create_user(username=GUEST_USERNAME_PREFIX + suffix, password=None)
        except IntegrityError:
            continue
        profile_for(user)
        return user
    raise RuntimeError("could not find a free guest username")


def guest_session_seconds() -> int:
    """How long a guest's session lasts without a visit (GUEST_SESSION_DAYS)."""
    return int(timedelta(days=settings.GUEST_SESSION_DAYS).total_seconds())


def start_guest_session(request: HttpRequest, user: User) -> None:
    """Sign `user` in on this device for GUEST_SESSION_DAYS (the session cookie is HttpOnly)."""
    login(request, user, backend=PASSWORD_BACKEND)
    request.session.set_expiry(guest_session_seconds())


@dataclass(frozen=True)
class JoinTarget:
    """What an event code names for one visitor: the event (None if no event has it), and membership."""

    event: Event | None
    is_member: bool


def join_target(user: AbstractBaseUser | AnonymousUser, code: str) -> JoinTarget:
    """The event a code names and whether `user` is in it, in one query whatever the code.

    An unknown code and an existing one cost the same query and the same work
    afterwards, so that timing tells nothing about which codes exist.
    """
    normalized = code.strip().upper()[:MAX_CODE_LENGTH]
    # No account has id 0: a visitor's query has the same shape as a user's.
    user_id: int = user.pk if user.is_authenticated else 0
    joined = Membership.objects.filter(event=OuterRef("pk"), user_id=user_id)
    event = Event.objects.filter(code=normalized).annotate(joined=Exists(joined)).order_by().first()
    return JoinTarget(event=event, is_member=bool(event is not None and event.joined))  # type: ignore[attr-defined]


# --- Email and alerts ------------------------------------------------------------


@dataclass(frozen=True)
class Notifications:
    """The attendee's email address ('' for none) and whether alerts are on."""

    email: str
    alerts: bool


def notifications(user: User) -> Notifications:
    """Where `user` stands on email and alerts."""
    enabled = AlertSettings.objects.filter(user=user).values_list("enabled", flat=True).first()
    return Notifications(email=user.email, alerts=bool(enabled and user.email))


def clean_email(raw: object) -> str:
    """A normalised email address, '' for none; `ValidationError` with a message for anything else."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValidationError(_("Enter a valid email address."))
    email = raw.strip()
    if not email:
        return ""
    if len(email) > 254:
        raise ValidationError(_("Enter a valid email address."))
    validate_email(email)
    return get_user_model().objects.normalize_email(email)


def set_notifications(user: User, email: str, alerts: bool) -> Notifications:
    """Store the address (already cleaned) and the alerts choice; alerts need an address.

    Turning alerts on starts the news from now: photos found before are not news.
    The digests will be written in the language active now (the request's).
    """
    alerts = alerts and bool(email)
    with transaction.atomic():
        if user.email != email:
            user.email = email
            user.save(update_fields=["email"])
        current, _created = AlertSettings.objects.select_for_update().get_or_create(user=user)
        if alerts and not current.enabled:
            current.notified_until = timezone.now()
        current.enabled = alerts
        current.language = get_language() or ""
        current.save(update_fields=["enabled", "notified_until", "language"])
    return Notifications(email=email, alerts=alerts)


def stop_alerts(user_id: int) -> bool:
    """Turn the attendee's alerts off; False if they were off already (or there is no such attendee)."""
    return bool(AlertSettings.objects.filter(user_id=user_id, enabled=True).update(enabled=False))
