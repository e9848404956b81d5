"""`photoevent-watch`: upload new photos from a local folder to an event.

The command line around `photoevent_watch.watcher`: it reads options and
environment variables, wires signals and progress output, and turns the result
into an exit code. The server's `manage.py watch_folder` reuses the same
pieces (`add_arguments`, `config_from_options`, `configure_logging`, `watch`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm.contrib.logging import logging_redirect_tqdm

from photoevent_watch import __version__
from photoevent_watch.env import ConfigError, flag, non_negative_float, positive_float, positive_int, setting
from photoevent_watch.watcher import (
    FolderWatcher,
    NativeEvents,
    Progress,
    StateFile,
    UploadClient,
    WatcherError,
    WatchOptions,
    default_state_path,
)

DESCRIPTION = (
    "Watch a folder (subfolders included) and upload each new photo to an event, once it has "
    "stopped changing. Uses the server's upload API over HTTP only; remembers what it sent in a "
    "state file so a restart never sends a photo again. Symbolic links are never followed."
)

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

Symbolic links inside DIR (to files or to folders) are skipped, wherever they
point, and counted as links= in the summary. DIR itself may be a link.

Exit status: 0 when stopped with Ctrl-C (or, with --once, when every file found
was uploaded or reported as rejected); 1 for a configuration error (missing or
invalid option, bad token, unknown event, unusable folder) or an unfinished
--once run; 2 for an unknown option; 130 when stopped at once by a second Ctrl-C.
"""

# Exit statuses; the management command raises CommandError with the same ones.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

LOGGER_NAME = "photoevent.watcher"


@dataclass(frozen=True)
class WatchConfig:
    """Everything a run needs, checked: where to watch, where to send, how."""

    folder: Path
    server: str
    event_id: int
    token: str
    state_path: Path
    options: WatchOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the watcher's options to `parser` (the console script's, or the management command's)."""
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


