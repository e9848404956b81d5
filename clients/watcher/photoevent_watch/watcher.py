"""The local folder watcher: uploads new photos from a folder to an event over HTTP.

This module is the client that runs on a photographer's laptop. It talks to the
server only through the upload API and never touches the database; it is
installed without the server, so nothing here may import Django or the
server's packages.

The pieces, each usable and testable alone:

- `ignore_reason` / `is_candidate` / `through_link`: which files are photos
  worth sending. Symbolic links are never followed (see `iter_candidates`).
- `StabilityTracker`: a file is ready once its size and mtime stop changing.
- `StateFile`: what was uploaded (SHA-256 -> photo id) or set aside, written
  atomically so that a crash never corrupts it and a restart never re-sends.
- `plan_batch`: the next request's files, within the count and byte limits.
- `UploadClient`: one multipart request, its answer classified.
- `Backoff` / `parse_retry_after`: how long to wait before trying again.
- `Progress`: a live tqdm bar on a terminal, plain log lines elsewhere.
- `FolderWatcher`: the loop that ties them together.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import logging
import mimetypes
import os
import queue
import random
import re
import stat
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, TextIO

import requests
import watchfiles
from tqdm import tqdm

logger = logging.getLogger("photoevent.watcher")

# Extensions of files we try to send. The server takes JPEG, PNG, WebP and HEIC;
# TIFF is included so that a scanner folder gets a clear rejection per file
# rather than silence. Raw formats are left out on purpose:
# cameras shooting RAW+JPEG would otherwise send every picture twice.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff"})
# What browsers, copy tools and editors call a file they are still writing.
TEMP_SUFFIXES = (".tmp", "~", ".part", ".partial", ".crdownload", ".download")
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})

STATE_FORMAT = "photoevent-watch-state"
STATE_VERSION = 1
USER_AGENT = "photoevent-watch/1"
# Opening a photo with O_NOFOLLOW makes a link swapped in after the checks fail
# to open instead of being read (0 where the platform has no such flag).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# The server's display_name() keeps at most this many characters of a name.
MAX_NAME_CHARS = 200
# A Retry-After beyond this is more likely a misconfigured proxy than a plan.
MAX_RETRY_AFTER = 3600.0


class WatcherError(Exception):
    """A problem the watcher cannot fix by waiting: bad token, unknown event, unusable folder."""


# --- Which files ----------------------------------------------------------


def ignore_reason(path: Path, root: Path) -> str | None:
    """Why `path` (inside `root`) is not a photo to upload, or None if it is one."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return "outside the watched folder"
    if not parts:
        return "the watched folder itself"
    # A hidden folder anywhere on the way hides everything in it (.thumbnails,
    # .Trashes, rsync's .~tmp~ and the like).
    if any(part.startswith(".") for part in parts):
        return "hidden"
    name = parts[-1]
    lowered = name.lower()
    if lowered in IGNORED_NAMES:
        return "system file"
    if lowered.endswith(TEMP_SUFFIXES):
        return "temporary file"
    if os.path.splitext(lowered)[1] not in IMAGE_EXTENSIONS:
        return "not an image extension"
    return None


def is_candidate(path: Path, root: Path) -> bool:
    """True if `path` has the name of a photo to upload (its content is the server's call)."""
    return ignore_reason(path, root) is None


def through_link(path: Path, root: Path) -> bool:
    """True if `path` is a symbolic link, or lies in a linked folder, below `root`.

    `root` itself may be a link: the user named it. Anything below it that is a
    link may point anywhere on the machine, so it is never followed.
    """
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return True
    return False


