from __future__ import annotations

import asyncio

import pytest

from bot.ratelimit import MARGIN, PerKey, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock that only moves when the limiter sleeps."""
    fake = FakeClock()

    async def fake_sleep(seconds: float) -> None:
        fake.now += seconds

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return fake


def take_times(bucket: TokenBucket, clock: FakeClock, count: int) -> list[float]:
    async def run() -> list[float]:
        times = []
        for _ in range(count):
            await bucket.take()
            times.append(clock.now)
        return times

    return asyncio.run(run())


def most_in_one_second(times: list[float]) -> int:
    """The most takes in any half-open second [t, t + 1)."""
    return max(sum(1 for u in times if t <= u < t + 1) for t in times)


def test_no_second_carries_more_than_the_rate(clock: FakeClock) -> None:
    # The bucket that started full with capacity = rate let 59 through in its first second.
    bucket = TokenBucket(30, clock=clock)
    times = take_times(bucket, clock, 150)
    assert most_in_one_second(times) == 30
    # ... and still keeps the rate, less the margin: 150 takes in five windows.
    assert times[-1] == pytest.approx(4 * (1 + MARGIN) + 29 / 60)
    assert 150 / (times[-1] + 1 / 60) > 30 * 0.97


def test_what_a_window_allows_goes_out_paced_not_at_once(clock: FakeClock) -> None:
    bucket = TokenBucket(10, clock=clock)
    first = take_times(bucket, clock, 10)
    clock.now += 5.0  # a pause
    after = take_times(bucket, clock, 10)
    spacing = [b - a for a, b in zip(first + after, (first + after)[1:], strict=False)]
    assert min(spacing) == pytest.approx(0.05)  # twice the rate, never two at once
    assert after[-1] - after[0] == pytest.approx(9 * 0.05)


def test_a_burst_goes_back_to_back_then_the_window_holds(clock: FakeClock) -> None:
    bucket = TokenBucket(10, burst=2, clock=clock)
    times = take_times(bucket, clock, 12)
    expected = [0.0, 0.0, *(0.05 * n for n in range(1, 9)), 1 + MARGIN, 1 + MARGIN]
    assert times == pytest.approx(expected)
    assert most_in_one_second(times) == 10


def test_a_cost_above_capacity_waits_for_a_full_bucket() -> None:
    clock = FakeClock()

    async def run() -> float:
        bucket = TokenBucket(10, burst=10, clock=clock)
        await bucket.take(25)  # a 25-segment SMS goes alone into an empty window
        return bucket.tokens

    assert asyncio.run(run()) == -15


def test_costs_count_in_the_window(clock: FakeClock) -> None:
    bucket = TokenBucket(10, burst=10, clock=clock)

    async def run() -> list[float]:
        times = []
        for cost in (4, 4, 4):  # three 4-segment messages at 10 segments a second
            await bucket.take(cost)
            times.append(clock.now)
        return times

    # The third would make 12 segments in the window: it waits until the first leaves it.
    assert asyncio.run(run()) == pytest.approx([0.0, 0.0, 1 + MARGIN])


def test_per_key_buckets_are_independent() -> None:
    async def run() -> int:
        limiter = PerKey(1.0)
        await limiter.take("chat-1")
        await limiter.take("chat-2")
        return len(limiter._buckets)

    assert asyncio.run(run()) == 2
