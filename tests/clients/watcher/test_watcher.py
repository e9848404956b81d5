"""Unit tests of the folder watcher client, against a fake upload server.

The fake server is a real HTTP server on 127.0.0.1 in a thread, so the tests
cover the actual requests, multipart encoding and header handling. The
console script and `manage.py watch_folder` are driven in-process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from photoevent_watch import cli
from photoevent_watch.watcher import (
    Answered,
    Backoff,
    FolderWatcher,
    PendingFile,
    Refused,
    Retry,
    StabilityTracker,
    StateFile,
    UploadClient,
    WatcherError,
    WatchOptions,
    atomic_write_text,
    default_state_path,
    ignore_reason,
    iter_candidates,
    match_verdicts,
    parse_retry_after,
    plan_batch,
    through_link,
    upload_name,
)
from PIL import Image

EVENT_ID = 7
TOKEN = "secret-token"


def jpeg_bytes(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Overrides conftest's cache clearing: the watcher never touches the database, nor do its tests."""


# --- fake server ------------------------------------------------------------


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeUploadServer:
    """Behaves like the upload API: dedup by SHA-256, rejects non-JPEG/PNG, answers 202/400.

    Each verdict echoes the file's `index` among the request's photos and its
    `filename` as submitted. With `legacy=True` it answers as servers did
    before that echo: no `index`, and a duplicate carries the name it was
    first stored under.

    `script` holds answers to give instead, one per upload request, first in
    first out; `requests` records every upload as a list of (filename, bytes).
    """

    def __init__(self, legacy: bool = False) -> None:
        self.legacy = legacy
        self.script: list[Scripted] = []
        self.requests: list[list[tuple[str, bytes]]] = []
        self.auth_headers: list[str | None] = []
        self.photos: dict[str, tuple[int, str]] = {}
        self.event_status = 200
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, answer: Scripted) -> None:
                data = json.dumps(answer.body).encode() if answer.body is not None else b""
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != f"/api/photographer/events/{EVENT_ID}":
                    self._send(Scripted(404, {"detail": "Not found."}))
                elif self.headers.get("Authorization") != f"Token {TOKEN}":
                    self._send(Scripted(401, {"detail": "Invalid token."}))
                else:
                    self._send(Scripted(server.event_status, {"id": EVENT_ID, "name": "Fake event"}))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != f"/api/photographer/events/{EVENT_ID}/upload-photos":
                    self._send(Scripted(404, {"detail": "Not found."}))
                    return
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                message = BytesParser(policy=HTTP).parsebytes(head + body)
                files: list[tuple[str, bytes]] = [
                    (part.get_filename() or "", bytes(part.get_payload(decode=True) or b""))
                    for part in message.iter_parts()
                    if part.get_param("name", header="content-disposition") == "photos"
                ]
                with server.lock:
                    server.requests.append(files)
                    server.auth_headers.append(self.headers.get("Authorization"))
                    scripted = server.script.pop(0) if server.script else None
                    self._send(scripted or server.accept(files))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def accept(self, files: list[tuple[str, bytes]]) -> Scripted:
        jobs: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for index, (name, data) in enumerate(files):
            echo: dict[str, Any] = {} if self.legacy else {"index": index}
            if not data.startswith((b"\xff\xd8", b"\x89PNG")):
                rejected.append({**echo, "filename": name, "error": "The file is not an image"})
                continue
            sha = hashlib.sha256(data).hexdigest()
            duplicate = sha in self.photos
            if not duplicate:
                self.photos[sha] = (len(self.photos) + 1, name)
            photo_id, stored_name = self.photos[sha]
            jobs.append(
                {
                    **echo,
                    "job_id": "x",
                    "photo_id": photo_id,
                    "filename": stored_name if self.legacy else name,
                    "status": "queued",
                    "duplicate": duplicate,
                }
            )
        body: dict[str, Any] = {"jobs": jobs, "rejected": rejected}
        if not jobs:
            body["detail"] = "No acceptable photo in the upload"
            return Scripted(400, body)
        return Scripted(202, body)

    @property
    def sent_names(self) -> list[str]:
        return [name for request in self.requests for name, _ in request]


def _serve(fake: FakeUploadServer) -> Iterator[FakeUploadServer]:
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeUploadServer]:
    yield from _serve(FakeUploadServer())


@pytest.fixture
def legacy_server() -> Iterator[FakeUploadServer]:
    """A server from before the upload API echoed each file's index."""
    yield from _serve(FakeUploadServer(legacy=True))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "camera"
    path.mkdir()
    return path


