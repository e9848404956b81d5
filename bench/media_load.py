"""Pages under media load: the pages bench alone, then while 50 downloads and 10 ZIPs run.

Setup: gunicorn with the documented production settings (cores + 1 sync
workers, DEBUG off), SQLite, an event of 300 processed photos whose files are
real JPEGs of the web size (PHOTO_WEB_MAX_SIDE), the 50 attendees of
bench/pages_load.py (each found in 20 photos) and 10 more guests found in 50
photos each.

Load, in alternating slices of --slice seconds so that both kinds see the same
machine:
- "alone": the pages bench's clients (bench/pages_load.py: --clients
  coroutines alternating /api/my-photos and /api/all-photos, no think time);
- "with media": the same clients while 50 coroutines download the web size of
  photos and 10 coroutines download their "all my photos" ZIP (50 photos),
  again and again. Downloads read at --rate bytes per second each with a small
  receive buffer, as a phone does: a slow reader is what holds a worker.

Two modes, each with its own gunicorn:
- "streamed": MEDIA_ACCEL unset and every ZIP streamed by the web worker (the
  behaviour before ZIPs went to the queue): Django sends every byte;
- "accelerated": MEDIA_ACCEL=nginx and ZIP_STREAM_MAX_BYTES=0. Django answers
  with X-Accel-Redirect; a small asyncio file server in this process stands in
  for nginx's internal location and sends the file (the client follows the
  header itself, which costs the web worker exactly what nginx would: nothing
  after the answer). A ZIP is requested, built by a real qcluster, polled on
  its status endpoint until ready, then fetched; its archive is deleted after
  each download so that every round builds anew.

Printed: per mode, the pages' p95 alone and with media, and their ratio (the
bar: within 1.5x). Bounded by --duration per kind and mode; 127.0.0.1 only.

    .venv/bin/python bench/media_load.py [--duration 20] [--slice 5] [--clients 50] [--rate 2000000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack, django_setup, ms, out, percentile, ratio
from bench.pages_load import DONE_PHOTOS, Results, populate, run_slice, tree
from testsupport.processes import cpu_seconds

BAR_RATIO = 1.5
ZIP_GUESTS = 10
ZIP_PHOTOS = 50
DOWNLOADERS = 50
MEDIA_TIMEOUT = 120.0
# A phone's receive window is small; on loopback the default would swallow whole files.
RECEIVE_BUFFER = 64 * 1024
# As static/js/archive-status.js polls.
POLL_SECONDS = 2.0


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


class Media:
    """Outcomes of the media clients during the slices with media."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.bytes = 0
        self.zip_seconds: list[float] = []


