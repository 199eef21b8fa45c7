"""A minimal HTTP/1.1 server for fakes that share the CPU with what they measure.

The fan-out benchmark runs a fake Slack beside the bot on the same two cores. Served by
aiohttp, the fake spent about 0.13 ms of CPU per request, as much as the bot spends per
post, so the benchmark partly measured the fake. This server parses with httptools (the
parser uvicorn uses) and answers from a synchronous handler: keep-alive, pipelining,
``Content-Length`` and chunked request bodies, ``Connection: close``, and 400 for a
request it cannot parse.

A handler takes ``(method, target, headers, body)`` (``headers`` case-insensitive) and
returns ``(status, headers, body)``, ``DROP`` to close the connection without an answer,
or ``HANG`` to never answer on that connection (until the server closes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus

import httptools
from multidict import CIMultiDict

Answer = tuple[int, dict[str, str], bytes]
DROP = "drop"
HANG = "hang"
Handler = Callable[[str, str, CIMultiDict[str], bytes], "Answer | str"]

BACKLOG = 1024
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def encode_response(
    status: int, headers: dict[str, str], body: bytes, *, keep_alive: bool
) -> bytes:
    """The bytes of one response (``Content-Length`` and ``Connection`` are added)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Exchange(asyncio.Protocol):
    """One client connection: parses requests and writes answers in order."""

    def __init__(self, handler: Handler, connections: set[_Exchange]) -> None:
        self._handler = handler
        self._connections = connections
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._silent = False
        self._url = b""
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._silent:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # no upgrades (WebSocket) here
            self._refuse()
        except httptools.HttpParserError:
            self._refuse()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _refuse(self) -> None:
        assert self._transport is not None
        self._silent = True
        self._transport.write(_BAD_REQUEST)
        self._transport.close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = CIMultiDict()
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        if self._silent:
            return
        method = self._parser.get_method().decode("ascii")
        keep_alive = self._parser.should_keep_alive()
        answer = self._handler(
            method, self._url.decode("latin-1"), self._headers, b"".join(self._body)
        )
        if answer == HANG:
            self._silent = True  # later requests on this connection would queue behind it
            return
        if answer == DROP:
            self._silent = True
            self._transport.close()
            return
        assert not isinstance(answer, str)
        status, headers, body = answer
        self._transport.write(encode_response(status, headers, body, keep_alive=keep_alive))
        if not keep_alive:
            self._silent = True
            self._transport.close()


class LeanHTTPServer:
    """Serves ``handler`` on ``host`` (an ephemeral port unless ``port``): ``start`` and
    ``close``, or use it as an async context manager. ``port`` is known once started."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[_Exchange] = set()

    async def start(self) -> LeanHTTPServer:
        loop = asyncio.get_running_loop()
        # A fan-out opens hundreds of connections at once: with asyncio's default backlog
        # (100) the kernel drops SYNs while the loop is busy, and the client's first
        # retransmission comes a whole second later.
        self._server = await loop.create_server(
            lambda: _Exchange(self.handler, self._connections),
            self.host,
            self.port,
            backlog=BACKLOG,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and close every connection, answered or not."""
        assert self._server is not None
        self._server.close()
        for connection in list(self._connections):
            connection.close()
        await self._server.wait_closed()

    async def __aenter__(self) -> LeanHTTPServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
