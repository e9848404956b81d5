"""django-q2's qcluster, at a lower CPU priority, preceded by photo queue recovery and schedule setup."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django_q.management.commands.qcluster import Command as QClusterCommand

from processing.queue_startup import initialize_photo_queue

# Long-lived, single-threaded workers keep one connection each instead.
WORKER_CONN_MAX_AGE = 600
AUTOGROUP = Path("/proc/self/autogroup")

logger = logging.getLogger(__name__)


def lower_priority() -> int:
    """Add QCLUSTER_NICE to this process's niceness; returns the new niceness.

    Called before django-q2 forks its sentinel and workers, which inherit it:
    on a machine that also serves pages, a page request then wins the CPU over
    face processing, and processing uses whatever the web processes leave.
    """
    increment: int = settings.QCLUSTER_NICE
    niceness = os.nice(increment)
    # With Linux autogrouping, the CPU is shared between sessions first and
    # niceness only counts within a session. Started in a session of its own
    # (systemd, a supervisor, setsid), the queue would keep an equal share
    # against the web server's session, so that session's group is reniced
    # too; it holds nothing but the queue. Sharing the web server's session
    # (scripts/run), the process niceness above is what counts.
    if increment and os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        try:
            AUTOGROUP.write_text(str(niceness))
        except OSError as exc:
            logger.warning("Could not lower the priority of the queue's session: %s", exc)
    logger.info("Queue processes run at niceness %d (QCLUSTER_NICE=%d)", niceness, increment)
    return niceness


def use_persistent_connections() -> None:
    """Switch PostgreSQL from the psycopg pool to one persistent connection per process.

    django-q2 forks its workers from processes that have used the database; a
    forked child would inherit the parent's pool and share its sockets.
    """
    databases: dict[str, dict[str, Any]] = settings.DATABASES
    for alias, config in databases.items():
        if not config.get("OPTIONS", {}).get("pool"):
            continue
        wrapper = connections[alias]
        wrapper.close()
        wrapper.close_pool()  # type: ignore[attr-defined]
        # The wrapper's settings_dict is this same dict, so one change covers both.
        config["OPTIONS"].pop("pool")
        config["CONN_MAX_AGE"] = WORKER_CONN_MAX_AGE
        config["CONN_HEALTH_CHECKS"] = True


class Command(QClusterCommand):
    help = "Recover the photo queue, then start a django-q2 cluster."

    def handle(self, *args: Any, **options: Any) -> None:
        lower_priority()
        use_persistent_connections()
        initialize_photo_queue()
        connections.close_all()
        super().handle(*args, **options)
