"""Real `manage.py qcluster` and `runserver` subprocesses against the test database.

The process, port and waiting helpers themselves live in testsupport, shared
with bench/; `wait_for`, `free_port` and `REPO` stay importable from here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

from testsupport.markers import FAKE_BACKEND
from testsupport.paths import REPO
from testsupport.processes import Proc, free_port, spawn
from testsupport.waiting import wait_for, wait_http

__all__ = [
    "REPO",
    "free_port",
    "running_processes",
    "start_qcluster",
    "start_runserver",
    "subprocess_env",
    "wait_for",
]


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment that points a child process at this test's database and media."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("LOG_LEVEL", "INFO")
    env.update(overrides)
    return env


def start_qcluster(log_path: Path, env: dict[str, str]) -> Proc:
    """A real `manage.py qcluster`; it does not wait for the cluster to start."""
    return spawn("qcluster", [sys.executable, "manage.py", "qcluster"], log_path, env)


def start_runserver(log_path: Path, env: dict[str, str]) -> Proc:
    """A live threaded `runserver` on a free 127.0.0.1 port, once it answers."""
    port = free_port()
    argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]
    server = spawn("runserver", argv, log_path, env, url=f"http://127.0.0.1:{port}")
    try:
        wait_http(f"{server.url}/login/", 30, alive=server.alive)
    except (TimeoutError, RuntimeError) as exc:
        server.kill()
        raise RuntimeError(f"runserver did not start: {exc}\n{server.log[-3000:]}") from None
    return server


@contextlib.contextmanager
def running_processes(
    folder: Path, name: str, start: Callable[[Path, dict[str, str]], Proc]
) -> Iterator[Callable[..., Proc]]:
    """Yield `start(**env)`, which starts one more process with the marker backend unless
    told otherwise and its log in `folder`; every process started is killed on exit."""
    started: list[Proc] = []

    def start_one(**env: str) -> Proc:
        env.setdefault("FACE_BACKEND", FAKE_BACKEND)
        proc = start(folder / f"{name}-{len(started)}.log", subprocess_env(**env))
        started.append(proc)
        return proc

    try:
        yield start_one
    finally:
        for proc in started:
            proc.kill()
