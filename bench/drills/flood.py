"""Drill: 10 photographers x 100 photos at once with a low PHOTO_QUEUE_MAX_SIZE.

PASS: every answer is 202 or 503 (never 500 or anything else), every 503
carries Retry-After, and after the clients retried (each waits the Retry-After
it was given, plus a little jitter) every photo was accepted exactly once: one
Photo row per file, reported once as new (duplicate=false), all processed.

gunicorn (production settings) with PHOTO_QUEUE_MAX_SIZE low; a real qcluster
with the marker backend of testsupport/fakes.py drains the queue meanwhile. Each
photographer sends its photos in batches of --batch, all batches at once.

    .venv/bin/python bench/drills/flood.py [--small] [--photographers 10] [--photos 100] [--queue-max 100]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import requests

from bench.harness import Stack, auth, django_setup, make_user, out, settled, verdict
from bench.images import marker_png
from testsupport.markers import FAKE_BACKEND
from testsupport.waiting import wait_for

MAX_ATTEMPTS = 40


def run(
    small: bool = False,
    photographers: int | None = None,
    photos: int | None = None,
    queue_max: int | None = None,
    batch: int | None = None,
    keep: bool = False,
) -> bool:
    """Run the drill; True when it passes."""
    photographers = photographers or (3 if small else 10)
    photos = photos or (20 if small else 100)
    queue_max = queue_max or (30 if small else 100)
    batch = batch or (5 if small else 10)
    env = {"PHOTO_QUEUE_MAX_SIZE": str(queue_max), "FACE_BACKEND": FAKE_BACKEND}
    with Stack(keep=keep, env=env) as stack:
        stack.prepare()
        django_setup(stack)
        from django.db.models import Count

        from gallery.models import Event, Photo, PhotoStatus

        people = []
        for p in range(photographers):
            user, token = make_user(f"photographer-{p}", photographer=True)
            people.append((Event.objects.create(owner=user, name=f"flood {p}").pk, token))
        web = stack.start_web()
        stack.start_cluster(
            FAKE_BACKEND_DELAY="0.05",
            PHOTO_QUEUE_WORKERS="2",
            PHOTO_RETRY_BASE_DELAY="0",
            FACE_BACKEND=env["FACE_BACKEND"],
        )

        statuses: Counter[int] = Counter()
        new_per_file: Counter[str] = Counter()
        seen_per_file: Counter[str] = Counter()
        problems: list[str] = []
        lock = threading.Lock()
        waits: list[float] = []

        def send(event_id: int, token: str, names: list[str], payloads: list[bytes]) -> None:
            url = f"{web.url}/api/photographer/events/{event_id}/upload-photos"
            for _ in range(MAX_ATTEMPTS):
                files = [("photos", (n, d, "image/png")) for n, d in zip(names, payloads, strict=True)]
                try:
                    response = requests.post(url, files=files, headers=auth(token), timeout=120)
                except requests.RequestException as exc:
                    with lock:
                        problems.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(1)
                    continue
                with lock:
                    statuses[response.status_code] += 1
                if response.status_code == 202:
                    body = response.json()
                    with lock:
                        for job in body["jobs"]:
                            seen_per_file[job["filename"]] += 1
                            if not job["duplicate"]:
                                new_per_file[job["filename"]] += 1
                        for rejected in body["rejected"]:
                            problems.append(f"rejected {rejected}")
                    return
                if response.status_code != 503:
                    with lock:
                        problems.append(f"{response.status_code}: {response.text[:200]}")
                    return
                retry_after = response.headers.get("Retry-After", "")
                if not retry_after.isdigit():
                    with lock:
                        problems.append(f"503 without a usable Retry-After: {retry_after!r}")
                    return
                wait = int(retry_after) + random.uniform(0, 3)
                with lock:
                    waits.append(wait)
                time.sleep(wait)
            with lock:
                problems.append(f"gave up after {MAX_ATTEMPTS} attempts")

        jobs = []
        for p, (event_id, token) in enumerate(people):
            for start in range(0, photos, batch):
                names = [f"ph{p}-{i}.png" for i in range(start, min(photos, start + batch))]
                payloads = [marker_png(p * 100_000 + i, [i % 5]) for i in range(start, min(photos, start + batch))]
                jobs.append((event_id, token, names, payloads))
        started = time.monotonic()
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(lambda job: send(*job), jobs))
        accepted_after = time.monotonic() - started
        wait_for(lambda: settled(), 600, "the queue to drain", interval=0.5)
        total = photographers * photos
        rows = Photo.objects.count()
        dup_rows = Photo.objects.values("event", "sha256").annotate(n=Count("id")).filter(n__gt=1).count()
        done = Photo.objects.filter(status=PhotoStatus.DONE).count()
        not_once = [name for name in set(seen_per_file) | set(new_per_file) if new_per_file[name] != 1]
        missing = total - len(new_per_file)
        only_202_503 = set(statuses) <= {202, 503}
        ok = (
            only_202_503
            and statuses[503] > 0
            and not problems
            and not not_once
            and missing == 0
            and rows == total
            and dup_rows == 0
            and done == total
        )
        out(
            f"{verdict(ok)} flood: {photographers} photographers x {photos} photos in batches of {batch}, "
            f"PHOTO_QUEUE_MAX_SIZE={queue_max}; answers {dict(sorted(statuses.items()))}; "
            f"retries waited {min(waits, default=0):.0f}-{max(waits, default=0):.0f} s; "
            f"all accepted after {accepted_after:.0f} s; photos stored {rows}/{total}, accepted as new once "
            f"{total - missing - len(not_once)}/{total}, duplicate rows {dup_rows}, processed {done}/{total}"
        )
        if statuses[503] == 0:
            out("  the flood never filled the queue (no 503): lower --queue-max")
        for problem in problems[:10]:
            out(f"  problem: {problem}")
        for name in not_once[:10]:
            out(f"  {name} accepted as new {new_per_file[name]} times")
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI scale: 3 photographers x 20 photos, max 30")
    parser.add_argument("--photographers", type=int, default=None)
    parser.add_argument("--photos", type=int, default=None, help="photos per photographer")
    parser.add_argument("--queue-max", type=int, default=None, help="PHOTO_QUEUE_MAX_SIZE (default 100)")
    parser.add_argument("--batch", type=int, default=None, help="photos per request (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    ok = run(args.small, args.photographers, args.photos, args.queue_max, args.batch, args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
