"""Drill: restart the queue cluster with 1000 photos queued.

PASS: the new cluster logs "[Startup] Photo queue initialized with X pending
jobs" (X > 0 and no more than what was left), every photo ends done, no photo
has duplicate faces, and (with the default graceful SIGTERM restart) no photo
was completed twice (a photo interrupted mid-way by the stop is redone: that is
counted and shown, not a failure).

1000 marker photos (testsupport/fakes.py backend) are uploaded through gunicorn in
requests of 100 while a first cluster runs; once --restart-after photos are
done the cluster gets SIGTERM (or SIGKILL of its whole process group with
--hard) and a second cluster is started.

    .venv/bin/python bench/drills/restart_1000.py [--photos 1000] [--hard]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from bench.harness import Stack, django_setup, make_user, out, settled, upload_photos, verdict
from bench.images import marker_png
from testsupport.markers import FAKE_BACKEND
from testsupport.waiting import wait_for

CLUSTER_ENV = {
    "FACE_BACKEND": FAKE_BACKEND,
    "PHOTO_QUEUE_WORKERS": "2",
    "PHOTO_RETRY_BASE_DELAY": "0",
    "FAKE_BACKEND_DELAY": "0.01",
}
STARTUP = re.compile(r"\[Startup\] Photo queue initialized with (\d+) pending jobs")


def run(photos: int = 1000, restart_after: int = 100, hard: bool = False, keep: bool = False) -> bool:
    """Run the drill; True when it passes."""
    with Stack(keep=keep, env={"FACE_BACKEND": FAKE_BACKEND}) as stack:
        stack.prepare()
        django_setup(stack)
        from django.db.models import Count

        from gallery.models import Event, Face, Photo, PhotoStatus

        owner, token = make_user("drill-photographer", photographer=True)
        event = Event.objects.create(owner=owner, name="restart drill")
        web = stack.start_web()
        first = stack.start_cluster(**CLUSTER_ENV)
        url = f"{web.url}/api/photographer/events/{event.pk}/upload-photos"
        try:
            upload_photos(url, token, [(f"r{i}.png", marker_png(i, [i % 5])) for i in range(photos)], 100)
        except RuntimeError as exc:
            out(f"FAIL {exc}")
            return False
        wait_for(
            lambda: Photo.objects.filter(status=PhotoStatus.DONE).count() >= restart_after,
            300,
            f"{restart_after} photos done",
        )
        if hard:
            first.kill()
        else:
            first.stop(timeout=60)
        pending = Photo.objects.exclude(status=PhotoStatus.DONE).count()
        out(f"{'killed' if hard else 'stopped'} the first cluster with {pending} of {photos} photos not done")
        started = time.monotonic()
        second = stack.start_cluster(**CLUSTER_ENV)
        wait_for(lambda: STARTUP.search(second.log) is not None, 60, "the startup line")
        match = STARTUP.search(second.log)
        announced = int(match.group(1)) if match else -1
        wait_for(lambda: settled(event.pk), 600, "the queue to drain after the restart", interval=0.5)
        drained = time.monotonic() - started

        done = Photo.objects.filter(event=event, status=PhotoStatus.DONE).count()
        duplicates = (
            Face.objects.filter(event=event).values("photo", "left", "top").annotate(n=Count("id")).filter(n__gt=1)
        ).count()
        logs = first.log + second.log
        started_runs = log_counts(logs, r"Processing job (\d+): ")
        completed = log_counts(logs, r"Job (\d+) completed")
        redone = [pk for pk, n in started_runs.items() if n > 1]
        twice = [pk for pk, n in completed.items() if n > 1]
        ok = done == photos and duplicates == 0 and 0 < announced <= pending and not twice and len(completed) == photos
        out(
            f"{verdict(ok)} restart_1000: {photos} photos, restart with {pending} not done; startup line "
            f"announced {announced} pending; all done {drained:.1f} s after the restart "
            f"({pending / drained:.0f} photos/s); done {done}/{photos}, duplicate faces {duplicates}, "
            f"completed twice {len(twice)}; interrupted by the stop and redone {len(redone)}"
        )
        return ok


def log_counts(log: str, pattern: str) -> dict[int, int]:
    """How many times each photo id appears in the log lines matching `pattern`."""
    counts: dict[int, int] = {}
    for pk in re.findall(pattern, log):
        counts[int(pk)] = counts.get(int(pk), 0) + 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--restart-after", type=int, default=100, help="restart once this many are done")
    parser.add_argument("--hard", action="store_true", help="SIGKILL the first cluster instead of SIGTERM")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    return 0 if run(args.photos, args.restart_after, args.hard, args.keep) else 1


if __name__ == "__main__":
    sys.exit(main())
