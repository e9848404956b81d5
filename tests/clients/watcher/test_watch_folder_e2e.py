"""The folder watcher against a live server and qcluster, all in subprocesses.

The server's embedded setup (SQLite, local storage, local face backend) gets
its own DATA_DIR under tmp_path; the watcher gets another, as a laptop would.
The story: photos arrive (some written slowly), the server goes away while
more arrive until the watcher has failed to reach it twice, the watcher is
restarted once, and `--once` finishes the job. The first run goes through
`manage.py watch_folder`, the second through the client package alone, with
Django made unimportable. A link in the folder to a private file elsewhere is
never sent. In the end every photo is on the server exactly once, by SHA-256,
and processed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
import requests
from PIL import Image

from tests.cluster import free_port, wait_for
from testsupport.waiting import wait_for_drain

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
CLIENT_DIR = REPO / "clients" / "watcher"
# The client run alone: Django is made unimportable first, so any import of it
# fails the run instead of passing unnoticed.
CLIENT_ONLY = "import sys; sys.modules['django'] = None; from photoevent_watch.cli import main; sys.exit(main())"
PASSWORD = "E2e-watch-pass-1234"
PHOTOS = 30
# Short waits keep the test well inside its time budget; the behaviour is the
# same as with the defaults.
WATCHER_TUNING = ["--stable", "1.5", "--max-backoff", "2", "--rescan", "5", "--batch", "4"]
# Variables that would point the subprocesses at shared services instead of
# their own embedded setup.
FOREIGN_ENV = ("DATABASE_URL", "REDIS_URL", "Q_BROKER", "Q_SYNC", "MEDIA_ROOT", "STATIC_ROOT", "STORAGE_BACKEND")


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Overrides conftest's cache clearing: this test talks to its own server, not the test database."""


def photo_bytes(index: int) -> bytes:
    """A distinct synthetic JPEG: seeded noise, so no two share a SHA-256 and none shows a face."""
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 256, size=(180, 240, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def write_slowly(path: Path, data: bytes, chunks: int = 5, pause: float = 0.35, mode: str = "wb") -> None:
    """Write like a card reader: in pieces, each pause shorter than --stable."""
    size = len(data) // chunks + 1
    with path.open(mode) as handle:
        for start in range(0, len(data), size):
            handle.write(data[start : start + size])
            handle.flush()
            time.sleep(pause)


class Proc:
    """A subprocess whose output goes to a log file that the test can read."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path, cwd: Path = REPO) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.popen = subprocess.Popen(command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


class Stack:
    """The server side: DATA_DIR, web server and cluster, plus an API session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir()
        base = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV and not k.startswith("PHOTOEVENT_")}
        self.env = {
            **base,
            "DATA_DIR": str(root / "server-data"),
            "FACE_BACKEND": "local",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "0",
            "PHOTO_QUEUE_WORKERS": "2",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[Proc] = []
        self.web: Proc | None = None
        self.token = ""
        self.session = requests.Session()

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        """Run `manage.py <args>` in the background."""
        return self.start_command(name, [sys.executable, "manage.py", *args], env or self.env)

    def start_command(self, name: str, command: list[str], env: dict[str, str], cwd: Path = REPO) -> Proc:
        proc = Proc(name, command, env, self.logs, cwd)
        self.procs.append(proc)
        return proc

    def start_web(self) -> None:
        self.web = self.start("web", "runserver", f"127.0.0.1:{self.port}", "--noreload", "--skip-checks")
        wait_for(self.web_up, 30, "the web server to answer")

    def stop_web(self) -> None:
        assert self.web is not None
        self.web.stop()
        assert not self.web_up()

    def web_up(self) -> bool:
        try:
            return self.session.get(f"{self.url}/api/photographer/events", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def photos(self, event_id: int) -> list[dict[str, Any]]:
        url: str | None = f"{self.url}/api/photographer/events/{event_id}/photos"
        results: list[dict[str, Any]] = []
        while url:
            body = self.session.get(url, timeout=5).json()
            results.extend(body["results"])
            url = body["next"]
        return results

    def db_photos(self, event_id: int) -> list[tuple[str, str]]:
        with sqlite3.connect(self.root / "server-data" / "db.sqlite3") as db:
            return db.execute("SELECT sha256, status FROM gallery_photo WHERE event_id = ?", (event_id,)).fetchall()

    def unfinished_report(self, event_id: int) -> str:
        """The photos not done, with what the server recorded about them, and the end of the queue's log."""
        with sqlite3.connect(self.root / "server-data" / "db.sqlite3") as db:
            rows = db.execute(
                "SELECT id, filename, status, attempts, worker, error FROM gallery_photo"
                " WHERE event_id = ? AND status != 'done'",
                (event_id,),
            ).fetchall()
        lines = [
            f"photo {pk} {name}: {status}, {attempts} attempt(s), worker {worker!r}, error {error!r}"
            for pk, name, status, attempts, worker, error in rows
        ]
        cluster = next((proc for proc in self.procs if proc.name == "qcluster"), None)
        if cluster is not None:
            lines += ["qcluster log, last 40 lines:", *cluster.log.splitlines()[-40:]]
        return "\n".join(lines)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=10)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path)
    try:
        stack.manage("migrate", "--noinput", "-v", "0")
        stack.manage("createcachetable")
        stack.token = stack.manage("createphotographer", "alice", "--password", PASSWORD).strip().splitlines()[-1]
        stack.session.headers["Authorization"] = f"Token {stack.token}"
        stack.start_web()
        stack.start("qcluster", "qcluster")
        yield stack
    finally:
        stack.close()


