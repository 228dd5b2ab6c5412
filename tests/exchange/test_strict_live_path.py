"""The four live-path defects of issue 14, each reproduced against the simulator made as strict as Kraken's spec
and driven through the real ccxt client over HTTP (`CcxtVenue`).

1. a stop resize must carry the stop's `stopPrice` (spec: `/editorder`, "Required if old orderType is stp");
2. `clientOrderIdAlreadyExist` is resolved by the evidence lookup, never assumed accepted;
3. history pages are followed with the spec's `continuation_token` query parameter;
4. the parser reads trigger edits (`OrderTriggerUpdated` in `/triggers`).
"""

from __future__ import annotations

from decimal import Decimal

from exchange import kraken_parse as kp
from exchange.ccxt_venue import HISTORY_COUNT, CcxtVenue
from lifecycle.clock import FakeClock
from lifecycle.values import OrderOutcome, OrderRequest, OrderStatus, OrderType, Side
from simulator.engine import Simulator

XBT = "PF_XBTUSD"


def _long_with_stop(venue: CcxtVenue, sim: Simulator, size: str = "0.01") -> tuple[str, Decimal]:
    """A long position with a reduce-only stop below the mark; returns the stop's order id and trigger."""
    entry = venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal(size), "entry-1"))
    assert entry.outcome is OrderOutcome.ACCEPTED, entry
    trigger = sim.quote(XBT).mark - 1000
    stop = venue.place_order(
        OrderRequest(XBT, Side.SELL, OrderType.STOP, Decimal(size), "sl-1", trigger_price=trigger, reduce_only=True)
    )
    assert stop.outcome is OrderOutcome.ACCEPTED and stop.order is not None, stop
    return stop.order.order_id, trigger


def test_stop_resize_sends_the_stop_price_and_keeps_the_trigger(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    stop_id, trigger = _long_with_stop(ccxt_venue, sim)
    ccxt_venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), "entry-2"))

    edited = ccxt_venue.edit_order(stop_id, size=Decimal("0.02"), trigger_price=trigger, limit_price=None)

    assert edited.size == Decimal("0.02") and edited.trigger_price == trigger
    on_venue = sim.order(stop_id)
    assert on_venue is not None and on_venue.size == Decimal("0.02") and on_venue.stop_price == trigger
    sent = [r.query for r in sim.request_log if r.path.endswith("/editorder")]
    assert len(sent) == 1 and "stopPrice=" in sent[0] and "qtyMode=ABSOLUTE" in sent[0]


def test_stop_resize_without_its_stop_price_is_refused_before_sending(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    from exchange.errors import InvalidOrderRequest

    stop_id, _ = _long_with_stop(ccxt_venue, sim)
    try:
        ccxt_venue.edit_order(stop_id, size=Decimal("0.02"), trigger_price=None, limit_price=None)
    except InvalidOrderRequest as exc:
        assert "stop price" in str(exc)
    else:
        raise AssertionError("a stop edit without its stop price was sent")
    assert not [r for r in sim.request_log if r.path.endswith("/editorder")]


def test_reused_id_of_a_filled_order_resolves_to_that_order(
    ccxt_venue: CcxtVenue, sim: Simulator, clock: FakeClock
) -> None:
    first = ccxt_venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), "buy-1"))
    assert first.outcome is OrderOutcome.ACCEPTED and first.order is not None
    clock.advance(5)  # the retry comes later: its own refusal is the newest history event under this id

    again = ccxt_venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01"), "buy-1"))

    assert again.outcome is OrderOutcome.ACCEPTED
    assert again.order is not None and again.order.order_id == first.order.order_id
    assert again.order.status is OrderStatus.FILLED
    assert [o.cli_ord_id for o in sim.order_log].count("buy-1") == 1


def test_reused_id_with_no_evidence_is_unknown_not_accepted(
    ccxt_venue: CcxtVenue, sim: Simulator, clock: FakeClock
) -> None:
    bid = sim.quote(XBT).bid
    limit = OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "old-1", limit_price=bid - 2000)
    placed = ccxt_venue.place_order(limit)
    assert placed.order is not None
    ccxt_venue.cancel_order(placed.order.order_id)
    clock.advance(8 * 86400)  # beyond the adapter's 7-day history lookback: no source still shows the order

    again = ccxt_venue.place_order(limit)

    assert again.outcome is OrderOutcome.UNKNOWN, again
    assert again.reason is not None and "clientOrderIdAlreadyExist" in again.reason


def test_find_order_follows_history_pages_with_continuation_token(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    bid = sim.quote(XBT).bid
    target = sim.place_order(
        symbol=XBT, side="buy", order_type="lmt", size=Decimal("0.01"), limit_price=bid - 3000, cli_ord_id="target"
    )
    assert target.order is not None
    sim.cancel_order(target.order.order_id)
    for i in range(HISTORY_COUNT // 2 + 1):  # placed + cancelled: two /orders events each, newer than the target
        other = sim.place_order(
            symbol=XBT, side="buy", order_type="lmt", size=Decimal("0.01"), limit_price=bid - 3000, cli_ord_id=f"o{i}"
        )
        assert other.order is not None
        sim.cancel_order(other.order.order_id)

    found = ccxt_venue.find_order("target")

    assert found is not None and found.status is OrderStatus.CANCELLED
    assert found.order_id == target.order.order_id
    pages = [r.query for r in sim.request_log if r.path.endswith("/history/v2/orders")]
    assert len(pages) == 2 and "continuation_token=" in pages[1]


def test_trigger_history_edits_are_read(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    stop_id, trigger = _long_with_stop(ccxt_venue, sim)
    moved = trigger + 200
    status, _, _ = sim.edit_order(stop_id, stop_price=moved)
    assert status == "edited"

    raw = ccxt_venue._ex.historyGetTriggers({"count": 100})
    found = kp.history_order(raw, "sl-1", str, True)

    assert found is not None and found.trigger_price == moved and found.status is OrderStatus.OPEN


def test_too_many_orders_is_a_rejection_with_krakens_reason(ccxt_venue: CcxtVenue, sim: Simulator) -> None:
    """`tooManyOrders` comes back as a status ccxt does not raise for; the adapter must still call it REJECTED."""
    from dataclasses import replace

    sim.config = replace(sim.config, max_open_orders=1)
    bid = sim.quote(XBT).bid
    first = ccxt_venue.place_order(
        OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "lim-1", limit_price=bid - 900)
    )
    second = ccxt_venue.place_order(
        OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "lim-2", limit_price=bid - 900)
    )
    assert first.outcome is OrderOutcome.ACCEPTED
    assert second.outcome is OrderOutcome.REJECTED and second.reason == "tooManyOrders"
