"""The keep-alive HTTP/1.1 client: its response parser (hypothesis: any framing, any
split) and its pool against a scripted raw server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.http1 import (
    ConnectError,
    KeepAlivePool,
    ProtocolError,
    RequestDropped,
    Response,
    ResponseParser,
    _Slots,
)

# --- the parser -----------------------------------------------------------------------

header_names = st.from_regex(r"X-[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
header_values = st.from_regex(r"[ -~]{0,30}", fullmatch=True).map(str.strip)
# Names differ case-insensitively (`X-a` and `X-A` are one header) and from the trailer
# the chunked encoding below sends.
header_sets = st.dictionaries(header_names, header_values, max_size=5).filter(
    lambda headers: len({k.lower() for k in headers} - {"x-trailer"}) == len(headers)
)


def encode_response(
    status: int, headers: dict[str, str], body: bytes, framing: str, chunks: list[int]
) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{k}: {v}" for k, v in headers.items()]
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        parts, rest = [], body
        for size in chunks:
            if not rest:
                break
            piece, rest = rest[:size], rest[size:]
            parts.append(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
        if rest:
            parts.append(f"{len(rest):X}\r\n".encode() + rest + b"\r\n")
        payload = b"".join(parts) + b"0\r\nX-Trailer: t\r\n\r\n"
    else:  # until the connection closes
        lines.append("Connection: close")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def feed_split(raw: bytes, cuts: list[int], *, close: bool) -> Response | None:
    parser, last, result = ResponseParser(), 0, None
    for cut in sorted({min(c, len(raw)) for c in cuts} | {len(raw)}):
        response = parser.feed(raw[last:cut])
        last = cut
        if response is not None:
            assert result is None and cut == len(raw)  # complete exactly at the end
            result = response
    if close and result is None:
        result = parser.eof()
    return result


@given(
    status=st.sampled_from([200, 201, 400, 404, 429, 500, 503]),
    headers=header_sets,
    body=st.binary(max_size=3000),
    framing=st.sampled_from(["length", "chunked", "close"]),
    chunks=st.lists(st.integers(1, 700), max_size=8),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
)
def test_any_response_split_anywhere_parses_to_what_was_sent(
    status, headers, body, framing, chunks, cuts
):
    raw = encode_response(status, headers, body, framing, chunks)
    response = feed_split(raw, cuts, close=framing == "close")
    assert response is not None
    assert (response.status, response.body) == (status, body)
    for name, value in headers.items():
        assert response.headers[name.lower()] == value
    assert response.keep_alive is (framing != "close")


def test_interim_answers_are_skipped_and_204_has_no_body():
    parser = ResponseParser()
    response = parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nA: b\r\n\r\n")
    assert response == Response(204, {"a": "b"}, b"", True)


def test_http_1_0_closes_unless_asked_to_keep_alive():
    closing = ResponseParser().feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    kept = ResponseParser().feed(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    )
    assert closing is not None and not closing.keep_alive
    assert kept is not None and kept.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>Bad gateway</html>\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\n",
    ],
)
def test_garbage_is_a_protocol_error(raw):
    with pytest.raises(ProtocolError):
        ResponseParser().feed(raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Le", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"],
)
def test_a_close_before_the_response_is_complete_is_a_dropped_request(raw):
    parser = ResponseParser()
    assert parser.feed(raw) is None
    with pytest.raises(RequestDropped):
        parser.eof()


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_arbitrary_bytes_give_a_response_or_one_of_our_errors(data, cuts):
    try:
        outcome = feed_split(data, cuts, close=True)
    except (ProtocolError, RequestDropped) as exc:
        outcome = exc
    assert isinstance(outcome, Response | ProtocolError | RequestDropped)


# --- the pool against a scripted server ------------------------------------------------

Answer = Callable[[bytes], bytes | None]  # request bytes -> response bytes (None: hang)


def ok(body: bytes = b'{"ok":true}', *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class RawServer:
    """Reads whole requests (Content-Length framed) and answers them as scripted."""

    answers: list[Answer] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answers.pop(0) if self.answers else (lambda _r: ok())
                response = answer(request)
                if response is None:
                    await asyncio.Event().wait()  # hang until cancelled
                writer.write(response)
                await writer.drain()
                if b"Connection: close" in response:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    @property
    def tls_url(self) -> str:
        return self.url.replace("http://127.0.0.1", "https://localhost")


async def start_raw_server(tls: ssl.SSLContext | None = None) -> RawServer:
    fake = RawServer()
    fake.server = await asyncio.start_server(fake.handle, "127.0.0.1", 0, ssl=tls)
    return fake


async def stop_raw_server(fake: RawServer) -> None:
    for writer in fake.writers:
        writer.close()
    assert fake.server is not None
    fake.server.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    fake = await start_raw_server()
    yield fake
    await stop_raw_server(fake)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(authority) -> AsyncIterator[RawServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    fake = await start_raw_server(context)
    yield fake
    await stop_raw_server(fake)


@pytest.fixture
def client_tls(authority) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


@dataclass
class TunnelProxy:
    """An HTTP proxy on 127.0.0.1: ``CONNECT`` tunnels (recorded), or a fixed refusal."""

    refuse_with: int | None = None
    connects: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://user:p%40ss@127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.connects.append(head)
        if self.refuse_with is not None:
            writer.write(f"HTTP/1.1 {self.refuse_with} No\r\nContent-Length: 0\r\n\r\n".encode())
            writer.close()
            return
        target = head.split(b" ")[1].decode()
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.0 200 Connection established\r\n\r\n")

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def tunnel_proxy() -> AsyncIterator[TunnelProxy]:
    proxy = TunnelProxy()
    proxy.server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    yield proxy
    proxy.server.close()


@pytest.fixture
async def pool_for() -> AsyncIterator[Callable[..., KeepAlivePool]]:
    pools: list[KeepAlivePool] = []

    def make(url: str, **options) -> KeepAlivePool:
        pools.append(KeepAlivePool(url, **options))
        return pools[-1]

    yield make
    for pool in pools:
        await pool.close()


async def post(pool: KeepAlivePool, body: bytes = b'{"a":1}') -> Response:
    return await pool.request(
        "POST", "chat.postMessage", headers={"Content-Type": "application/json"}, body=body
    )


async def test_requests_reuse_one_connection_and_carry_the_wire_format(raw_server, pool_for):
    pool = pool_for(raw_server.url)
    first, second = await post(pool, b'{"n":1}'), await post(pool, b'{"n":2}')
    assert (first.status, first.body, second.body) == (200, b'{"ok":true}', b'{"ok":true}')
    assert raw_server.connections == pool.connections_opened == 1
    port = raw_server.url.split(":")[2].split("/")[0]
    assert (
        raw_server.requests[0]
        == (
            f"POST /api/chat.postMessage HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"n":1}'
        ).encode()
    )
    assert raw_server.requests[1].endswith(b'{"n":2}')


async def test_connection_close_makes_the_next_request_open_a_new_one(raw_server, pool_for):
    raw_server.answers = [lambda _r: ok(extra="Connection: close\r\n")]
    pool = pool_for(raw_server.url)
    await post(pool)
    await post(pool)
    assert raw_server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_used_again(raw_server, pool_for):
    pool = pool_for(raw_server.url)
    await post(pool)
    for writer in raw_server.writers:
        writer.close()
    for _ in range(1000):  # yield to the loop until the client has seen the FIN
        if all(connection.closed for connection in pool._idle):
            break
        await asyncio.sleep(0)
    assert pool._idle and all(connection.closed for connection in pool._idle)
    response = await post(pool)
    assert response.status == 200 and raw_server.connections == 2


async def test_idle_timeout_retires_old_connections(raw_server, pool_for):
    pool = pool_for(raw_server.url, idle_timeout=0.0)
    await post(pool)
    await post(pool)
    assert raw_server.connections == 2


async def test_no_more_than_max_connections_are_open(raw_server, pool_for):
    pool = pool_for(raw_server.url, max_connections=2)
    responses = await asyncio.gather(*(post(pool) for _ in range(7)))
    assert all(r.status == 200 for r in responses)
    assert raw_server.most_open <= 2 and pool.connections_opened == 2


async def test_a_silent_server_times_out_and_the_connection_is_dropped(raw_server, pool_for):
    raw_server.answers = [lambda _r: None]
    pool = pool_for(raw_server.url, timeout=0.05)
    with pytest.raises(TimeoutError):
        await post(pool)
    pool.timeout = 5.0  # the follow-up must succeed, however loaded the machine
    assert (await post(pool)).status == 200
    assert raw_server.connections == 2  # the timed-out connection was not reused


async def test_a_garbled_answer_is_a_protocol_error_and_the_pool_recovers(raw_server, pool_for):
    raw_server.answers = [lambda _r: b"SSH-2.0-OpenSSH\r\n\r\n"]
    pool = pool_for(raw_server.url)
    with pytest.raises(ProtocolError):
        await post(pool)
    assert (await post(pool)).status == 200


async def test_a_refused_connection_is_a_connect_error(pool_for):
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectError):
        await post(pool_for(f"http://127.0.0.1:{port}/api/"))


async def test_a_closed_pool_refuses_new_requests(raw_server, pool_for):
    pool = pool_for(raw_server.url)
    await post(pool)
    await pool.close()
    with pytest.raises(ConnectError):
        await post(pool)


@given(
    st.sampled_from(["GET", "POST", "HEAD"]),
    st.dictionaries(header_names, header_values, max_size=3),
    st.binary(max_size=20),
)
def test_requests_encode_the_same_whether_their_head_is_cached_or_not(method, headers, body):
    pool = KeepAlivePool("http://127.0.0.1:9/api/")
    lines = [f"{method} /api/chat.postMessage HTTP/1.1", "Host: 127.0.0.1:9"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    expected = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    first = pool.encode(method, "chat.postMessage", headers, body)
    assert first == expected
    assert pool.encode(method, "chat.postMessage", dict(headers), body) == expected  # cached
    other = {**headers, "X-Other": "1"}
    assert b"X-Other: 1\r\n" in pool.encode(method, "chat.postMessage", other, body)


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="not an http"):
        KeepAlivePool("ftp://example.org/")
    assert KeepAlivePool("https://slack.com/api/").host_header == "slack.com"


async def test_https_verifies_the_certificate_and_reuses_the_tls_connection(
    tls_server, pool_for, client_tls
):
    pool = pool_for(tls_server.tls_url, ssl_context=client_tls)
    assert (await post(pool)).status == 200 and (await post(pool)).status == 200
    assert tls_server.connections == 1
    assert tls_server.requests[0].startswith(b"POST /api/chat.postMessage HTTP/1.1\r\n")


async def test_https_refuses_a_certificate_it_does_not_trust(tls_server, pool_for):
    with pytest.raises(ConnectError):
        await post(pool_for(tls_server.tls_url))  # the system's CAs do not know ours


async def test_https_through_a_proxy_tunnels_with_connect(
    tls_server, tunnel_proxy, pool_for, client_tls
):
    pool = pool_for(tls_server.tls_url, ssl_context=client_tls, proxy=tunnel_proxy.url)
    assert (await post(pool)).status == 200 and (await post(pool)).status == 200
    port = tls_server.tls_url.split(":")[2].split("/")[0]
    [connect] = tunnel_proxy.connects  # one tunnel, kept alive for both requests
    assert connect.startswith(f"CONNECT localhost:{port} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpwQHNz\r\n" in connect  # user:p@ss
    assert all(b"Proxy-Authorization" not in r for r in tls_server.requests)


async def test_a_proxy_refusing_the_tunnel_is_a_connect_error(
    tls_server, tunnel_proxy, pool_for, client_tls
):
    tunnel_proxy.refuse_with = 407
    pool = pool_for(tls_server.tls_url, ssl_context=client_tls, proxy=tunnel_proxy.url)
    with pytest.raises(ConnectError, match="407"):
        await post(pool)


async def test_plain_http_through_a_proxy_sends_absolute_targets(raw_server, pool_for):
    proxy = raw_server.url.removesuffix("/api/").replace("http://", "http://u:pw@")
    pool = pool_for("http://slack.test/api/", proxy=proxy)
    assert (await post(pool)).status == 200
    request = raw_server.requests[0]
    assert request.startswith(b"POST http://slack.test/api/chat.postMessage HTTP/1.1\r\n")
    assert b"\r\nHost: slack.test\r\n" in request
    assert b"\r\nProxy-Authorization: Basic dTpwdw==\r\n" in request


def test_only_http_proxies_are_accepted():
    with pytest.raises(ValueError, match="proxies"):
        KeepAlivePool("https://slack.com/api/", proxy="socks5://127.0.0.1:1080")


# --- connection slots ---------------------------------------------------------------------


async def test_slots_cap_holders_and_serve_waiters_in_order():
    slots, held, order = _Slots(2), [], []
    release = asyncio.Event()

    async def hold(name: str) -> None:
        async with slots:
            held.append(name)
            order.append(name)
            await release.wait()
            held.remove(name)

    tasks = [asyncio.create_task(hold(n)) for n in "abcde"]
    for _ in range(10):
        await asyncio.sleep(0)
    assert held == ["a", "b"]  # the others queue
    release.set()
    await asyncio.gather(*tasks)
    assert order == list("abcde") and held == []


async def test_a_cancelled_waiter_neither_keeps_nor_loses_a_slot():
    slots = _Slots(1)
    entered: list[str] = []

    async def take(name: str) -> None:
        async with slots:
            entered.append(name)

    await slots.__aenter__()  # the test holds the only slot
    gave_up = asyncio.create_task(take("gave_up"))
    handed = asyncio.create_task(take("handed"))
    after = asyncio.create_task(take("after"))
    await asyncio.sleep(0)  # all three queue
    gave_up.cancel()  # cancelled while waiting: stays queued, skipped later
    with pytest.raises(asyncio.CancelledError):
        await gave_up
    await slots.__aexit__(None, None, None)  # hands the slot to `handed`...
    handed.cancel()  # ...which is cancelled before it runs, and passes the slot on
    with pytest.raises(asyncio.CancelledError):
        await handed
    async with asyncio.timeout(5):
        await after
    assert entered == ["after"]
    async with slots:  # and the slot is free again
        entered.append("test")
    assert entered == ["after", "test"]
