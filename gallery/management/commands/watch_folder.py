"""`manage.py watch_folder`: the folder watcher, for those who run the server.

The watcher is a client package of its own (clients/watcher, the
`photoevent-watch` command), installable on a laptop without the server. This
command only hands its options to that package and turns the result into an
exit code. It runs no system checks and never opens the database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter

# The client is imported from this checkout's clients/watcher rather than
# installed into the server's virtualenv: the command then always runs the
# client of the same revision as the server, a `git pull` updates both with no
# reinstall, and a fresh clone needs no extra step (the client's dependencies,
# requests, watchfiles and tqdm, are already in requirements.txt). An installed
# copy would only be refreshed when requirements.txt changes, not the client.
CLIENT_DIR = Path(__file__).resolve().parents[3] / "clients" / "watcher"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

from photoevent_watch import cli  # noqa: E402 - needs the path set just above
from photoevent_watch.env import ConfigError  # noqa: E402
from photoevent_watch.watcher import WatcherError  # noqa: E402


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's table as written."""


class Command(BaseCommand):
    help = cli.DESCRIPTION
    # The watcher runs on laptops without the server's database, storage or
    # face libraries; the server-side checks would fail there for no reason.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = cli.EPILOG
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = cli.config_from_options(options)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        cli.configure_logging(options["verbosity"])
        try:
            code = cli.watch(config, out=self.stdout.write, err=self.stderr.write, tty=self.stdout.isatty())
        except WatcherError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            # A second Ctrl-C: the state file holds every answer received so far.
            raise CommandError("Interrupted", returncode=cli.EXIT_INTERRUPTED) from None
        if code:
            raise CommandError("Not every file was uploaded or reported; see above", returncode=code)
