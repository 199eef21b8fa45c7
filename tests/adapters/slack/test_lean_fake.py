"""The fake Slack's lean HTTP server (the fan-out benchmark's) speaks HTTP/1.1 as Slack does."""

from __future__ import annotations

import asyncio

import httptools
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.http1 import ResponseParser
from tests.fakes.lean_http import HANG, LeanHTTPServer, encode_response
from tests.fakes.slack import FakeSlack

AUTH = "Authorization: Bearer xoxb-test\r\n"


@pytest.fixture
async def lean_slack():
    async with FakeSlack(server="lean", channel_post_interval=1.0) as fake:
        yield fake


def post(channel: str, *, extra: str = "", auth: str = AUTH) -> bytes:
    body = orjson.dumps({"channel": channel, "text": "hi"})
    return (
        f"POST /api/chat.postMessage HTTP/1.1\r\nHost: x\r\n{auth}{extra}"
        f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _Responses:
    """httptools callbacks collecting every response read on one connection."""

    def __init__(self) -> None:
        self.done: list[tuple[int, dict[str, str], bytes]] = []
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self._headers: dict[str, str] = {}
        self._body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, self._body))


async def exchange(port: int, raw: bytes, answers: int) -> list[tuple[int, dict, bytes]]:
    """Send ``raw`` on one connection; read ``answers`` responses, or until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    responses = _Responses()
    try:
        while len(responses.done) < answers:
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                break
            responses.parser.feed_data(data)
        return responses.done
    finally:
        writer.close()


async def test_slack_sdk_posts_and_meets_the_per_channel_pace(lean_slack):
    client = AsyncWebClient(token="xoxb-test", base_url=lean_slack.api_url)
    answer = await client.chat_postMessage(channel="C1", text="first")
    assert answer["ok"] and answer["message"]["text"] == "first"
    with pytest.raises(SlackApiError) as raised:  # form-encoded, as slack_sdk sends it
        await client.chat_postMessage(channel="C1", text="too soon")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["retry-after"] in ("1", ["1"])
    assert [m["text"] for m in lean_slack.messages["C1"]] == ["first"]
    assert lean_slack.rate_limited == 1


async def test_pipelined_requests_are_answered_in_order_on_one_connection(lean_slack):
    responses = await exchange(lean_slack.port, post("C1") + post("C2") + post("C3"), 3)
    channels = [orjson.loads(body)["channel"] for _status, _headers, body in responses]
    assert channels == ["C1", "C2", "C3"]
    assert [status for status, _headers, _body in responses] == [200, 200, 200]


async def test_a_chunked_body_is_read_whole(lean_slack):
    body = orjson.dumps({"channel": "C9", "text": "chunked"})
    raw = (
        (
            f"POST /api/chat.postMessage HTTP/1.1\r\nHost: x\r\n{AUTH}"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            f"{len(body[:7]):x}\r\n"
        ).encode()
        + body[:7]
        + f"\r\n{len(body[7:]):x}\r\n".encode()
        + body[7:]
        + b"\r\n0\r\n\r\n"
    )
    ((_status, _headers, body),) = await exchange(lean_slack.port, raw, 1)
    assert orjson.loads(body)["message"]["text"] == "chunked"


async def test_connection_close_is_honoured(lean_slack):
    responses = await exchange(lean_slack.port, post("C1", extra="Connection: close\r\n"), 2)
    assert len(responses) == 1 and responses[0][1]["connection"] == "close"


async def test_garbage_gets_400_and_a_closed_connection(lean_slack):
    responses = await exchange(lean_slack.port, b"NOT HTTP AT ALL\r\n\r\n", 2)
    assert [status for status, _headers, _body in responses] == [400]
    assert lean_slack.calls == []


async def test_a_call_without_a_token_is_not_authed_and_state_is_served(lean_slack):
    ((_status, _headers, body),) = await exchange(lean_slack.port, post("C1", auth=""), 1)
    assert orjson.loads(body) == {"ok": False, "error": "not_authed"}
    raw = b"GET /__state HTTP/1.1\r\nHost: x\r\n\r\n"
    ((_status, _headers, state),) = await exchange(lean_slack.port, raw, 1)
    assert orjson.loads(state)["calls"] == 1
    missing = await exchange(lean_slack.port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 1)
    assert missing[0][0] == 404


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from([200, 201, 400, 404, 429, 500, 503, 599]),
    headers=st.dictionaries(
        st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True),
        st.from_regex(r"[ -~]{0,40}", fullmatch=True).map(str.strip),
        max_size=4,
    ).filter(lambda h: len({name.lower() for name in h}) == len(h)),  # names ignore case
    body=st.binary(max_size=2048),
    keep_alive=st.booleans(),
)
def test_encoded_responses_parse_back(status, headers, body, keep_alive):
    raw = encode_response(status, headers, body, keep_alive=keep_alive)
    response = ResponseParser().feed(raw)
    assert response is not None
    assert (response.status, response.body) == (status, body)
    for name, value in headers.items():
        assert response.headers[name.lower()] == value
    assert response.headers["connection"] == ("keep-alive" if keep_alive else "close")


async def test_the_server_closes_its_connections_on_exit():
    arrived = asyncio.Event()

    def hang(method, target, headers, body):
        arrived.set()
        return HANG

    async with LeanHTTPServer(hang) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(arrived.wait(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
