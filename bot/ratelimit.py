"""Rate limits for the providers, on the dispatcher's event loop.

Telegram allows about 30 messages a second per bot and one a second per chat; Twilio queues what
a sender gets beyond its throughput (counted in segments) and drops it after the validity period.
Limits hold per process: several worker processes each take their configured share.

A provider counts what arrives in a second, wherever that second starts. A plain token bucket
does not keep to that: one that starts full with a capacity of ``rate`` lets ``rate`` go at once
and refills meanwhile, so its first second (and the first second after every pause) carries up
to twice the rate. :class:`TokenBucket` therefore remembers what it let through and never lets
more than ``rate * window`` into any window; and it paces what a window allows instead of
letting it all go at once.

A request reaches the provider some time after the limiter lets it go: after the client has
built it, found a connection and written it, and after the network. Part of that time every
request takes alike, and it moves all arrivals alike; the rest differs from request to request
(a busy machine, a provider that is slow for a moment), and a window counted from hand-over can
then put one request too many into the provider's second: one that was slow to arrive, and the
one a window later that was quick. A request sent with :meth:`TokenBucket.sending` therefore
stays in the window until the provider has answered it and a window after that, less the
quickest round trip seen lately (the part every request takes). The provider received it before
it answered, and the request that takes its place is made after that, so at the provider the two
lie a window apart, however late either was, unless the new one is quicker than any lately.
Counting the whole round trip instead would cost its length in every window: 50 ms is 5% of
the rate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

# What a pause saved (a window with room) goes out at up to this multiple of the rate, paced.
PACE = 2.0
# The window is this much longer than the provider's, as a share of it: room for a request a
# little quicker than the quickest lately, or for a provider that notes an arrival a little after
# it has answered. Late requests are counted in full (see the module's docstring), so they need
# no room here; the cost is 1% of the rate.
MARGIN = 0.01
# The quickest round trip of the answers of this many seconds is the part every request takes.
LATELY = 10.0
# Waits shorter than this are rounding, not waits (a clock that only moves by sleeps would
# otherwise never get past a float's last digit).
EPSILON = 1e-9


@dataclass(slots=True)
class _Take:
    cost: float
    took: float
    answered: float = math.inf  # while the request is on its way, it holds its place

    def leaves(self, span: float, quickest: float) -> float:
        return max(self.took, self.answered - quickest) + span


class TokenBucket:
    """At most ``rate * window`` takes (costs) in any ``window`` seconds, paced.

    Takes are paced by a bucket of ``burst`` tokens refilled at ``PACE * rate``: ``burst`` may go
    back to back, the rest follow at most ``PACE`` times the rate. Every take is logged, and a take
    waits until the takes of the last ``window * (1 + MARGIN)`` seconds leave room for its cost;
    a take made with :meth:`sending` counts from its answer, less the quickest round trip of the
    last ``LATELY`` seconds. A cost above ``burst`` waits for a full bucket, and a cost above
    ``rate * window`` (a long SMS on a low limit) goes alone into an empty window: late, but sent.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst <= 0 or window <= 0:
            raise ValueError("rate, burst and window must be positive")
        self.rate = rate
        self.capacity = burst
        self.tokens = burst
        self.window = window
        self.limit = rate * window
        self.span = window * (1 + MARGIN)
        self.clock = clock
        self.updated = clock()
        self._taken: deque[_Take] = deque()  # in the window or on their way, in take order
        self._in_window = 0.0  # their costs
        # (answered, round trip) of the answers of the last LATELY seconds that a quicker one
        # answered later has not outdone: the first is the quickest.
        self._trips: deque[tuple[float, float]] = deque()
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate * PACE)
        self.updated = now

    def _quickest(self, now: float) -> float:
        while self._trips and self._trips[0][0] < now - LATELY:
            self._trips.popleft()
        return self._trips[0][1] if self._trips else 0.0

    def _window_wait(self, now: float, cost: float) -> float:
        """Seconds until a take of ``cost`` fits into the window ending then (0: it fits now;
        infinite: not before a request on its way has been answered)."""
        quickest = self._quickest(now)
        taken = self._taken
        # Takes are kept in the order they were made; one answered late may hold later ones
        # that have left behind it, which only counts them longer. That is good enough while
        # the window has room, and is put right below when it seems to have none.
        while taken and taken[0].leaves(self.span, quickest) <= now + EPSILON:
            self._in_window -= taken.popleft().cost
        if not taken:
            self._in_window = 0.0  # no rounding carried over
            return 0.0
        if self._in_window + cost <= self.limit:
            return 0.0
        leaving = [(take.leaves(self.span, quickest), take) for take in taken]
        self._taken = deque(take for leaves, take in leaving if leaves > now + EPSILON)
        left = self._in_window = math.fsum(take.cost for take in self._taken)
        if left + cost <= self.limit:
            return 0.0
        for leaves, taken_cost in sorted((lv, t.cost) for lv, t in leaving if lv > now + EPSILON):
            if leaves == math.inf:
                break
            left -= taken_cost
            if left + cost <= self.limit or left <= EPSILON:
                return leaves - now
        return math.inf

    async def _admit(self, cost: float) -> _Take:
        async with self._lock:
            while True:
                now = self.clock()
                self._refill(now)
                needed = min(cost, self.capacity)
                wait = max(
                    (needed - self.tokens) / (self.rate * PACE), self._window_wait(now, cost)
                )
                if wait <= EPSILON:
                    self.tokens -= cost
                    take = _Take(cost, took=now)
                    self._taken.append(take)
                    self._in_window += cost
                    return take
                if wait == math.inf:
                    self._answered.clear()
                    await self._answered.wait()
                else:
                    await asyncio.sleep(wait)

    async def take(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` fits, then take it: counted from now."""
        take = await self._admit(cost)
        take.answered = take.took

    @asynccontextmanager
    async def sending(self, cost: float = 1.0) -> AsyncIterator[None]:
        """Wait until ``cost`` fits, then send in the block: counted from when it ends (the
        provider's answer, an error or a timeout), less the quickest round trip lately, and in
        every window until then."""
        take = await self._admit(cost)
        try:
            yield
        finally:
            now = take.answered = self.clock()
            trip = now - take.took
            while self._trips and self._trips[-1][1] >= trip:
                self._trips.pop()
            self._trips.append((now, trip))
            self._answered.set()


class PerKey:
    """One limiter per key (a Telegram chat), created on first use, forgotten when idle."""

    def __init__(self, rate: float, *, burst: float = 1.0) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, TokenBucket] = {}

    async def take(self, key: object, cost: float = 1.0) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            bucket = self._buckets[key] = TokenBucket(self.rate, burst=self.burst)
        await bucket.take(cost)