def iter_candidates(root: Path, on_link: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Every candidate file under `root`, subfolders included, hidden folders and links skipped.

    Symbolic links are never followed, wherever they point: a link to a file
    elsewhere on the laptop must not publish that file to an event's guests,
    and a link to a photo inside the folder adds nothing, since the photo
    itself is found. `on_link` is told about each link that has a photo's name
    and each linked folder, so they can be reported.
    """

    def on_error(exc: OSError) -> None:
        # An unreadable subfolder must not stop the scan of the others.
        logger.warning("Cannot read %s: %s", exc.filename, exc.strerror)

    # followlinks=False (the default) keeps os.walk out of linked folders; they
    # are still listed in `dirnames`, which is where they are reported.
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        base = Path(dirpath)
        visible = sorted(d for d in dirnames if not d.startswith("."))
        dirnames[:] = [d for d in visible if not (base / d).is_symlink()]
        if on_link is not None:
            for linked in sorted(set(visible) - set(dirnames)):
                on_link(base / linked)
        for filename in sorted(filenames):
            path = base / filename
            if not is_candidate(path, root):
                continue
            if path.is_symlink():
                if on_link is not None:
                    on_link(path)
                continue
            yield path


def upload_name(path: Path) -> str:
    """The file name to send, already in the form the server will store and echo back.

    The server reduces names to a safe display form (basename, no control
    characters, at most 200 characters). Sending that form ourselves lets the
    answer's `filename` be matched to the file that was sent.
    """
    name = "".join(ch for ch in path.name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > MAX_NAME_CHARS:
        stem, ext = os.path.splitext(name)
        name = stem[: MAX_NAME_CHARS - len(ext[:20])] + ext[:20]
    return name or "photo"


def open_no_follow(path: Path) -> IO[bytes]:
    """Open `path` for reading, failing (OSError, ELOOP) if it is a symbolic link."""
    return os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0)), "rb")


def sha256_of_file(path: Path) -> str:
    """The SHA-256 of the file's content; refuses to read through a symbolic link."""
    digest = hashlib.sha256()
    with open_no_follow(path) as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- Stability ------------------------------------------------------------

Signature = tuple[int, int]  # (size in bytes, mtime in ns)


@dataclass
class _Observation:
    signature: Signature
    since: float


class StabilityTracker:
    """Tells when a file has stopped changing.

    Cameras and card readers write slowly and some tools pause mid-file, so a
    file counts as ready only once the same size and mtime have been observed
    for `stable_seconds`. Time is the caller's monotonic clock, never the
    file's mtime: a network share's clock may disagree with ours.
    """

    def __init__(self, stable_seconds: float) -> None:
        self.stable_seconds = stable_seconds
        self._seen: dict[Path, _Observation] = {}

    def observe(self, path: Path, signature: Signature, now: float) -> None:
        """Record the current size and mtime of `path`; a change restarts its wait."""
        current = self._seen.get(path)
        if current is None or current.signature != signature:
            self._seen[path] = _Observation(signature, now)

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def pop_ready(self, now: float) -> list[tuple[Path, Signature]]:
        """Remove and return the files unchanged for at least `stable_seconds`, oldest first."""
        ready = [(path, obs) for path, obs in self._seen.items() if now - obs.since >= self.stable_seconds]
        ready.sort(key=lambda item: (item[1].since, str(item[0])))
        for path, _ in ready:
            del self._seen[path]
        return [(path, obs.signature) for path, obs in ready]

    def paths(self) -> list[Path]:
        return list(self._seen)

    def __contains__(self, path: object) -> bool:
        return path in self._seen

    def __len__(self) -> int:
        return len(self._seen)


# --- State file -----------------------------------------------------------


def default_state_path(folder: Path) -> Path:
    """The state file beside the watched folder, so it is never watched itself."""
    folder = folder.resolve()
    return folder.parent / f"{folder.name or 'root'}.photoevent-upload-state.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader or a crash sees the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            # Without fsync a power cut after the rename can leave an empty file.
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if os.name == "posix":
        # The rename itself is only durable once the directory is synced.
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class StateFile:
    """What this watcher has done for one server and event, kept across restarts.

    Records are keyed by SHA-256, so a renamed or copied file is still known.
    A path cache (relative path -> size, mtime, SHA-256) spares re-hashing
    every file on start. One file can hold several server/event targets.
    """

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        self.uploaded: dict[str, dict[str, Any]] = {}
        self.rejected: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, list[Any]] = {}
        self._others: dict[str, Any] = {}
        self._lock_handle: IO[bytes] | None = None

    @staticmethod
    def target_key(server: str, event_id: int) -> str:
        return f"{server.rstrip('/')} event {event_id}"

    def load(self) -> None:
        """Read the file if there is one; an unreadable one is moved aside, never overwritten."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
                raise ValueError("not a watcher state file")
            if doc.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {doc.get('version')!r}")
            targets = doc.get("targets")
            if not isinstance(targets, dict):
                raise ValueError("no targets")
            section = targets.pop(self.target, {})
            uploaded, rejected, paths = (section.get(k, {}) for k in ("uploaded", "rejected", "paths"))
            if not all(isinstance(x, dict) for x in (uploaded, rejected, paths)):
                raise ValueError("malformed section")
        except ValueError as exc:
            # Atomic writes mean only a hand edit or another program gets here.
            # Keeping the bad file lets someone look at it; starting empty is
            # safe because the server deduplicates what we send again.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            logger.error("State file %s is unreadable (%s); moved it to %s and starting afresh", self.path, exc, aside)
            return
        self._others = targets
        self.uploaded, self.rejected, self.paths = uploaded, rejected, paths

    def save(self) -> None:
        doc = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "targets": {
                **self._others,
                self.target: {"uploaded": self.uploaded, "rejected": self.rejected, "paths": self.paths},
            },
        }
        atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=True))

    def lock(self) -> None:
        """Hold an exclusive lock so that two watchers never share (and clobber) one state file."""
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a+b")
        try:
            # Each platform has only its own locking module.
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise WatcherError(
                f"Another watcher is already using the state file {self.path}; stop it or pass a different --state"
            ) from None
        self._lock_handle = handle

    def unlock(self) -> None:
        if self._lock_handle is not None:
            # Closing the handle releases the lock on every platform.
            self._lock_handle.close()
            self._lock_handle = None

    def record_uploaded(self, sha: str, photo_id: int, rel: str, duplicate: bool) -> None:
        self.uploaded[sha] = {"photo_id": photo_id, "path": rel, "duplicate": duplicate, "at": _now_iso()}
        self.rejected.pop(sha, None)

    def record_rejected(self, sha: str, rel: str, error: str) -> None:
        self.rejected[sha] = {"path": rel, "error": error, "at": _now_iso()}

    def remember_path(self, rel: str, signature: Signature, sha: str) -> None:
        self.paths[rel] = [signature[0], signature[1], sha]

    def forget_path(self, rel: str) -> None:
        self.paths.pop(rel, None)

    def cached_sha(self, rel: str, signature: Signature) -> str | None:
        """The SHA-256 hashed earlier for this path, if the file has not changed since."""
        entry = self.paths.get(rel)
        if isinstance(entry, list) and len(entry) == 3 and (entry[0], entry[1]) == signature:
            return str(entry[2])
        return None


# --- Batching ---------------------------------------------------------------


@dataclass
class PendingFile:
    """A stable file whose content the server has not yet answered for."""

    path: Path
    rel: str
    name: str
    sha: str
    signature: Signature
    # Sent in a request of its own: after an answer that could not be matched
    # to it, or a whole-batch refusal that one file may have caused.
    solo: bool = False

    @property
    def size(self) -> int:
        return self.signature[0]


def plan_batch(
    pending: Sequence[PendingFile], max_files: int, max_bytes: int
) -> tuple[list[PendingFile], list[PendingFile]]:
    """Split `pending` into the next request's files and the rest, keeping order.

    A request holds at most `max_files` files and, unless its first file alone
    is bigger, at most `max_bytes`. No two files in it share a name (a server
    that does not echo `index` is matched by name) or content (the server would refuse the second copy).
    A solo file always travels alone.
    """
    batch: list[PendingFile] = []
    rest: list[PendingFile] = []
    names: set[str] = set()
    shas: set[str] = set()
    total = 0
    for item in pending:
        fits = (
            len(batch) < max_files
            and not (batch and (item.solo or batch[0].solo))
            and item.name not in names
            and item.sha not in shas
            and (not batch or total + item.size <= max_bytes)
        )
        if fits:
            batch.append(item)
            names.add(item.name)
            shas.add(item.sha)
            total += item.size
        else:
            rest.append(item)
    return batch, rest


# --- HTTP -------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Backoff:
    """Exponential backoff with jitter that never waits less than the server asked."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng
        self.failures = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        """Count one more failure and return the seconds to wait before the next try."""
        self.failures += 1
        ceiling = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
        # "Equal jitter": waits still grow with each failure, but laptops that
        # lost the server together do not all come back in the same second.
        delay = ceiling / 2 + self.rng() * ceiling / 2
        if retry_after is not None:
            asked = min(retry_after, MAX_RETRY_AFTER)
            delay = max(delay, asked + self.rng() * min(asked * 0.1, 5.0))
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Answered:
    """The server judged the files one by one (202, or 400 when it took none)."""

    status: int
    jobs: list[dict[str, Any]]
    rejected: list[dict[str, Any]]


