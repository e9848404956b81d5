"""django-q2's qcluster, preceded by photo queue recovery and schedule setup."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections
from django_q.management.commands.qcluster import Command as QClusterCommand

from processing.queue_startup import initialize_photo_queue

# Long-lived, single-threaded workers keep one connection each instead.
WORKER_CONN_MAX_AGE = 600


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
        use_persistent_connections()
        initialize_photo_queue()
        connections.close_all()
        super().handle(*args, **options)
