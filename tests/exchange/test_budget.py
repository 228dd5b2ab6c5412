"""The client-side rate budget (exchange/budget.py): unit rules on a fake clock, then `CcxtVenue` against the
simulator enforcing Kraken's budgets, so the venue's own refusal is what the client must never provoke."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from exchange.budget import (
    COST_FILLS_PAGED,
    COST_READ,
    Bucket,
    BudgetConfig,
    BudgetDeferred,
    ClientBudget,
    Priority,
)
from exchange.ccxt_venue import CcxtVenue
from exchange.errors import RateLimited
from lifecycle.clock import FakeClock
from lifecycle.values import OrderOutcome, OrderRequest, OrderType, Side
from simulator.engine import Simulator
from simulator.faults import FaultKind
from simulator.ratelimit import Bucket as SimBucket

XBT = "PF_XBTUSD"


def _no_wait(seconds: float) -> None:
    """Simulated time that is not advanced: a wait for a refill finds nothing more."""


def test_each_priority_leaves_its_reserve_to_the_ones_above(clock: FakeClock) -> None:
    budget = ClientBudget(clock, sleep=_no_wait)
    while budget.available(Bucket.DERIVATIVES) >= 0.3 * 500 + COST_READ:
        budget.spend(Bucket.DERIVATIVES, COST_READ, Priority.HISTORY, "history lookup")
    with pytest.raises(BudgetDeferred):
        budget.spend(Bucket.DERIVATIVES, COST_READ, Priority.HISTORY, "history lookup")
    budget.spend(Bucket.DERIVATIVES, COST_READ, Priority.READ, "snapshot read")  # reads may go on to 20 %
    while budget.available(Bucket.DERIVATIVES) >= 0.2 * 500 + COST_READ:
        budget.spend(Bucket.DERIVATIVES, COST_READ, Priority.READ, "snapshot read")
    with pytest.raises(BudgetDeferred):
        budget.spend(Bucket.DERIVATIVES, COST_READ, Priority.READ, "snapshot read")
    left = budget.available(Bucket.DERIVATIVES)
    for _ in range(int(left // 10)):
        budget.spend(Bucket.DERIVATIVES, 10, Priority.PROTECT, "stop")  # protective orders use the rest
    assert budget.available(Bucket.DERIVATIVES) < 10
    budget.spend(Bucket.DERIVATIVES, 10, Priority.PROTECT, "stop")  # and are never deferred: the venue decides
    assert budget.deferred == {Bucket.DERIVATIVES: 2, Bucket.HISTORY: 0}


def test_refill_is_continuous_and_a_short_wait_is_waited(clock: FakeClock) -> None:
    budget = ClientBudget(clock, BudgetConfig(), sleep=clock.advance)
    for _ in range(16):  # 16 x 25 = 400 = the whole bucket above the read reserve
        budget.spend(Bucket.DERIVATIVES, COST_FILLS_PAGED, Priority.READ, "fills page")
    before = clock.now()
    budget.spend(Bucket.DERIVATIVES, COST_FILLS_PAGED, Priority.READ, "fills page")  # waits 0.5 s for 25 units
    assert clock.now() - before == timedelta(seconds=0.5)
    assert budget.deferred[Bucket.DERIVATIVES] == 0


def test_the_history_bucket_defers_instead_of_waiting_minutes(clock: FakeClock) -> None:
    budget = ClientBudget(clock, sleep=clock.advance)
    for _ in range(70):
        budget.spend(Bucket.HISTORY, 1, Priority.HISTORY, "history page")
    with pytest.raises(BudgetDeferred, match="history"):
        budget.spend(Bucket.HISTORY, 1, Priority.HISTORY, "history page")  # 6 s per token: too long to wait
    clock.advance(6)
    budget.spend(Bucket.HISTORY, 1, Priority.HISTORY, "history page")


def test_a_refusal_by_the_venue_empties_the_estimate(clock: FakeClock) -> None:
    budget = ClientBudget(clock, sleep=_no_wait)
    budget.exhausted(Bucket.DERIVATIVES)
    with pytest.raises(BudgetDeferred):
        budget.spend(Bucket.DERIVATIVES, COST_READ, Priority.READ, "snapshot read")
    assert isinstance(BudgetDeferred("x"), RateLimited)  # the daemon's jobs treat it as "try next cycle"


def test_reads_defer_before_the_venue_refuses_and_a_stop_still_goes_out(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    ccxt_venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), "entry"))
    deferred = 0
    for _ in range(300):  # far more reads than 10 s of budget allow, all at one simulated instant
        try:
            ccxt_venue.positions()
        except BudgetDeferred:
            deferred += 1
    assert deferred > 0
    assert sim.budget.refused[SimBucket.DERIVATIVES] == 0  # the venue never had to say apiLimitExceeded
    stop = OrderRequest(
        XBT,
        Side.SELL,
        OrderType.STOP,
        Decimal("0.01"),
        "sl",
        trigger_price=sim.quote(XBT).mark - 1000,
        reduce_only=True,
    )
    placed = ccxt_venue.place_order(stop)
    assert placed.outcome is OrderOutcome.ACCEPTED
    assert sim.budget.refused[SimBucket.DERIVATIVES] == 0


def test_the_venues_refusal_is_typed_and_drains_the_client_estimate(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    sim.faults.add(FaultKind.API_LIMIT_EXCEEDED, "openpositions")
    with pytest.raises(RateLimited):
        ccxt_venue.positions()
    with pytest.raises(BudgetDeferred):
        ccxt_venue.margin()  # the client now waits for a refill instead of being refused again


def test_resolving_an_ambiguous_send_reads_history_from_the_send_only(
    ccxt_venue: CcxtVenue, sim: Simulator, clock: FakeClock
) -> None:
    bid = sim.quote(XBT).bid
    for i in range(600):  # 1,200 older /orders events: beyond one 1,000-event page
        old = sim.place_order(
            symbol=XBT, side="buy", order_type="lmt", size=Decimal("0.01"), limit_price=bid - 3000, cli_ord_id=f"o{i}"
        )
        assert old.order is not None
        sim.cancel_order(old.order.order_id)
    clock.advance(3600)
    sim.faults.add(FaultKind.TIMEOUT_AFTER_ACCEPT, "sendorder", delay=1.0)
    venue = ccxt_venue
    venue._ex.timeout = 300  # ms: the client gives up while the venue executes (and answers 1 s later)
    result = venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), "amb"))
    assert result.outcome is OrderOutcome.ACCEPTED, result
    pages = [r.query for r in sim.request_log if "/api/history/" in r.path]
    assert len(pages) <= 2  # one /orders page (found there, or empty) and at most one /triggers page
    assert all("since=" in q for q in pages)


def test_an_entry_the_budget_cannot_afford_is_not_sent(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    """Deferred means not sent: callers close the intent as not sent (`NOT_SENT_ERRORS`), never UNKNOWN."""
    from exchange.venue import NOT_SENT_ERRORS

    ccxt_venue.instruments()  # public, free
    ccxt_venue.budget.exhausted(Bucket.DERIVATIVES)
    before = len(sim.request_log)
    with pytest.raises(NOT_SENT_ERRORS) as caught:
        ccxt_venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), "entry-deferred"))
    assert isinstance(caught.value, BudgetDeferred)
    assert len(sim.request_log) == before and not sim.order_log


def test_the_account_log_is_charged_by_count_as_the_venue_charges_it(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    from exchange.budget import cost_account_log
    from simulator.ratelimit import account_log_cost

    assert [cost_account_log(n) for n in (1, 25, 26, 50, 51, 1000, 1001, 5000, 5001)] == [
        account_log_cost(n) for n in (1, 25, 26, 50, 51, 1000, 1001, 5000, 5001)
    ]
    before = ccxt_venue.budget.available(Bucket.HISTORY)
    ccxt_venue.account_log(None, 500)
    assert before - ccxt_venue.budget.available(Bucket.HISTORY) == pytest.approx(3, abs=0.01)
    [record] = [r for r in sim.request_log if r.path.endswith("/account-log")]
    assert record.extra["cost"] == "3"
