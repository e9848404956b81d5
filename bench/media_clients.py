"""The media load of bench/media_load.py, in a process of its own.

50 downloaders and 10 ZIP guests push about 100 MB/s through their sockets
in 64 KB reads. On the event loop of the page clients, that traffic would
delay the pages' own reads, and the pages' latencies would include the load
generator's queueing. So the media clients run in a separate process (spawned,
with Django set up afresh there: it deletes the guests' archives between
rounds), driven over a pipe: `MediaProcess.start` before a slice,
`MediaProcess.stop` after it, which returns what the clients got.

Without nginx, the stand-in for nginx's `internal` location (a small asyncio
file server, `serve_files`) runs in this process too, and the downloaders
follow X-Accel-Redirect to it themselves.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import unquote

MEDIA_TIMEOUT = 120.0
# A phone's receive window is small; on loopback the default would swallow whole files.
RECEIVE_BUFFER = 64 * 1024
# As static/js/archive-status.js polls.
POLL_SECONDS = 2.0
# ZIP guest i starts i times this after the others: a round (build, polls, some
# 10 s of reading) is longer than a short slice, and builds that all fell in
# its first second would never meet the pages.
ZIP_STAGGER_SECONDS = 1.0
# The errors a media client counts as an outcome and goes on after.
CLIENT_ERRORS = (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError)


@dataclass(frozen=True)
class MediaPlan:
    """What the media clients do; sent to the media process once."""

    # Where the clients send their requests: nginx, or gunicorn itself.
    port: int
    # True without nginx: follow X-Accel-Redirect on the stand-in file server.
    follow: bool
    media_root: str
    event_id: int
    # One downloader per token, each going round its own share of the photos.
    tokens: list[str]
    photo_ids: list[int]
    # (user id, session cookie) of the ZIP guests.
    guests: list[tuple[int, str]]
    # Bytes per second each download reads.
    rate: float


@dataclass
class Media:
    """Outcomes of the media clients during one or more slices."""

    outcomes: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    zip_seconds: list[float] = field(default_factory=list)
    # Per web download: request to the answer's headers (the access check and
    # its queue), and the bytes and seconds of the body (does the client keep its pace?).
    answer_seconds: list[float] = field(default_factory=list)
    body_bytes: int = 0
    body_seconds: float = 0.0
    # How long the clients ran, from start to stop.
    seconds: float = 0.0

    def add(self, other: Media) -> None:
        self.outcomes.update(other.outcomes)
        self.bytes += other.bytes
        self.zip_seconds.extend(other.zip_seconds)
        self.answer_seconds.extend(other.answer_seconds)
        self.body_bytes += other.body_bytes
        self.body_seconds += other.body_seconds
        self.seconds += other.seconds


class MediaProcess:
    """The parent's handle on the media process: `start(zips)` and `stop()` around each slice, then `close()`."""

    def __init__(self, plan: MediaPlan) -> None:
        # Spawned, not forked: the parent's database and cache connections must not be shared.
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child, plan), name="media-clients", daemon=True)
        self._process.start()
        child.close()
        if self._conn.recv() != "ready":
            raise RuntimeError("the media process did not start")

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def start(self, zips: bool) -> None:
        """Start the downloaders (and the ZIP guests if `zips`); returns once they are running."""
        self._conn.send(("go", zips))
        self._conn.recv()

    def stop(self) -> Media:
        """Stop the clients (transfers in flight are abandoned) and return what they got."""
        self._conn.send("stop")
        media: Media = self._conn.recv()
        return media

    def close(self) -> None:
        """End the media process."""
        if self._process.is_alive():
            self._conn.send(None)
            self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()


def serve(conn: Connection, plan: MediaPlan) -> None:
    """The media process: answers the parent's start and stop messages until it sends None."""
    import django

    django.setup()
    asyncio.run(_serve(conn, plan))


async def _serve(conn: Connection, plan: MediaPlan) -> None:
    server, files_port = await serve_files(Path(plan.media_root).resolve()) if plan.follow else (None, None)
    conn.send("ready")
    try:
        while (message := await asyncio.to_thread(conn.recv)) is not None:
            _go, zips = message
            media, stop, started = Media(), asyncio.Event(), time.monotonic()
            ports = (plan.port, files_port)
            share = len(plan.tokens)
            load = [
                asyncio.create_task(downloader(ports, token, plan.photo_ids[i::share], stop, plan.rate, media))
                for i, token in enumerate(plan.tokens)
            ]
            if zips:
                load += [
                    asyncio.create_task(
                        zipper(ports, plan.event_id, guest, stop, plan.rate, media, i * ZIP_STAGGER_SECONDS)
                    )
                    for i, guest in enumerate(plan.guests)
                ]
            conn.send("started")
            await asyncio.to_thread(conn.recv)
            stop.set()
            for task in load:
                task.cancel()
            await asyncio.gather(*load, return_exceptions=True)
            media.seconds = time.monotonic() - started
            conn.send(media)
    finally:
        if server is not None:
            server.close()


