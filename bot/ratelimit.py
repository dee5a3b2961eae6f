"""Rate limits for the providers, on the dispatcher's event loop.

Telegram allows about 30 messages a second per bot and one a second per chat; Twilio queues what
a sender gets beyond its throughput (counted in segments) and drops it after the validity period.
Limits hold per process: several worker processes each take their configured share.

A provider counts what arrives in a second, wherever that second starts. A plain token bucket
does not keep to that: one that starts full with a capacity of ``rate`` lets ``rate`` go at once
and refills meanwhile, so its first second (and the first second after every pause) carries up
to twice the rate. :class:`TokenBucket` therefore remembers what it let through and never lets
more than ``rate * window`` into any window; and it paces what a window allows instead of
letting it all go at once, because a burst handed to a thread pool reaches the provider spread
out by however long the pool takes, which a window counted at hand-over cannot see.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# What a pause saved (a window with room) goes out at up to this multiple of the rate, paced.
PACE = 2.0
# The window is this much longer than the provider's, as a share of it: a request that reaches
# the provider up to 30 ms later than the one handed over a window after it still falls outside
# the provider's one-second window (jitter of 20-30 ms was seen on a busy 2-core machine, see
# bench/RESULTS.md); the cost is 3% of the rate.
MARGIN = 0.03
# Waits shorter than this are rounding, not waits (a clock that only moves by sleeps would
# otherwise never get past a float's last digit).
EPSILON = 1e-9


class TokenBucket:
    """At most ``rate * window`` takes (costs) in any ``window`` seconds, paced.

    Takes are paced by a bucket of ``burst`` tokens refilled at ``PACE * rate``: ``burst`` may go
    back to back, the rest follow at most ``PACE`` times the rate. Every take is logged, and a take
    waits until the takes of the last ``window * (1 + MARGIN)`` seconds leave room for its cost.
    A cost above ``burst`` waits for a full bucket, and a cost above ``rate * window`` (a long
    SMS on a low limit) goes alone into an empty window: late, but sent.
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
        self._taken: deque[tuple[float, float]] = deque()  # (leaves the window, cost), in order
        self._in_window = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate * PACE)
        self.updated = now

    def _window_wait(self, now: float, cost: float) -> float:
        """Seconds until a take of ``cost`` fits into the window ending then (0: it fits now)."""
        while self._taken and self._taken[0][0] <= now + EPSILON:
            self._in_window -= self._taken.popleft()[1]
        if not self._taken:
            self._in_window = 0.0  # no rounding carried over
            return 0.0
        if self._in_window + cost <= self.limit:
            return 0.0
        left = self._in_window
        for leaves, taken in self._taken:
            left -= taken
            if left + cost <= self.limit or left <= 0:
                return leaves - now
        return 0.0  # not reached: the last take leaves the window empty

    async def take(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` fits, then take it."""
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
                    self._taken.append((now + self.span, cost))
                    self._in_window += cost
                    return
                await asyncio.sleep(wait)


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
