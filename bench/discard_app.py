"""A plain WSGI app that reads the request body and drops it: the upload baseline.

Run by bench/upload_ack.py with the same gunicorn flags as photoevent:
``gunicorn bench.discard_app:app --workers 2 --threads 4``. It answers 202 with
the number of bytes read, so the client sees the same kind of exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

CHUNK = 64 * 1024


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read the whole body in chunks, keep nothing, answer 202 {"bytes": n}."""
    stream = environ["wsgi.input"]
    total = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
    body = b'{"bytes": %d}' % total
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
