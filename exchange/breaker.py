"""The API circuit breaker: stop hammering a venue that keeps failing, probe it once in a while.

CLOSED counts consecutive venue failures; at `failure_threshold` it goes OPEN and every call fails fast with
`CircuitOpen` (nothing is sent) for `open_seconds` by the injected clock. The first call after that becomes
the single HALF_OPEN probe; concurrent callers keep failing fast until the probe reports. A successful probe
closes the breaker, a failed one re-opens it for another `open_seconds`.

Only *venue failures* count: the venue did not answer usefully (network, timeout, 5xx, garbage, rate limit).
A rejection or "order not found" is a coherent answer, so it counts as a success: the venue is up, our request
was simply refused. Exceptions that are not venue errors (our own bugs) count as neither.

Authentication failures are different (issue 9): the venue is up, but every private call we send with a wrong,
revoked or under-scoped key counts against the key (Kraken locks keys that keep failing), so they are failures,
never successes. `auth_threshold` consecutive ones lock PRIVATE calls (`before_call(private=True)`, the default):
they fail fast with `AuthLocked` (nothing sent) while public calls (instruments, tickers, candles) go on. After
`open_seconds` one private call is let through as the probe; its success unlocks, its failure locks again.
`auth_locked` and `auth_detail` tell the daemon to halt entries (KILL_SWITCH_ACTIVATED reason=auth_failed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from exchange.errors import AuthenticationFailed, CircuitOpen, MalformedResponse, VenueError, VenueUnavailable
from lifecycle.clock import Clock
from lifecycle.events import Ev, emit

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class AuthLocked(CircuitOpen):
    """Private calls are locked after repeated authentication failures: the call was not sent."""


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
        auth_threshold: int = 3,
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
        if auth_threshold < 1:
            raise ValueError(f"auth_threshold must be at least 1, got {auth_threshold}")
        self._auth_threshold = auth_threshold
        self._auth_failures = 0
        self._auth_locked = False
        self._auth_locked_at = clock.now()
        self._auth_probe_in_flight = False
        self._auth_detail = ""
        self._private = True  # whether the admitted call in flight is private (calls are serialised by the venue)

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    @property
    def auth_locked(self) -> bool:
        """True while private calls are locked after `auth_threshold` consecutive authentication failures."""
        with self._lock:
            return self._auth_locked

    @property
    def auth_detail(self) -> str:
        with self._lock:
            return self._auth_detail

    def _admit_private(self) -> None:
        # caller holds the lock
        elapsed = (self._clock.now() - self._auth_locked_at).total_seconds()
        if elapsed >= self._open_seconds and not self._auth_probe_in_flight:
            self._auth_probe_in_flight = True
            return
        raise AuthLocked(
            f"private calls to {self._name} are locked after {self._auth_failures} consecutive authentication"
            f" failures ({self._auth_detail}): the call was NOT sent; one probe goes through in"
            f" {max(0.0, self._open_seconds - elapsed):.0f} s. Fix venue.api_key / venue.api_secret"
        )

    def before_call(self, private: bool = True) -> None:
        """Admit a call or raise `CircuitOpen` (`AuthLocked` for a private call while the key is locked out).
        Every admitted call must end in exactly one `record_*`."""
        with self._lock:
            self._private = private
            if private and self._auth_locked:
                self._admit_private()
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
            if self._private:
                self._auth_failures = 0
                self._auth_probe_in_flight = False
                self._auth_locked = False
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
            self._auth_probe_in_flight = False

    def record_auth_failure(self, error: BaseException | str) -> None:
        """The venue refused our key: a failure (never a success), counted toward locking private calls."""
        self.record_failure(error)
        with self._lock:
            self._auth_failures += 1
            self._auth_detail = str(error)[:200] if isinstance(error, str) else type(error).__name__
            if self._auth_probe_in_flight or (not self._auth_locked and self._auth_failures >= self._auth_threshold):
                self._auth_locked = True
                self._auth_locked_at = self._clock.now()
            self._auth_probe_in_flight = False

    def record_answer(self, error: BaseException) -> None:
        """The venue answered coherently with `error` (a rejection, not found, or an authentication failure)."""
        if isinstance(error, AuthenticationFailed):
            self.record_auth_failure(error)
        else:
            self.record_success()

    def record(self, error: BaseException | None) -> None:
        """Classify how an admitted call ended."""
        if error is None:
            self.record_success()
        elif is_venue_failure(error):
            self.record_failure(error)
        elif isinstance(error, VenueError):
            self.record_answer(error)
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
