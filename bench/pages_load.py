"""Pages under load: 50 attendee clients on my-photos and all-photos while photos are processed.

Setup: gunicorn with the documented production settings (as scripts/run:
cores + 1 sync workers, DEBUG off), a real qcluster with the local (dlib) backend processing
100 real-face photos (topped up so that processing lasts the whole run), an
event with 300 processed photos, and 50 attendees who joined it, each found in
20 photos. Database: SQLite (default) or --database postgres (a throwaway
database on 127.0.0.1:5432, dropped afterwards).

Load: --clients coroutines (default 50) on one asyncio event loop, each with
its own HTTP/1.1 connection and token (bench/async_http.py; kept alive
where the server allows it, reopened where it closes it, as sync workers do),
request after request with no think time, alternating /api/my-photos?event=
and /api/all-photos?event=. The generator runs on the same cores as the
server, so it is kept cheap, and its CPU use is printed. The baseline is the
same clients on a trivial endpoint (/static/css/site.css, served by WhiteNoise
through Django), in alternating slices of --slice seconds, so that both see
the same background processing. Bounded by --duration per kind and
--max-requests in all; 127.0.0.1 only.

The qcluster is started as scripts/run starts it (`manage.py qcluster`), so
its processes run at the documented QCLUSTER_NICE; their niceness is printed.

The per-user rate limit of my-photos (60/m by default) would answer 429 to
clients with no think time, so it is raised for the run
(RATE_LIMIT_MY_PHOTOS=1000000/m; its counter still costs its cache write);
--keep-rate-limits keeps the default and counts 429 as errors.

    .venv/bin/python bench/pages_load.py [--database sqlite|postgres] [--duration 60] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.async_http import Connection, ProtocolError
from bench.harness import Stack, django_setup, ms, out, percentile, ratio, web_concurrency
from bench.images import face_photos
from testsupport.processes import cpu_seconds, descendants
from testsupport.waiting import wait_for

BAR_P95_SECONDS = 0.100
SEED_PROMISE_SECONDS = 0.500
DONE_PHOTOS = 300
MATCHES_PER_ATTENDEE = 20
REQUEST_TIMEOUT = 30.0


class Results:
    """Latencies and outcomes per kind of request, filled by the client coroutines of one event loop."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.statuses: dict[str, Counter[str]] = {}
        self.total = 0

    def add(self, kind: str, latency: float, outcome: str) -> None:
        self.latencies.setdefault(kind, []).append(latency)
        self.statuses.setdefault(kind, Counter())[outcome] += 1
        self.total += 1

    def count(self) -> int:
        return self.total


async def client(
    port: int, token: str, paths: list[tuple[str, str]], deadline: float, results: Results, budget: int
) -> None:
    """One attendee: request after request on its own connection until the deadline or the global budget."""
    connection = Connection("127.0.0.1", port, headers={"Authorization": f"Token {token}"})
    turn = 0
    try:
        while time.monotonic() < deadline and results.count() < budget:
            kind, path = paths[turn % len(paths)]
            turn += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    response = await connection.get(path)
                outcome = str(response.status)
            except (OSError, EOFError, ProtocolError, TimeoutError) as exc:
                outcome = type(exc).__name__
            results.add(kind, time.perf_counter() - started, outcome)
    finally:
        await connection.close()


async def run_slice(
    port: int, tokens: list[str], paths: list[tuple[str, str]], seconds: float, results: Results, budget: int
) -> None:
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(client(port, token, paths, deadline, results, budget) for token in tokens))


def tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def populate(clients: int) -> tuple[Any, Any, list[str]]:
    """The event, its owner and the attendees' tokens (bulk, through the ORM)."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from gallery.models import PHOTOGRAPHERS_GROUP, AttendeeProfile, Event, Face, Match, Membership, Photo, PhotoStatus
    from gallery.tokens import issue_token

    owner = User.objects.create_user("bench-photographer", password=None)
    owner.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    event = Event.objects.create(owner=owner, name="pages under load")
    photos = Photo.objects.bulk_create(
        Photo(
            event=event,
            uploaded_by=owner,
            original=f"events/{event.pk}/originals/{i}.jpg",
            thumbnail=f"events/{event.pk}/thumbs/{i}.jpg",
            web=f"events/{event.pk}/web/{i}.jpg",
            filename=f"IMG_{i:04d}.jpg",
            sha256=f"{i:064x}",
            format="JPEG",
            status=PhotoStatus.DONE,
            finished_at=timezone.now(),
            face_count=1,
        )
        for i in range(DONE_PHOTOS)
    )
    faces = Face.objects.bulk_create(
        Face(photo=p, event=event, left=0.1, top=0.1, width=0.1, height=0.1) for p in photos
    )
    users = User.objects.bulk_create(User(username=f"attendee-{i}", password="!") for i in range(clients))
    users = list(User.objects.filter(username__startswith="attendee-").order_by("pk"))
    now = timezone.now()
    AttendeeProfile.objects.bulk_create(AttendeeProfile(user=u, face_consent_at=now) for u in users)
    Membership.objects.bulk_create(Membership(user=u, event=event) for u in users)
    Match.objects.bulk_create(
        Match(
            user=u,
            event=event,
            photo=photos[(i * 7 + k) % DONE_PHOTOS],
            face=faces[(i * 7 + k) % DONE_PHOTOS],
            similarity=0.5 + k / 100,
        )
        for i, u in enumerate(users)
        for k in range(MATCHES_PER_ATTENDEE)
    )
    tokens = [issue_token(u) for u in users]
    return event, owner, tokens


def top_up(event: Any, owner: Any, pending: list[tuple[str, bytes]], low: int = 20, batch: int = 50) -> int:
    """Upload (in-process) more photos when fewer than `low` wait; returns how many were added."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from gallery.uploads import accept_uploads
    from processing.tasks import waiting_count

    if waiting_count() >= low or not pending:
        return 0
    chunk = [pending.pop() for _ in range(min(batch, len(pending)))]
    accept_uploads(event, owner, [SimpleUploadedFile(n, d, content_type="image/jpeg") for n, d in chunk])
    return len(chunk)


