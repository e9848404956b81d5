"""Queue tasks that email attendees: the digest of new photos and sign-in links.

Nothing here runs in a request: pages and the API ask through
processing.services, and the pipeline calls `schedule_match_alerts` after it
stored matches. Every step may run twice and does no harm:

- `schedule_match_alerts` marks the attendee's `AlertSettings.scheduled_for`
  with a conditional update, so a burst of matches schedules one digest task,
  due ALERT_BATCH_DELAY seconds from now and at least ALERT_MIN_INTERVAL
  minutes after the last digest;
- `send_match_digest` clears the mark (the claim), records an `AlertDelivery`
  with what is new and moves the watermark, in one transaction; then, outside
  it, adds how many of the attendee's matches they are asked "Is this you?"
  about, so that the email reminds them, and sends;
- `deliver_alert` claims the delivery by status, sends it outside any
  transaction, and on failure retries with backoff up to ALERT_MAX_ATTEMPTS;
  staff see every delivery and its error in the admin.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from datetime import datetime, timedelta

from anymail.exceptions import AnymailError
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from gallery.alerts import alerts_open, digest_message, pending_digest, sign_in_messages
from gallery.models import AlertDelivery, AlertSettings, AlertStatus, Event
from processing.backoff import scheduled_retry_delay
from processing.corrections import faces_to_review

logger = logging.getLogger("processing.alerts")

# What sending can raise: SMTP refusals, connection errors and timeouts (OSError), provider errors.
SEND_ERRORS = (smtplib.SMTPException, OSError, AnymailError)

SEND_MATCH_DIGEST = "processing.alerts.send_match_digest"
DELIVER_ALERT = "processing.alerts.deliver_alert"
SEND_SIGN_IN_LINK = "processing.alerts.send_sign_in_link"
# A digest mark this much older than its due time lost its task (a purged
# queue, a deleted schedule): the next match schedules a new one.
LOST_TASK_GRACE = timedelta(hours=1)
RETRY_CAP_SECONDS = 3600.0
# An email says how many questions wait, up to this; the page asks them a few at a time.
QUESTIONS_COUNTED = 20


def _run_at(func: str, arg: int, due: datetime, name: str) -> None:
    """Run the task `func(arg)` now or, through a one-off schedule, at `due`."""
    if due <= timezone.now():
        async_task(func, arg, task_name=name, group="alerts")
        return
    schedule(
        func,
        arg,
        name=name,
        schedule_type=Schedule.ONCE,
        repeats=-1,  # a ONCE schedule deletes itself after running
        next_run=due,
    )


def schedule_match_alerts(user_ids: Iterable[int], event_id: int) -> int:
    """Schedule a digest for those of `user_ids` who want news of `event_id`; returns how many were scheduled.

    Called after matches of these users were stored. Cheap when nobody wants
    alerts (one query), and idempotent: an attendee whose digest is already
    scheduled is left alone, since the digest counts what is new when it runs.
    """
    ids = sorted(set(user_ids))
    if not ids:
        return 0
    now = timezone.now()
    free = Q(scheduled_for__isnull=True) | Q(scheduled_for__lt=now - LOST_TASK_GRACE)
    candidates = list(
        AlertSettings.objects.filter(free, user_id__in=ids, enabled=True)
        .exclude(user__email="")
        .values_list("user_id", "last_sent_at")
    )
    if not candidates:
        return 0
    event = Event.objects.filter(pk=event_id).first()
    if event is None or not alerts_open(event, now):
        return 0
    scheduled = 0
    for user_id, last_sent_at in candidates:
        due = now + timedelta(seconds=settings.ALERT_BATCH_DELAY)
        if last_sent_at is not None:
            due = max(due, last_sent_at + timedelta(minutes=settings.ALERT_MIN_INTERVAL))
        if AlertSettings.objects.filter(free, user_id=user_id).update(scheduled_for=due):
            _run_at(SEND_MATCH_DIGEST, user_id, due, name=f"alert-digest-{user_id}-{int(due.timestamp())}")
            scheduled += 1
    return scheduled


def send_match_digest(user_id: int) -> str:
    """Task: email the attendee what is new since their last digest; returns what happened."""
    now = timezone.now()
    with transaction.atomic():
        # The claim: a duplicate run of this task, or one that comes early, finds no due mark.
        if not AlertSettings.objects.filter(user_id=user_id, scheduled_for__lte=now).update(scheduled_for=None):
            return "skipped"
        digest = pending_digest(user_id, now)
        if digest is None:
            return "nothing new"
        delivery = AlertDelivery.objects.create(
            user_id=user_id,
            email=digest.email,
            photo_count=digest.total,
            events={str(event_id): count for event_id, count in digest.counts.items()},
        )
        AlertSettings.objects.filter(user_id=user_id).update(notified_until=digest.until, last_sent_at=now)
    questions = questions_waiting(user_id, digest.counts)
    if questions:
        AlertDelivery.objects.filter(pk=delivery.pk).update(questions=questions)
    return deliver_alert(delivery.pk)


def questions_waiting(user_id: int, event_ids: Iterable[int]) -> dict[str, int]:
    """Per event id (as a string, the JSON key), how many of the attendee's matches they are asked "Is this you?" about.

    Only the doubtful matches count: photos the attendee already sees, in every
    kind of event. Events without one are left out.
    """
    waiting: dict[str, int] = {}
    for event in Event.objects.filter(pk__in=list(event_ids)).order_by("pk"):
        count = len(faces_to_review(user_id, event, limit=QUESTIONS_COUNTED, missed=False))
        if count:
            waiting[str(event.pk)] = count
    return waiting


def deliver_alert(delivery_id: int) -> str:
    """Task: send one recorded digest; on failure retry it later with backoff, or give up."""
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, status__in=[AlertStatus.PENDING, AlertStatus.RETRYING]
    ).update(status=AlertStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=None)
    if not claimed:
        return "skipped"
    delivery = AlertDelivery.objects.get(pk=delivery_id)
    if not AlertSettings.objects.filter(user_id=delivery.user_id, enabled=True).exists():
        # Unsubscribed between the digest and its sending: nothing goes out.
        AlertDelivery.objects.filter(pk=delivery_id).update(status=AlertStatus.FAILED, error="Unsubscribed")
        return "unsubscribed"
    try:
        digest_message(delivery).send()
    except SEND_ERRORS as exc:
        # The delivery records the reason and is tried again.
        return _retry_or_fail(delivery, f"{type(exc).__name__}: {exc}")
    AlertDelivery.objects.filter(pk=delivery_id).update(status=AlertStatus.SENT, sent_at=timezone.now(), error="")
    logger.info("Sent digest %s (%d photos) to user %s", delivery_id, delivery.photo_count, delivery.user_id)
    return "sent"


def _retry_or_fail(delivery: AlertDelivery, reason: str) -> str:
    if delivery.attempts >= settings.ALERT_MAX_ATTEMPTS:
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            status=AlertStatus.FAILED, error=f"{reason} (gave up after {delivery.attempts} attempts)"[:2000]
        )
        logger.error("Digest %s to user %s failed for good: %s", delivery.pk, delivery.user_id, reason)
        return "failed"
    delay = scheduled_retry_delay(delivery.attempts, settings.ALERT_RETRY_BASE_DELAY, cap=RETRY_CAP_SECONDS)
    due = timezone.now() + timedelta(seconds=delay)
    AlertDelivery.objects.filter(pk=delivery.pk, status=AlertStatus.SENDING).update(
        status=AlertStatus.RETRYING, error=reason[:2000], next_attempt_at=due
    )
    _run_at(DELIVER_ALERT, delivery.pk, due, name=f"alert-delivery-{delivery.pk}-{delivery.attempts}")
    logger.warning("Digest %s to user %s will retry at %s: %s", delivery.pk, delivery.user_id, due, reason)
    return "retrying"


def retry_alert_delivery(delivery_id: int) -> bool:
    """Try a failed (or stuck) delivery again at once, with a fresh count of attempts; False if it was sent."""
    updated = (
        AlertDelivery.objects.filter(pk=delivery_id)
        .exclude(status=AlertStatus.SENT)
        .update(status=AlertStatus.RETRYING, attempts=0, next_attempt_at=None)
    )
    if updated:
        async_task(DELIVER_ALERT, delivery_id, task_name=f"alert-delivery-{delivery_id}-again", group="alerts")
    return bool(updated)


def send_sign_in_link(email: str, next_path: str = "", language: str = "") -> int:
    """Task: email a sign-in link to every account with this address; returns how many were sent.

    Not retried: the link expires within minutes, and asking again is one click.
    """
    sent = 0
    for message in sign_in_messages(email, next_path, language):
        try:
            message.send()
        except SEND_ERRORS:
            logger.warning("A sign-in link could not be sent", exc_info=True)
            continue
        sent += 1
    return sent


def send_sign_in_link_later(email: str, next_path: str = "") -> None:
    """Queue `send_sign_in_link` in the language active now (the request's).

    The request answers the same, at once, whether the address is known or not.
    """
    language = translation.get_language() or ""
    async_task(SEND_SIGN_IN_LINK, email, next_path, language, task_name="sign-in-link", group="alerts")
