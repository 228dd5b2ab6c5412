"""The API circuit breaker, driven by a FakeClock: closed -> open -> half-open (one probe) -> closed/open."""

from __future__ import annotations

import logging
import threading

import pytest

from exchange.breaker import BreakerState, CircuitBreaker
from exchange.errors import (
    CircuitOpen,
    MalformedResponse,
    OrderRejected,
    RateLimited,
    VenueUnavailable,
)
from lifecycle.clock import FakeClock
from lifecycle.events import EVENT_LOGGER


def _state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # a call, so mypy does not narrow the property between assertions


def _fail(breaker: CircuitBreaker, error: Exception) -> None:
    def boom() -> None:
        raise error

    with pytest.raises(type(error)):
        breaker.call(boom)


def test_opens_after_threshold_consecutive_failures_and_fails_fast(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, failure_threshold=3, open_seconds=60)
    calls: list[int] = []
    caplog.set_level(logging.INFO, logger=EVENT_LOGGER)
    for _ in range(2):
        _fail(breaker, VenueUnavailable("down"))
    assert _state(breaker) is BreakerState.CLOSED
    _fail(breaker, VenueUnavailable("down"))
    assert _state(breaker) is BreakerState.OPEN
    assert sum("API circuit breaker OPENED" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(CircuitOpen, match="NOT sent"):
        breaker.call(lambda: calls.append(1))
    assert calls == []  # fail fast: the function never ran


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker(FakeClock(), failure_threshold=3)
    _fail(breaker, VenueUnavailable("x"))
    _fail(breaker, VenueUnavailable("x"))
    assert breaker.call(lambda: 7) == 7
    _fail(breaker, VenueUnavailable("x"))
    _fail(breaker, VenueUnavailable("x"))
    assert _state(breaker) is BreakerState.CLOSED


# Auth errors used to be here; since issue 9 they count as failures (tests/failfast/test_auth.py).
@pytest.mark.parametrize("error", [OrderRejected("no", venue_status="insufficientAvailableFunds")])
def test_rejections_are_not_venue_failures(error: Exception) -> None:
    breaker = CircuitBreaker(FakeClock(), failure_threshold=2)
    for _ in range(5):
        _fail(breaker, error)
    assert _state(breaker) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


@pytest.mark.parametrize("error", [RateLimited("429"), MalformedResponse("garbage"), VenueUnavailable("503")])
def test_unavailability_rate_limits_and_garbage_count(error: Exception) -> None:
    breaker = CircuitBreaker(FakeClock(), failure_threshold=2)
    _fail(breaker, error)
    _fail(breaker, error)
    assert _state(breaker) is BreakerState.OPEN


def test_half_open_lets_exactly_one_probe_through_then_closes_on_success(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, failure_threshold=1, open_seconds=60)
    caplog.set_level(logging.INFO, logger=EVENT_LOGGER)
    _fail(breaker, VenueUnavailable("down"))
    clock.advance(59.9)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(0.1)
    breaker.before_call()  # the probe is admitted ...
    assert _state(breaker) is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # ... and nobody else while it is in flight
    breaker.record_success()
    assert _state(breaker) is BreakerState.CLOSED
    assert sum("API circuit breaker CLOSED" in r.getMessage() for r in caplog.records) == 1
    assert breaker.call(lambda: "ok") == "ok"


def test_failed_probe_reopens_for_a_full_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, failure_threshold=2, open_seconds=60)
    _fail(breaker, VenueUnavailable("down"))
    _fail(breaker, VenueUnavailable("down"))
    clock.advance(60)
    _fail(breaker, VenueUnavailable("still down"))  # the probe fails
    assert _state(breaker) is BreakerState.OPEN
    clock.advance(30)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(30)
    assert breaker.call(lambda: 1) == 1
    assert _state(breaker) is BreakerState.CLOSED


def test_a_bug_in_the_probe_frees_the_slot_without_deciding() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, failure_threshold=1, open_seconds=10)
    _fail(breaker, VenueUnavailable("down"))
    clock.advance(10)
    _fail(breaker, KeyError("our bug"))
    assert _state(breaker) is BreakerState.HALF_OPEN
    assert breaker.call(lambda: 2) == 2  # the next caller becomes the probe
    assert _state(breaker) is BreakerState.CLOSED


def test_concurrent_callers_get_one_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock, failure_threshold=1, open_seconds=1)
    _fail(breaker, VenueUnavailable("down"))
    clock.advance(1)
    admitted: list[int] = []
    refused: list[int] = []
    barrier = threading.Barrier(16)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            breaker.before_call()
            admitted.append(i)
        except CircuitOpen:
            refused.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 1
    assert len(refused) == 15


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(FakeClock(), failure_threshold=0)
    with pytest.raises(ValueError, match="open_seconds"):
        CircuitBreaker(FakeClock(), open_seconds=0)