async def slow_get(port: int, path: str, headers: dict[str, str], rate: float) -> tuple[int, dict[str, str], int]:
    """GET on a fresh connection, reading the body at `rate` bytes/s; returns status, headers, body size."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=RECEIVE_BUFFER)
    try:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{lines}\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        answer = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        size, started = 0, time.monotonic()
        while chunk := await reader.read(RECEIVE_BUFFER):
            size += len(chunk)
            ahead = size / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        return status, answer, size
    finally:
        writer.close()


async def fetch(web_port: int, files_port: int, path: str, headers: dict[str, str], rate: float) -> tuple[int, int]:
    """A download as the browser gets it: X-Accel-Redirect is followed on the stand-in for nginx."""
    status, answer, size = await slow_get(web_port, path, headers, rate)
    if status == 200 and "x-accel-redirect" in answer:
        status, _, size = await slow_get(files_port, answer["x-accel-redirect"], {}, rate)
    return status, size


async def downloader(
    ports: tuple[int, int], token: str, photo_ids: list[int], stop: asyncio.Event, rate: float, media: Media
) -> None:
    turn = 0
    while not stop.is_set():
        path = f"/media/photos/{photo_ids[turn % len(photo_ids)]}/web"
        turn += 1
        try:
            async with asyncio.timeout(MEDIA_TIMEOUT):
                status, size = await fetch(*ports, path, {"Authorization": f"Token {token}"}, rate)
            media.outcomes[f"web {status}"] += 1
            media.bytes += size
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            media.outcomes[f"web {type(exc).__name__}"] += 1


async def zipper(
    ports: tuple[int, int],
    event_id: int,
    guest: tuple[int, str],
    stop: asyncio.Event,
    rate: float,
    media: Media,
) -> None:
    user_id, session = guest
    headers = {"Cookie": f"sessionid={session}"}
    zip_path = f"/events/{event_id}/my-photos.zip"
    status_path = f"/events/{event_id}/my-photos-zip/status"
    while not stop.is_set():
        started = time.monotonic()
        try:
            async with asyncio.timeout(MEDIA_TIMEOUT):
                status, size = await fetch(*ports, zip_path, headers, rate)
                if status == 302:
                    media.outcomes["zip queued"] += 1
                    # Queued: poll the status endpoint as static/js/archive-status.js does, then download.
                    while True:
                        await asyncio.sleep(POLL_SECONDS)
                        polled, body = await read_json(ports[0], status_path, headers)
                        if polled != 200 or body.get("status") in ("ready", "failed"):
                            break
                    status, size = await fetch(*ports, zip_path, headers, rate)
            media.outcomes[f"zip {status}"] += 1
            media.bytes += size
            media.zip_seconds.append(time.monotonic() - started)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            media.outcomes[f"zip {type(exc).__name__}"] += 1
        await asyncio.to_thread(forget_archives, user_id)


async def read_json(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{lines}\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body) if status == 200 else {}


def forget_archives(user_id: int) -> None:
    """Every round builds anew: the guest's archive is deleted (with its file) after each download."""
    from django.db import close_old_connections

    from gallery.models import PhotoArchive

    for archive in PhotoArchive.objects.filter(user_id=user_id):
        archive.delete()
    close_old_connections()


