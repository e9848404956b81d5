"""What the emails to attendees say: the digest of new photos, sign-in links, unsubscribing.

Only composing and deciding live here; the queue tasks in processing.alerts
send, retry and record (reached through processing.services). Links in emails
start with SITE_URL: they are written outside any request.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMessage
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

from gallery.models import AlertDelivery, AlertSettings, Event, Match, Membership, PhotoStatus

UNSUBSCRIBE_SALT = "gallery.alerts.unsubscribe"
# One email per account when several share an address; more is not a guest's case.
MAX_ACCOUNTS_PER_ADDRESS = 5


def absolute_url(path: str) -> str:
    """`path` on the public site (SITE_URL)."""
    return settings.SITE_URL + path


# --- Unsubscribing -------------------------------------------------------------


def unsubscribe_token(user_id: int) -> str:
    """The signed part of a user's unsubscribe link; it needs no session and does not expire."""
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(user_id))


def user_id_from_unsubscribe_token(token: str) -> int | None:
    """The user an unsubscribe token was made for; None if it was not made here."""
    try:
        return int(signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def unsubscribe_url(user_id: int) -> str:
    return absolute_url(reverse("gallery-unsubscribe", args=[unsubscribe_token(user_id)]))


# --- The digest ----------------------------------------------------------------


def alerts_open(event: Event, now: datetime.datetime) -> bool:
    """Whether news of `event` still goes out: until ALERT_DAYS after its date (or its creation)."""
    day = event.date or event.created_at.date()
    return now.date() <= day + datetime.timedelta(days=settings.ALERT_DAYS)


@dataclass(frozen=True)
class Digest:
    """The news for one attendee: new photos per event id, found up to `until`."""

    user_id: int
    email: str
    counts: dict[int, int]
    until: datetime.datetime

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def pending_digest(user_id: int, now: datetime.datetime) -> Digest | None:
    """What the attendee has not been told about yet, or None.

    New means matched after the watermark (`AlertSettings.notified_until`) and
    after the attendee's last visit of the event's my-photos page, in an event
    whose alerts are still open. Only attendees with an address and alerts on
    get news.
    """
    state = AlertSettings.objects.select_related("user").filter(user_id=user_id, enabled=True).first()
    if state is None or not state.user.email or not state.user.is_active:
        return None
    counts: dict[int, int] = {}
    for membership in Membership.objects.filter(user_id=user_id).select_related("event"):
        if not alerts_open(membership.event, now):
            continue
        since = state.notified_until
        if membership.last_seen_at is not None and membership.last_seen_at > since:
            since = membership.last_seen_at
        found = (
            Match.objects.filter(
                user_id=user_id,
                event=membership.event,
                photo__status=PhotoStatus.DONE,
                created_at__gt=since,
                created_at__lte=now,
            )
            .aggregate(photos=Count("photo", distinct=True))
            .get("photos")
        )
        if found:
            counts[membership.event_id] = found
    if not counts:
        return None
    return Digest(user_id=user_id, email=state.user.email, counts=counts, until=now)


def digest_message(delivery: AlertDelivery) -> EmailMessage:
    """The digest email of a recorded delivery, in the attendee's language; the same every time it is tried."""
    language = AlertSettings.objects.filter(user_id=delivery.user_id).values_list("language", flat=True).first()
    with translation.override(language or settings.LANGUAGE_CODE):
        return _digest_message(delivery)


def _digest_message(delivery: AlertDelivery) -> EmailMessage:
    counts = {int(event_id): int(count) for event_id, count in delivery.events.items()}
    events = Event.objects.in_bulk(list(counts))
    items = [
        {
            "name": events[event_id].name,
            "count": count,
            "questions": int(delivery.questions.get(str(event_id), 0)),
            "url": absolute_url(reverse("gallery-my-photos", args=[event_id])),
        }
        for event_id, count in counts.items()
        if event_id in events
    ]
    total = sum(item["count"] for item in items)  # type: ignore[misc]
    if len(items) == 1:
        subject = ngettext(
            "%(count)d new photo of you from %(event)s",
            "%(count)d new photos of you from %(event)s",
            total,
        ) % {"count": total, "event": items[0]["name"]}
    else:
        subject = ngettext("%(count)d new photo of you", "%(count)d new photos of you", total) % {"count": total}
    unsubscribe = unsubscribe_url(delivery.user_id)
    body = render_to_string(
        "gallery/email/digest.txt",
        {
            "items": items,
            "total": total,
            "unsubscribe_url": unsubscribe,
            "site_url": settings.SITE_URL,
            "interval_minutes": settings.ALERT_MIN_INTERVAL,
            "alert_days": settings.ALERT_DAYS,
        },
    )
    return EmailMessage(
        subject=subject,
        body=body,
        to=[delivery.email],
        headers={
            # RFC 8058: mail programs offer an unsubscribe button that POSTs here.
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


# --- Sign-in links -------------------------------------------------------------


def sign_in_url(user: object, next_path: str = "") -> str:
    """A single-use sign-in link for `user` that expires (django-sesame, see SESAME_* settings)."""
    # django-sesame derives its keys from SECRET_KEY when imported; this module is
    # imported while the app registry loads (the admin), before tools set one.
    from sesame.utils import get_query_string

    url = absolute_url(reverse("gallery-sign-in-link")) + get_query_string(user)
    if next_path:
        url += "&" + urlencode({"next": next_path})
    return url


def sign_in_messages(email: str, next_path: str = "", language: str = "") -> list[EmailMessage]:
    """One sign-in email per active account with this address (none for an unknown one), in `language`."""
    with translation.override(language or settings.LANGUAGE_CODE):
        return _sign_in_messages(email, next_path)


def _sign_in_messages(email: str, next_path: str) -> list[EmailMessage]:
    users = get_user_model().objects.filter(email__iexact=email, is_active=True).order_by("pk")
    messages = []
    for user in users[:MAX_ACCOUNTS_PER_ADDRESS]:
        body = render_to_string(
            "gallery/email/sign_in.txt",
            {
                "url": sign_in_url(user, next_path),
                "username": user.get_username(),
                "minutes": settings.SESAME_MAX_AGE // 60,
            },
        )
        subject = ngettext(
            "Your photoevent sign-in link (valid %(minutes)d minute)",
            "Your photoevent sign-in link (valid %(minutes)d minutes)",
            settings.SESAME_MAX_AGE // 60,
        ) % {"minutes": settings.SESAME_MAX_AGE // 60}
        messages.append(EmailMessage(subject=subject, body=body, to=[user.email]))
    return messages
