from __future__ import annotations

import asyncio

import pytest

from bot.ratelimit import PerKey, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_paces(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        clock.now += seconds

    async def run() -> None:
        bucket = TokenBucket(10, burst=2, clock=clock)
        for _ in range(4):
            await bucket.take()

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    asyncio.run(run())
    assert slept == [0.1, 0.1]


def test_a_cost_above_capacity_waits_for_a_full_bucket() -> None:
    clock = FakeClock()

    async def run() -> float:
        bucket = TokenBucket(10, burst=10, clock=clock)
        await bucket.take(25)  # a 25-segment SMS
        return bucket.tokens

    assert asyncio.run(run()) == -15


def test_per_key_buckets_are_independent() -> None:
    async def run() -> int:
        limiter = PerKey(1.0)
        await limiter.take("chat-1")
        await limiter.take("chat-2")
        return len(limiter._buckets)

    assert asyncio.run(run()) == 2
