"""A minimal HTTP/1.1 GET client over asyncio streams, for load generators.

A load generator that shares the machine with the server must cost little CPU,
or its own work is charged to the server's latency: one event loop with one
coroutine per client is far cheaper than a thread per client running
`requests`. A `Connection` is one keep-alive TCP connection: it sends a GET,
reads the status line, the headers and the whole body (Content-Length,
chunked, or up to the end of the connection), and reconnects on the next
request when the server closed it. Nothing more: no redirects, TLS, proxies,
cookies, compression or request bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

_LINE_END = (b"\r\n", b"\n")


class ProtocolError(Exception):
    """The server's answer is not an HTTP/1.x response this client can read."""


class ConnectionClosed(ProtocolError):
    """The server closed the connection before the status line."""


@dataclass
class Response:
    status: int
    # Lower-case names; a repeated header keeps its last value.
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Connection:
    """One keep-alive HTTP/1.1 connection; `get` may be called again and again, not concurrently."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head = f"Host: {host}:{port}\r\n{extra}\r\n".encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connects = 0

    async def get(self, path: str) -> Response:
        """GET `path` and read the whole answer; on any error the connection is closed."""
        if self._reader is None or self._writer is None or self._reader.at_eof():
            # Like urllib3, a connection the server has already closed is replaced
            # rather than written to and reported as a failed request.
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self.connects += 1
        reader, writer = self._reader, self._writer
        try:
            writer.write(b"GET " + path.encode("latin-1") + b" HTTP/1.1\r\n" + self._head)
            await writer.drain()
            response = await _read_response(reader)
        except BaseException:
            # Cancelled or failed half-way: what is left on the socket is unknown.
            await self.close()
            raise
        # A body read up to the end of the connection leaves the reader at EOF,
        # so the next call reconnects; "Connection: close" may not have arrived yet.
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        # The peer may already have reset it; there is nothing left to release then.
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> Response:
    line = await reader.readline()
    if not line:
        raise ConnectionClosed("the server closed the connection without answering")
    version, _, rest = line.decode("latin-1").partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ProtocolError(f"bad status line {line[:80]!r}")
    response = Response(int(rest[:3]))
    while True:
        line = await reader.readline()
        if line in _LINE_END:
            break
        if not line.endswith(b"\n"):
            raise ProtocolError("the connection ended inside the headers")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ProtocolError(f"bad header line {line[:80]!r}")
        response.headers[name.strip().lower()] = value.strip()
    headers = response.headers
    if response.status in (204, 304) or 100 <= response.status < 200:
        return response
    if "chunked" in headers.get("transfer-encoding", "").lower():
        response.body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from None
        response.body = await reader.readexactly(length)
    else:
        response.body = await reader.read()
    return response


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        line = await reader.readline()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {line[:80]!r}") from None
        if size == 0:
            break
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a chunk does not end with CRLF")
    while (line := await reader.readline()) not in _LINE_END:
        if not line:
            raise ProtocolError("the connection ended inside the trailers")
    return b"".join(parts)
