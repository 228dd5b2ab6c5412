"""The API circuit breaker: stop hammering a venue that keeps failing, probe it once in a while.

CLOSED counts consecutive venue failures; at `failure_threshold` it goes OPEN and every call fails fast with
`CircuitOpen` (nothing is sent) for `open_seconds` by the injected clock. The first call after that becomes
the single HALF_OPEN probe; concurrent callers keep failing fast until the probe reports. A successful probe
closes the breaker, a failed one re-opens it for another `open_seconds`.

Only *venue failures* count: the venue did not answer usefully (network, timeout, 5xx, garbage, rate limit).
A rejection, an auth error or "order not found" is a coherent answer, so it counts as a success: the venue is
up, our request was simply refused. Exceptions that are not venue errors (our own bugs) count as neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from exchange.errors import CircuitOpen, MalformedResponse, VenueError, VenueUnavailable
from lifecycle.clock import Clock
from lifecycle.events import Ev, emit

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def is_venue_failure(error: BaseException) -> bool:
    """Whether an error says the venue is unhealthy (counts toward opening the breaker)."""
    if isinstance(error, CircuitOpen):
        return False  # our own fail-fast, not evidence about the venue
    return isinstance(error, VenueUnavailable | MalformedResponse)


class CircuitBreaker:
    def __init__(
        self,
        clock: Clock,
        *,
        failure_threshold: int = 5,
        open_seconds: float = 60.0,
        name: str = "venue",
        logger: logging.Logger | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if open_seconds <= 0:
            raise ValueError(f"open_seconds must be positive, got {open_seconds}")
        self._clock = clock
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._name = name
        self._logger = logger
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = clock.now()
        self._first_opened_at = clock.now()
        self._probe_in_flight = False
        self._probes = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def before_call(self) -> None:
        """Admit a call or raise `CircuitOpen`. Every admitted call must end in exactly one `record_*`."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return
            now = self._clock.now()
            elapsed = (now - self._opened_at).total_seconds()
            if self._state is BreakerState.OPEN and elapsed >= self._open_seconds:
                self._state = BreakerState.HALF_OPEN
                self._probe_in_flight = False
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                self._probes += 1
                emit(Ev.API_CIRCUIT_BREAKER_HALF_OPEN, self._logger, probe=self._probes)
                return
            remaining = max(0.0, self._open_seconds - elapsed)
            raise CircuitOpen(
                f"API circuit breaker for {self._name} is {self._state.value}: the call was NOT sent. "
                f"It opened after {self._threshold} consecutive venue failures; the next probe goes through "
                f"in {remaining:.0f} s. Check venue status and connectivity if this persists."
            )

    def record_success(self) -> None:
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                after = (self._clock.now() - self._first_opened_at).total_seconds()
                self._state = BreakerState.CLOSED
                self._probe_in_flight = False
                self._probes = 0
                emit(Ev.API_CIRCUIT_BREAKER_CLOSED, self._logger, after_seconds=round(after, 3))
            self._failures = 0

    def record_failure(self, error: BaseException | str) -> None:
        with self._lock:
            self._failures += 1
            last = error if isinstance(error, str) else type(error).__name__
            if self._state is BreakerState.HALF_OPEN:
                self._open(last)
            elif self._state is BreakerState.CLOSED and self._failures >= self._threshold:
                self._first_opened_at = self._clock.now()
                self._open(last)

    def record_neutral(self) -> None:
        """The call ended in a way that says nothing about the venue (a bug on our side): free the probe slot."""
        with self._lock:
            self._probe_in_flight = False

    def record(self, error: BaseException | None) -> None:
        """Classify how an admitted call ended."""
        if error is None:
            self.record_success()
        elif is_venue_failure(error):
            self.record_failure(error)
        elif isinstance(error, VenueError):
            self.record_success()
        else:
            self.record_neutral()

    def call(self, fn: Callable[[], T]) -> T:
        self.before_call()
        try:
            result = fn()
        except BaseException as exc:
            self.record(exc)
            raise
        self.record_success()
        return result

    def _open(self, last_error: str) -> None:
        # caller holds the lock
        self._state = BreakerState.OPEN
        self._opened_at = self._clock.now()
        self._probe_in_flight = False
        emit(
            Ev.API_CIRCUIT_BREAKER_OPENED,
            self._logger,
            failures=self._failures,
            open_seconds=self._open_seconds,
            last_error=last_error,
        )
