"""The outbox benchmark (bench/bench_outbox.py) claims and records every planned post."""

from __future__ import annotations

from bench import bench_outbox


async def test_every_planned_post_is_claimed_once_and_recorded():
    result = await bench_outbox.run(channels=9)
    assert [r["posts"] for r in result["rounds"]] == [4, 4, 1]
    assert result["sent"] == 9
    assert result["claim_cpu_us_per_post"] > 0 and result["record_cpu_us_per_post"] > 0
