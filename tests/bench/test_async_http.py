"""The load generator's HTTP/1.1 client against a scripted server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bench.async_http import Connection, ConnectionClosed, ProtocolError

# Each answer is written raw, then the server hangs up if its flag says so.
Script = list[tuple[bytes, bool]]
CLOSE, KEEP = True, False


async def serve(script: Script, scenario: Callable[[int, list[bytes]], Awaitable[None]]) -> list[bytes]:
    """Answer each GET with the next scripted answer; returns the request heads received."""
    answers = iter(script)
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                received.append(head)
                answer, close = next(answers)
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await scenario(port, received)
    return received


def run(script: Script, scenario: Callable[[int, list[bytes]], Awaitable[None]]) -> list[bytes]:
    return asyncio.run(serve(script, scenario))


def test_keep_alive_content_length_and_chunked_on_one_connection():
    async def scenario(port, received):
        connection = Connection("127.0.0.1", port, headers={"Authorization": "Token abc"})
        first = await connection.get("/a?x=1")
        second = await connection.get("/b")
        await connection.close()
        assert (first.status, first.body, first.headers["content-type"]) == (200, b"hello", "text/plain")
        assert (second.status, second.body) == (404, b"Wikipedia in\r\n\r\nchunks.")
        assert connection.connects == 1

    received = run(
        [
            (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", KEEP),
            (
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n",
                KEEP,
            ),
        ],
        scenario,
    )
    assert received[0].startswith(b"GET /a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Token abc\r\n" in received[0]


def test_reconnects_after_the_server_closes():
    async def scenario(port, received):
        connection = Connection("127.0.0.1", port)
        assert (await connection.get("/1")).body == b"one"  # Connection: close
        assert (await connection.get("/2")).body == b"until the end"  # no length: read to EOF
        assert (await connection.get("/3")).body == b"ok"
        await asyncio.sleep(0.05)  # the server hangs up on the idle connection
        assert (await connection.get("/4")).body == b"ok"
        await connection.close()
        assert connection.connects == 4

    run(
        [
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\none", CLOSE),
            (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", CLOSE),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", CLOSE),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", KEEP),
        ],
        scenario,
    )


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", ConnectionClosed),
        (b"SSH-2.0-OpenSSH\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", asyncio.IncompleteReadError),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ProtocolError),
    ],
)
def test_broken_answers_raise_and_close(answer, error):
    async def scenario(port, received):
        connection = Connection("127.0.0.1", port)
        with pytest.raises(error):
            await connection.get("/")
        assert connection._writer is None

    run([(answer, CLOSE)], scenario)
