"""``POST /slack/events`` for HTTP mode: bolt's Starlette handler plus an early ack.

Slack wants an answer within 3 s. bolt answers once its middleware chain and listener
have run, which under a burst of commands queues every ack behind the others' work. For
the two kinds of request paperboy answers with an empty ack anyway (``/papers`` slash
commands and ``block_actions`` button presses), this route checks the signature itself
with slack_sdk's ``SignatureVerifier`` (the verifier bolt uses), answers 200 at once, and
hands the request to bolt right after; bolt verifies it again and runs the listener,
whose own (empty) ack is then discarded. The hand-over is signed anew when it starts: a
request that waited its turn longer than the 5 minutes bolt allows a signature would
otherwise be refused after its ack, and the user would never get an answer.

Everything else, and every request whose signature does not check out, goes through
bolt's ``AsyncSlackRequestHandler`` unchanged: bolt itself answers 401 to forged, stale or
unsigned requests, and handles ``ssl_check`` and ``url_verification``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
FORM = "application/x-www-form-urlencoded"

Spawn = Callable[[Coroutine[Any, Any, None]], None]


def acks_empty(body: bytes) -> bool:
    """Whether bolt would answer this (form-encoded) request with an empty 200 ack."""
    try:
        form = parse_qs(body.decode("utf-8"))
    except UnicodeDecodeError:
        return False
    if "ssl_check" in form:
        return False
    if form.get("command"):
        return True
    payload = form.get("payload")
    if not payload:
        return False
    try:
        return json.loads(payload[0]).get("type") == "block_actions"
    except (ValueError, AttributeError):
        return False


def _signed_by_slack(verifier: SignatureVerifier, body: bytes, request: Request) -> bool:
    headers = request.headers
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not (timestamp.isdigit() and signature and headers.get("content-type", "").startswith(FORM)):
        return False
    return verifier.is_valid(body, timestamp, signature)


def events_route(
    app: AsyncApp,
    signing_secret: str,
    *,
    ready: Callable[[], bool],
    spawn: Spawn,
) -> Route:
    """The Starlette route; ``spawn`` schedules bolt's dispatch after an early ack."""
    handler = AsyncSlackRequestHandler(app)
    verifier = SignatureVerifier(signing_secret)

    async def dispatch_later(body: bytes, request: Request) -> None:
        text = body.decode("utf-8")
        # Verified on arrival; signed again now, for bolt's check of the timestamp.
        timestamp = str(int(verifier.clock.now()))
        headers = {k: v for k, v in request.headers.items() if not k.startswith("x-slack-")}
        headers["x-slack-request-timestamp"] = timestamp
        headers["x-slack-signature"] = (
            verifier.generate_signature(timestamp=timestamp, body=text) or ""
        )  # None only without a signing secret, which HTTP mode requires
        bolt_request = AsyncBoltRequest(
            body=text,
            query=request.query_params,  # type: ignore[arg-type]
            headers=headers,  # type: ignore[arg-type]
        )
        response = await app.async_dispatch(bolt_request)
        if response.status != 200:
            log.warning("slack request acked early but bolt answered %s", response.status)

    async def slack_events(request: Request) -> Response:
        if not ready():
            return JSONResponse({"error": "starting"}, status_code=503)
        body = await request.body()
        if _signed_by_slack(verifier, body, request) and acks_empty(body):
            spawn(dispatch_later(body, request))
            return Response(status_code=200)
        return await handler.handle(request)

    return Route(EVENTS_PATH, slack_events, methods=["POST"])