def make_watcher(
    folder: Path,
    server: FakeUploadServer,
    clock: Callable[[], float] | None = None,
    **options: Any,
) -> FolderWatcher:
    client = UploadClient(server.url, EVENT_ID, TOKEN, connect_timeout=2, read_timeout=5)
    state = StateFile(default_state_path(folder), StateFile.target_key(server.url, EVENT_ID))
    state.load()
    options.setdefault("stable_seconds", 0.05)
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    return FolderWatcher(folder, client, state, WatchOptions(**options), **kwargs)


def pump(watcher: FolderWatcher, clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    """Drive the watcher's loop on the fake clock."""
    end = clock.now + seconds
    while clock.now < end:
        watcher.step()
        clock.advance(step)
    watcher.step()


# --- ignore rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("IMG_0001.JPG", None),
        ("img.jpeg", None),
        ("pic.png", None),
        ("pic.webp", None),
        ("phone.HEIC", None),
        ("sub/deeper/IMG_2.jpg", None),
        (".hidden.jpg", "hidden"),
        ("._IMG_0001.JPG", "hidden"),
        (".thumbnails/IMG_1.jpg", "hidden"),
        ("sub/.cache/IMG_1.jpg", "hidden"),
        ("IMG_1.jpg.tmp", "temporary file"),
        ("IMG_1.tmp", "temporary file"),
        ("IMG_1.jpg~", "temporary file"),
        ("IMG_1.jpg.part", "temporary file"),
        ("IMG_1.jpg.crdownload", "temporary file"),
        ("Thumbs.db", "system file"),
        ("thumbs.DB", "system file"),
        (".DS_Store", "hidden"),
        ("sub/.DS_Store", "hidden"),
        ("notes.txt", "not an image extension"),
        ("IMG_1.CR2", "not an image extension"),
        ("movie.mp4", "not an image extension"),
        ("noextension", "not an image extension"),
    ],
)
def test_ignore_rules(tmp_path: Path, rel: str, reason: str | None) -> None:
    assert ignore_reason(tmp_path / rel, tmp_path) == reason


def test_path_outside_root_is_ignored(tmp_path: Path) -> None:
    assert ignore_reason(tmp_path.parent / "x.jpg", tmp_path) is not None


def test_scan_includes_subfolders_and_skips_hidden_folders(folder: Path) -> None:
    for rel in ["a.jpg", "sub/b.JPG", "sub/deeper/c.png", ".hidden/d.jpg", "sub/e.jpg.part", "sub/Thumbs.db", "f.txt"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"x")
    found = sorted(p.relative_to(folder).as_posix() for p in iter_candidates(folder))
    assert found == ["a.jpg", "sub/b.JPG", "sub/deeper/c.png"]


def test_upload_name_matches_the_servers_display_form() -> None:
    assert upload_name(Path("/x/IMG\x07_1.jpg")) == "IMG_1.jpg"
    long = upload_name(Path("/x/" + "a" * 300 + ".jpeg"))
    assert len(long) == 200 and long.endswith(".jpeg")


# --- stability ----------------------------------------------------------------


def test_tracker_waits_for_size_and_mtime_to_stay_unchanged() -> None:
    tracker = StabilityTracker(stable_seconds=2.0)
    path = Path("/x/a.jpg")
    tracker.observe(path, (100, 1), now=0.0)
    tracker.observe(path, (200, 2), now=1.5)  # still growing
    assert tracker.pop_ready(now=3.0) == []  # 1.5 s since the last change
    tracker.observe(path, (200, 3), now=3.0)  # same size, new mtime: still being written
    assert tracker.pop_ready(now=4.9) == []
    tracker.observe(path, (200, 3), now=4.9)  # unchanged observations do not restart the wait
    assert tracker.pop_ready(now=5.0) == [(path, (200, 3))]
    assert tracker.pop_ready(now=9.0) == []  # popped once only


def test_tracker_forget() -> None:
    tracker = StabilityTracker(stable_seconds=0)
    tracker.observe(Path("/a.jpg"), (1, 1), now=0)
    tracker.forget(Path("/a.jpg"))
    assert tracker.pop_ready(now=10) == []


