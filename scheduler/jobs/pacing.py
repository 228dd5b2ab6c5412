"""Accelerated simulated time for paper mode: a thread that advances a FakeClock `speed` times faster than the
wall clock, so a newcomer sees entries, stops and exits within a minute instead of an hour."""

from __future__ import annotations

import threading
import time

from lifecycle.clock import FakeClock


class ClockPacer:
    def __init__(self, clock: FakeClock, *, speed: float, step_s: float = 0.05) -> None:
        if speed <= 0:
            raise ValueError(f"paper speed must be positive, got {speed}")
        self._clock = clock
        self._speed = speed
        self._step_s = step_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paper-clock", daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self._step_s):
            now = time.monotonic()
            self._clock.advance((now - last) * self._speed)
            last = now

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
