"""One background thread per process that processes inbound events and sends the outbox as soon
as a webhook stores something, instead of waiting for the worker's next sweep.

A webhook only ``kick()``s it (setting an event costs nothing), so the provider gets its answer
at once; several kicks while it runs fold into one more round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class Pump:
    def __init__(self, steps: Sequence[Callable[[], int]], *, idle_seconds: float = 30.0) -> None:
        self.steps = list(steps)
        self.idle_seconds = idle_seconds
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def kick(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stopped.is_set():
                    self._thread = threading.Thread(
                        target=self._loop, name="stifinder-pump", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.idle_seconds)
            self._wake.clear()
            if self._stopped.is_set():
                return
            self.run_once()

    def run_once(self) -> int:
        """Run the steps until none of them finds more work; returns how much was done."""
        total = 0
        while not self._stopped.is_set():
            done = 0
            for step in self.steps:
                try:
                    done += step()
                except Exception:
                    # The rows are still there: the next kick or sweep tries again.
                    log.exception("pump step failed")
            total += done
            if done == 0:
                return total
        return total

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
