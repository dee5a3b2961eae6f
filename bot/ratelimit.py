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
built it, found a connection and written it, on a machine that may be busy. Those delays differ
from request to request, so a window counted from hand-over can still put one request too many
into the provider's second (one that was slow to leave, and the one a window later that was
quick). A request sent with :meth:`TokenBucket.sending` therefore stays in the window until the
provider has answered it and a whole window after that. The provider received it before it
answered, and the request that takes its place is made after that, so the two always lie more
than a window apart at the provider, however long either took to get there.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

# What a pause saved (a window with room) goes out at up to this multiple of the rate, paced.
PACE = 2.0
# The window is this much longer than the provider's, as a share of it: room for a provider that
# notes a request's arrival a little after its answer has left, or for a clock that steps. Sends
# are counted from the answer (see the module's docstring), so delays on the way there need no
# room here; the cost is 1% of the rate.
MARGIN = 0.01
# Waits shorter than this are rounding, not waits (a clock that only moves by sleeps would
# otherwise never get past a float's last digit).
EPSILON = 1e-9


@dataclass(slots=True)
class _Take:
    cost: float
    leaves: float = math.inf  # while the request is on its way: it holds its place


class TokenBucket:
    """At most ``rate * window`` takes (costs) in any ``window`` seconds, paced.

    Takes are paced by a bucket of ``burst`` tokens refilled at ``PACE * rate``: ``burst`` may go
    back to back, the rest follow at most ``PACE`` times the rate. Every take is logged, and a take
    waits until the takes of the last ``window * (1 + MARGIN)`` seconds leave room for its cost;
    a take made with :meth:`sending` counts from when its request was answered instead. A cost
    above ``burst`` waits for a full bucket, and a cost above ``rate * window`` (a long SMS on a
    low limit) goes alone into an empty window: late, but sent.
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
        self._taken: list[_Take] = []  # in the window, or still on their way
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate * PACE)
        self.updated = now

    def _window_wait(self, now: float, cost: float) -> float:
        """Seconds until a take of ``cost`` fits into the window ending then (0: it fits now;
        infinite: not before a request on its way has been answered)."""
        self._taken = [take for take in self._taken if take.leaves > now + EPSILON]
        if not self._taken:
            return 0.0
        left = math.fsum(take.cost for take in self._taken)
        if left + cost <= self.limit:
            return 0.0
        for leaves, taken in sorted((t.leaves, t.cost) for t in self._taken if t.leaves < math.inf):
            left -= taken
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
                    take = _Take(cost)
                    self._taken.append(take)
                    return take
                if wait == math.inf:
                    self._answered.clear()
                    await self._answered.wait()
                else:
                    await asyncio.sleep(wait)

    def _answer(self, take: _Take) -> None:
        take.leaves = self.clock() + self.span
        self._answered.set()

    async def take(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` fits, then take it: counted from now."""
        self._answer(await self._admit(cost))

    @asynccontextmanager
    async def sending(self, cost: float = 1.0) -> AsyncIterator[None]:
        """Wait until ``cost`` fits, then send in the block: counted from when it ends (the
        provider's answer, an error or a timeout), and in every window until then."""
        take = await self._admit(cost)
        try:
            yield
        finally:
            self._answer(take)


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
