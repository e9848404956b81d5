"""`manage.py watch_folder`: upload new photos from a local folder to an event.

A thin shell around `gallery.watcher`: it reads options and environment
variables, wires signals and progress output, and turns the result into an
exit code. It runs no system checks and never opens the database, so it works
on a laptop that has only the project installed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter

from gallery.watcher import (
    FolderWatcher,
    NativeEvents,
    Progress,
    StateFile,
    UploadClient,
    WatcherError,
    WatchOptions,
    default_state_path,
)

T = TypeVar("T")

EPILOG = """\
Every option can also come from an environment variable; a command-line value wins.

  PHOTOEVENT_FOLDER        the folder to watch (instead of DIR)
  PHOTOEVENT_SERVER        --server, e.g. https://photos.example.com
  PHOTOEVENT_EVENT         --event, the event's numeric id
  PHOTOEVENT_TOKEN         --token (prefer this to --token: command lines are visible to other users)
  PHOTOEVENT_STABLE        --stable seconds (default 2)
  PHOTOEVENT_BATCH         --batch files per request (default 10)
  PHOTOEVENT_BATCH_MB      --batch-mb megabytes per request (default 100)
  PHOTOEVENT_POLL          --poll seconds (unset: native file system events)
  PHOTOEVENT_RESCAN        --rescan seconds (default 30)
  PHOTOEVENT_STATE         --state path
  PHOTOEVENT_MAX_BACKOFF   --max-backoff seconds (default 60)
  PHOTOEVENT_ONCE          --once when 1/true/yes
  PHOTOEVENT_RETRY_REJECTED  --retry-rejected when 1/true/yes

