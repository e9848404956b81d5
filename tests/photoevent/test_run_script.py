"""scripts/run, the README's first command: it serves the site; Ctrl-C or a TERM stops web and queue."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cluster import free_port

REPO = Path(__file__).resolve().parents[2]
# django-q2 ignores a stop signal that arrives before its sentinel runs, so
# the test signals once the cluster says it is running.
RUNNING = re.compile(r"Q Cluster \S+ \[photoevent\] running\.")
# The embedded default: nothing from the test run's own database, cache or broker.
NOT_INHERITED = {"DATABASE_URL", "REDIS_URL", "Q_BROKER", "SQLITE_PATH", "MEDIA_ROOT", "STATIC_ROOT"}

pytestmark = pytest.mark.slow


def processes_with(marker: str) -> list[int]:
    """Pids whose environment holds `marker` (this run's DATA_DIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("stop", ["ctrl-c", "term"])
def test_run_serves_the_site_and_stops_everything(tmp_path: Path, stop: str) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), WEB_CONCURRENCY="2", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "run.log"
    marker = f"DATA_DIR={data_dir}"
    with log_path.open("wb") as log:
        # A process group of its own, like a shell's foreground job, so that the
        # test can send Ctrl-C's SIGINT to the whole group.
        run = subprocess.Popen(
            ["bash", "scripts/run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        status = None
        while status != 200 or not RUNNING.search(log_path.read_text(errors="replace")):
            if run.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"scripts/run did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    status = response.status
            except OSError:
                time.sleep(0.5)
        if stop == "ctrl-c":
            os.killpg(run.pid, signal.SIGINT)  # a terminal sends it to the whole foreground group
        else:
            run.terminate()  # a supervisor, or `timeout`, signals the script alone
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/run did not stop on {stop}:\n{log_path.read_text(errors='replace')[-3000:]}")
        deadline = time.monotonic() + 30
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert processes_with(marker) == [], "web or queue processes outlived scripts/run"
    finally:
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