def test_a_file_written_slowly_is_sent_only_when_complete(folder: Path, server: FakeUploadServer) -> None:
    clock = FakeClock()
    watcher = make_watcher(folder, server, clock, stable_seconds=2.0, poll_seconds=0.5)
    data = jpeg_bytes(1, (400, 300))
    target = folder / "slow.jpg"
    chunks = [data[i : i + len(data) // 4 + 1] for i in range(0, len(data), len(data) // 4 + 1)]
    watcher.scan()
    with target.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            handle.flush()
            os.utime(target, ns=(int(clock.now * 1e9), int(clock.now * 1e9)))
            pump(watcher, clock, seconds=1.5)  # less than --stable between writes
            assert server.requests == []
    pump(watcher, clock, seconds=2.5)
    assert server.requests == [[("slow.jpg", data)]]
    assert watcher.counters.uploaded == 1


def test_a_file_changed_after_it_was_queued_waits_again(folder: Path, server: FakeUploadServer) -> None:
    clock = FakeClock()
    watcher = make_watcher(folder, server, clock, stable_seconds=1.0)
    target = folder / "a.jpg"
    target.write_bytes(jpeg_bytes(1))
    watcher.scan()
    watcher.next_attempt_at = clock.now + 100  # hold sending back, as during a retry wait
    pump(watcher, clock, seconds=2)
    assert [item.rel for item in watcher.pending] == ["a.jpg"]
    final = jpeg_bytes(2)
    target.write_bytes(final)
    watcher.next_attempt_at = clock.now
    watcher.step()  # sees the change, does not send the old hash
    assert server.requests == []
    pump(watcher, clock, seconds=2)
    assert server.requests == [[("a.jpg", final)]]
    assert hashlib.sha256(final).hexdigest() in watcher.state.uploaded


# --- state file -------------------------------------------------------------


def test_state_round_trip_keeps_other_targets(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    other = StateFile(path, "http://other event 1")
    other.record_uploaded("aa", 1, "x.jpg", duplicate=False)
    other.save()
    state = StateFile(path, "http://server event 7")
    state.load()
    assert state.uploaded == {}
    state.record_uploaded("bb", 42, "b.jpg", duplicate=False)
    state.record_rejected("cc", "c.jpg", "not an image")
    state.remember_path("b.jpg", (10, 20), "bb")
    state.save()
    again = StateFile(path, "http://server event 7")
    again.load()
    assert again.uploaded["bb"]["photo_id"] == 42
    assert again.rejected["cc"]["error"] == "not an image"
    assert again.cached_sha("b.jpg", (10, 20)) == "bb"
    assert again.cached_sha("b.jpg", (10, 21)) is None
    first = StateFile(path, "http://other event 1")
    first.load()
    assert first.uploaded["aa"]["photo_id"] == 1


def test_atomic_write_leaves_the_old_file_whole_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state" / "state.json"
    atomic_write_text(path, '{"old": true}')

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # the worst moment: temp file written, not yet renamed

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, '{"new": true}')
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]


def test_corrupt_state_is_moved_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state = StateFile(path, "t")
    state.load()
    assert state.uploaded == {}
    assert not path.exists()
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"


def test_default_state_file_is_beside_the_folder(folder: Path) -> None:
    assert default_state_path(folder) == folder.parent / "camera.photoevent-upload-state.json"


def test_two_watchers_cannot_share_a_state_file(tmp_path: Path) -> None:
    first = StateFile(tmp_path / "s.json", "t")
    second = StateFile(tmp_path / "s.json", "t")
    first.lock()
    try:
        with pytest.raises(WatcherError, match="Another watcher"):
            second.lock()
    finally:
        first.unlock()
    second.lock()
    second.unlock()


def test_restart_never_re_uploads(folder: Path, server: FakeUploadServer) -> None:
    for i in range(5):
        (folder / f"p{i}.jpg").write_bytes(jpeg_bytes(i))
    result = make_watcher(folder, server, once=True).run()
    assert result.complete and result.counters.uploaded == 5
    assert len(server.requests) == 1
    state = json.loads(default_state_path(folder).read_text())
    (section,) = state["targets"].values()
    assert sorted(v["photo_id"] for v in section["uploaded"].values()) == [1, 2, 3, 4, 5]

    # A renamed file and a copy in a subfolder are the same content: not sent either.
    (folder / "p0.jpg").rename(folder / "renamed.jpg")
    (folder / "sub").mkdir()
    (folder / "sub" / "copy.jpg").write_bytes(jpeg_bytes(1))
    (folder / "new.jpg").write_bytes(jpeg_bytes(99))
    again = make_watcher(folder, server, once=True).run()
    assert again.complete
    assert again.counters.already == 6 and again.counters.uploaded == 1
    assert server.requests[1:] == [[("new.jpg", jpeg_bytes(99))]]


def test_the_same_content_twice_in_one_scan_is_sent_once(folder: Path, server: FakeUploadServer) -> None:
    (folder / "a.jpg").write_bytes(jpeg_bytes(3))
    (folder / "b.jpg").write_bytes(jpeg_bytes(3))
    result = make_watcher(folder, server, once=True).run()
    assert result.complete
    assert len(server.sent_names) == 1
    assert result.counters.uploaded == 1 and result.counters.duplicate == 1


# --- retries ------------------------------------------------------------------


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    low = Backoff(base=1, cap=10, rng=lambda: 0.0)
    high = Backoff(base=1, cap=10, rng=lambda: 0.999)
    lows = [low.next_delay() for _ in range(6)]
    highs = [high.next_delay() for _ in range(6)]
    assert lows == [0.5, 1, 2, 4, 5, 5]
    assert [round(h) for h in highs] == [1, 2, 4, 8, 10, 10]
    low.reset()
    assert low.next_delay() == 0.5


def test_backoff_never_waits_less_than_retry_after() -> None:
    backoff = Backoff(base=1, cap=5, rng=lambda: 0.5)
    assert backoff.next_delay(retry_after=30) >= 30
    assert backoff.next_delay(retry_after=30) <= 30 * 1.1
    assert backoff.next_delay(retry_after=0.1) >= 1  # exponential part still applies


def test_parse_retry_after() -> None:
    assert parse_retry_after("30") == 30
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0


def test_client_classifies_answers(server: FakeUploadServer) -> None:
    client = UploadClient(server.url, EVENT_ID, TOKEN)
    server.script = [
        Scripted(503, {"detail": "Queue is full, try again later"}, {"Retry-After": "30"}),
        Scripted(429, {"detail": "Too many requests"}, {"Retry-After": "60"}),
        Scripted(502, None),
        Scripted(413, {"detail": "too big"}),
    ]
    files = [("a.jpg", jpeg_bytes(1))]
    assert client.upload(files) == Retry("HTTP 503: Queue is full, try again later", 30.0)
    assert client.upload(files) == Retry("HTTP 429: Too many requests", 60.0)
    outcome = client.upload(files)
    assert isinstance(outcome, Retry) and outcome.retry_after is None
    assert client.upload(files) == Refused(413, "too big")
    answered = client.upload(files)
    assert isinstance(answered, Answered) and answered.status == 202
    assert server.auth_headers[-1] == f"Token {TOKEN}"


@pytest.mark.parametrize(("status", "message"), [(401, "token"), (403, "owns the event"), (404, "not found")])
def test_auth_and_event_errors_are_fatal(server: FakeUploadServer, status: int, message: str) -> None:
    server.script = [Scripted(status, {"detail": "nope"})]
    client = UploadClient(server.url, EVENT_ID, TOKEN)
    with pytest.raises(WatcherError, match=message):
        client.upload([("a.jpg", jpeg_bytes(1))])


def test_event_check_fails_fast(server: FakeUploadServer) -> None:
    assert UploadClient(server.url, EVENT_ID, TOKEN).check_event() == "Fake event"
    with pytest.raises(WatcherError, match="401"):
        UploadClient(server.url, EVENT_ID, "wrong").check_event()
    with pytest.raises(WatcherError, match="Event 8 not found"):
        UploadClient(server.url, 8, TOKEN).check_event()


def test_network_error_is_retried() -> None:
    client = UploadClient("http://127.0.0.1:9", EVENT_ID, TOKEN, connect_timeout=1)
    outcome = client.upload([("a.jpg", b"x")])
    assert isinstance(outcome, Retry) and "ConnectionError" in outcome.reason
    assert client.check_event() is None  # unreachable at start is not fatal


def test_watcher_honours_retry_after_and_never_gives_up(folder: Path, server: FakeUploadServer) -> None:
    clock = FakeClock()
    watcher = make_watcher(folder, server, clock, max_backoff=4)
    watcher.backoff.rng = lambda: 0.0
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(jpeg_bytes(i))
    server.script = [
        Scripted(503, {"detail": "Queue is full, try again later"}, {"Retry-After": "30"}),
        Scripted(429, {"detail": "slow down"}, {"Retry-After": "7"}),
    ] + [Scripted(500, {"detail": "boom"})] * 6
    watcher.scan()
    clock.advance(1)
    watcher.step()
    assert len(server.requests) == 1 and watcher.counters.retrying == 3
    assert watcher.next_attempt_at - clock.now >= 30
    pump(watcher, clock, seconds=29, step=1)
    assert len(server.requests) == 1  # nothing sent before Retry-After has passed
    pump(watcher, clock, seconds=2, step=1)
    assert len(server.requests) == 2
    assert watcher.next_attempt_at - clock.now >= 7 - 1
    waits = []
    while len(server.requests) < 9:
        before = len(server.requests)
        clock.now = max(clock.now, watcher.next_attempt_at)
        watcher.step()
        assert len(server.requests) == before + 1
        waits.append(watcher.next_attempt_at - clock.now)
    # Eight failures in a row, none given up on; the last attempt succeeded.
    assert waits[:-1] == [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # capped at max_backoff with rng=0 halving it
    assert watcher.counters.uploaded == 3 and watcher.counters.retrying == 0
    assert all(request == server.requests[0] for request in server.requests)
    assert watcher.backoff.failures == 0


def test_server_down_then_up(folder: Path) -> None:
    (folder / "a.jpg").write_bytes(jpeg_bytes(1))
    clock = FakeClock()
    down = FakeUploadServer()
    down.httpd.server_close()  # nothing listens on its port for now
    watcher = make_watcher(folder, down, clock)
    watcher.scan()
    clock.advance(1)
    watcher.step()
    assert watcher.counters.retrying == 1 and watcher.pending
    restarted = _server_on_port(down.httpd.server_address[1])
    try:
        clock.now = watcher.next_attempt_at
        watcher.step()
        assert watcher.counters.uploaded == 1 and not watcher.pending
        assert restarted.sent_names == ["a.jpg"]
    finally:
        restarted.httpd.shutdown()
        restarted.httpd.server_close()


def _server_on_port(port: int) -> FakeUploadServer:
    fake = FakeUploadServer()
    fake.httpd.server_close()
    handler = fake.httpd.RequestHandlerClass
    fake.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    fake.url = f"http://127.0.0.1:{port}"
    fake.thread = threading.Thread(target=fake.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    fake.thread.start()
    return fake


# --- rejections -----------------------------------------------------------------


def test_rejected_files_are_set_aside_and_not_retried(folder: Path, server: FakeUploadServer) -> None:
    (folder / "good.jpg").write_bytes(jpeg_bytes(1))
    (folder / "broken.jpg").write_bytes(b"definitely not a jpeg")
    result = make_watcher(folder, server, once=True).run()
    assert result.complete  # a reported rejection counts as dealt with
    assert result.counters.uploaded == 1 and result.counters.rejected == 1
    assert sorted(server.sent_names) == ["broken.jpg", "good.jpg"]
    state = StateFile(default_state_path(folder), StateFile.target_key(server.url, EVENT_ID))
    state.load()
    (record,) = state.rejected.values()
    assert record["path"] == "broken.jpg" and "not an image" in record["error"]

    again = make_watcher(folder, server, once=True).run()
    assert again.complete and again.counters.rejected == 1
    assert len(server.requests) == 1  # neither file sent again


def test_a_400_for_a_whole_batch_sets_every_file_aside(folder: Path, server: FakeUploadServer) -> None:
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(b"garbage " + name.encode())
    result = make_watcher(folder, server, once=True).run()
    assert result.complete and result.counters.rejected == 2
    assert len(server.requests) == 1


def test_retry_rejected_sends_them_again(folder: Path, server: FakeUploadServer) -> None:
    (folder / "a.jpg").write_bytes(b"garbage")
    make_watcher(folder, server, once=True).run()
    make_watcher(folder, server, once=True, retry_rejected=True).run()
    assert server.sent_names == ["a.jpg", "a.jpg"]


def test_a_refused_batch_is_split_into_single_files(folder: Path, server: FakeUploadServer) -> None:
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(jpeg_bytes(i))
    server.script = [Scripted(413, {"detail": "Request body too large"}), Scripted(413, {"detail": "too large"})]
    result = make_watcher(folder, server, once=True).run()
    assert [len(r) for r in server.requests] == [3, 1, 1, 1]
    assert result.complete and result.counters.uploaded == 2 and result.counters.rejected == 1


# --- batches ----------------------------------------------------------------------


def pending(n: int, size: int = 10, **overrides: Any) -> list[PendingFile]:
    items = [PendingFile(Path(f"/f/{i}.jpg"), f"{i}.jpg", f"{i}.jpg", f"sha{i}", (size, 0)) for i in range(n)]
    for index, changes in overrides.items():
        for key, value in changes.items():
            setattr(items[int(index[1:])], key, value)
    return items


def test_plan_batch_respects_the_count() -> None:
    rest = pending(25)
    sizes = []
    while rest:
        batch, rest = plan_batch(rest, max_files=10, max_bytes=10**9)
        sizes.append(len(batch))
    assert sizes == [10, 10, 5]


def test_plan_batch_respects_bytes_but_always_sends_a_big_file() -> None:
    items = pending(4, size=40)
    batch, rest = plan_batch(items, max_files=10, max_bytes=100)
    assert [i.rel for i in batch] == ["0.jpg", "1.jpg"] and len(rest) == 2
    huge = pending(1, size=500)
    assert plan_batch(huge, max_files=10, max_bytes=100) == (huge, [])


def test_plan_batch_keeps_names_and_contents_unique_and_solo_alone() -> None:
    items = pending(5, i1={"name": "0.jpg"}, i2={"sha": "sha0"}, i4={"solo": True})
    batch, rest = plan_batch(items, max_files=10, max_bytes=10**9)
    assert [i.rel for i in batch] == ["0.jpg", "3.jpg"]
    assert [i.rel for i in rest] == ["1.jpg", "2.jpg", "4.jpg"]
    solo_first = pending(3, i0={"solo": True})
    batch, rest = plan_batch(solo_first, max_files=10, max_bytes=10**9)
    assert [i.rel for i in batch] == ["0.jpg"] and len(rest) == 2


def test_files_go_up_in_batches(folder: Path, server: FakeUploadServer) -> None:
    for i in range(23):
        (folder / f"p{i:02}.jpg").write_bytes(jpeg_bytes(i))
    result = make_watcher(folder, server, once=True, batch_files=10).run()
    assert [len(r) for r in server.requests] == [10, 10, 3]
    assert result.complete and result.counters.uploaded == 23


def test_same_names_in_subfolders_go_in_different_requests(folder: Path, server: FakeUploadServer) -> None:
    for sub in ("100CANON", "101CANON"):
        (folder / sub).mkdir()
    (folder / "100CANON" / "IMG_0001.JPG").write_bytes(jpeg_bytes(1))
    (folder / "101CANON" / "IMG_0001.JPG").write_bytes(jpeg_bytes(2))
    result = make_watcher(folder, server, once=True).run()
    assert [len(r) for r in server.requests] == [1, 1]
    assert result.counters.uploaded == 2


def test_match_verdicts_pairs_a_duplicate_under_its_old_name() -> None:
    verdicts, unmatched = match_verdicts(
        ["a.jpg", "b.jpg", "c.jpg"],
        jobs=[
            {"photo_id": 1, "filename": "a.jpg", "duplicate": False},
            {"photo_id": 9, "filename": "first-name.jpg", "duplicate": True},
        ],
        rejected=[{"filename": "c.jpg", "error": "bad"}],
    )
    assert unmatched == []
    assert verdicts[1].photo_id == 9 and verdicts[1].duplicate
    assert verdicts[2].error == "bad"


def test_match_verdicts_pairs_by_the_echoed_index() -> None:
    verdicts, unmatched = match_verdicts(
        ["a.jpg", "b.jpg", "c.jpg"],
        # Out of order, and names that match nothing: the index decides.
        jobs=[
            {"index": 2, "photo_id": 3, "filename": "zzz.jpg", "duplicate": True},
            {"index": 0, "photo_id": 1, "filename": "b.jpg", "duplicate": False},
        ],
        rejected=[{"index": 1, "filename": "a.jpg", "error": "bad"}],
    )
    assert unmatched == []
    assert (verdicts[0].photo_id, verdicts[0].duplicate) == (1, False)
    assert verdicts[1].error == "bad"
    assert (verdicts[2].photo_id, verdicts[2].duplicate) == (3, True)


def test_match_verdicts_falls_back_to_names_without_a_usable_index() -> None:
    verdicts, unmatched = match_verdicts(
        ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
        jobs=[
            {"index": 7, "photo_id": 1, "filename": "a.jpg"},  # out of range
            {"index": "1", "photo_id": 2, "filename": "b.jpg"},  # not an integer
            {"index": True, "photo_id": 3, "filename": "c.jpg"},  # a boolean is not a position
            "not an object",
        ],
        rejected=[],
    )
    assert {i: v.photo_id for i, v in verdicts.items()} == {0: 1, 1: 2, 2: 3}
    assert unmatched == [3]


def test_index_echo_pairs_duplicates_in_one_request(folder: Path, server: FakeUploadServer) -> None:
    server.photos = {hashlib.sha256(jpeg_bytes(i)).hexdigest(): (50 + i, f"old{i}.jpg") for i in range(2)}
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(jpeg_bytes(i))
    result = make_watcher(folder, server, once=True).run()
    assert result.complete
    assert len(server.requests) == 1  # no resending one by one to find out which answer is whose
    assert result.counters.duplicate == 2 and result.counters.uploaded == 1
    state = StateFile(default_state_path(folder), StateFile.target_key(server.url, EVENT_ID))
    state.load()
    assert {v["path"]: v["photo_id"] for v in state.uploaded.values()} == {"p0.jpg": 50, "p1.jpg": 51, "p2.jpg": 3}


def test_a_legacy_servers_lone_duplicate_is_paired_by_elimination(
    folder: Path, legacy_server: FakeUploadServer
) -> None:
    legacy_server.photos = {hashlib.sha256(jpeg_bytes(0)).hexdigest(): (50, "first-name.jpg")}
    for i in range(2):
        (folder / f"p{i}.jpg").write_bytes(jpeg_bytes(i))
    result = make_watcher(folder, legacy_server, once=True).run()
    assert result.complete and len(legacy_server.requests) == 1
    assert result.counters.duplicate == 1 and result.counters.uploaded == 1


def test_ambiguous_answers_are_resent_one_by_one(folder: Path, server: FakeUploadServer) -> None:
    # Answers as a server from before the index echo gives them.
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(jpeg_bytes(i))
    server.script = [
        Scripted(
            202,
            {
                "jobs": [
                    {"photo_id": 50, "filename": "old1.jpg", "duplicate": True},
                    {"photo_id": 51, "filename": "old2.jpg", "duplicate": True},
                    {"photo_id": 52, "filename": "p2.jpg", "duplicate": False},
                ],
                "rejected": [],
            },
        )
    ]
    result = make_watcher(folder, server, once=True).run()
    assert result.complete
    assert [[n for n, _ in r] for r in server.requests] == [["p0.jpg", "p1.jpg", "p2.jpg"], ["p0.jpg"], ["p1.jpg"]]


# --- the command ------------------------------------------------------------------


def test_command_reads_options_from_the_environment(
    folder: Path, server: FakeUploadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "a.jpg").write_bytes(jpeg_bytes(1))
    monkeypatch.setenv("PHOTOEVENT_SERVER", server.url)
    monkeypatch.setenv("PHOTOEVENT_EVENT", str(EVENT_ID))
    monkeypatch.setenv("PHOTOEVENT_TOKEN", TOKEN)
    monkeypatch.setenv("PHOTOEVENT_STABLE", "0.1")
    monkeypatch.setenv("PHOTOEVENT_ONCE", "1")
    out = io.StringIO()
    call_command("watch_folder", str(folder), stdout=out)
    assert server.sent_names == ["a.jpg"]
    assert "Summary: found=1 uploaded=1 duplicate=0 rejected=0" in out.getvalue()


def test_command_exits_non_zero_on_a_bad_token(folder: Path, server: FakeUploadServer) -> None:
    (folder / "a.jpg").write_bytes(jpeg_bytes(1))
    with pytest.raises(CommandError, match="refused the token") as error:
        call_command("watch_folder", str(folder), server=server.url, event="7", token="wrong", once=True)
    assert error.value.returncode == 1
    assert server.requests == []


def test_command_reports_missing_and_invalid_options(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PHOTOEVENT_SERVER", "PHOTOEVENT_EVENT", "PHOTOEVENT_TOKEN", "PHOTOEVENT_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CommandError, match=r"Missing --server \(or PHOTOEVENT_SERVER\), --event"):
        call_command("watch_folder", str(folder))
    monkeypatch.setenv("PHOTOEVENT_BATCH", "zero")
    with pytest.raises(CommandError, match="PHOTOEVENT_BATCH"):
        call_command("watch_folder", str(folder), server="http://x", event="1", token="t")


# --- symbolic links -----------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A private folder elsewhere on the laptop."""
    path = tmp_path / "private"
    (path / "album").mkdir(parents=True)
    (path / "secret.jpg").write_bytes(jpeg_bytes(200))
    (path / "album" / "also-secret.jpg").write_bytes(jpeg_bytes(201))
    return path


def test_links_are_never_followed(folder: Path, outside: Path, server: FakeUploadServer) -> None:
    (folder / "real.jpg").write_bytes(jpeg_bytes(1))
    (folder / "link.jpg").symlink_to(outside / "secret.jpg")
    (folder / "album").symlink_to(outside / "album", target_is_directory=True)
    (folder / "inside.jpg").symlink_to(folder / "real.jpg")  # inside to inside: skipped as well
    (folder / "notes.txt").symlink_to(outside / "secret.jpg")  # not a photo's name: not worth a mention
    links: list[Path] = []
    assert list(iter_candidates(folder, on_link=links.append)) == [folder / "real.jpg"]
    assert sorted(p.name for p in links) == ["album", "inside.jpg", "link.jpg"]

    result = make_watcher(folder, server, once=True).run()
    assert result.complete  # links are skipped on purpose, not left unfinished
    assert server.sent_names == ["real.jpg"]
    assert result.counters.links == 3 and result.links == ["album", "inside.jpg", "link.jpg"]
    assert "links=3" in result.counters.summary()


def test_the_watched_folder_itself_may_be_a_link(tmp_path: Path, folder: Path, server: FakeUploadServer) -> None:
    (folder / "a.jpg").write_bytes(jpeg_bytes(1))
    alias = tmp_path / "alias"
    alias.symlink_to(folder, target_is_directory=True)
    result = make_watcher(alias, server, once=True).run()
    assert server.sent_names == ["a.jpg"] and result.counters.links == 0


def test_through_link(folder: Path, outside: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "album").symlink_to(outside / "album", target_is_directory=True)
    (folder / "sub" / "link.jpg").symlink_to(outside / "secret.jpg")
    assert through_link(folder / "album" / "also-secret.jpg", folder)
    assert through_link(folder / "sub" / "link.jpg", folder)
    assert not through_link(folder / "sub" / "plain.jpg", folder)


def test_an_event_inside_a_linked_folder_is_ignored(folder: Path, outside: Path, server: FakeUploadServer) -> None:
    (folder / "album").symlink_to(outside / "album", target_is_directory=True)
    clock = FakeClock()
    watcher = make_watcher(folder, server, clock)
    # Some notifiers follow linked folders and report the files behind them.
    watcher._observe_event(folder / "album" / "also-secret.jpg", clock.now)
    watcher._observe_event(folder / "album", clock.now)
    pump(watcher, clock, seconds=2)
    assert server.requests == [] and watcher.idle
    assert watcher.counters.links == 1


def test_a_file_replaced_by_a_link_before_sending_is_not_read(
    folder: Path, outside: Path, server: FakeUploadServer
) -> None:
    clock = FakeClock()
    watcher = make_watcher(folder, server, clock, stable_seconds=1.0)
    target = folder / "a.jpg"
    target.write_bytes(jpeg_bytes(1))
    watcher.scan()
    watcher.next_attempt_at = clock.now + 100  # hold sending back, as during a retry wait
    pump(watcher, clock, seconds=2)
    assert [item.rel for item in watcher.pending] == ["a.jpg"]
    target.unlink()
    target.symlink_to(outside / "secret.jpg")
    watcher.next_attempt_at = clock.now
    pump(watcher, clock, seconds=3)
    watcher.scan()
    assert server.requests == []
    assert watcher.counters.links == 1 and watcher.idle


# --- the console script ---------------------------------------------------------------


def test_console_script_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "PHOTOEVENT_TOKEN" in out and "Symbolic links" in out


def test_console_script_uploads_and_reports_links(
    folder: Path, outside: Path, server: FakeUploadServer, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "a.jpg").write_bytes(jpeg_bytes(1))
    (folder / "link.jpg").symlink_to(outside / "secret.jpg")
    argv = [str(folder), "--server", server.url, "--event", str(EVENT_ID), "--token", TOKEN]
    assert cli.main([*argv, "--once", "--stable", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "Summary: found=1 uploaded=1 " in out and "links=1" in out
    assert "Skipped 1 symbolic link(s); links are never followed: link.jpg" in out
    assert server.sent_names == ["a.jpg"]


def test_console_script_reports_configuration_errors(
    folder: Path, server: FakeUploadServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("PHOTOEVENT_SERVER", "PHOTOEVENT_EVENT", "PHOTOEVENT_TOKEN", "PHOTOEVENT_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main([str(folder)]) == cli.EXIT_FAILED
    assert "Missing --server (or PHOTOEVENT_SERVER)" in capsys.readouterr().err
    argv = [str(folder), "--server", server.url, "--event", str(EVENT_ID), "--once"]
    assert cli.main([*argv, "--token", "wrong"]) == cli.EXIT_FAILED
    assert "refused the token" in capsys.readouterr().err
    assert cli.main([*argv, "--token", TOKEN, "--batch", "0"]) == cli.EXIT_FAILED
    assert "--batch: invalid value '0'" in capsys.readouterr().err
    assert server.requests == []
