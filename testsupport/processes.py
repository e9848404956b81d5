"""Child processes for tests and benchmarks: free ports, logged sessions, the /proc figures."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from testsupport.paths import REPO
from testsupport.waiting import wait_for

# The line `manage.py qcluster` logs once its queue recovery has run.
QUEUE_STARTED = "[Startup] Photo queue initialized"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    """A child process started in a session of its own, with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group at once."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def spawn(name: str, argv: Sequence[str], log_path: Path, env: dict[str, str], url: str = "") -> Proc:
    """Start `argv` in the repository, in a new session (so that its whole group can be signalled)."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name, process, log_path, url)


def wait_queue_started(cluster: Proc, timeout: float = 60.0) -> None:
    """Wait until a `manage.py qcluster` has run its queue recovery and takes work."""

    def started() -> bool:
        if not cluster.alive():
            raise RuntimeError(f"the {cluster.name} process exited before it started:\n{cluster.log[-3000:]}")
        return QUEUE_STARTED in cluster.log

    wait_for(started, timeout, f"the {cluster.name} process to start")


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
    """Children, grandchildren... of `pid` (Linux /proc)."""
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
    """The command line of `pid`, '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