def summary(log: str) -> dict[str, int]:
    lines = re.findall(r"Summary: (.*)", log)
    assert lines, f"no summary in the watcher's output:\n{log}"
    return {key: int(value) for key, value in (pair.split("=") for pair in lines[-1].split())}


def uploaded_names(log: str) -> list[str]:
    return re.findall(r"Uploaded (\S+) \(photo \d+\)", log)


def answered_names(log: str) -> set[str]:
    """The files whose upload the watcher has recorded: stored now, or already on the server."""
    return set(uploaded_names(log)) | set(re.findall(r"(\S+) was already on the server", log))


def test_every_photo_arrives_exactly_once_through_outage_and_restart(stack: Stack, tmp_path: Path) -> None:
    event = stack.session.post(f"{stack.url}/api/photographer/events", json={"name": "E2E"}, timeout=5).json()
    event_id = int(event["id"])
    folder = tmp_path / "camera"
    (folder / "DCIM" / "100CAMERA").mkdir(parents=True)
    photos = {i: photo_bytes(i) for i in range(PHOTOS)}
    shas = {hashlib.sha256(data).hexdigest() for data in photos.values()}
    assert len(shas) == PHOTOS

    def place(i: int, slowly: bool = False) -> None:
        sub = "DCIM/100CAMERA/" if i % 2 else ""
        path = folder / f"{sub}IMG_{i:04}.JPG"
        if slowly:
            write_slowly(path, photos[i])
        else:
            path.write_bytes(photos[i])

    # Litter a camera folder really has; none of it may reach the server.
    (folder / ".DS_Store").write_bytes(b"\0" * 10)
    (folder / "Thumbs.db").write_bytes(b"\0" * 10)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "IMG_9999.JPG.part").write_bytes(photos[0][:100])
    # A link to a private photo elsewhere on the laptop must never be sent.
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.jpg").write_bytes(photo_bytes(PHOTOS + 1))
    (folder / "DCIM" / "IMG_LINK.JPG").symlink_to(private / "secret.jpg")

    watcher_env = {
        **stack.env,
        # The laptop has the project but not the server's data.
        "DATA_DIR": str(tmp_path / "laptop-data"),
        "PHOTOEVENT_SERVER": stack.url,
        "PHOTOEVENT_EVENT": str(event_id),
        "PHOTOEVENT_TOKEN": stack.token,
    }
    state_path = tmp_path / "camera.photoevent-upload-state.json"
    watch_args = ["watch_folder", str(folder), *WATCHER_TUNING]

    # 1. Photos arrive while the watcher runs; some are written slowly.
    first = stack.start("watcher-1", *watch_args, env=watcher_env)
    for i in range(8):
        place(i)
    slow_writers = [threading.Thread(target=place, args=(i, True)) for i in range(8, 12)]
    for writer in slow_writers:
        writer.start()
    for writer in slow_writers:
        writer.join()
    wait_for(lambda: len(stack.db_photos(event_id)) >= 12, 30, "the first 12 photos on the server")

    # 2. The server goes away for about ten seconds while more photos arrive.
    stack.stop_web()
    for i in range(12, 18):
        place(i)
    place(18, slowly=True)
    place(19, slowly=True)
    # Down until the watcher has tried and failed twice: it backs off and keeps the files.
    wait_for(lambda: first.log.count("failed (ConnectionError") >= 2, 30, "the watcher to retry during the outage")
    assert len(stack.db_photos(event_id)) == 12
    stack.start_web()
    wait_for(lambda: len(stack.db_photos(event_id)) >= 20, 30, "the watcher to catch up after the outage")
    # The answers, not only the stored photos: the state file is what the restart reads.
    wait_for(lambda: len(answered_names(first.log)) >= 20, 30, "the watcher to record all 20 answers")

    # 3. The watcher is restarted once: Ctrl-C ends it cleanly.
    assert first.stop(signal.SIGINT, timeout=15) == 0, first.log
    first_log = first.log
    assert "Stopped." in first_log
    assert state_path.exists()

    # 4. More photos, one still being written when `--once` starts.
    for i in range(20, 29):
        place(i)
    last = folder / "DCIM" / "100CAMERA" / "IMG_0029.JPG"
    last.write_bytes(photos[29][:2000])
    # Still being appended to for a few seconds after the watcher starts.
    rest = threading.Thread(target=write_slowly, args=(last, photos[29][2000:]), kwargs={"chunks": 10, "mode": "ab"})
    rest.start()
    # The second run is the client package on its own, as installed on a laptop.
    client_env = {**watcher_env, "PYTHONPATH": str(CLIENT_DIR)}
    client_env.pop("DJANGO_SETTINGS_MODULE", None)
    client_args = [str(folder), *WATCHER_TUNING, "--once"]
    second = stack.start_command("watcher-2", [sys.executable, "-c", CLIENT_ONLY, *client_args], client_env, tmp_path)
    second.popen.wait(60)
    rest.join()
    second_log = second.log
    assert second.popen.returncode == 0, second_log

    # Every photo is on the server exactly once, and processed.
    # A busy machine processes slowly but steadily: the bound is on progress, not on the total time.
    try:
        wait_for_drain(
            lambda: sum(1 for _, status in stack.db_photos(event_id) if status != "done"), 60, "photos left to process"
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.unfinished_report(event_id)}") from None
    on_server = stack.db_photos(event_id)
    assert len(on_server) == PHOTOS
    assert {sha for sha, _ in on_server} == shas
    api_photos = stack.photos(event_id)
    assert len(api_photos) == PHOTOS
    assert {p["status"] for p in api_photos} == {"done"}
    assert sorted(p["filename"] for p in api_photos) == sorted(f"IMG_{i:04}.JPG" for i in range(PHOTOS))

    # The restart re-sent nothing: the second run only uploaded the new files.
    run1, run2 = summary(first_log), summary(second_log)
    assert run2["duplicate"] == 0 and run2["rejected"] == 0 and run2["unreadable"] == 0
    assert run2["already"] == 20 and run2["uploaded"] == 10 and run2["found"] == PHOTOS
    assert sorted(uploaded_names(second_log)) == sorted(
        f"{'DCIM/100CAMERA/' if i % 2 else ''}IMG_{i:04}.JPG" for i in range(20, 30)
    )
    assert not set(uploaded_names(first_log)) & set(uploaded_names(second_log))
    assert run1["rejected"] == 0 and run1["uploaded"] + run1["duplicate"] == 20
    # The link was seen by both runs, said so, and never read.
    assert run1["links"] == 1 and run2["links"] == 1
    assert "links are never followed: DCIM/IMG_LINK.JPG" in second_log
