"""my-photos from the cache vs uncached, side by side, against a live gunicorn.

Builds a throwaway installation with one event of --photos processed photos of
which --mine show the attendee, then times GET /api/my-photos:

- cached: the same request again (the entry is valid until the event changes);
- uncached: the event's content version is bumped before each request (what a
  newly processed photo or a selfie change does), so every request is a miss.

It also checks that a newly matched photo shows on the very next request, and
that 61 requests within a minute give exactly one 429 with the default limit.

    .venv/bin/python bench/my_photos_cache.py [--requests 200] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.harness import Stack, auth, django_setup, make_user, ms, out, percentile, ratio, verdict

BAR_CACHED_MEDIAN_S = 0.020


def build_event(photos: int, mine: int) -> tuple[int, str, int]:
    """An event with processed photos and matches; returns (event id, attendee token, a spare photo id)."""
    from gallery.models import Event, Face, Match, Membership, Photo, PhotoStatus

    owner, _ = make_user("bench-owner", photographer=True)
    attendee, token = make_user("bench-attendee")
    event = Event.objects.create(owner=owner, name="cache bench")
    Membership.objects.create(user=attendee, event=event)
    rows = Photo.objects.bulk_create(
        Photo(event=event, filename=f"{i}.jpg", sha256=f"{i:064x}", format="JPEG", status=PhotoStatus.DONE)
        for i in range(photos + 1)
    )
    faces = Face.objects.bulk_create(
        Face(photo=p, event=event, left=0.1, top=0.1, width=0.2, height=0.2) for p in rows[:mine]
    )
    Match.objects.bulk_create(
        Match(user=attendee, event=event, photo_id=f.photo_id, face=f, similarity=0.9 - i / 10_000)
        for i, f in enumerate(faces)
    )
    return event.pk, token, rows[-1].pk


def time_requests(session: requests.Session, url: str, count: int, before: object = None) -> list[float]:
    durations = []
    for _ in range(count):
        if callable(before):
            before()
        started = time.perf_counter()
        response = session.get(url, timeout=10)
        durations.append(time.perf_counter() - started)
        response.raise_for_status()
    return durations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--mine", type=int, default=120)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()

    with Stack(database=args.database) as stack:
        stack.prepare()
        django_setup(stack)
        from django.db.models import F

        from gallery.models import Event, Face, Match

        event_id, token, spare_photo = build_event(args.photos, args.mine)
        web = stack.start_web(RATE_LIMIT_MY_PHOTOS="100000/m")
        session = requests.Session()
        session.headers.update(auth(token))
        url = f"{web.url}/api/my-photos?event={event_id}"

        def invalidate() -> None:
            Event.objects.filter(pk=event_id).update(content_version=F("content_version") + 1)

        time_requests(session, url, 10)
        # Interleave rounds so that machine noise hits both sides alike.
        cached: list[float] = []
        uncached: list[float] = []
        for _ in range(max(1, args.requests // 20)):
            uncached += time_requests(session, url, 20, invalidate)
            time_requests(session, url, 1)
            cached += time_requests(session, url, 20)
        out(f"my-photos, {args.mine} of {args.photos} photos, {args.database}, {len(cached)} requests each")
        for name, values in (("uncached (baseline)", uncached), ("cached", cached)):
            out(f"  {name:20} p50 {ms(percentile(values, 50))}  p95 {ms(percentile(values, 95))}")
        median_cached = percentile(cached, 50)
        out(f"  cached / uncached p50 ratio: {ratio(median_cached, percentile(uncached, 50))}")
        out(f"  {verdict(median_cached < BAR_CACHED_MEDIAN_S)} cached median under {ms(BAR_CACHED_MEDIAN_S)}")

        # A new match (as processing writes it, with its version bump) shows at once.
        face = Face.objects.create(photo_id=spare_photo, event_id=event_id, left=0, top=0, width=0.1, height=0.1)
        attendee_id = Match.objects.filter(event_id=event_id).values_list("user_id", flat=True)[0]
        Match.objects.create(user_id=attendee_id, event_id=event_id, photo_id=spare_photo, face=face, similarity=0.99)
        invalidate()
        shown = spare_photo in [p["id"] for p in session.get(url, timeout=10).json()["photos"]]
        out(f"  {verdict(shown)} a new photo shows on the very next request")
        web.stop()

        limited = stack.start_web()
        statuses = [
            session.get(f"{limited.url}/api/my-photos?event={event_id}", timeout=10).status_code for _ in range(61)
        ]
        too_many = statuses.count(429)
        out(f"  {verdict(too_many == 1 and statuses[-1] == 429)} 61 requests in a minute: {too_many} answered 429")
        return 0 if median_cached < BAR_CACHED_MEDIAN_S and shown and too_many == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
