"""CcxtVenue under injected faults: real ccxt over HTTP to the simulator, ground truth from sim.order_log."""

from __future__ import annotations

import base64
import json
import logging
from decimal import Decimal

import pytest

from bench.bench_venue import snapshot_calls
from exchange.breaker import BreakerState, CircuitBreaker
from exchange.ccxt_venue import CcxtVenue
from exchange.errors import (
    AuthenticationFailed,
    CircuitOpen,
    MalformedResponse,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from lifecycle.clock import FakeClock
from lifecycle.events import EVENT_LOGGER
from lifecycle.values import OrderOutcome, OrderRequest, OrderType, Side
from simulator.engine import Simulator
from simulator.faults import FaultKind
from simulator.server import SimulatorServer
from tests.exchange.conftest import API_KEY, API_SECRET, make_ccxt_venue

XBT = "PF_XBTUSD"


def _state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # a call, so mypy does not narrow the property between assertions


def market(cid: str) -> OrderRequest:
    return OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), cid)


def sends(sim: Simulator) -> int:
    return sum(1 for r in sim.request_log if r.path.endswith("/sendorder"))


def orders_for(sim: Simulator, cid: str) -> int:
    return sum(1 for o in sim.order_log if o.cli_ord_id == cid)


def test_max_retries_on_failure_is_pinned_to_zero_and_stays_zero(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    assert ccxt_venue.max_retries_on_failure == 0
    sim.faults.add(FaultKind.HTTP_503, "accounts", count=1)
    with pytest.raises(VenueUnavailable):
        ccxt_venue.margin()
    assert sum(1 for r in sim.request_log if r.path.endswith("/accounts")) == 1  # ccxt did not retry
    ccxt_venue.place_order(market("cid-r"))
    assert ccxt_venue.max_retries_on_failure == 0


def test_timeout_after_acceptance_resolves_to_accepted_with_one_order(
    server: SimulatorServer, sim: Simulator, clock: FakeClock
) -> None:
    venue = make_ccxt_venue(server, clock, timeout_seconds=0.3)
    venue.instruments()
    sim.faults.add(FaultKind.TIMEOUT_AFTER_ACCEPT, "sendorder", count=1, delay=1.0)
    result = venue.place_order(market("cid-late"))
    assert result.outcome is OrderOutcome.ACCEPTED
    assert result.order is not None and result.order.client_order_id == "cid-late"
    assert orders_for(sim, "cid-late") == 1
    assert sends(sim) == 1


def test_500_before_execution_is_unknown_and_the_retry_with_the_same_id_places_once(
    ccxt_venue: CcxtVenue, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.faults.add(FaultKind.HTTP_500, "sendorder", count=1)
    first = ccxt_venue.place_order(market("cid-500"))
    assert first.outcome is OrderOutcome.UNKNOWN
    # The reason carries what the caller's one ORDER_OUTCOME_UNKNOWN line needs: the failure and where we looked.
    assert first.reason is not None and "no evidence in open orders, order and trigger history" in first.reason
    assert "latest 100 fills" in first.reason
    assert not [r for r in caplog.records if r.name == EVENT_LOGGER]  # the adapter leaves the event to its caller
    assert any("ambiguous send" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert orders_for(sim, "cid-500") == 0 and sends(sim) == 1  # never re-sent on its own
    again = ccxt_venue.place_order(market("cid-500"))  # the caller's later retry, same client order id
    assert again.outcome is OrderOutcome.ACCEPTED
    assert orders_for(sim, "cid-500") == 1


def test_500_after_execution_is_resolved_by_evidence_without_a_duplicate(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    sim.faults.add(FaultKind.HTTP_500, "sendorder", count=1, execute=True)
    sim.advance(0)
    result = ccxt_venue.place_order(market("cid-500x"))
    assert result.outcome is OrderOutcome.ACCEPTED
    assert result.reason == "resolved by evidence"
    assert orders_for(sim, "cid-500x") == 1 and sends(sim) == 1


def test_an_evidence_lookup_that_fails_too_stays_unknown_and_says_so(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    ccxt_venue.instruments()
    sim.faults.add(FaultKind.HTTP_500, "sendorder", count=1)
    sim.faults.add(FaultKind.HTTP_503, "openorders", count=1)  # the first evidence source is down as well
    result = ccxt_venue.place_order(market("cid-blind"))
    assert result.outcome is OrderOutcome.UNKNOWN
    assert result.reason is not None and "the evidence lookup failed (VenueUnavailable" in result.reason
    assert orders_for(sim, "cid-blind") == 0 and sends(sim) == 1


def test_garbage_after_execution_on_sendorder_is_resolved_by_evidence(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    sim.faults.add(FaultKind.GARBAGE_BODY, "sendorder", count=1)
    result = ccxt_venue.place_order(market("cid-garbage"))
    assert result.outcome is OrderOutcome.ACCEPTED
    assert orders_for(sim, "cid-garbage") == 1 and sends(sim) == 1


@pytest.mark.parametrize("kind", [FaultKind.GARBAGE_BODY, FaultKind.EMPTY_BODY])
def test_garbage_on_a_read_is_malformed_never_empty(ccxt_venue: CcxtVenue, sim: Simulator, kind: FaultKind) -> None:
    sim.faults.add(kind, "openorders", count=1)
    with pytest.raises(MalformedResponse):
        ccxt_venue.open_orders()


@pytest.mark.parametrize("kind", [FaultKind.RATE_LIMIT_429, FaultKind.API_LIMIT_EXCEEDED])
def test_rate_limits(ccxt_venue: CcxtVenue, sim: Simulator, kind: FaultKind) -> None:
    sim.faults.add(kind, "openpositions", count=1)
    with pytest.raises(RateLimited):
        ccxt_venue.positions()
    ccxt_venue.instruments()
    sim.faults.add(kind, "sendorder", count=1)
    with pytest.raises(RateLimited):
        ccxt_venue.place_order(market("cid-429"))
    assert orders_for(sim, "cid-429") == 0


@pytest.mark.parametrize("status", ["wouldCauseLiquidation", "marketSuspended", "insufficientAvailableFunds"])
def test_venue_refusals_are_rejected_with_the_raw_reason(ccxt_venue: CcxtVenue, sim: Simulator, status: str) -> None:
    sim.faults.add(FaultKind.REJECT, "sendorder", count=1, status=status)
    result = ccxt_venue.place_order(market("cid-rej"))
    assert result.outcome is OrderOutcome.REJECTED
    assert result.reason == status
    assert orders_for(sim, "cid-rej") == 0
    assert ccxt_venue.breaker.consecutive_failures == 0  # a refusal is a healthy venue


def test_wrong_secret_is_authentication_failed_not_retried_and_secret_free(
    server: SimulatorServer, sim: Simulator, clock: FakeClock
) -> None:
    wrong = base64.b64encode(b"another-secret-entirely-" * 2).decode()
    venue = make_ccxt_venue(server, clock, secret=wrong)
    before = len(sim.request_log)
    with pytest.raises(AuthenticationFailed) as info:
        venue.margin()
    assert len(sim.request_log) - before == 1
    assert _state(venue.breaker) is BreakerState.CLOSED
    for text in (str(info.value), repr(info.value)):
        assert wrong not in text and API_KEY not in text and API_SECRET not in text


def test_not_base64_secret_is_refused_at_construction_without_echoing_it(
    server: SimulatorServer, clock: FakeClock
) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        make_ccxt_venue(server, clock, secret="not-base64!!secret-value")
    assert "not-base64!!secret-value" not in str(info.value)


def test_secrets_never_appear_in_translated_messages(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    sim.faults.add(FaultKind.HTTP_500, "openpositions", count=1)
    sim.faults.add(FaultKind.HTTP_502, "accounts", count=1)
    errors: list[VenueError] = []
    for call in (ccxt_venue.positions, ccxt_venue.margin):
        with pytest.raises(VenueError) as info:
            call()
        errors.append(info.value)
    for error in errors:
        assert API_KEY not in str(error) and API_SECRET not in str(error)
        assert error.__cause__ is None


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(API_KEY, id="key"),
        pytest.param(API_SECRET, id="secret"),
        pytest.param(base64.b64encode(API_KEY.encode()).decode(), id="key-base64"),
        pytest.param(json.dumps(API_KEY)[1:-1], id="key-json-escaped"),
    ],
)
def test_a_rejection_reason_echoing_a_credential_leaves_the_adapter_redacted(
    ccxt_venue: CcxtVenue, sim: Simulator, echo: str
) -> None:
    """The rejection reason is venue text that is logged and stored with the order: it is redacted at the edge."""
    sim.faults.add(FaultKind.REJECT, "sendorder", count=1, status=f"invalidKey:{echo}")
    result = ccxt_venue.place_order(market("cid-echo"))
    assert result.outcome is OrderOutcome.REJECTED
    assert result.reason == "invalidKey:***"


def test_breaker_opens_fails_fast_probes_and_closes(
    server: SimulatorServer, sim: Simulator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENT_LOGGER)
    breaker = CircuitBreaker(clock, failure_threshold=3, open_seconds=60)
    venue = make_ccxt_venue(server, clock, breaker=breaker)
    sim.faults.add(FaultKind.HTTP_503, "accounts", count=4)
    for _ in range(3):
        with pytest.raises(VenueUnavailable):
            venue.margin()
    assert _state(breaker) is BreakerState.OPEN
    assert any("API circuit breaker OPENED" in r.getMessage() for r in caplog.records)
    sent = len(sim.request_log)
    with pytest.raises(CircuitOpen):
        venue.margin()
    with pytest.raises(CircuitOpen):
        venue.place_order(market("cid-open-breaker"))
    assert len(sim.request_log) == sent  # nothing reached the venue
    clock.advance(60)
    with pytest.raises(VenueUnavailable):
        venue.margin()  # the one probe hits the 4th injected 503
    assert _state(breaker) is BreakerState.OPEN
    clock.advance(60)
    assert venue.margin().portfolio_value > 0  # probe succeeds
    assert _state(breaker) is BreakerState.CLOSED
    assert any("API circuit breaker CLOSED" in r.getMessage() for r in caplog.records)
    assert orders_for(sim, "cid-open-breaker") == 0


def test_snapshot_rest_calls_do_not_grow_with_positions() -> None:
    rows = snapshot_calls((1, 10, 100))
    assert [positions for positions, _, _ in rows] == [1, 10, 100]
    assert [calls for _, calls, _ in rows] == [4, 4, 4]  # openpositions, openorders, fills, accounts


def test_symbols_spelled_in_lower_case_still_map_to_canonical_keys(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    ccxt_venue.place_order(market("cid-lc"))
    sim.faults.add(FaultKind.LOWERCASE_SYMBOL, None, count=10)
    positions = ccxt_venue.positions()
    fills = ccxt_venue.fills_since(None)
    assert sim.faults.fired  # the venue really answered in the other spelling
    assert [p.symbol for p in positions] == [XBT]
    assert {f.symbol for f in fills} == {XBT}


@pytest.mark.parametrize("kind", [FaultKind.DUPLICATE_FILLS, FaultKind.REORDER_FILLS])
def test_duplicated_or_reordered_fill_delivery_yields_each_fill_once_in_time_order(
    ccxt_venue: CcxtVenue, sim: Simulator, clock: FakeClock, kind: FaultKind
) -> None:
    for i in range(6):
        ccxt_venue.place_order(market(f"cid-f{i}"))
        clock.advance(1)
    clean = ccxt_venue.fills_since(None)
    sim.faults.add(kind, "fills", count=5)
    faulty = ccxt_venue.fills_since(None)
    assert sim.faults.fired
    assert [f.fill_id for f in faulty] == [f.fill_id for f in clean]  # no duplicate, no reordering leaks through
    assert [f.time for f in faulty] == sorted(f.time for f in faulty)


def test_a_stale_snapshot_shows_the_older_state_and_is_not_mistaken_for_an_error(
    ccxt_venue: CcxtVenue, sim: Simulator, clock: FakeClock
) -> None:
    clock.advance(60)
    ccxt_venue.place_order(market("cid-stale"))  # a position opened just now
    sim.faults.add(FaultKind.STALE_SNAPSHOT, "openpositions", count=1, lag_seconds=30)
    stale = ccxt_venue.positions()  # served as the venue was 30 s ago: flat
    assert sim.faults.fired
    assert stale == []
    assert [p.symbol for p in ccxt_venue.positions()] == [XBT]  # the lag passes; reconciliation needs 2 sightings
