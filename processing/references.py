"""Attendees' face references: what every backend matches event photos against."""

from __future__ import annotations

from collections.abc import Iterable

from gallery.models import Event, Membership, Selfie
from processing.backends.base import Reference


def event_references(event: Event, user_ids: Iterable[int] | None = None) -> list[Reference]:
    """The face references of the event's consenting members who have a selfie (of `user_ids` only, if given)."""
    members = Membership.objects.filter(event=event, user__attendee__face_consent_at__isnull=False)
    if user_ids is not None:
        members = members.filter(user_id__in=list(user_ids))
    member_ids = list(members.values_list("user_id", flat=True))
    by_user: dict[int, list[Selfie]] = {}
    for selfie in Selfie.objects.filter(user_id__in=member_ids).exclude(embedding=None, external_id=""):
        by_user.setdefault(selfie.user_id, []).append(selfie)
    return [Reference(user_id=user_id, selfies=selfies) for user_id, selfies in sorted(by_user.items())]