@dataclass
class Got:
    """One answer read by `slow_get`."""

    status: int
    headers: dict[str, str]
    size: int
    # From sending the request to the end of the headers, then to the end of the body.
    answer_seconds: float
    body_seconds: float


async def slow_get(port: int, path: str, headers: dict[str, str], rate: float) -> Got:
    """GET on a fresh connection (closed by the server after the answer), reading the body at `rate` bytes/s.

    Straight on the socket, into one buffer: at 100 MB/s in all, a stream
    reader's copies and callbacks would make this process a noticeable
    tenant of the cores the server runs on.
    """
    loop = asyncio.get_running_loop()
    asked = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{lines}\r\n"
        await loop.sock_sendall(sock, request.encode())
        buffer = bytearray(RECEIVE_BUFFER)
        received = b""
        while b"\r\n\r\n" not in received:
            count = await loop.sock_recv_into(sock, buffer)
            if not count:
                raise EOFError("the connection ended inside the headers")
            received += buffer[:count]
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        answer = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        size, started = len(body), time.monotonic()
        while count := await loop.sock_recv_into(sock, buffer):
            size += count
            ahead = size / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        return Got(status, answer, size, started - asked, time.monotonic() - started)


async def fetch(ports: tuple[int, int | None], path: str, headers: dict[str, str], rate: float) -> Got:
    """A download as the browser gets it; without nginx, X-Accel-Redirect is followed on the stand-in."""
    port, files_port = ports
    got = await slow_get(port, path, headers, rate)
    if files_port is not None and got.status == 200 and "x-accel-redirect" in got.headers:
        file = await slow_get(files_port, got.headers["x-accel-redirect"], {}, rate)
        # The access check is what the first request waited for; the file is the second's body.
        got = Got(file.status, file.headers, file.size, got.answer_seconds, file.answer_seconds + file.body_seconds)
    return got


async def downloader(
    ports: tuple[int, int | None],
    token: str,
    photo_ids: list[int],
    stop: asyncio.Event,
    rate: float,
    media: Media,
) -> None:
    """An API client downloading the web size of its photos, one after the other, until `stop`."""
    turn = 0
    while not stop.is_set():
        path = f"/media/photos/{photo_ids[turn % len(photo_ids)]}/web"
        turn += 1
        try:
            async with asyncio.timeout(MEDIA_TIMEOUT):
                got = await fetch(ports, path, {"Authorization": f"Token {token}"}, rate)
            media.outcomes[f"web {got.status}"] += 1
            media.bytes += got.size
            if got.status == 200:
                media.answer_seconds.append(got.answer_seconds)
                media.body_bytes += got.size
                media.body_seconds += got.body_seconds
        except CLIENT_ERRORS as exc:
            media.outcomes[f"web {type(exc).__name__}"] += 1


async def zipper(
    ports: tuple[int, int | None],
    event_id: int,
    guest: tuple[int, str],
    stop: asyncio.Event,
    rate: float,
    media: Media,
    delay: float,
) -> None:
    """A guest downloading "all my photos" again and again until `stop`, each round a new archive, after `delay`."""
    await asyncio.sleep(delay)
    user_id, session = guest
    headers = {"Cookie": f"sessionid={session}"}
    zip_path = f"/events/{event_id}/my-photos.zip"
    status_path = f"/events/{event_id}/my-photos-zip/status"
    while not stop.is_set():
        # First, not after the download: a round cut off by the end of a slice
        # leaves an archive that the next round must not get for free.
        await asyncio.to_thread(forget_archives, user_id)
        started = time.monotonic()
        try:
            async with asyncio.timeout(MEDIA_TIMEOUT):
                got = await fetch(ports, zip_path, headers, rate)
                if got.status == 302:
                    media.outcomes["zip queued"] += 1
                    # Queued: poll the status endpoint as static/js/archive-status.js does, then download.
                    while True:
                        await asyncio.sleep(POLL_SECONDS)
                        polled, body = await read_json(ports[0], status_path, headers)
                        if polled != 200 or body.get("status") in ("ready", "failed"):
                            break
                    got = await fetch(ports, zip_path, headers, rate)
            media.outcomes[f"zip {got.status}"] += 1
            media.bytes += got.size
            media.zip_seconds.append(time.monotonic() - started)
        except CLIENT_ERRORS as exc:
            media.outcomes[f"zip {type(exc).__name__}"] += 1


async def read_json(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """GET a small JSON answer on a fresh connection; ({}) unless the status is 200."""
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
    """The guest's archives are deleted (with their files), so that the next request builds anew."""
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
