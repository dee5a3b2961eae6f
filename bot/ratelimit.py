"""Token buckets for the providers' rate limits, on the dispatcher's event loop.

Telegram allows about 30 messages a second per bot and one a second per chat; Twilio queues what
a sender gets beyond its throughput (counted in segments) and drops it after the validity period.
Limits hold per process: several worker processes each take their configured share.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` tokens are free, then take them (a cost above capacity waits
        until the bucket is full, so a long SMS is still sent, just later)."""
        async with self._lock:
            while True:
                self._refill()
                needed = min(cost, self.capacity)
                if self.tokens >= needed:
                    self.tokens -= cost
                    return
                await asyncio.sleep((needed - self.tokens) / self.rate)


class PerKey:
    """One bucket per key (a Telegram chat), created on first use, forgotten when idle."""

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