def build_parser(prog: str = "photoevent-watch") -> argparse.ArgumentParser:
    """The console script's parser: the watcher's options plus verbosity and version."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="Say more (twice: debug output).")
    parser.add_argument("-q", "--quiet", action="store_true", help="Only warnings and errors.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def config_from_options(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> WatchConfig:
    """Check the parsed options, filling gaps from the environment; raises `ConfigError`."""
    environ = os.environ if environ is None else environ
    folder_raw = options.get("folder") or environ.get("PHOTOEVENT_FOLDER")
    server = setting(options, "server", "PHOTOEVENT_SERVER", str, "", environ)
    event_id = setting(options, "event", "PHOTOEVENT_EVENT", positive_int, 0, environ)
    token = setting(options, "token", "PHOTOEVENT_TOKEN", str, "", environ)
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
        raise ConfigError("Missing " + ", ".join(missing))
    watch_options = WatchOptions(
        stable_seconds=setting(options, "stable", "PHOTOEVENT_STABLE", non_negative_float, 2.0, environ),
        batch_files=setting(options, "batch", "PHOTOEVENT_BATCH", positive_int, 10, environ),
        batch_bytes=int(setting(options, "batch_mb", "PHOTOEVENT_BATCH_MB", positive_float, 100.0, environ) * 1024**2),
        poll_seconds=setting(options, "poll", "PHOTOEVENT_POLL", positive_float, None, environ),
        rescan_seconds=setting(options, "rescan", "PHOTOEVENT_RESCAN", positive_float, 30.0, environ),
        once=setting(options, "once", "PHOTOEVENT_ONCE", flag, False, environ),
        max_backoff=setting(options, "max_backoff", "PHOTOEVENT_MAX_BACKOFF", positive_float, 60.0, environ),
        retry_rejected=setting(options, "retry_rejected", "PHOTOEVENT_RETRY_REJECTED", flag, False, environ),
    )
    # The folder the user named may itself be a link; it is resolved once here,
    # and only links below it are refused.
    folder = Path(str(folder_raw)).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    state_raw = setting(options, "state", "PHOTOEVENT_STATE", str, "", environ)
    state_path = Path(state_raw).expanduser().resolve() if state_raw else default_state_path(folder)
    return WatchConfig(folder, str(server), int(event_id), str(token), state_path, watch_options)


def configure_logging(verbosity: int) -> None:
    """0: warnings only, 1: one line per upload, 2+: debug; a stderr handler unless logging is set up already."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    # watchfiles logs every batch of changes at INFO; that is our business, not the user's.
    logging.getLogger("watchfiles").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    if not logging.getLogger().handlers and not logger.handlers:
        # Without a handler our messages would go unseen (or to logging's bare last resort).
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def watch(config: WatchConfig, *, out: Callable[[str], None], err: Callable[[str], None], tty: bool) -> int:
    """Run the watcher until it is done or stopped, report, and return the exit status.

    `out` and `err` take one line each. A live progress bar is drawn when
    `tty` is true. Raises `WatcherError` for what no retry can fix, and
    `KeyboardInterrupt` on a second Ctrl-C.
    """
    options = config.options
    client = UploadClient(config.server, config.event_id, config.token)
    state = StateFile(config.state_path, StateFile.target_key(config.server, config.event_id))
    state.lock()
    try:
        state.load()
        name = client.check_event()
        mode = f"polling every {options.poll_seconds:g} s" if options.poll_seconds else "watching for changes"
        out(
            f"{'Uploading' if options.once else 'Watching'} {config.folder} to event {config.event_id}"
            f"{f' ({name})' if name else ''} at {client.server}, {mode}; state in {config.state_path}"
        )
        progress = Progress(bar=tty, emit=out)
        events = None if options.poll_seconds else NativeEvents(config.folder)
        watcher = FolderWatcher(config.folder, client, state, options, progress=progress, events=events)
        with _stop_on_signals(watcher, err), _logging_around_bar(tty):
            try:
                result = watcher.run()
            finally:
                progress.close()
    finally:
        state.unlock()

    out(f"Summary: {result.counters.summary()}")
    if result.links:
        out(f"Skipped {len(result.links)} symbolic link(s); links are never followed: {', '.join(result.links)}")
    for rel in result.unreadable:
        err(f"Could not read: {rel}")
    if result.interrupted:
        out("Stopped.")
        if options.once and (result.unfinished or result.unreadable):
            err(f"Stopped before {len(result.unfinished)} file(s) were uploaded")
            return EXIT_FAILED
        return EXIT_OK
    if options.once and not result.complete:
        return EXIT_FAILED
    return EXIT_OK


@contextlib.contextmanager
def _stop_on_signals(watcher: FolderWatcher, err: Callable[[str], None]) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM) ends after the current request; a second one ends at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if watcher.stopping:
            raise KeyboardInterrupt
        err("Stopping after the current request (Ctrl-C again to stop at once)...")
        watcher.request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _logging_around_bar(use_bar: bool) -> Iterator[None]:
    if not use_bar:
        yield
        return
    # Log lines printed under a live bar would tear it apart.
    with logging_redirect_tqdm(loggers=[logging.getLogger()]):
        yield


def _line_writer(stream: Any) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


def main(argv: Sequence[str] | None = None) -> int:
    """The `photoevent-watch` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    err = _line_writer(sys.stderr)
    try:
        config = config_from_options(vars(args))
    except ConfigError as exc:
        parser.print_usage(sys.stderr)
        err(f"{parser.prog}: error: {exc}")
        return EXIT_FAILED
    configure_logging(0 if args.quiet else 1 + args.verbose)
    try:
        return watch(config, out=_line_writer(sys.stdout), err=err, tty=sys.stdout.isatty())
    except WatcherError as exc:
        err(f"{parser.prog}: error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        # A second Ctrl-C: the state file holds every answer received so far.
        err(f"{parser.prog}: interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
