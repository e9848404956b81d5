"""Shared machinery of the benchmarks and drills: throwaway installations, servers, figures.

A `Stack` is one photoevent installation in its own DATA_DIR (and, with
``database="postgres"``, its own throwaway PostgreSQL database): it migrates,
starts gunicorn with the documented production settings and real
``manage.py qcluster`` processes, all bound to 127.0.0.1, and stops everything
it started. The bench process itself can use the same database through the ORM
after `django_setup`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
GUNICORN = str(REPO / ".venv" / "bin" / "gunicorn")


def web_concurrency() -> tuple[int, int]:
    """gunicorn's workers and threads per worker as scripts/run chooses them: WEB_CONCURRENCY, WEB_THREADS."""
    workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
    return workers, int(os.environ.get("WEB_THREADS") or 1)


FACES_DIR = Path(os.environ.get("PHOTOEVENT_FACES_DIR", REPO.parent / "shared" / "faces"))
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR", Path(tempfile.gettempdir()) / "photoevent-bench-cache"))
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench-Pass-word-1234"


def out(*parts: object) -> None:
    """Print a line of results (ruff forbids print in the project)."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}" if baseline else "n/a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `condition` until it holds; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_http(url: str, timeout: float = 30.0) -> None:
    import requests

    def up() -> bool:
        try:
            requests.get(url, timeout=2)
        except requests.RequestException:
            return False
        return True

    wait_for(up, timeout, f"{url} to answer")


@dataclass
class Proc:
    """A child process started in its own session, with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    result = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid:
            result.append(int(entry.name))
    return result


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children(todo.pop())
        found.extend(kids)
        todo.extend(kids)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by `pids` (Linux /proc); a process that is gone counts 0."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, key: str) -> int:
    """A field of /proc/<pid>/status in kB (VmRSS, VmHWM); 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Stack:
    """A throwaway photoevent installation (see the module docstring).

    Use as a context manager: everything started is stopped, and the data
    directory (unless `keep`) and the PostgreSQL database are removed.
    """

    database: str = "sqlite"
    env: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    keep: bool = False
    procs: list[Proc] = field(default_factory=list)
    pg_name: str = ""
    base_url: str = ""

    def __post_init__(self) -> None:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="photoevent-bench-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        base = {
            "DATA_DIR": str(self.data_dir),
            "DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            "DJANGO_SETTINGS_MODULE": "photoevent.settings",
        }
        for name in ("DATABASE_URL", "SQLITE_PATH", "MEDIA_ROOT", "REDIS_URL", "Q_BROKER", "STATIC_ROOT"):
            os.environ.pop(name, None)
        if self.database == "postgres":
            self.pg_name = f"photoevent_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            self._pg_admin(f'CREATE DATABASE "{self.pg_name}"')
            base["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{self.pg_name}"
        elif self.database != "sqlite":
            raise ValueError(f"database must be sqlite or postgres, not {self.database!r}")
        self.env = {**base, **self.env}

    @property
    def dir(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir

    def _pg_admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def child_env(self, **overrides: str) -> dict[str, str]:
        return {**os.environ, **self.env, **overrides}

    def manage(self, *args: str, **env: str) -> str:
        """Run a manage.py command to completion; returns its stdout."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=REPO,
            env=self.child_env(**env),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self) -> None:
        """migrate + createcachetable, as scripts/run does."""
        self.manage("migrate", "--noinput", "-v0")
        self.manage("createcachetable")

    def create_photographer(self, username: str) -> str:
        """createphotographer; returns the API token."""
        return self.manage("createphotographer", username, "--password", PASSWORD).strip().splitlines()[-1]

    def spawn(self, name: str, argv: list[str], **env: str) -> Proc:
        log_path = self.dir / f"{name}-{len(self.procs)}.log"
        log = log_path.open("ab")
        popen = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self.child_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start_web(
        self, workers: int | None = None, threads: int | None = None, app: str = "photoevent.wsgi", **env: str
    ) -> Proc:
        """gunicorn as scripts/run starts it (production settings), on a free 127.0.0.1 port."""
        default_workers, default_threads = web_concurrency()
        workers = workers or default_workers
        threads = threads or default_threads
        port = free_port()
        proc = self.spawn(
            "gunicorn",
            [
                GUNICORN,
                app,
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "120",
            ],
            **env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/static/css/site.css", timeout=60)
        except TimeoutError:
            raise RuntimeError(f"gunicorn did not start:\n{proc.log}") from None
        if app == "photoevent.wsgi":
            self.base_url = url
        proc.url = url
        return proc

    def start_cluster(self, **env: str) -> Proc:
        """A real `manage.py qcluster` (our wrapper with queue recovery)."""
        return self.spawn("qcluster", [PYTHON, "manage.py", "qcluster"], **env)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.pg_name:
            with contextlib.suppress(Exception):
                self._pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def django_setup(stack: Stack) -> None:
    """Configure Django in this process against `stack`'s database and media."""
    import django

    os.environ.update(stack.env)
    # The bench's own progress lines are enough; children keep LOG_LEVEL=INFO.
    os.environ["LOG_LEVEL"] = "WARNING"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    django.setup()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def make_user(username: str, *, photographer: bool = False, staff: bool = False, consent: bool = True) -> Any:
    """A user (through the ORM) with an API token; returns (user, token)."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from gallery.models import PHOTOGRAPHERS_GROUP, profile_for

    user = User.objects.create_user(username=username, password=PASSWORD, is_staff=staff)
    if photographer:
        user.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    profile = profile_for(user)
    if consent:
        profile.face_consent_at = timezone.now()
        profile.save(update_fields=["face_consent_at"])
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def settled(event_id: int | None = None) -> bool:
    """No photo queued or processing (in `event_id`, or anywhere)."""
    from gallery.models import Photo, PhotoStatus

    photos = Photo.objects.filter(status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING])
    if event_id is not None:
        photos = photos.filter(event_id=event_id)
    return not photos.exists()


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as t: ...` then t[0] is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