@dataclass
class Retry:
    """Nothing was decided; the same files should be sent again later."""

    reason: str
    retry_after: float | None = None


@dataclass
class Refused:
    """The request as a whole was refused (400 or 413 without per-file verdicts)."""

    status: int
    detail: str


Outcome = Answered | Retry | Refused


def _network_reason(exc: requests.RequestException) -> str:
    """A short cause for the log: urllib3's nested messages bury the errno deep inside."""
    text = str(exc)
    errno_text = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    return f"{type(exc).__name__}: {errno_text.group(0) if errno_text else text[:200]}"


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason or ""
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


class UploadClient:
    """The upload API of one event on one server."""

    def __init__(
        self,
        server: str,
        event_id: int,
        token: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        if not server.startswith(("http://", "https://")):
            raise WatcherError(f"The server URL must start with http:// or https://, got {server!r}")
        self.server = server.rstrip("/")
        self.event_id = event_id
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Authorization": f"Token {token}", "Accept": "application/json", "User-Agent": USER_AGENT}
        )

    @property
    def event_url(self) -> str:
        return f"{self.server}/api/photographer/events/{self.event_id}"

    @property
    def upload_url(self) -> str:
        return f"{self.event_url}/upload-photos"

    def _fatal_for(self, response: requests.Response) -> WatcherError | None:
        detail = _detail(response)
        if response.status_code == 401:
            return WatcherError(f"The server refused the token (401: {detail}); check --token / PHOTOEVENT_TOKEN")
        if response.status_code == 403:
            return WatcherError(
                f"Not allowed to upload to event {self.event_id} (403: {detail}); "
                "the token must belong to the photographer who owns the event"
            )
        if response.status_code == 404:
            return WatcherError(
                f"Event {self.event_id} not found at {self.event_url} (404: {detail}); "
                "check --server / PHOTOEVENT_SERVER and --event / PHOTOEVENT_EVENT"
            )
        return None

    def check_event(self) -> str | None:
        """Fail fast on a bad token or event; the event's name, or None if the server is unreachable now."""
        try:
            response = self.session.get(self.event_url, timeout=self.timeout)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as exc:
            raise WatcherError(f"Bad server URL {self.server!r}: {exc}") from None
        except requests.RequestException as exc:
            logger.warning("Server %s not reachable yet (%s); will keep trying", self.server, exc)
            return None
        fatal = self._fatal_for(response)
        if fatal is not None:
            raise fatal
        if response.status_code != 200:
            logger.warning("Server answered %s to the event check; will try uploads anyway", response.status_code)
            return None
        try:
            return str(response.json().get("name", ""))
        except (ValueError, AttributeError):
            return None

    def upload(self, files: Sequence[tuple[str, bytes]]) -> Outcome:
        """Send `files` (name, content) in one request and classify the answer.

        Raises `WatcherError` for answers no retry can fix (401, 403, 404,
        other unexpected 4xx).
        """
        fields = [
            ("photos", (name, data, mimetypes.guess_type(name)[0] or "application/octet-stream"))
            for name, data in files
        ]
        try:
            response = self.session.post(self.upload_url, files=fields, timeout=self.timeout)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as exc:
            raise WatcherError(f"Bad server URL {self.server!r}: {exc}") from None
        except requests.RequestException as exc:
            # Also a read timeout: the server may have stored the files, and
            # its deduplication makes sending them again harmless.
            return Retry(_network_reason(exc))
        return self._classify(response)

    def _classify(self, response: requests.Response) -> Outcome:
        code = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if code in (408, 425, 429) or code >= 500:
            return Retry(f"HTTP {code}: {_detail(response)}", retry_after)
        fatal = self._fatal_for(response)
        if fatal is not None:
            raise fatal
        if code in (200, 201, 202, 400):
            try:
                body = response.json()
            except ValueError:
                body = None
            jobs = body.get("jobs") if isinstance(body, dict) else None
            rejected = body.get("rejected") if isinstance(body, dict) else None
            if isinstance(jobs, list) and isinstance(rejected, list) and (jobs or rejected):
                return Answered(code, jobs, rejected)
            if code == 400:
                return Refused(code, _detail(response))
            # A success without verdicts (a proxy's page, a truncated body):
            # ask again; duplicates are answered as such.
            return Retry(f"HTTP {code} without a readable answer")
        if code == 413:
            return Refused(code, _detail(response) or "Request too large")
        raise WatcherError(f"Unexpected answer from {self.upload_url}: HTTP {code}: {_detail(response)}")


