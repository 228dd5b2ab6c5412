"""Accelerated simulated time for paper mode: a thread that moves the simulator forward `speed` times faster
than the wall clock, so a newcomer sees entries, stops and exits within a minute instead of an hour."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ClockPacer:
    def __init__(self, advance: Callable[[float], object], *, speed: float, step_s: float = 0.1) -> None:
        """`advance(seconds)` moves simulated time (the simulator's `advance`, which also walks prices)."""
        if speed <= 0:
            raise ValueError(f"paper speed must be positive, got {speed}")
        self._advance = advance
        self._speed = speed
        self._step_s = step_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paper-clock", daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self._step_s):
            now = time.monotonic()
            # Whole simulated seconds only: the simulator steps in 1 s increments and Decimal(str(float)) noise
            # would otherwise accumulate into fractional steps.
            seconds = int((now - last) * self._speed)
            if seconds >= 1:
                self._advance(float(seconds))
                last += seconds / self._speed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
