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
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

# FACES_DIR and wait_for are imported from here by benchmarks too.
from testsupport.paths import FACES_DIR as FACES_DIR
from testsupport.paths import REPO
from testsupport.processes import Proc, free_port, spawn, wait_queue_started
from testsupport.waiting import wait_for as wait_for
from testsupport.waiting import wait_http

PYTHON = str(REPO / ".venv" / "bin" / "python")
GUNICORN = str(REPO / ".venv" / "bin" / "gunicorn")


def web_concurrency() -> tuple[int, int]:
    """gunicorn's workers and threads per worker as scripts/run chooses them: WEB_CONCURRENCY, WEB_THREADS."""
    workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
    return workers, int(os.environ.get("WEB_THREADS") or 1)


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
    # The project checkout whose manage.py `manage` runs (another commit, in a git worktree), with this venv.
    checkout: Path = REPO

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
            # The benchmarks and drills read the English texts of the answers.
            "LANGUAGE_CODE": "en",
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
            cwd=self.checkout,
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
        """Start `argv` with this installation's environment; `stop` ends it."""
        proc = spawn(name, argv, self.dir / f"{name}-{len(self.procs)}.log", self.child_env(**env))
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
            wait_http(url + "/static/css/site.css", timeout=60, alive=proc.alive)
        except (TimeoutError, RuntimeError):
            raise RuntimeError(f"gunicorn did not start:\n{proc.log}") from None
        if app == "photoevent.wsgi":
            self.base_url = url
        proc.url = url
        return proc

    def start_cluster(self, **env: str) -> Proc:
        """A real `manage.py qcluster` (our wrapper with queue recovery), once its startup line is logged."""
        cluster = self.spawn("qcluster", [PYTHON, "manage.py", "qcluster"], **env)
        wait_queue_started(cluster)
        return cluster

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


def upload_photos(url: str, token: str, files: Sequence[tuple[str, bytes]], batch: int, timeout: float = 120.0) -> None:
    """POST (name, bytes) pairs to an upload-photos URL, `batch` to a request.

    Raises RuntimeError with the answer when a request is not acknowledged (202).
    """
    for start in range(0, len(files), batch):
        parts = [
            ("photos", (name, data, mimetypes.guess_type(name)[0] or "application/octet-stream"))
            for name, data in files[start : start + batch]
        ]
        response = requests.post(url, files=parts, headers=auth(token), timeout=timeout)
        if response.status_code != 202:
            raise RuntimeError(f"upload answered {response.status_code}: {response.text[:300]}")


def make_user(username: str, *, photographer: bool = False, staff: bool = False, consent: bool = True) -> Any:
    """A user (through the ORM) with an API token; returns (user, token)."""
    # Models import only after django_setup(), which a bench calls at run time.
    from gallery.tokens import issue_token
    from testsupport.users import create_user

    user = create_user(username, PASSWORD, photographer=photographer, staff=staff, consent=consent)
    return user, issue_token(user)


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
