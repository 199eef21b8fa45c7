"""bot.metrics: values read back by parsing the rendered Prometheus text exposition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import OTHER, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    payload, _ = metrics.render()
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(payload.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


class FakeClock:
    """Returns the queued readings one by one."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0)


def test_render_is_prometheus_text_with_every_metric() -> None:
    payload, content_type = Metrics().render()
    assert content_type.startswith("text/plain; version=")
    text = payload.decode()
    for name in (
        "paperboy_posts_total",
        "paperboy_command_duration_seconds",
        "paperboy_source_fetches_total",
        "paperboy_source_fetch_duration_seconds",
        "paperboy_deliveries",
        "paperboy_scheduler_leader",
        "paperboy_last_successful_poll_timestamp_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.count_post("slack", "sent")
    assert value(first, "paperboy_posts_total", platform="slack", outcome="sent") == 1
    assert value(second, "paperboy_posts_total", platform="slack", outcome="sent") is None


def test_posts_are_counted_by_platform_and_outcome() -> None:
    metrics = Metrics()
    metrics.count_post("slack", "sent")
    metrics.count_post("slack", "sent")
    metrics.count_post("discord", "unknown")
    assert value(metrics, "paperboy_posts_total", platform="slack", outcome="sent") == 2
    assert value(metrics, "paperboy_posts_total", platform="discord", outcome="unknown") == 1
    assert value(metrics, "paperboy_posts_total", platform="discord", outcome="sent") is None


def test_command_latency_lands_in_the_right_buckets() -> None:
    metrics = Metrics()
    metrics.observe_command("search", 0.03)
    metrics.observe_command("search", 4.0)
    name = "paperboy_command_duration_seconds"
    assert value(metrics, name + "_bucket", subcommand="search", le="0.025") == 0
    assert value(metrics, name + "_bucket", subcommand="search", le="0.05") == 1
    assert value(metrics, name + "_bucket", subcommand="search", le="5.0") == 2
    assert value(metrics, name + "_count", subcommand="search") == 2
    assert value(metrics, name + "_sum", subcommand="search") == pytest.approx(4.03)


def test_time_command_uses_the_injected_clock_even_when_the_command_raises() -> None:
    metrics = Metrics(clock=FakeClock(10.0, 10.2, 20.0, 21.5))
    with metrics.time_command("today"):
        pass
    with pytest.raises(RuntimeError), metrics.time_command("today"):
        raise RuntimeError("boom")
    name = "paperboy_command_duration_seconds"
    assert value(metrics, name + "_count", subcommand="today") == 2
    assert value(metrics, name + "_sum", subcommand="today") == pytest.approx(1.7)


def test_fetches_record_outcome_and_latency() -> None:
    metrics = Metrics(clock=FakeClock(0.0, 0.4, 1.0, 3.0))
    with metrics.time_fetch("huggingface"):
        pass
    with pytest.raises(OSError), metrics.time_fetch("huggingface"):
        raise OSError("connection refused")
    metrics.observe_fetch("arxiv", "rate_limited", 0.1)
    fetches = "paperboy_source_fetches_total"
    assert value(metrics, fetches, source="huggingface", outcome="ok") == 1
    assert value(metrics, fetches, source="huggingface", outcome="error") == 1
    assert value(metrics, fetches, source="arxiv", outcome="rate_limited") == 1
    seconds = "paperboy_source_fetch_duration_seconds"
    assert value(metrics, seconds + "_sum", source="huggingface") == pytest.approx(2.4)
    assert value(metrics, seconds + "_count", source="arxiv") == 1


def test_outbox_gauges_follow_the_latest_counts() -> None:
    metrics = Metrics()
    assert value(metrics, "paperboy_deliveries", state="pending") == 0
    assert value(metrics, "paperboy_deliveries", state="unknown") == 0
    metrics.set_outbox({"pending": 7, "unknown": 2, "failed": 1})
    assert value(metrics, "paperboy_deliveries", state="pending") == 7
    assert value(metrics, "paperboy_deliveries", state="unknown") == 2
    assert value(metrics, "paperboy_deliveries", state="failed") == 1
    metrics.set_outbox({"pending": 3})
    assert value(metrics, "paperboy_deliveries", state="pending") == 3
    assert value(metrics, "paperboy_deliveries", state="unknown") == 0
    assert value(metrics, "paperboy_deliveries", state="failed") == 0


def test_leader_and_last_poll() -> None:
    metrics = Metrics()
    assert value(metrics, "paperboy_scheduler_leader") == 0
    assert value(metrics, "paperboy_last_successful_poll_timestamp_seconds") == 0
    metrics.set_leader(True)
    when = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    metrics.set_last_poll(when)
    assert value(metrics, "paperboy_scheduler_leader") == 1
    assert value(metrics, "paperboy_last_successful_poll_timestamp_seconds") == when.timestamp()
    metrics.set_leader(False)
    metrics.set_last_poll(None)
    assert value(metrics, "paperboy_scheduler_leader") == 0
    assert value(metrics, "paperboy_last_successful_poll_timestamp_seconds") == 0


def test_unbounded_label_values_collapse_into_other() -> None:
    metrics = Metrics(max_label_values=3, known_commands=["search", "today"])
    for name in ("search", "today", "typo1", "typo2", "typo3"):
        metrics.observe_command(name, 0.01)
    name = "paperboy_command_duration_seconds_count"
    assert value(metrics, name, subcommand="search") == 1
    assert value(metrics, name, subcommand="typo1") == 1
    assert value(metrics, name, subcommand=OTHER) == 2
    assert value(metrics, name, subcommand="typo2") is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=30))
def test_any_subcommand_text_keeps_the_exposition_parseable_and_bounded(names: list[str]) -> None:
    metrics = Metrics(max_label_values=5)
    for name in names:
        metrics.observe_command(name, 0.2)
    series = {
        dict(labels)["subcommand"]
        for (sample, labels) in samples(metrics)
        if sample == "paperboy_command_duration_seconds_count"
    }
    assert len(series) <= 6
    counted = sum(
        v
        for (sample, _), v in samples(metrics).items()
        if sample == "paperboy_command_duration_seconds_count"
    )
    assert counted == len(names)


async def test_scrape_callbacks_refresh_gauges_and_failures_are_counted() -> None:
    metrics = Metrics(scrape_timeout=0.05)
    never = asyncio.Event()

    async def count_outbox(m: Metrics) -> None:
        m.set_outbox({"pending": 4})

    async def broken(m: Metrics) -> None:
        raise ConnectionError("database down")

    async def hangs(m: Metrics) -> None:
        await never.wait()

    for callback in (broken, hangs, count_outbox):
        metrics.on_scrape(callback)
    await metrics.refresh()
    assert value(metrics, "paperboy_deliveries", state="pending") == 4
    assert value(metrics, "paperboy_metrics_scrape_errors_total") == 2
