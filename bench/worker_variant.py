"""``stifinder worker`` with a benchmark-only change, for comparisons within one run.

    python -m bench.worker_variant --bucket-only   # the dispatcher's limit as a token bucket alone
    python -m bench.worker_variant --hand-over     # the window counted from hand-over, not answer
    python -m bench.worker_variant --follow-ups    # meeting reminders run even if the runtime
                                                   # does not register them yet

``--bucket-only`` gives the dispatcher the token bucket that ``bot/ratelimit.py`` had before the
window was added (capacity ``rate``, starting full, refilled at ``rate``), copied here.
``--hand-over`` counts each send in the window from when the limiter let it go, with the 3%
margin that had, as ``bot/ratelimit.py`` did before it counted from the provider's answer.
Everything else is the real command (``bot.cli``), settings from ``STIFINDER_*`` variables.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bot import outbox, ratelimit
from bot.runtime import Runtime
from bot.worker import Handler


class BucketOnly:
    """``bot.ratelimit.TokenBucket`` as it was at commit 2a96db5: a token bucket alone."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
        async with self._lock:
            while True:
                self._refill()
                needed = min(cost, self.capacity)
                if self.tokens >= needed:
                    self.tokens -= cost
                    return
                await asyncio.sleep((needed - self.tokens) / self.rate)

    @asynccontextmanager
    async def sending(self, cost: float = 1.0) -> AsyncIterator[None]:
        await self.take(cost)
        yield


def bucket_only() -> None:
    """The dispatcher's per-channel limit becomes the old bucket (capacity = rate, full)."""
    outbox.TokenBucket = BucketOnly  # type: ignore[attr-defined,assignment]


def hand_over() -> None:
    """The window counts a send from when the limiter let it go (margin 3%), not its answer."""
    ratelimit.MARGIN = 0.03

    @asynccontextmanager
    async def sending(self: ratelimit.TokenBucket, cost: float = 1.0) -> AsyncIterator[None]:
        await self.take(cost)
        yield

    ratelimit.TokenBucket.sending = sending  # type: ignore[method-assign]


def with_follow_ups() -> None:
    """Register the follow-up kinds that ``Runtime.handlers`` does not register (yet)."""
    from bot.followups import FollowUps

    original = Runtime.handlers

    def handlers(self: Runtime) -> dict[str, Handler]:
        found = original(self)
        for kind, handler in FollowUps(self.conversations).handlers().items():
            found.setdefault(kind, handler)
        return found

    Runtime.handlers = handlers  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bucket-only", action="store_true")
    parser.add_argument("--hand-over", action="store_true")
    parser.add_argument("--follow-ups", action="store_true")
    args = parser.parse_args(argv)
    if args.bucket_only:
        bucket_only()
    if args.hand_over:
        hand_over()
    if args.follow_ups:
        with_follow_ups()
    from bot.cli import main as stifinder

    sys.argv = ["stifinder", "worker"]
    stifinder()


if __name__ == "__main__":
    main()
