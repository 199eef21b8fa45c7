"""A small HTTP/1.1 keep-alive client for the one request a digest fan-out repeats.

A digest to a thousand channels is a thousand ``chat.postMessage`` calls in a burst, and
Slack's limit (a message per second per channel) makes the second message of every
channel wait for the first: the whole fan-out takes one second plus the time to get the
first messages out. Through aiohttp's client a request costs about 0.3 ms of CPU
(request and response objects, tracing hooks, cookie jar, timers); through these pooled
connections about a fifth of that (figures in bench/README.md, "Digest fan-out").

Scope, on purpose: requests to one origin (``http`` or ``https``, optionally through an
HTTP proxy: ``CONNECT`` tunnels for https), bodies given as bytes, responses read whole
(``Content-Length``, ``chunked`` or until close), keep-alive with ``Connection: close``
honoured and idle connections dropped after ``idle_timeout``. No redirects, cookies or
compression (``Accept-Encoding`` is not sent, so a server answers in identity encoding).
Failures are typed by what the caller may conclude: ``ConnectError`` (nothing was sent),
``RequestDropped`` (the request may have arrived), ``TimeoutError`` (same) and
``ProtocolError`` (an answer we cannot read).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_CACHED_HEADS = 64  # distinct request heads (method, path, headers) kept encoded


class HTTPClientError(Exception):
    """Base of this module's transport errors."""


class ConnectError(HTTPClientError):
    """No connection could be made: the request was never sent."""


class RequestDropped(HTTPClientError):
    """The connection closed before a whole response arrived: the request may have landed."""