Exit status: 0 when stopped with Ctrl-C (or, with --once, when every file found
was uploaded or reported as rejected); 1 for a configuration error (bad token,
unknown event, unusable folder) or an unfinished --once run.
"""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's table as written."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be more than 0")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be 1/0, true/false, yes/no")


def _setting(options: dict[str, Any], key: str, env: str, parse: Any, default: T) -> T:
    """The option's value, else the environment variable's, else `default`, parsed and checked."""
    raw = options.get(key)
    source = f"--{key.replace('_', '-')}"
    if raw is None:
        raw = os.environ.get(env)
        source = env
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    if not isinstance(raw, str):
        return raw  # type: ignore[no-any-return]
    try:
        return parse(raw)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise CommandError(f"{source}: invalid value {raw!r} ({exc})") from None


class Command(BaseCommand):
    help = (
        "Watch a folder (subfolders included) and upload each new photo to an event, once it has "
        "stopped changing. Uses the server's upload API over HTTP only; remembers what it sent in a "
        "state file so a restart never sends a photo again."
    )
    # The watcher runs on laptops without the server's database, storage or
    # face libraries; the server-side checks would fail there for no reason.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = EPILOG
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", nargs="?", metavar="DIR", help="The folder to watch. [PHOTOEVENT_FOLDER]")
        parser.add_argument("--server", help="The server's base URL. [PHOTOEVENT_SERVER]")
        parser.add_argument("--event", help="The id of the event to upload to. [PHOTOEVENT_EVENT]")
        parser.add_argument("--token", help="The photographer's API token. [PHOTOEVENT_TOKEN]")
        parser.add_argument(
            "--stable",
            help="Seconds a file's size and modification time must stay unchanged before it is sent "
            "(default 2). [PHOTOEVENT_STABLE]",
        )
        parser.add_argument("--batch", help="At most this many files per request (default 10). [PHOTOEVENT_BATCH]")
        parser.add_argument(
            "--batch-mb",
            help="At most this many megabytes per request, unless one file alone is bigger (default 100). "
            "[PHOTOEVENT_BATCH_MB]",
        )
        parser.add_argument(
            "--poll",
            help="Scan the folder every this many seconds instead of using native file system events; "
            "for network shares. [PHOTOEVENT_POLL]",
        )
        parser.add_argument(
            "--rescan",
            help="With native events, also rescan every this many seconds to catch missed events (default 30). "
            "[PHOTOEVENT_RESCAN]",
        )
        parser.add_argument(
            "--state",
            help="The state file (default: <DIR's name>.photoevent-upload-state.json beside DIR). [PHOTOEVENT_STATE]",
        )
        parser.add_argument(
            "--max-backoff",
            help="Longest wait in seconds between retries, unless the server asks for longer with Retry-After "
            "(default 60). [PHOTOEVENT_MAX_BACKOFF]",
        )
        parser.add_argument(
            "--once",
            action="store_const",
            const="1",
            help="Upload what is in the folder, then exit: 0 only if every file was uploaded or reported. "
            "[PHOTOEVENT_ONCE]",
        )
        parser.add_argument(
            "--retry-rejected",
            action="store_const",
            const="1",
            help="Send the files the server rejected before once more (e.g. after a server limit was raised). "
            "[PHOTOEVENT_RETRY_REJECTED]",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder_raw = options["folder"] or os.environ.get("PHOTOEVENT_FOLDER")
        server = _setting(options, "server", "PHOTOEVENT_SERVER", str, "")
        event_id = _setting(options, "event", "PHOTOEVENT_EVENT", _positive_int, 0)
        token = _setting(options, "token", "PHOTOEVENT_TOKEN", str, "")
        missing = [
            name
            for name, value in (
                ("DIR (or PHOTOEVENT_FOLDER)", folder_raw),
                ("--server (or PHOTOEVENT_SERVER)", server),
                ("--event (or PHOTOEVENT_EVENT)", event_id),
                ("--token (or PHOTOEVENT_TOKEN)", token),
            )
            if not value
        ]
        if missing:
            raise CommandError("Missing " + ", ".join(missing))
        watch_options = WatchOptions(
            stable_seconds=_setting(options, "stable", "PHOTOEVENT_STABLE", _non_negative_float, 2.0),
            batch_files=_setting(options, "batch", "PHOTOEVENT_BATCH", _positive_int, 10),
            batch_bytes=int(_setting(options, "batch_mb", "PHOTOEVENT_BATCH_MB", _positive_float, 100.0) * 1024**2),
            poll_seconds=_setting(options, "poll", "PHOTOEVENT_POLL", _positive_float, None),
            rescan_seconds=_setting(options, "rescan", "PHOTOEVENT_RESCAN", _positive_float, 30.0),
            once=_setting(options, "once", "PHOTOEVENT_ONCE", _flag, False),
            max_backoff=_setting(options, "max_backoff", "PHOTOEVENT_MAX_BACKOFF", _positive_float, 60.0),
            retry_rejected=_setting(options, "retry_rejected", "PHOTOEVENT_RETRY_REJECTED", _flag, False),
        )
        folder = Path(str(folder_raw)).expanduser().resolve()
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        state_raw = _setting(options, "state", "PHOTOEVENT_STATE", str, "")
        state_path = Path(state_raw).expanduser().resolve() if state_raw else default_state_path(folder)

        self._configure_logging(options["verbosity"])
        try:
            code = self._watch(folder, server, event_id, token, state_path, watch_options)
        except WatcherError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            # A second Ctrl-C: the state file holds every answer received so far.
            raise CommandError("Interrupted", returncode=130) from None
        if code:
            raise CommandError("Not every file was uploaded or reported; see above", returncode=code)

    def _configure_logging(self, verbosity: int) -> None:
        level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
        logger = logging.getLogger("photoevent.watcher")
        logger.setLevel(level)
        # watchfiles logs every batch of changes at INFO; that is our business, not the user's.
        logging.getLogger("watchfiles").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
        if not logging.getLogger().handlers and not logger.handlers:
            # Settings without LOGGING would leave our messages unseen.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)

    def _watch(
        self, folder: Path, server: str, event_id: int, token: str, state_path: Path, options: WatchOptions
    ) -> int:
        client = UploadClient(server, event_id, token)
        state = StateFile(state_path, StateFile.target_key(server, event_id))
        state.lock()
        try:
            state.load()
            name = client.check_event()
            mode = f"polling every {options.poll_seconds:g} s" if options.poll_seconds else "watching for changes"
            self.stdout.write(
                f"{'Uploading' if options.once else 'Watching'} {folder} to event {event_id}"
                f"{f' ({name})' if name else ''} at {client.server}, {mode}; state in {state_path}"
            )
            use_bar = self.stdout.isatty()
            progress = Progress(bar=use_bar, emit=self.stdout.write)
            events = None if options.poll_seconds else NativeEvents(folder)
            watcher = FolderWatcher(folder, client, state, options, progress=progress, events=events)
            with self._stop_on_signals(watcher), self._logging_around_bar(use_bar):
                try:
                    result = watcher.run()
                finally:
                    progress.close()
        finally:
            state.unlock()

        self.stdout.write(f"Summary: {result.counters.summary()}")
        for rel in result.unreadable:
            self.stderr.write(f"Could not read: {rel}")
        if result.interrupted:
            self.stdout.write("Stopped.")
            if options.once and (result.unfinished or result.unreadable):
                self.stderr.write(f"Stopped before {len(result.unfinished)} file(s) were uploaded")
                return 1
            return 0
        if options.once and not result.complete:
            return 1
        return 0

    @contextlib.contextmanager
    def _stop_on_signals(self, watcher: FolderWatcher) -> Iterator[None]:
        """First Ctrl-C (or SIGTERM) ends after the current request; a second one ends at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if watcher.stopping:
                raise KeyboardInterrupt
            self.stderr.write("Stopping after the current request (Ctrl-C again to stop at once)...")
            watcher.request_stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    @contextlib.contextmanager
    def _logging_around_bar(self, use_bar: bool) -> Iterator[None]:
        if not use_bar:
            yield
            return
        from tqdm.contrib.logging import logging_redirect_tqdm

        # Log lines printed under a live bar would tear it apart.
        with logging_redirect_tqdm(loggers=[logging.getLogger()]):
            yield
