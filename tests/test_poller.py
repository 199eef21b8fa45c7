import logging
import random

import pytest

from bot.poller import Poller
from bot.sources.huggingface import HuggingFaceSource
from tests.fakes.huggingface import make_item


class Stop(Exception):
    pass


async def test_poller_backs_off_while_unreachable_then_recovers(store, fake_hf, caplog):
    from datetime import UTC, datetime

    fake_hf.add_items([make_item("2611.00001", "A Paper", day=datetime.now(UTC).date())])
    fake_hf.fail_next("*", status=503, times=6)  # 3 polls x 2 attempts each
    waits: list[float] = []

    async def no_sleep(_s: float) -> None:
        return None

    async def record(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            raise Stop

    source = HuggingFaceSource(fake_hf.url, sleep=no_sleep, max_attempts=2)
    poller = Poller(source, store, interval=900, days=1, sleep=record, rng=random.Random(7))
    polls = []

    async def on_poll(result):
        polls.append(result)

    caplog.set_level(logging.INFO, logger="bot.poller")
    try:
        with pytest.raises(Stop):
            await poller.run_forever(on_poll)
    finally:
        await source.close()

    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) == 1  # the same failure three times is said once
    assert "\n" not in failures[0].getMessage() and failures[0].exc_info is None
    assert "reachable again" in caplog.text
    assert waits[0] < waits[1] < waits[2] <= 900  # exponential backoff (jitter keeps order)
    assert waits[3] == 900  # back to the normal interval after a success
    assert [p.inserted for p in polls] == [1]
    assert (await store.get("2611.00001")).title == "A Paper"