async def serve_files(root: Path) -> tuple[asyncio.Server, int]:
    """The stand-in for nginx's `internal` location: GET /protected-media/<name> from `root`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            target = unquote(request.split(b" ", 2)[1].decode())
            name = target.removeprefix("/protected-media/")
            path = (root / name).resolve()
            if not target.startswith("/protected-media/") or root not in path.parents or not path.is_file():
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Length: {path.stat().st_size}\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            with path.open("rb") as source:
                # os.sendfile, as nginx uses it: the stand-in costs little CPU.
                await asyncio.get_running_loop().sendfile(writer.transport, source)
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # A client gone, or the run ending mid-transfer: nothing to answer.
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def measure_mode(
    web_port: int,
    media_root: Path,
    tokens: list[str],
    event_id: int,
    photo_ids: list[int],
    guests: list[tuple[int, str]],
    args: argparse.Namespace,
    roots: dict[str, int],
) -> tuple[Results, Media, dict[str, float], dict[str, dict[str, float]]]:
    """Alternating slices of pages alone and pages with media until each kind had --duration seconds."""
    server, files_port = await serve_files(media_root.resolve())
    pages = [("my-photos", f"/api/my-photos?event={event_id}"), ("all-photos", f"/api/all-photos?event={event_id}")]
    results, media = Results(), Media()
    spent = {"alone": 0.0, "media": 0.0}
    # CPU seconds per kind of slice: this process (clients and the stand-in for nginx), gunicorn, qcluster.
    cpu = {kind: dict.fromkeys(["generator", *roots], 0.0) for kind in spent}
    try:
        while min(spent.values()) < args.duration:
            for kind in spent:
                seconds = min(args.slice, args.duration - spent[kind])
                if seconds <= 0:
                    continue
                named = [(f"{kind}:{name}", path) for name, path in pages]
                stop = asyncio.Event()
                load: list[asyncio.Task[None]] = []
                if kind == "media":
                    ports = (web_port, files_port)
                    load = [
                        asyncio.create_task(
                            downloader(ports, tokens[i], photo_ids[i::DOWNLOADERS], stop, args.rate, media)
                        )
                        for i in range(DOWNLOADERS)
                    ]
                    load += [
                        asyncio.create_task(zipper(ports, event_id, guest, stop, args.rate, media)) for guest in guests
                    ]
                before = {name: cpu_seconds(tree(pid)) for name, pid in roots.items()}
                before["generator"] = time.process_time()
                await run_slice(web_port, tokens, named, seconds, results, args.max_requests)
                stop.set()
                for task in load:
                    task.cancel()
                await asyncio.gather(*load, return_exceptions=True)
                cpu[kind]["generator"] += time.process_time() - before["generator"]
                for name, pid in roots.items():
                    cpu[kind][name] += cpu_seconds(tree(pid)) - before[name]
                spent[kind] += seconds
    finally:
        server.close()
    return results, media, spent, cpu


def p95_of(results: Results, kind: str) -> tuple[float, int, int]:
    latencies = [v for k, values in results.latencies.items() if k.startswith(kind + ":") for v in values]
    errors = sum(
        n
        for k, counter in results.statuses.items()
        if k.startswith(kind + ":")
        for s, n in counter.items()
        if s != "200"
    )
    return percentile(latencies, 95), len(latencies), errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per kind and mode (default 20)")
    parser.add_argument("--slice", type=float, default=5.0, help="seconds per alternating slice (default 5)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent page clients (default 50)")
    parser.add_argument("--rate", type=float, default=2_000_000, help="bytes/s each download reads (default 2 MB/s)")
    parser.add_argument("--max-requests", type=int, default=500_000, help="page request budget per mode")
    parser.add_argument("--modes", default="streamed,accelerated", help="which modes, in order")
    args = parser.parse_args()

    modes = {
        "streamed": {"MEDIA_ACCEL": "", "ZIP_STREAM_MAX_BYTES": str(1 << 40)},
        "accelerated": {"MEDIA_ACCEL": "nginx", "ZIP_STREAM_MAX_BYTES": "0"},
    }
    figures: dict[str, tuple[float, float, int, int]] = {}
    out("load average before the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with Stack(env={"RATE_LIMIT_MY_PHOTOS": "1000000/m"}) as stack:
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
            f"{args.clients} page clients; with media: {DOWNLOADERS} downloads of the web size ({len(data)} bytes) "
            f"and {ZIP_GUESTS} ZIPs of {ZIP_PHOTOS} photos, each read at {args.rate / 1e6:.1f} MB/s; "
            f"{args.duration:.0f} s per kind in {args.slice:.0f} s slices"
        )
        for mode in args.modes.split(","):
            env = modes[mode]
            web = stack.start_web(None, None, "photoevent.wsgi", **env)
            cluster = stack.start_cluster(**env) if env["ZIP_STREAM_MAX_BYTES"] == "0" else None
            port = urlsplit(web.url).port
            assert port is not None
            roots = {"gunicorn": web.pid, **({"qcluster": cluster.pid} if cluster else {})}
            results, media, spent, cpu = asyncio.run(
                measure_mode(
                    port, Path(settings.MEDIA_ROOT), tokens[: args.clients], event.pk, photo_ids, guests, args, roots
                )
            )
            for proc in (cluster, web):
                if proc is not None:
                    proc.stop()
                    stack.procs.remove(proc)
            alone, alone_n, alone_errors = p95_of(results, "alone")
            loaded, loaded_n, loaded_errors = p95_of(results, "media")
            figures[mode] = (alone, loaded, alone_errors, loaded_errors)
            zips = media.zip_seconds
            out(
                f"{mode:11s} pages alone: {alone_n} req, p95 {ms(alone)}, errors {alone_errors}; "
                f"with media: {loaded_n} req, p95 {ms(loaded)}, errors {loaded_errors}; ratio {ratio(loaded, alone)}"
            )
            out(
                f"{'':11s} media: {dict(media.outcomes)}, {media.bytes / 1e6:.0f} MB in {spent['media']:.0f} s; "
                f"ZIP request to last byte p50 {ms(percentile(zips, 50))}"
            )
            for kind, used in cpu.items():
                out(
                    f"{'':11s} CPU seconds in the {kind} slices: "
                    + ", ".join(f"{name} {seconds:.1f}" for name, seconds in used.items())
                )
    out("")
    failed = False
    for mode, (alone, loaded, alone_errors, loaded_errors) in figures.items():
        met = bool(alone) and loaded / alone <= BAR_RATIO and alone_errors == loaded_errors == 0
        failed |= alone_errors + loaded_errors > 0
        out(
            f"{mode}: pages p95 with media / alone = {ratio(loaded, alone)} "
            f"(bar <= {BAR_RATIO}: {'MET' if met else 'MISSED'})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
