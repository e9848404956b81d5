"""Drill: kill -9 a queue worker in the middle of a batch. PASS: 0 lost, 0 duplicate faces.

gunicorn (production settings) takes the upload; a real qcluster processes it
with the marker backend of testsupport/fakes.py (2 faces per photo, a delay per photo
so that batches take time). When a worker has finished part of its batch and
holds another photo, it gets SIGKILL (twice in the full drill, once with
--small). Then every photo must end done, exactly once, with exactly its faces.

    .venv/bin/python bench/drills/kill_worker.py [--small] [--photos 60]
"""

from __future__ import annotations

import argparse
import os
import signal
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
    "PHOTO_QUEUE_BATCH_SIZE": "3",
    "PHOTO_TASK_TIMEOUT": "5",
    "PHOTO_RETRY_BASE_DELAY": "0",
    "FAKE_BACKEND_DELAY": "0.4",
}


def proc_state(pid: int) -> str:
    """The state letter of a process (R, S, Z...), '' if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


def run(small: bool = False, photos: int | None = None, keep: bool = False) -> bool:
    """Run the drill; True when it passes."""
    count = photos or (12 if small else 60)
    kills = 1 if small else 2
    with Stack(keep=keep, env={"FACE_BACKEND": FAKE_BACKEND}) as stack:
        stack.prepare()
        django_setup(stack)
        from django.db.models import Count

        from gallery.models import Event, Face, Photo, PhotoStatus

        owner, token = make_user("drill-photographer", photographer=True)
        event = Event.objects.create(owner=owner, name="kill -9 drill")
        web = stack.start_web()
        cluster = stack.start_cluster(**CLUSTER_ENV)
        url = f"{web.url}/api/photographer/events/{event.pk}/upload-photos"
        try:
            upload_photos(url, token, [(f"p{i}.png", marker_png(i, [i % 5, 5])) for i in range(count)], 20, 60)
        except RuntimeError as exc:
            out(f"FAIL {exc}")
            return False
        started = time.monotonic()
        victims: list[int] = []
        killed: set[int] = set()

        def live_victim() -> tuple[int, int] | None:
            """(photo id, worker pid) of a photo held by a live worker not killed yet."""
            for pk, worker in Photo.objects.filter(status=PhotoStatus.PROCESSING).values_list("pk", "worker"):
                pid = int(worker.rpartition(":")[2] or 0)
                if pid and pid not in killed and proc_state(pid) not in ("", "Z"):
                    return pk, pid
            return None

        for _ in range(kills):
            done_before = Photo.objects.filter(status=PhotoStatus.DONE).count()

            def mid_batch(done_before: int = done_before) -> bool:
                return Photo.objects.filter(status=PhotoStatus.DONE).count() > done_before and live_victim() is not None

            wait_for(mid_batch, 90, "a worker in the middle of a batch", interval=0.05)
            target = live_victim()
            if target is None:
                continue
            pk, pid = target
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
            victims.append(pk)
            out(f"killed worker {pid} (kill -9) while it processed photo {pk}")
        wait_for(lambda: settled(event.pk), 180, "recovery after kill -9", interval=0.5)
        recovery = time.monotonic() - started

        done = Photo.objects.filter(event=event, status=PhotoStatus.DONE).count()
        lost = count - done
        faces = Face.objects.filter(event=event).count()
        duplicates = (
            Face.objects.filter(event=event).values("photo", "left", "top").annotate(n=Count("id")).filter(n__gt=1)
        ).count()
        wrong = Photo.objects.filter(event=event).exclude(face_count=2).count()
        attempts = dict(Photo.objects.filter(pk__in=victims).values_list("pk", "attempts"))
        reincarnated = cluster.log.count("reincarnated worker")
        ok = lost == 0 and duplicates == 0 and faces == 2 * count and wrong == 0 and len(victims) == kills
        out(
            f"{verdict(ok)} kill_worker: {count} photos, {len(victims)} workers killed, lost {lost}, "
            f"duplicate faces {duplicates}, faces {faces}/{2 * count}, photos with wrong face count {wrong}, "
            f"victim attempts {attempts}, workers reincarnated {reincarnated}, "
            f"all done {recovery:.1f} s after the upload"
        )
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI scale: 12 photos, one kill")
    parser.add_argument("--photos", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    return 0 if run(args.small, args.photos, args.keep) else 1


if __name__ == "__main__":
    sys.exit(main())
