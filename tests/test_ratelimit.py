from __future__ import annotations

import asyncio
import time
from datetime import date

import pytest

from bot.channels import Delivery, SendResult
from bot.outbox import Dispatcher, Limits
from bot.ratelimit import MARGIN, PerKey, TokenBucket
from dialogs.types import Author, Channel, DeliveryStatus, Direction
from storage.db import Database
from storage.models import Message, Municipality, OutboxEntry, YoungPerson

real_sleep = asyncio.sleep  # the fixture below replaces asyncio.sleep


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


def sends(bucket: TokenBucket, clock: FakeClock, trips: list[float]) -> list[float]:
    """Send one after another, each answered ``trip`` seconds after it was let go."""

    async def run() -> list[float]:
        times = []
        for trip in trips:
            async with bucket.sending():
                times.append(clock.now)
                clock.now += trip
        return times

    return asyncio.run(run())


def test_a_late_answer_keeps_its_send_in_the_window_that_much_longer(clock: FakeClock) -> None:
    span = 1 + MARGIN
    # The second send took half a second longer than the quickest: the fourth, which takes its
    # place, waits until half a second after the window would have let it go.
    times = sends(TokenBucket(2, clock=clock), clock, [0.0, 0.5, 0.0, 0.0])
    assert times == pytest.approx([0.0, 0.25, span, 0.75 + span])


def test_a_round_trip_every_send_takes_costs_nothing(clock: FakeClock) -> None:
    span = 1 + MARGIN
    # Counted from each answer, every window would start 0.3 s later: a window's worth of sends
    # would go every 1.31 s, not every 1.01 s.
    times = sends(TokenBucket(2, clock=clock), clock, [0.3] * 6)
    assert times == pytest.approx([0.0, 0.3, span, span + 0.3, 2 * span, 2 * span + 0.3])


async def on_its_way(bucket: TokenBucket, answer: asyncio.Event) -> asyncio.Task[None]:
    """A send let go by ``bucket`` and answered when ``answer`` is set."""
    entered = asyncio.Event()

    async def send() -> None:
        async with bucket.sending():
            entered.set()
            await answer.wait()

    task = asyncio.create_task(send())
    await entered.wait()
    return task


def test_a_send_on_its_way_keeps_its_place_in_every_window(clock: FakeClock) -> None:
    bucket = TokenBucket(2, clock=clock)
    span = 1 + MARGIN

    async def run() -> list[float]:
        async with bucket.sending():
            pass  # a quick one: round trips take no time here
        gate = asyncio.Event()
        waiting = await on_its_way(bucket, gate)
        times = []
        for _ in range(2):  # one place is held: one take a window
            await bucket.take()
            times.append(clock.now)
        gate.set()  # answered now: it leaves the window a window from now
        await waiting
        for _ in range(2):
            await bucket.take()
            times.append(clock.now)
        return times

    assert asyncio.run(run()) == pytest.approx([span, 2 * span, 3 * span, 3 * span + 1 / 4])


def test_a_take_waits_for_the_answer_when_sends_on_their_way_fill_the_window(
    clock: FakeClock,
) -> None:
    bucket = TokenBucket(1, clock=clock)

    async def run() -> tuple[bool, float]:
        async with bucket.sending():
            pass
        gate = asyncio.Event()
        waiting = await on_its_way(bucket, gate)
        second = asyncio.create_task(bucket.take())
        for _ in range(20):
            await real_sleep(0)
        blocked = not second.done()
        clock.now = 5.0
        gate.set()
        await waiting
        await second
        return blocked, clock.now

    blocked, taken_at = asyncio.run(run())
    assert blocked
    assert taken_at == pytest.approx(5.0 + 1 + MARGIN)


class SlowMiddleRequests:
    """An SMS provider that answers at once but takes 150 ms over the sixth to tenth request,
    noting each request as received just before it answers (the worst case for its count of a
    second)."""

    channel = Channel.SMS

    def __init__(self) -> None:
        self.received: list[float] = []
        self.calls = 0

    async def send(self, delivery: Delivery) -> SendResult:
        self.calls += 1
        if 5 < self.calls <= 10:
            await asyncio.sleep(0.15)
        self.received.append(time.monotonic())
        return SendResult(DeliveryStatus.SENT, provider_id=f"SM{delivery.message_id}")

    async def reconcile(self, delivery: Delivery, since: object) -> SendResult | None:
        return None

    async def close(self) -> None:
        return None


def test_requests_slow_to_reach_the_provider_never_crowd_its_second(database: Database) -> None:
    with database.session() as session:
        place = Municipality(name="Aarhus Kommune", slug="aarhus")
        session.add(place)
        session.flush()
        for i in range(30):
            person = YoungPerson(
                municipality_id=place.id,
                first_name=f"Ung {i}",
                birth_date=date(2008, 1, 1),
                phone=f"+452{i:07d}",
            )
            session.add(person)
            session.flush()
            message = Message(
                young_person_id=person.id,
                direction=Direction.OUTBOUND,
                channel=Channel.SMS,
                author=Author.BOT,
                text=f"Hej {i}",
                status=DeliveryStatus.QUEUED,
            )
            session.add(message)
            session.flush()
            session.add(OutboxEntry(message_id=message.id, channel=Channel.SMS))
    provider = SlowMiddleRequests()
    dispatcher = Dispatcher(
        database=database,
        adapters={Channel.SMS: provider},
        limits=Limits(sms_segments_per_second=10),
    )
    try:
        assert dispatcher.dispatch_due(limit=100) == 30
    finally:
        dispatcher.close()
    assert len(provider.received) == 30
    # Counted from hand-over, the ones sent a window after the slow ones reached the provider
    # inside the same second as them: 13 in a second.
    assert most_in_one_second(provider.received) == 10
