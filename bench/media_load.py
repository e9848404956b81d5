"""Pages under media load: the pages bench alone, while 50 downloads run, and while 10 ZIPs run as well.

Setup: gunicorn with the documented production settings (cores + 1 sync
workers, DEBUG off), SQLite (default) or --database postgres (a throwaway
database on 127.0.0.1:5432, dropped afterwards), an event of 300 processed
photos whose files are real JPEGs of the web size (PHOTO_WEB_MAX_SIDE), the 50
attendees of bench/pages_load.py (each found in 20 photos) and 10 more guests
found in 50 photos each.

Load, in alternating slices of --slice seconds so that every kind sees the
same machine, --duration seconds of each kind:
- "alone": the pages bench's clients (bench/pages_load.py: --clients
  coroutines alternating /api/my-photos and /api/all-photos, no think time);
- "downloads": the same clients while 50 API clients download the web size of
  photos, again and again. This is the bar of issue #19: the pages' p95 here
  within 1.5x of their p95 alone;
- "zips": the same clients and the 50 downloads while 10 guests download their
  "all my photos" ZIP (50 photos) again and again; reported, not the bar.
The media clients start a second before the pages' slice (so that the pages
meet downloads under way, not 50 arriving at once) and stop after it; guest i
asks for its first ZIP i seconds after the first guest, so that the builds
spread over the slice. A ZIP round (build, polls, some 11 s of reading) is
longer than a short slice: fewer ZIPs are read to the end than are built.

The page clients run on this process's event loop; the downloaders and ZIP
guests run in a process of their own (bench/media_clients.py), so that their
100 MB/s of reads do not queue behind or ahead of the pages' on one loop. The
CPU of each kind of process (page clients, media clients, nginx, gunicorn,
qcluster) is printed per kind of slice: all of them share the machine's cores.

Each download reads at --rate bytes per second, with a 64 KB receive buffer,
as a phone does: a slow reader is what holds a worker that streams. The
default, 2 MB/s (16 Mbit/s), is a phone on a good 4G or an ordinary 5G link
in a venue whose cells the whole audience shares: phones there rarely read
more than a few MB/s. The rate also sets how often a downloader comes back
for its next photo, and every download starts with one access-checked Django
request: 50 x 2 MB/s over a web size of about 430 KB is at most some 230 of
them per second (fewer, as each waits for its answer). A slower network means
fewer such requests (and more connections open at once in nginx, which costs
it little), a faster one more. Printed per download: how long its access check
took to answer, and the pace at which its body was then read (the media
process keeping up with --rate).

Two modes, each with its own gunicorn:
- "streamed": MEDIA_ACCEL unset and every ZIP streamed by the web worker (the
  behaviour before ZIPs went to the queue): Django sends every byte; the
  clients talk to gunicorn directly;
- "accelerated": MEDIA_ACCEL=nginx, BEHIND_PROXY=true, ZIP_STREAM_MAX_BYTES=0,
  and a real nginx (bench/nginx.py, configured as docs/SCALING.md documents) in
  front of gunicorn: every client, pages and media, talks to nginx, which
  follows X-Accel-Redirect to its `internal` location as in production. When
  nginx is not installed (or with --no-nginx), a small file server in the media
  process stands in for that location, the clients talk to gunicorn and follow
  the header themselves (a note says so). A ZIP is requested, built by a real qcluster,
  polled on its status endpoint until ready, then fetched; every round deletes
  the guest's archive first, so that every round builds anew, and after each
  "zips" slice the next one waits for the queue to finish the builds in flight.

Printed: per mode, the pages' p50 and p95 per kind and the p95's ratio to
"alone", the media outcomes, the CPU lines, and which ratio is the bar (within
1.5x). Exit status 1 when the accelerated mode misses the bar or has page
errors. Bounded by --duration per kind and mode; 127.0.0.1 only.

    .venv/bin/python bench/media_load.py [--duration 20] [--slice 5] [--clients 50] [--rate 2000000] \
        [--database sqlite|postgres] [--modes streamed,accelerated] [--no-nginx]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack, django_setup, ms, out, percentile, ratio, wait_for
from bench.media_clients import Media, MediaPlan, MediaProcess
from bench.nginx import nginx_binary, start_nginx
from bench.pages_load import DONE_PHOTOS, Results, populate, run_slice, tree
from testsupport.processes import Proc, cpu_seconds

BAR_RATIO = 1.5
ZIP_GUESTS = 10
ZIP_PHOTOS = 50
DOWNLOADERS = 50
# The kinds of slices, in the order they alternate; the bar compares BAR_KIND with "alone".
KINDS = ("alone", "downloads", "zips")
BAR_KIND = "downloads"
KIND_NAMES = {
    "alone": "alone",
    "downloads": f"with {DOWNLOADERS} downloads",
    "zips": f"with {DOWNLOADERS} downloads + {ZIP_GUESTS} ZIPs",
}
# How long the queue may take to finish the ZIPs a "zips" slice left building.
SETTLE_SECONDS = 120.0
# The media clients start together; the pages are measured once their requests
# have spread out (a download and its access check take about 0.3 s), under
# downloads that are under way rather than 50 arriving at once.
MEDIA_WARMUP_SECONDS = 1.0
# Before the first round, unmeasured: the pages and downloads once over, so that
# the first slice alone does not pay for the caches that every later one finds full.
WARMUP_SECONDS = 5.0


def web_jpeg() -> bytes:
    """One JPEG of the web size with photo-like detail (a few hundred KB)."""
    from django.conf import settings
    from PIL import Image, ImageFilter

    side = settings.PHOTO_WEB_MAX_SIDE
    noise = Image.effect_noise((side // 4, side // 6), 60).convert("RGB").resize((side, side * 2 // 3))
    buffer = io.BytesIO()
    noise.filter(ImageFilter.GaussianBlur(1)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def write_files(event: Any, data: bytes) -> None:
    """The files the populated rows name, all with the same bytes; sizes recorded."""
    from django.conf import settings

    from gallery.models import Photo

    for photo in Photo.objects.filter(event=event):
        for name in (photo.original.name, photo.web.name, photo.thumbnail.name):
            path = Path(settings.MEDIA_ROOT) / str(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    Photo.objects.filter(event=event).update(size_bytes=len(data))


def zip_guests(event: Any) -> list[tuple[int, str]]:
    """ZIP_GUESTS guests found in ZIP_PHOTOS photos each: (user id, session cookie)."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    from gallery.models import AttendeeProfile, Face, Match, Membership

    faces = list(Face.objects.filter(event=event).order_by("photo_id"))
    guests = []
    for i in range(ZIP_GUESTS):
        user = User.objects.create_user(f"zip-guest-{i}", password=None)
        AttendeeProfile.objects.create(user=user, face_consent_at=timezone.now())
        Membership.objects.create(user=user, event=event)
        Match.objects.bulk_create(
            Match(user=user, event=event, photo_id=face.photo_id, face=face, similarity=0.9)
            for face in faces[i * 11 : i * 11 + ZIP_PHOTOS]
        )
        client = Client()
        client.force_login(user)
        guests.append((user.pk, client.cookies["sessionid"].value))
    return guests