def report(name: str, results: Results, seconds: float) -> tuple[float, int]:
    lat = [v for k, values in results.latencies.items() if k in name.split("+") for v in values]
    statuses: Counter[str] = Counter()
    for kind, counter in results.statuses.items():
        if kind in name.split("+"):
            statuses.update(counter)
    errors = sum(n for status, n in statuses.items() if status != "200")
    out(
        f"  {name:22s} {len(lat):6d} req  {len(lat) / seconds:7.1f} req/s  p50 {ms(percentile(lat, 50))}  "
        f"p95 {ms(percentile(lat, 95))}  p99 {ms(percentile(lat, 99))}  errors {errors} {dict(statuses)}"
    )
    return percentile(lat, 95), errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per kind (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--slice", type=float, default=10.0, help="seconds per alternating slice (default 10)")
    parser.add_argument("--photos", type=int, default=100, help="photos being processed (default 100)")
    parser.add_argument("--max-requests", type=int, default=500_000, help="request budget of the whole run")
    parser.add_argument("--keep-rate-limits", action="store_true", help="keep the default my-photos rate limit")
    parser.add_argument("--no-processing", action="store_true", help="no qcluster, no photos being processed")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    default_workers, default_threads = web_concurrency()
    parser.add_argument(
        "--workers", type=int, default=default_workers, help=f"gunicorn workers (default {default_workers})"
    )
    parser.add_argument(
        "--threads", type=int, default=default_threads, help=f"threads per worker (default {default_threads})"
    )
    args = parser.parse_args()

    env = {} if args.keep_rate_limits else {"RATE_LIMIT_MY_PHOTOS": "1000000/m"}
    photos = [] if args.no_processing else face_photos(args.photos * 3)
    out("load average before the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with Stack(database=args.database, keep=args.keep, env=env) as stack:
        stack.prepare()
        django_setup(stack)
        from gallery.models import Photo, PhotoStatus

        event, owner, tokens = populate(args.clients)
        web = stack.start_web(workers=args.workers, threads=args.threads)
        port = urlsplit(web.url).port
        assert urlsplit(web.url).hostname == "127.0.0.1" and port is not None
        roots = {"gunicorn": web.pid}
        if not args.no_processing:
            cluster = stack.start_cluster(FACE_BACKEND="local")
            first, pending = photos[: args.photos], photos[args.photos :]
            top_up(event, owner, first, low=10**9, batch=len(first))
            wait_for(lambda: Photo.objects.filter(status=PhotoStatus.PROCESSING).exists(), 60, "processing to start")
            roots["queue"] = cluster.pid
            niceness = sorted({os.getpriority(os.PRIO_PROCESS, pid) for pid in tree(cluster.pid)})
            out(f"queue processes at niceness {niceness} (this process: {os.nice(0)})")
        else:
            pending = []
        target = [
            ("my-photos", f"/api/my-photos?event={event.pk}"),
            ("all-photos", f"/api/all-photos?event={event.pk}"),
        ]
        baseline = [("static", "/static/css/site.css")]
        results = Results()
        done_before = Photo.objects.filter(status=PhotoStatus.DONE).count()
        spent = {"target": 0.0, "baseline": 0.0}
        out(
            f"{args.database}: {args.clients} clients, {args.duration:.0f} s per kind in {args.slice:.0f} s slices, "
            f"gunicorn {args.workers} workers x {args.threads} threads, "
            f"{'no processing' if args.no_processing else f'{args.photos} photos queued for the local backend'}"
        )
        # CPU seconds per kind of slice and per group of processes.
        cpu = {kind: dict.fromkeys(["generator", *roots], 0.0) for kind in spent}
        walls = dict.fromkeys(spent, 0.0)
        started = time.monotonic()
        # One event loop for the whole run; each slice opens its clients' connections afresh.
        with asyncio.Runner() as runner:
            while min(spent.values()) < args.duration and results.count() < args.max_requests:
                for kind, paths in (("baseline", baseline), ("target", target)):
                    seconds = min(args.slice, args.duration - spent[kind])
                    if seconds <= 0:
                        continue
                    if not args.no_processing:
                        top_up(event, owner, pending)
                    pids = {name: tree(root) for name, root in roots.items()}
                    before = {name: cpu_seconds(members) for name, members in pids.items()}
                    before["generator"], slice_started = time.process_time(), time.monotonic()
                    runner.run(run_slice(port, tokens, paths, seconds, results, args.max_requests))
                    walls[kind] += time.monotonic() - slice_started
                    cpu[kind]["generator"] += time.process_time() - before["generator"]
                    for name, members in pids.items():
                        cpu[kind][name] += cpu_seconds(members) - before[name]
                    spent[kind] += seconds
        wall = time.monotonic() - started
        processed = Photo.objects.filter(status=PhotoStatus.DONE).count() - done_before
        still = Photo.objects.filter(status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING]).count()
        out(f"photos processed during the run: {processed} in {wall:.0f} s; still queued at the end: {still}")
        for kind, used in cpu.items():
            requests = sum(len(v) for k, v in results.latencies.items() if (k == "static") == (kind == "baseline"))
            out(
                f"CPU in the {kind} slices, in cores of {os.cpu_count()}: "
                + ", ".join(f"{name} {seconds / max(walls[kind], 1e-9):.2f}" for name, seconds in used.items())
                + f"; gunicorn {used['gunicorn'] / max(requests, 1) * 1000:.1f} ms of CPU per request"
            )
        out("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    out("")
    base_p95, base_errors = report("static", results, spent["baseline"])
    p95, errors = report("my-photos+all-photos", results, spent["target"])
    report("my-photos", results, spent["target"])
    report("all-photos", results, spent["target"])
    out(f"ratio p95 pages / baseline: {ratio(p95, base_p95)}")
    met = p95 < BAR_P95_SECONDS and errors == 0
    out(f"bar p95 < {ms(BAR_P95_SECONDS)} with 0 errors: {'MET' if met else 'MISSED'} (p95 {ms(p95)}, errors {errors})")
    seed = "under" if p95 < SEED_PROMISE_SECONDS else "OVER"
    out(f"seed promise pages < {ms(SEED_PROMISE_SECONDS)}: p95 {ms(p95)} is {seed} it")
    served = sum(len(v) for k, v in results.latencies.items() if k != "static") / max(spent["target"], 1e-9)
    out(
        f"Little's law: {args.clients} clients / {served:.0f} req/s = {args.clients / max(served, 1e-9) * 1000:.0f} ms "
        "mean latency: past the service time, a request waits for a free server thread and CPU"
    )
    return 0 if errors == 0 and base_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
