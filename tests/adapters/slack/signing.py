"""Building slash-command and button requests the way Slack signs them."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

SECRET = "test-signing-secret"


def command_payload(text: str, response_url: str, **overrides: str) -> dict[str, str]:
    payload = {
        "token": "legacy",
        "team_id": "T1",
        "team_domain": "fake",
        "channel_id": "C1",
        "channel_name": "general",
        "user_id": "U1",
        "user_name": "ada",
        "command": "/papers",
        "text": text,
        "api_app_id": "A1",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    }
    payload.update(overrides)
    return payload


def button_payload(
    action_id: str, value: str, response_url: str, *, ephemeral: bool = True, user: str = "U1"
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "1.2.4",
        "response_url": response_url,
        "user": {"id": user, "username": "ada", "name": "ada", "team_id": "T1"},
        "team": {"id": "T1", "domain": "fake"},
        "channel": {"id": "C1", "name": "general"},
        "container": {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": "C1",
            "is_ephemeral": ephemeral,
        },
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": "1700000001.000200",
            }
        ],
    }


def signed(body: str, *, secret: str = SECRET, timestamp: float | None = None) -> dict[str, str]:
    """Headers Slack would send with ``body``."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def command_body(payload: dict[str, str]) -> str:
    return urlencode(payload)


def action_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})