def machine_seconds() -> dict[str, float]:
    """CPU seconds of the whole machine so far (/proc/stat): busy, of which softirq, and steal."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return {
        "busy": (user + nice + system + irq + softirq) / tick,
        "softirq": softirq / tick,
        "steal": steal / tick,
    }


def waited_seconds(pids: list[int]) -> float:
    """Seconds the threads of `pids` have spent runnable but waiting for a core (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def archives_settled() -> bool:
    """No guest archive waiting for the queue or being built."""
    from django.db import close_old_connections

    from gallery.models import ArchiveStatus, PhotoArchive

    busy = PhotoArchive.objects.filter(status__in=[ArchiveStatus.PENDING, ArchiveStatus.BUILDING]).exists()
    close_old_connections()
    return not busy


async def measure_mode(
    port: int,
    media_clients: MediaProcess,
    tokens: list[str],
    event_id: int,
    args: argparse.Namespace,
    roots: dict[str, int],
    queue: bool,
) -> tuple[Results, dict[str, Media], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Alternating slices of every kind until each had --duration seconds.

    Returns the pages' results, the media clients' per kind, CPU seconds per kind
    and process, and per kind the machine's CPU seconds and the slices' wall time.
    """
    pages = [("my-photos", f"/api/my-photos?event={event_id}"), ("all-photos", f"/api/all-photos?event={event_id}")]
    results = Results()
    media = {kind: Media() for kind in KINDS}
    spent = dict.fromkeys(KINDS, 0.0)
    cpu = {kind: dict.fromkeys(["page clients", *roots], 0.0) for kind in KINDS}
    # The machine is shared: what every process used, this bench's or not.
    machine = {kind: dict.fromkeys(["busy", "softirq", "steal", "gunicorn waited", "wall"], 0.0) for kind in KINDS}
    media_clients.start(zips=False)
    await run_slice(port, tokens, pages, WARMUP_SECONDS, Results(), args.max_requests)
    media_clients.stop()
    turn = 0
    while min(spent.values()) < args.duration:
        turn += 1
        for kind in KINDS:
            seconds = min(args.slice, args.duration - spent[kind])
            if seconds <= 0:
                continue
            # Kind and round: the pages' p95 of each round is printed as well.
            named = [(f"{kind}:{turn}:{name}", path) for name, path in pages]
            if kind != "alone":
                media_clients.start(zips=kind == "zips")
                await asyncio.sleep(MEDIA_WARMUP_SECONDS)
            before = {name: cpu_seconds(tree(pid)) for name, pid in roots.items()}
            before["page clients"] = time.process_time()
            machine_before = machine_seconds()
            machine_before["gunicorn waited"] = waited_seconds(tree(roots["gunicorn"]))
            # A slice lasts longer than --slice when its last requests are slow to answer.
            machine_before["wall"] = time.monotonic()
            await run_slice(port, tokens, named, seconds, results, args.max_requests)
            if kind != "alone":
                media[kind].add(media_clients.stop())
            cpu[kind]["page clients"] += time.process_time() - before["page clients"]
            for name, pid in roots.items():
                cpu[kind][name] += cpu_seconds(tree(pid)) - before[name]
            after = {
                **machine_seconds(),
                "gunicorn waited": waited_seconds(tree(roots["gunicorn"])),
                "wall": time.monotonic(),
            }
            for name, total in after.items():
                machine[kind][name] += total - machine_before[name]
            spent[kind] += seconds
            if kind == "zips" and queue:
                # Outside the slices: ZIPs left building must not load the next one.
                await asyncio.to_thread(
                    wait_for, archives_settled, SETTLE_SECONDS, "the queue to finish the ZIPs in flight"
                )
    return results, media, cpu, machine


def round_ratios(results: Results, kind: str) -> list[float]:
    """Per round of slices, the pages' p95 in the slice of `kind` over their p95 in the slice alone."""
    rounds = sorted({int(key.split(":")[1]) for key in results.latencies if key.startswith(kind + ":")})
    ratios = []
    for turn in rounds:
        alone = pages_of(results, f"alone:{turn}")[0]
        if alone:
            ratios.append(pages_of(results, f"{kind}:{turn}")[0] / alone)
    return ratios


def pages_of(results: Results, kind: str) -> tuple[float, float, int, int]:
    """The pages' p95, p50, request count and errors (not 200) in the slices of `kind` ("zips", or "zips:2")."""
    latencies = [v for k, values in results.latencies.items() if k.startswith(kind + ":") for v in values]
    errors = sum(
        n
        for k, counter in results.statuses.items()
        if k.startswith(kind + ":")
        for s, n in counter.items()
        if s != "200"
    )
    return percentile(latencies, 95), percentile(latencies, 50), len(latencies), errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per kind and mode (default 20)")
    parser.add_argument("--slice", type=float, default=5.0, help="seconds per alternating slice (default 5)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent page clients (default 50)")
    parser.add_argument(
        "--rate", type=float, default=2_000_000, help="bytes/s each download reads (default 2 MB/s, a phone on 4G/5G)"
    )
    parser.add_argument("--max-requests", type=int, default=500_000, help="page request budget per mode")
    parser.add_argument("--modes", default="streamed,accelerated", help="which modes, in order")
    parser.add_argument(
        "--no-nginx", action="store_true", help="the stand-in file server even where nginx is installed"
    )
    args = parser.parse_args()

    nginx = None if args.no_nginx else nginx_binary()
    modes = {
        "streamed": {"MEDIA_ACCEL": "", "ZIP_STREAM_MAX_BYTES": str(1 << 40)},
        "accelerated": {
            "MEDIA_ACCEL": "nginx",
            "ZIP_STREAM_MAX_BYTES": "0",
            **({"BEHIND_PROXY": "true"} if nginx else {}),
        },
    }
    figures: dict[str, dict[str, tuple[float, float, int, int]]] = {}
    out("load average before the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not nginx:
        out(
            f"note: {'--no-nginx' if args.no_nginx else 'nginx is not installed'}; "
            "the accelerated mode uses the stand-in file server "
            "(clients talk to gunicorn and follow X-Accel-Redirect themselves)"
        )
    with Stack(database=args.database, env={"RATE_LIMIT_MY_PHOTOS": "1000000/m"}) as stack:
        stack.prepare()
        django_setup(stack)
        from django.conf import settings

        from gallery.models import Photo

        event, _owner, tokens = populate(max(args.clients, DOWNLOADERS))
        data = web_jpeg()
        write_files(event, data)
        guests = zip_guests(event)
        photo_ids = list(Photo.objects.filter(event=event).values_list("pk", flat=True))
        assert len(photo_ids) == DONE_PHOTOS
        out(
            f"{args.database}: {args.clients} page clients; {DOWNLOADERS} downloads of the web size "
            f"({len(data)} bytes) and {ZIP_GUESTS} ZIPs of {ZIP_PHOTOS} photos, each read at "
            f"{args.rate / 1e6:.1f} MB/s; {args.duration:.0f} s per kind in {args.slice:.0f} s slices; "
            f"kinds alternate: {', '.join(KINDS)}"
        )
        for mode in args.modes.split(","):
            env = modes[mode]
            queue = env["ZIP_STREAM_MAX_BYTES"] == "0"
            web = stack.start_web(None, None, "photoevent.wsgi", **env)
            started: list[Proc] = [web]
            web_port = urlsplit(web.url).port
            assert web_port is not None
            roots: dict[str, int] = {}
            front: Proc | None = None
            if mode == "accelerated" and nginx:
                front = start_nginx(stack, nginx, web_port, Path(settings.MEDIA_ROOT))
                started.append(front)
                roots["nginx"] = front.pid
            roots["gunicorn"] = web.pid
            if queue:
                cluster = stack.start_cluster(**env)
                started.append(cluster)
                roots["qcluster"] = cluster.pid
            port = urlsplit(front.url).port if front else web_port
            assert port is not None
            plan = MediaPlan(
                port=port,
                follow=mode == "accelerated" and not nginx,
                media_root=str(settings.MEDIA_ROOT),
                event_id=event.pk,
                tokens=tokens[:DOWNLOADERS],
                photo_ids=photo_ids,
                guests=guests,
                rate=args.rate,
            )
            media_clients = MediaProcess(plan)
            roots = {"media clients": media_clients.pid, **roots}
            try:
                results, media, cpu, machine = asyncio.run(
                    measure_mode(port, media_clients, tokens[: args.clients], event.pk, args, roots, queue)
                )
            finally:
                media_clients.close()
                for proc in reversed(started):
                    proc.stop()
                    stack.procs.remove(proc)
            front_name = "nginx" if front else "gunicorn directly"
            if plan.follow:
                front_name += ", files from the stand-in"
            figures[mode] = {kind: pages_of(results, kind) for kind in KINDS}
            alone = figures[mode]["alone"][0]
            out(f"{mode} (clients -> {front_name}):")
            for kind in KINDS:
                p95, p50, count, errors = figures[mode][kind]
                bar = "  <- the bar" if kind == BAR_KIND else ""
                rounds = " ".join(f"{value:.2f}" for value in round_ratios(results, kind))
                versus = "" if kind == "alone" else f", p95 ratio to alone {ratio(p95, alone)} (rounds: {rounds}){bar}"
                out(
                    f"  pages {KIND_NAMES[kind]:32s} {count:6d} req, p50 {ms(p50)}, p95 {ms(p95)}, "
                    f"errors {errors}{versus}"
                )
            for kind in KINDS[1:]:
                got = media[kind]
                nominal = (DOWNLOADERS + (ZIP_GUESTS if kind == "zips" else 0)) * args.rate
                zips = ""
                if kind == "zips":
                    # A ZIP of 50 web sizes takes over 10 s to read at 2 MB/s, after its build.
                    finished = len(got.zip_seconds)
                    zips = f"; {finished} ZIPs read to the end" + (
                        f", request to last byte p50 {ms(percentile(got.zip_seconds, 50))}" if finished else ""
                    )
                pace = got.body_bytes / got.body_seconds / 1e6 if got.body_seconds else 0.0
                out(
                    f"  media in the {kind} slices: {dict(got.outcomes)}; "
                    f"{got.bytes / 1e6 / got.seconds:.1f} MB/s read (at most {nominal / 1e6:.0f}); "
                    f"{got.outcomes['web 200'] / got.seconds:.0f} downloads/s, each answered (access check) in "
                    f"p50 {ms(percentile(got.answer_seconds, 50))}, p95 {ms(percentile(got.answer_seconds, 95))}, "
                    f"then read at {pace:.2f} MB/s{zips}"
                )
            for kind, used in cpu.items():
                wall = machine[kind]["wall"]
                whole = {name: seconds / wall for name, seconds in machine[kind].items()}
                ours = sum(used.values()) / wall
                out(
                    f"  CPU in the {kind} slices ({wall:.0f} s), in cores of {os.cpu_count()}: "
                    + ", ".join(f"{name} {seconds / wall:.2f}" for name, seconds in used.items())
                    + f"; the machine busy {whole['busy']:.2f} (softirq {whole['softirq']:.2f}, "
                    f"steal {whole['steal']:.2f}), {whole['busy'] - ours:.2f} of it not these processes'; "
                    f"gunicorn's workers waited for a core {whole['gunicorn waited']:.2f} s per second"
                )
    out("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    out("")
    out(f"the bar: pages p95 {KIND_NAMES[BAR_KIND]} / pages p95 alone <= {BAR_RATIO}, with no page errors")
    missed = False
    for mode, kinds in figures.items():
        alone, _p50, _count, alone_errors = kinds["alone"]
        for kind in KINDS[1:]:
            loaded, _p50, _count, errors = kinds[kind]
            met = bool(alone) and loaded / alone <= BAR_RATIO and alone_errors == errors == 0
            if kind == BAR_KIND:
                missed |= mode == "accelerated" and not met
                verdict = f"bar {'MET' if met else 'MISSED'}"
            else:
                verdict = f"reported, not the bar: {'within' if met else 'beyond'} {BAR_RATIO}"
            out(f"{mode}: pages p95 {KIND_NAMES[kind]} / alone = {ratio(loaded, alone)} ({verdict})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
