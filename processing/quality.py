"""How well an event's faces could be matched: the photographer's honest numbers.

`event_quality_report(event)` answers, for the event's faces as stored now:

- ``faces_found``: faces detected in the event's photos;
- ``faces_matched``: faces that went to a guest (one per guest and photo);
- ``faces_unclaimed`` / ``unclaimed_groups``: faces of people seen in two
  photos or more whom no guest claimed (people who have not enrolled, or
  guests the matching missed), and how many such people;
- ``faces_unusable``: faces too small or blurry to be matched at all;
  ``faces_weak``: faces matched only on stronger evidence;
- ``matches`` and ``weak_matches``: matches decided on weak evidence, a weak
  face or a mean distance to the guest's group near the bar;
- ``answers_me`` / ``answers_not_me`` / ``guests_who_answered``: the guests'
  corrections ("that's me", "not me", from the "Is this you?" questions or a
  photo's page), which the matching keeps as constraints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db.models import Count, Q

from gallery.models import EMBEDDING_DTYPE, CorrectionKind, Face, Match, MatchCorrection, Membership, Selfie
from processing.matching import (
    DESCRIPTOR_SIZE,
    UNUSABLE_QUALITY,
    WEAK_QUALITY,
    distance_to_similarity,
    unclaimed_groups,
)

if TYPE_CHECKING:
    from gallery.models import Event


def weak_similarity() -> float:
    """Matches below this similarity were decided on a mean distance in the upper half of the allowed range."""
    halfway = (settings.FACE_MATCH_THRESHOLD + settings.FACE_MATCH_GROUP_THRESHOLD) / 2
    return float(distance_to_similarity(halfway))


def event_quality_report(event: Event) -> dict[str, Any]:
    """The event's face and match counts; see the module docstring for each key.

    Shape: {"event": id, "faces_found", "faces_matched", "faces_unclaimed",
    "unclaimed_groups", "faces_unusable", "faces_weak", "matches",
    "weak_matches", "guests_with_selfie", "answers_me", "answers_not_me",
    "guests_who_answered": int, "weak_similarity": float}.
    """
    rows = list(Face.objects.filter(event=event).values_list("id", "photo_id", "embedding", "quality"))
    matched_faces = set(Match.objects.filter(event=event).values_list("face_id", flat=True))
    qualities = np.array([r[3] for r in rows], np.float64)
    unusable = int((qualities < UNUSABLE_QUALITY).sum())
    weak = int(((qualities >= UNUSABLE_QUALITY) & (qualities < WEAK_QUALITY)).sum())

    # People seen in several photos whom no guest claimed: usable, unmatched faces grouped.
    free = [r for r in rows if r[0] not in matched_faces and r[2] is not None and r[3] >= WEAK_QUALITY]
    vectors = np.frombuffer(b"".join(bytes(r[2] or b"") for r in free), dtype=EMBEDDING_DTYPE).reshape(
        len(free), DESCRIPTOR_SIZE
    )
    photos = np.array([r[1] for r in free], np.int64)
    grouped, groups = unclaimed_groups(vectors, photos, settings.FACE_MATCH_GROUP_THRESHOLD)

    bar = weak_similarity()
    matches = list(Match.objects.filter(event=event).values_list("similarity", "face__quality"))
    weak_matches = sum(1 for similarity, quality in matches if similarity < bar or quality < WEAK_QUALITY)
    members = Membership.objects.filter(event=event).values_list("user_id", flat=True)
    with_selfie = Selfie.objects.filter(user_id__in=members).values("user_id").distinct().count()
    answers = MatchCorrection.objects.filter(event=event).aggregate(
        me=Count("id", filter=Q(kind=CorrectionKind.ME)),
        not_me=Count("id", filter=Q(kind=CorrectionKind.NOT_ME)),
        guests=Count("user", distinct=True),
    )
    return {
        "event": event.pk,
        "faces_found": len(rows),
        "faces_matched": len(matched_faces),
        "faces_unclaimed": grouped,
        "unclaimed_groups": groups,
        "faces_unusable": unusable,
        "faces_weak": weak,
        "matches": len(matches),
        "weak_matches": weak_matches,
        "guests_with_selfie": with_selfie,
        "answers_me": answers["me"],
        "answers_not_me": answers["not_me"],
        "guests_who_answered": answers["guests"],
        "weak_similarity": round(bar, 4),
    }