# --- Progress ---------------------------------------------------------------


@dataclass
class Counters:
    """Live counts for the progress display. `found` is the current candidate files."""

    found: int = 0
    uploaded: int = 0
    duplicate: int = 0
    already: int = 0
    rejected: int = 0
    retrying: int = 0
    unreadable: int = 0
    # Symbolic links (to photos, or to folders) present and skipped.
    links: int = 0

    def compact(self) -> str:
        """The counts for a progress bar, where `found` is the bar's total and zeros of rare counts are noise."""
        parts = [
            f"uploaded {self.uploaded}",
            f"dup {self.duplicate}",
            f"rejected {self.rejected}",
            f"retrying {self.retrying}",
        ]
        if self.already:
            parts.append(f"earlier {self.already}")
        if self.unreadable:
            parts.append(f"unreadable {self.unreadable}")
        if self.links:
            parts.append(f"links skipped {self.links}")
        return ", ".join(parts)

    def summary(self) -> str:
        return (
            f"found={self.found} uploaded={self.uploaded} duplicate={self.duplicate} "
            f"rejected={self.rejected} retrying={self.retrying} already={self.already} unreadable={self.unreadable} "
            f"links={self.links}"
        )


class Progress:
    """A tqdm bar on a terminal; elsewhere a plain line when the counts change, at most every `interval` s."""

    def __init__(
        self,
        *,
        bar: bool,
        emit: Callable[[str], None],
        stream: TextIO | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._interval = interval
        self._clock = clock
        self._last_text = ""
        self._last_at = float("-inf")
        self._bar: Any = None
        if bar:
            self._bar = tqdm(total=0, unit="photo", file=stream or sys.stdout, dynamic_ncols=True, leave=True)

    def update(self, counters: Counters, done: int, force: bool = False) -> None:
        text = counters.summary()
        if self._bar is not None:
            self._bar.total = counters.found
            self._bar.n = min(done, counters.found)
            self._bar.set_postfix_str(counters.compact(), refresh=False)
            self._bar.refresh()
            return
        now = self._clock()
        if text != self._last_text and (force or now - self._last_at >= self._interval):
            self._emit(f"Progress: {text}")
            self._last_text, self._last_at = text, now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# --- Native events ----------------------------------------------------------


class EventSource(Protocol):
    """Where the watcher learns about changed paths between rescans."""

    def start(self) -> None: ...
    def drain(self) -> set[Path]: ...
    def stop(self) -> None: ...


class NativeEvents:
    """File system notifications (inotify, FSEvents, ReadDirectoryChangesW via watchfiles) on a thread.

    The thread only collects paths; the watcher decides what they mean. Events
    pile up while an upload is in progress instead of being lost.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._paths: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="photoevent-watch-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for changes in watchfiles.watch(
                self.root,
                watch_filter=None,
                debounce=200,
                step=50,
                stop_event=self._stop,
                raise_interrupt=False,
                rust_timeout=1000,
            ):
                for _, raw in changes:
                    self._paths.put(Path(raw))
        except Exception as exc:  # noqa: BLE001 - any failure here leaves the rescans to do the work
            self.failed = True
            logger.warning("File system notifications stopped (%s); relying on rescans", exc)

    def drain(self) -> set[Path]:
        paths: set[Path] = set()
        with contextlib.suppress(queue.Empty):
            while True:
                paths.add(self._paths.get_nowait())
        return paths

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --- The watcher --------------------------------------------------------------


@dataclass
class WatchOptions:
    """How the watcher behaves; see the management command's help for each option."""

    stable_seconds: float = 2.0
    batch_files: int = 10
    batch_bytes: int = 100 * 1024 * 1024
    # None: native events plus a rescan every `rescan_seconds`; a number: no
    # native events, a full scan every that many seconds.
    poll_seconds: float | None = None
    rescan_seconds: float = 30.0
    once: bool = False
    max_backoff: float = 60.0
    retry_rejected: bool = False


@dataclass
class RunResult:
    """How a run ended, for the exit code."""

    counters: Counters
    interrupted: bool
    unfinished: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    # Skipped on purpose, so they never make a run incomplete.
    links: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every file found was uploaded, or reported (rejected by the server)."""
        return not self.interrupted and not self.unfinished and not self.unreadable


class FolderWatcher:
    """Watches a folder and uploads each new stable photo exactly once.

    `run()` loops until `request_stop()` (or, with `once`, until everything
    found is uploaded or reported). `scan()` and `step()` are the loop's parts
    and can be driven directly with a fake clock.
    """

    def __init__(
        self,
        folder: Path,
        client: UploadClient,
        state: StateFile,
        options: WatchOptions | None = None,
        *,
        progress: Progress | None = None,
        events: EventSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self.root = folder.resolve()
        self.client = client
        self.state = state
        self.options = options or WatchOptions()
        self.progress = progress
        self.events = events
        self.clock = clock
        self.backoff = backoff or Backoff(cap=self.options.max_backoff)
        self.tracker = StabilityTracker(self.options.stable_seconds)
        self.counters = Counters()
        self.pending: list[PendingFile] = []
        # Paths already dealt with (uploaded, duplicate, rejected, known from
        # the state file) and the signature they had, so rescans skip them.
        self.settled: dict[Path, Signature] = {}
        self.seen: set[Path] = set()
        self.unreadable: dict[Path, str] = {}
        # Symbolic links found (and skipped) by the last scan or since.
        self.links: set[Path] = set()
        self.uploaded_this_run: set[str] = set()
        self.next_attempt_at = float("-inf")
        self.last_scan_at = float("-inf")
        self._stop = threading.Event()
        self._state_dirty_at: float | None = None

    # -- control

    def request_stop(self) -> None:
        """End after the request in progress, if any; safe to call from a signal handler."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def tick(self) -> float:
        return max(0.05, min(0.5, self.options.stable_seconds / 4))

    def run(self) -> RunResult:
        """Watch until stopped (or, with `once`, until nothing is left) and say how it went."""
        if not self.root.is_dir():
            raise WatcherError(f"{self.root} is not a folder")
        if self.options.retry_rejected and self.state.rejected:
            logger.info("Trying %d set-aside file(s) again", len(self.state.rejected))
            self.state.rejected.clear()
        if self.events is not None:
            self.events.start()
        try:
            self.scan()
            while not self.stopping:
                busy = self.step()
                if self.options.once and self.idle:
                    # Anything that arrived since the last scan still counts;
                    # unreadable files had their try and are reported instead.
                    self.scan(retry_unreadable=False)
                    if self.idle:
                        break
                if not busy:
                    self._stop.wait(self.tick)
        finally:
            if self.events is not None:
                self.events.stop()
            self.state.save()
            self._refresh_progress(force=True)
        return RunResult(
            counters=self.counters,
            interrupted=self.stopping,
            unfinished=sorted({p.rel for p in self.pending} | {self._rel(p) for p in self.tracker.paths()}),
            unreadable=sorted(self._rel(p) for p in self.unreadable),
            links=sorted(self._rel(p) for p in self.links),
        )

    @property
    def idle(self) -> bool:
        """Nothing waiting to become stable and nothing waiting to be sent."""
        return not self.pending and not len(self.tracker)

    # -- the loop's parts

    def scan(self, retry_unreadable: bool = True) -> None:
        """Look at every candidate file and forget the ones that are gone."""
        now = self.clock()
        present: set[Path] = set()
        links: set[Path] = set()
        for path in iter_candidates(self.root, on_link=links.add):
            present.add(path)
            self._observe(path, now)
        for path in list(self.seen - present):
            self._vanished(path)
        for path in sorted(links - self.links):
            self._skip_link(path)
        self.links = links
        # A file that could not be read may be readable now (permissions fixed,
        # lock released); the next stable check tries it again.
        for path in list(self.unreadable) if retry_unreadable else []:
            del self.unreadable[path]
            self.settled.pop(path, None)
            self._observe(path, now)
        self.last_scan_at = now

    def step(self) -> bool:
        """One pass: take in events, re-check waiting files, send one batch if due. True if more is due now."""
        now = self.clock()
        if self.events is not None:
            for path in self.events.drain():
                self._observe_event(path, now)
        interval = self.options.poll_seconds or self.options.rescan_seconds
        if now - self.last_scan_at >= interval:
            self.scan()
        # Native events can be coalesced or dropped, so files still being
        # written are re-checked directly on every pass.
        for path in self.tracker.paths():
            self._observe(path, now)
        for path, signature in self.tracker.pop_ready(now):
            if self.stopping:
                self.tracker.observe(path, signature, now)
                continue
            self._settle_ready(path, signature)
        busy = False
        if self.pending and not self.stopping and now >= self.next_attempt_at:
            self._send_next_batch()
            busy = bool(self.pending) and self.clock() >= self.next_attempt_at
        self._save_state_if_due()
        self._refresh_progress()
        return busy

    # -- observing files

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _observe_event(self, path: Path, now: float) -> None:
        path = path if path.is_absolute() else self.root / path
        if through_link(path, self.root):
            # Some notifiers follow linked folders; what lies behind a link is
            # not ours to send, whatever the event says.
            if path.is_symlink() and (path.is_dir() or is_candidate(path, self.root)):
                self._skip_link(path)
            return
        if path.is_dir():
            # A folder moved in whole brings files no event named.
            for child in iter_candidates(path, on_link=self._skip_link):
                self._observe(child, now)
            return
        if not is_candidate(path, self.root):
            return
        self._observe(path, now)

    def _skip_link(self, path: Path) -> None:
        if path in self.links:
            return
        self.links.add(path)
        if path in self.seen:
            # A file replaced by a link: forget the file, never read the link.
            self._vanished(path)
        logger.warning("Skipped %s: it is a symbolic link, and links are never followed", self._rel(path))

    def _observe(self, path: Path, now: float) -> None:
        try:
            st = path.lstat()
        except FileNotFoundError:
            self._vanished(path)
            return
        except OSError as exc:
            logger.debug("Cannot stat %s: %s", path, exc)
            return
        if stat.S_ISLNK(st.st_mode):
            self._skip_link(path)
            return
        if not stat.S_ISREG(st.st_mode):
            return
        signature: Signature = (st.st_size, st.st_mtime_ns)
        if self.settled.get(path) == signature or path in self.unreadable:
            return
        for item in self.pending:
            if item.path == path:
                if item.signature == signature:
                    return
                # Changed after it looked finished: wait for it to settle again.
                self.pending.remove(item)
                break
        if path not in self.seen:
            self.seen.add(path)
            if self._known_from_state(path, signature):
                return
        self.settled.pop(path, None)
        self.tracker.observe(path, signature, now)

    def _known_from_state(self, path: Path, signature: Signature) -> bool:
        """Settle a file that an earlier run already dealt with, without reading it."""
        sha = self.state.cached_sha(self._rel(path), signature)
        if sha is None:
            return False
        if sha in self.state.uploaded:
            self.counters.already += 1
        elif sha in self.state.rejected:
            self.counters.rejected += 1
        else:
            return False
        self.settled[path] = signature
        return True

    def _vanished(self, path: Path) -> None:
        if path in self.tracker or any(item.path == path for item in self.pending):
            logger.warning("%s disappeared before it was uploaded", path)
        self.tracker.forget(path)
        self.pending = [item for item in self.pending if item.path != path]
        self.settled.pop(path, None)
        self.unreadable.pop(path, None)
        self.seen.discard(path)
        with contextlib.suppress(ValueError):
            self.state.forget_path(self._rel(path))

    def _mark_unreadable(self, path: Path, exc: OSError) -> None:
        logger.error("Cannot read %s: %s", path, exc)
        self.unreadable[path] = str(exc)

    def _settle_ready(self, path: Path, signature: Signature) -> None:
        """A file just became stable: skip it if its content is known, else queue it for sending."""
        rel = self._rel(path)
        if through_link(path, self.root):
            self._skip_link(path)
            return
        sha = self.state.cached_sha(rel, signature)
        if sha is None:
            try:
                sha = sha256_of_file(path)
            except FileNotFoundError:
                self._vanished(path)
                return
            except OSError as exc:
                self._mark_unreadable(path, exc)
                return
            self.state.remember_path(rel, signature, sha)
            self._mark_state_dirty()
        if self._settle_if_known(path, rel, sha, signature):
            return
        self.pending.append(PendingFile(path, rel, upload_name(path), sha, signature))

    def _settle_if_known(self, path: Path, rel: str, sha: str, signature: Signature) -> bool:
        if sha in self.state.uploaded:
            if sha in self.uploaded_this_run:
                self.counters.duplicate += 1
                logger.info("%s has the same content as a photo just uploaded; not sent again", rel)
            else:
                self.counters.already += 1
                logger.debug("%s was uploaded earlier; not sent again", rel)
        elif sha in self.state.rejected:
            self.counters.rejected += 1
            logger.warning("%s was set aside earlier: %s", rel, self.state.rejected[sha].get("error", ""))
        else:
            return False
        self.settled[path] = signature
        return True

    # -- sending

    def _send_next_batch(self) -> None:
        batch, rest = plan_batch(self.pending, self.options.batch_files, self.options.batch_bytes)
        self.pending = rest
        files: list[tuple[str, bytes]] = []
        sent: list[PendingFile] = []
        for item in batch:
            if self._settle_if_known(item.path, item.rel, item.sha, item.signature):
                continue  # Its twin in an earlier batch was uploaded meanwhile.
            data = self._read_unchanged(item)
            if data is not None:
                files.append((item.name, data))
                sent.append(item)
        if not sent:
            return
        logger.debug("Sending %d file(s): %s", len(sent), ", ".join(item.rel for item in sent))
        outcome = self.client.upload(files)
        if isinstance(outcome, Retry):
            self._retry_later(sent, outcome)
            return
        self.backoff.reset()
        self.counters.retrying = 0
        if isinstance(outcome, Refused):
            self._refused(sent, outcome)
        else:
            self._answered(sent, outcome)
        self.state.save()
        self._state_dirty_at = None

    def _read_unchanged(self, item: PendingFile) -> bytes | None:
        """The file's bytes if it is still what was hashed; otherwise put it back to settle again."""
        if through_link(item.path, self.root):
            # Became a link (or moved under one) since it was hashed.
            self._skip_link(item.path)
            return None
        try:
            with open_no_follow(item.path) as handle:
                data = handle.read()
                st = os.fstat(handle.fileno())
        except FileNotFoundError:
            self._vanished(item.path)
            return None
        except OSError as exc:
            self._mark_unreadable(item.path, exc)
            return None
        # The recorded SHA-256 must be that of the bytes actually sent.
        if (st.st_size, st.st_mtime_ns) != item.signature or hashlib.sha256(data).hexdigest() != item.sha:
            logger.info("%s changed since it was checked; waiting for it to settle again", item.rel)
            self.tracker.observe(item.path, (st.st_size, st.st_mtime_ns), self.clock())
            return None
        return data

    def _retry_later(self, sent: list[PendingFile], outcome: Retry) -> None:
        delay = self.backoff.next_delay(outcome.retry_after)
        self.next_attempt_at = self.clock() + delay
        self.pending[:0] = sent
        self.counters.retrying = len(sent)
        logger.warning(
            "Upload of %d file(s) failed (%s); retry %d in %.1f s",
            len(sent),
            outcome.reason,
            self.backoff.failures,
            delay,
        )

    def _refused(self, sent: list[PendingFile], outcome: Refused) -> None:
        if len(sent) > 1:
            # One file may have spoiled the request (too big, too many parts):
            # sending each alone finds it without holding back the others.
            logger.warning(
                "The server refused a request of %d files (HTTP %d: %s); sending them one by one",
                len(sent),
                outcome.status,
                outcome.detail,
            )
            for item in sent:
                item.solo = True
            self.pending[:0] = sent
            return
        item = sent[0]
        self._set_aside(item, f"HTTP {outcome.status}: {outcome.detail}")

    def _set_aside(self, item: PendingFile, error: str) -> None:
        logger.warning("Set aside %s: the server rejected it: %s", item.rel, error)
        self.state.record_rejected(item.sha, item.rel, error)
        self.counters.rejected += 1
        self.settled[item.path] = item.signature

    def _answered(self, sent: list[PendingFile], outcome: Answered) -> None:
        verdicts, unmatched = match_verdicts([item.name for item in sent], outcome.jobs, outcome.rejected)
        for index, verdict in verdicts.items():
            item = sent[index]
            if verdict.error is not None:
                self._set_aside(item, verdict.error)
                continue
            assert verdict.photo_id is not None
            self.state.record_uploaded(item.sha, verdict.photo_id, item.rel, verdict.duplicate)
            self.uploaded_this_run.add(item.sha)
            self.settled[item.path] = item.signature
            if verdict.duplicate:
                self.counters.duplicate += 1
                logger.info("%s was already on the server (photo %d)", item.rel, verdict.photo_id)
            else:
                self.counters.uploaded += 1
                logger.info("Uploaded %s (photo %d)", item.rel, verdict.photo_id)
        if not unmatched:
            return
        retry = [sent[index] for index in unmatched]
        if len(sent) == 1:
            # Even a request of one file got no verdict for it: not something
            # to repeat at full speed.
            self._retry_later(retry, Retry("the server's answer did not mention the file"))
            return
        logger.info("Could not match the answer for %d file(s); asking again one by one", len(retry))
        for item in retry:
            item.solo = True
        self.pending[:0] = retry

    # -- bookkeeping

    def _mark_state_dirty(self) -> None:
        if self._state_dirty_at is None:
            self._state_dirty_at = self.clock()

    def _save_state_if_due(self) -> None:
        # Path-cache entries are only a shortcut, so they are written lazily;
        # upload records are written right after each answer.
        if self._state_dirty_at is not None and self.clock() - self._state_dirty_at >= 10:
            self.state.save()
            self._state_dirty_at = None

    def _refresh_progress(self, force: bool = False) -> None:
        self.counters.found = len(self.seen)
        self.counters.unreadable = len(self.unreadable)
        self.counters.links = len(self.links)
        if self.progress is not None:
            self.progress.update(self.counters, done=len(self.settled), force=force)


@dataclass
class Verdict:
    """The server's answer for one file: stored (or already there) as `photo_id`, or rejected with `error`."""

    photo_id: int | None = None
    duplicate: bool = False
    error: str | None = None


def _echoed_index(entry: dict[str, Any], count: int) -> int | None:
    """The entry's `index` if it names one of the `count` files sent, else None."""
    index = entry.get("index")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
        return index
    return None


def match_verdicts(
    names: Sequence[str], jobs: Iterable[object], rejected: Iterable[object]
) -> tuple[dict[int, Verdict], list[int]]:
    """Pair the server's per-file answers with the files sent (by position in the request).

    The server echoes each file's 0-based position among the request's
    `photos` parts as `index`; that pairs every answer exactly. A server from
    before that echo is matched by name instead: names are unique within a
    request (see `plan_batch`) and such a server echoes them, except for a
    duplicate, which carries the name it was first uploaded under. A lone
    leftover answer and a lone leftover file therefore belong together;
    anything still ambiguous is returned as unmatched. Entries that are not
    JSON objects are ignored.
    """
    verdicts: dict[int, Verdict] = {}
    answers: list[tuple[dict[str, Any], Verdict]] = []
    for job in jobs:
        if not isinstance(job, dict):
            continue
        try:
            verdict = Verdict(photo_id=int(job["photo_id"]), duplicate=bool(job.get("duplicate")))
        except (KeyError, TypeError, ValueError):
            continue
        answers.append((job, verdict))
    for entry in rejected:
        if not isinstance(entry, dict):
            continue
        answers.append((entry, Verdict(error=str(entry.get("error") or "rejected"))))

    by_name: list[tuple[str, Verdict]] = []
    for entry, verdict in answers:
        index = _echoed_index(entry, len(names))
        if index is not None and index not in verdicts:
            verdicts[index] = verdict
        else:
            by_name.append((str(entry.get("filename", "")), verdict))

    free = {name: index for index, name in enumerate(names) if index not in verdicts}
    leftovers: list[Verdict] = []
    for name, verdict in by_name:
        index = free.pop(name, None)
        if index is None:
            leftovers.append(verdict)
        else:
            verdicts[index] = verdict
    if len(leftovers) == 1 and len(free) == 1:
        verdicts[free.popitem()[1]] = leftovers[0]
    return verdicts, sorted(free.values())