class ProtocolError(HTTPClientError):
    """The server answered something that is not an HTTP/1.x response we can read."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes
    keep_alive: bool


class ResponseParser:
    """Incremental parser of one HTTP/1.x response. ``feed`` returns the response once it
    is complete (and ``None`` until then); ``eof`` is called when the peer closed."""

    def __init__(self, *, head_only: bool = False) -> None:
        self._buffer = bytearray()
        self._head_only = head_only  # the answer to a HEAD request has no body
        self._status = 0
        self._headers: dict[str, str] = {}
        self._keep_alive = True
        self._length: int | None = None  # remaining body bytes, when known
        self._chunked = False
        self._until_close = False
        self._body = bytearray()
        self._in_head = True
        self._chunk_left = -1  # -1: expecting a chunk-size line
        self._in_trailers = False

    def feed(self, data: bytes) -> Response | None:
        self._buffer += data
        if self._in_head and not self._parse_head():
            return None
        if self._chunked:
            return self._parse_chunks()
        if self._until_close:
            self._take(len(self._buffer))
            return None
        assert self._length is not None
        self._take(min(self._length, len(self._buffer)))
        if self._length == 0:
            return self._done()
        return None

    def eof(self) -> Response:
        """The connection closed: the response if it was complete by then, else raise."""
        if self._in_head:
            raise RequestDropped("connection closed before a response")
        if self._until_close:
            self._keep_alive = False
            return self._done()
        raise RequestDropped("connection closed in the middle of a response")

    def _parse_head(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise ProtocolError("response head too large")
                return False
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            status_line, *lines = head.split(b"\r\n")
            version, _, rest = status_line.partition(b" ")
            code = rest[:3]
            if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
                raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
            status = int(code)
            if 100 <= status < 200:  # 100 Continue and other interim answers: skip them
                continue
            headers: dict[str, str] = {}
            for line in lines:
                name, colon, value = line.partition(b":")
                if not colon or not name or name != name.strip():
                    raise ProtocolError(f"malformed header line: {line[:80]!r}")
                headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
            self._in_head = False
            self._status, self._headers = status, headers
            connection = headers.get("connection", "").lower()
            self._keep_alive = (
                "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
            )
            self._frame_body(headers, status)
            return True

    def _frame_body(self, headers: dict[str, str], status: int) -> None:
        if self._head_only or status in (204, 304):
            self._length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            value = headers["content-length"]
            if not value.isdigit():
                raise ProtocolError(f"bad Content-Length: {value[:40]!r}")
            self._length = int(value)
            if self._length > MAX_BODY_BYTES:
                raise ProtocolError("response body too large")
        else:
            self._until_close = True
            self._keep_alive = False

    def _take(self, count: int) -> None:
        self._body += self._buffer[:count]
        del self._buffer[:count]
        if self._length is not None:
            self._length -= count
        if len(self._body) > MAX_BODY_BYTES:
            raise ProtocolError("response body too large")

    def _parse_chunks(self) -> Response | None:
        while True:
            if self._in_trailers:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return None
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                if not line:
                    return self._done()
                continue
            if self._chunk_left < 0:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    if len(self._buffer) > 1024:
                        raise ProtocolError("chunk size line too long")
                    return None
                size = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
                del self._buffer[: end + 2]
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size: {size[:20]!r}") from None
                if self._chunk_left < 0:
                    raise ProtocolError("negative chunk size")
                if self._chunk_left == 0:
                    self._in_trailers = True
                    continue
            if len(self._buffer) < self._chunk_left + 2:
                self._take_chunk_part()
                return None
            self._take(self._chunk_left)
            if self._buffer[:2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            del self._buffer[:2]
            self._chunk_left = -1

    def _take_chunk_part(self) -> None:
        # keep up to the chunk's end in the body; its trailing CRLF must arrive whole
        count = min(self._chunk_left, len(self._buffer))
        self._take(count)
        self._chunk_left -= count

    def _done(self) -> Response:
        if self._buffer:  # we never pipeline: bytes past the response mean a confused peer
            raise ProtocolError("unexpected bytes after the response")
        return Response(self._status, self._headers, bytes(self._body), self._keep_alive)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._keep_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._waiter is None:  # nothing asked: a confused peer
            self.close()
            return
        try:
            response = self._parser.feed(data)
        except ProtocolError as exc:
            self._finish(exc)
            return
        if response is not None:
            self._finish(response)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and self._waiter is not None:
            try:
                self._finish(self._parser.eof())
            except HTTPClientError as error:
                self._finish(error)

    def exchange(
        self,
        request: bytes,
        *,
        head_only: bool = False,
        keep_open: bool = False,
        timeout: float | None = None,
    ) -> asyncio.Future[Response]:
        """Send ``request``; the future gets its response, or TimeoutError (and the
        connection is closed) after ``timeout`` seconds. ``keep_open``: the connection
        stays open whatever the response says (a tunnel answered by an HTTP/1.0 proxy)."""
        assert self.transport is not None and self._waiter is None
        self._keep_open = keep_open
        self._parser = ResponseParser(head_only=head_only)
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        if timeout is not None:
            # A timer of our own: asyncio.timeout() costs several times more per request.
            self._timer = loop.call_later(timeout, self._time_out)
        self.transport.write(request)
        return self._waiter

    def _time_out(self) -> None:
        self._timer = None
        self._finish(TimeoutError("no complete response in time"))

    def _finish(self, outcome: Response | BaseException) -> None:
        waiter, self._waiter, self._parser = self._waiter, None, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if isinstance(outcome, BaseException):
            self.close()
            if waiter is not None and not waiter.done():
                waiter.set_exception(outcome)
            return
        if not outcome.keep_alive and not self._keep_open:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Slots:
    """At most ``size`` holders at once, served first come first served.

    Not ``asyncio.Semaphore``: on Python 3.11 its release scans the waiters from the front,
    past those already woken but not yet running, which is quadratic when a fan-out queues
    a thousand requests for 250 connections. Here acquire and release are O(1).
    """

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot just as we left
                self._release()
            raise  # a cancelled waiter stays queued; _release skips it

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next in line
                return
        self._free += 1


class KeepAlivePool:
    """Up to ``max_connections`` kept-alive connections to the origin of ``base_url``.

    ``request`` sends one request and returns the whole response; connections are reused
    most-recently-used first. ``timeout`` bounds connecting and the exchange separately.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 100,
        timeout: float = 10.0,
        idle_timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path_prefix = parts.path or "/"
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.authority = f"{host}:{self.port}"
        self._proxy: tuple[str, int] | None = None
        self._proxy_headers: dict[str, str] = {}
        if proxy:
            self._use_proxy(proxy, parts.scheme)
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self._slots = _Slots(max_connections)
        self._heads: dict[tuple[object, ...], bytes] = {}
        self._idle: deque[_Connection] = deque()
        self.connections_opened = 0
        self._closed = False

    def _use_proxy(self, proxy: str, scheme: str) -> None:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("only http:// proxies are supported")
        self._proxy = (parts.hostname, parts.port or 80)
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            basic = base64.b64encode(user.encode()).decode("ascii")
            self._proxy_headers["Proxy-Authorization"] = f"Basic {basic}"
        if scheme == "http":  # plain requests go to the proxy with absolute targets
            self.path_prefix = f"http://{self.host_header}{self.path_prefix}"

    def encode(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        """The request's bytes (``path`` is relative to the base URL's path)."""
        key: tuple[object, ...] = (method, path, *headers.items())
        head = self._heads.get(key)
        if head is None:  # a fan-out sends one head thousands of times: encode it once
            lines = [f"{method} {self.path_prefix}{path} HTTP/1.1", f"Host: {self.host_header}"]
            if self._ssl is None:  # a tunnel carries them once, in its CONNECT
                lines += [f"{name}: {value}" for name, value in self._proxy_headers.items()]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            head = "".join(f"{line}\r\n" for line in lines).encode("latin-1")
            if len(self._heads) >= MAX_CACHED_HEADS:
                self._heads.clear()
            self._heads[key] = head
        if body or method in ("POST", "PUT", "PATCH"):
            return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        return head + b"\r\n"

    async def request(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes = b""
    ) -> Response:
        """Send one request and read its response (see the module doc for the errors)."""
        if self._closed:
            raise ConnectError("the connection pool is closed")
        raw = self.encode(method, path, headers, body)
        async with self._slots:
            connection = self._idle_connection() or await self._connect()
            try:
                response = await connection.exchange(
                    raw, head_only=method == "HEAD", timeout=self.timeout
                )
            except BaseException:
                connection.close()
                raise
            if connection.closed or self._closed:
                connection.close()
            else:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            return response

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.idle_timeout:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = self._proxy or (self.host, self.port)
        tunnel = self._proxy is not None and self._ssl is not None
        try:
            async with asyncio.timeout(self.timeout):
                _transport, connection = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=None if self._proxy else self._ssl,
                    server_hostname=self.host if self._ssl and not self._proxy else None,
                )
                if tunnel:
                    await self._open_tunnel(connection)
        except TimeoutError:
            raise ConnectError(f"timed out connecting to {host}:{port}") from None
        except (OSError, HTTPClientError) as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        self.connections_opened += 1
        return connection

    async def _open_tunnel(self, connection: _Connection) -> None:
        """``CONNECT`` through the proxy, then TLS with the origin inside the tunnel."""
        lines = [f"CONNECT {self.authority} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{name}: {value}" for name, value in self._proxy_headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            answer = await connection.exchange(request, head_only=True, keep_open=True)
            if answer.status != 200:
                raise ConnectError(f"the proxy answered CONNECT with HTTP {answer.status}")
            assert connection.transport is not None and self._ssl is not None
            loop = asyncio.get_running_loop()
            secured = await loop.start_tls(
                connection.transport, connection, self._ssl, server_hostname=self.host
            )
        except BaseException:
            connection.close()
            raise
        if secured is None:
            raise ConnectError("the TLS handshake inside the proxy tunnel failed")
        assert isinstance(secured, asyncio.Transport)
        connection.transport = secured

    async def close(self) -> None:
        """Close the idle connections; requests in flight finish, then close theirs."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
