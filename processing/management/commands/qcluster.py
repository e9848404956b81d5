"""django-q2's qcluster, preceded by photo queue recovery and schedule setup."""

from __future__ import annotations

import logging
from typing import Any

from django_q.management.commands.qcluster import Command as QClusterCommand

from processing.queue_startup import initialize_photo_queue

logger = logging.getLogger("processing.queue")


class Command(QClusterCommand):
    help = "Recover the photo queue, then start a django-q2 cluster."

    def handle(self, *args: Any, **options: Any) -> None:
        initialize_photo_queue()
        super().handle(*args, **options)
