"""ONE contract suite, run against SimVenue (in process) and CcxtVenue (real ccxt over HTTP to the simulator)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from exchange.errors import InvalidOrderRequest, OrderNotFound
from exchange.rounding import InvalidPrice, SizeBelowMinimum
from exchange.venue import NOT_SENT_ERRORS, Venue
from lifecycle.clock import FakeClock
from lifecycle.values import (
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    TriggerSignal,
)
from simulator.engine import Simulator

XBT = "PF_XBTUSD"


def mark(sim: Simulator, symbol: str = XBT) -> Decimal:
    return sim.quote(symbol).mark


def buy_market(venue: Venue, cid: str, size: str = "0.01") -> None:
    result = venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal(size), cid))
    assert result.outcome is OrderOutcome.ACCEPTED, result


def test_instruments(venue: Venue) -> None:
    instruments = venue.instruments()
    xbt = instruments[XBT]
    assert xbt.symbol == XBT
    assert xbt.tick_size == Decimal(1)
    assert xbt.size_increment == Decimal("0.0001")
    assert xbt.max_leverage == Decimal(50)
    assert {"PF_ETHUSD", "PF_SOLUSD"} <= set(instruments)


def test_tickers_match_the_venue(venue: Venue, sim: Simulator) -> None:
    tickers = venue.tickers()
    assert tickers[XBT].mark == mark(sim)
    assert tickers[XBT].symbol == XBT
    bid, ask = tickers[XBT].bid, tickers[XBT].ask
    assert bid is not None and ask is not None
    assert bid < ask


def test_candles(venue: Venue, clock: FakeClock) -> None:
    candles = venue.candles(XBT, "1m", limit=10)
    assert 0 < len(candles) <= 10
    assert [c.time for c in candles] == sorted(c.time for c in candles)
    assert all(c.low <= c.open <= c.high and c.low <= c.close <= c.high for c in candles)
    since = clock.now() - timedelta(minutes=30)
    later = venue.candles(XBT, "1m", since=since, limit=5)
    assert later and all(c.time >= since for c in later) and len(later) <= 5


def test_margin_of_a_fresh_account(venue: Venue) -> None:
    margin = venue.margin()
    assert margin.portfolio_value == Decimal(10000)
    assert margin.initial_margin == 0
    assert margin.available_margin == margin.margin_equity


def test_market_order_opens_a_position_with_fills_and_margin(venue: Venue, sim: Simulator) -> None:
    result = venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.01234567"), "cid-mkt-1"))
    assert result.outcome is OrderOutcome.ACCEPTED
    assert result.order is not None and result.order.status is OrderStatus.FILLED
    assert result.order.size == Decimal("0.0123")  # truncated to the 0.0001 increment at the boundary
    positions = venue.positions()
    assert [(p.symbol, p.side, p.size) for p in positions] == [(XBT, PositionSide.LONG, Decimal("0.0123"))]
    fills = venue.fills_since(None)
    assert sum(f.size for f in fills if f.client_order_id == "cid-mkt-1") == Decimal("0.0123")
    assert venue.margin().initial_margin > 0
    assert [o.cli_ord_id for o in sim.order_log] == ["cid-mkt-1"]


def test_limit_order_rests_and_is_cancelled(venue: Venue, sim: Simulator) -> None:
    price = (mark(sim) * Decimal("0.9")).quantize(Decimal(1))
    result = venue.place_order(
        OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "cid-lmt-1", limit_price=price + Decimal("0.4"))
    )
    assert result.outcome is OrderOutcome.ACCEPTED and result.order is not None
    assert result.order.status is OrderStatus.OPEN
    [order] = venue.open_orders()
    assert order.client_order_id == "cid-lmt-1"
    assert order.limit_price == price  # rounded to the tick, read from the venue's own limitPrice
    assert order.order_type is OrderType.LIMIT and order.size == Decimal("0.01")
    venue.cancel_order(order.order_id)
    assert venue.open_orders() == []
    with pytest.raises(OrderNotFound):
        venue.cancel_order(order.order_id)


def test_stop_and_take_profit_are_listed_and_the_stop_moves(venue: Venue, sim: Simulator) -> None:
    buy_market(venue, "cid-entry")
    m = mark(sim)
    stop_px, tp_px = (m * Decimal("0.95")).quantize(Decimal(1)), (m * Decimal("1.05")).quantize(Decimal(1))
    stop = venue.place_order(
        OrderRequest(XBT, Side.SELL, OrderType.STOP, Decimal("0.01"), "cid-sl", trigger_price=stop_px,
                     trigger_signal=TriggerSignal.MARK, reduce_only=True)
    )  # fmt: skip
    tp = venue.place_order(
        OrderRequest(XBT, Side.SELL, OrderType.TAKE_PROFIT, Decimal("0.01"), "cid-tp", trigger_price=tp_px,
                     reduce_only=True)
    )  # fmt: skip
    assert stop.outcome is OrderOutcome.ACCEPTED and tp.outcome is OrderOutcome.ACCEPTED
    by_cid = {o.client_order_id: o for o in venue.open_orders()}
    assert by_cid["cid-sl"].order_type is OrderType.STOP and by_cid["cid-sl"].trigger_price == stop_px
    assert by_cid["cid-tp"].order_type is OrderType.TAKE_PROFIT and by_cid["cid-tp"].trigger_price == tp_px
    assert by_cid["cid-sl"].reduce_only and by_cid["cid-sl"].limit_price is None
    moved = venue.edit_order(by_cid["cid-sl"].order_id, trigger_price=stop_px + 100, limit_price=None)
    assert moved.trigger_price == stop_px + 100
    assert {o.client_order_id: o.trigger_price for o in venue.open_orders()}["cid-sl"] == stop_px + 100


def test_reduce_only_without_a_position_is_rejected_with_the_venue_reason(venue: Venue, sim: Simulator) -> None:
    result = venue.place_order(
        OrderRequest(XBT, Side.SELL, OrderType.MARKET, Decimal("0.01"), "cid-ro", reduce_only=True)
    )
    assert result.outcome is OrderOutcome.REJECTED
    assert result.reason == "wouldNotReducePosition"
    assert sim.order_log == []


def nothing_reached_the_venue(venue: Venue, sim: Simulator, cid: str) -> bool:
    """No send on the wire, no order and no rejection in the venue's books (the engine is shared by both)."""
    sent = any(r.path.endswith("/sendorder") for r in sim.request_log)
    return not sent and sim.order_log == [] and venue.find_order(cid) is None


@pytest.mark.parametrize(
    ("order_type", "size", "trigger"),
    [(OrderType.MARKET, "0.00009", None), (OrderType.STOP, "0.00001", "50000"), (OrderType.MARKET, "0", None)],
)
def test_a_size_below_the_minimum_raises_and_nothing_is_sent(
    venue: Venue, sim: Simulator, order_type: OrderType, size: str, trigger: str | None
) -> None:
    """One answer on both venues: a local refusal is raised, never dressed up as a venue's REJECTED outcome."""
    request = OrderRequest(
        XBT, Side.SELL, order_type, Decimal(size), "cid-small", trigger_price=Decimal(trigger) if trigger else None
    )
    with pytest.raises(SizeBelowMinimum, match=r"below the minimum 0\.0001") as refused:
        venue.place_order(request)
    assert isinstance(refused.value, NOT_SENT_ERRORS)
    assert refused.value.venue_status == "sizeBelowMinimum"
    assert nothing_reached_the_venue(venue, sim, "cid-small")


def test_a_size_that_truncates_to_the_minimum_is_sent(venue: Venue, sim: Simulator) -> None:
    result = venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, Decimal("0.00019"), "cid-min"))
    assert result.outcome is OrderOutcome.ACCEPTED and result.order is not None
    assert result.order.size == Decimal("0.0001")
    assert [o.cli_ord_id for o in sim.order_log] == ["cid-min"]


def test_an_incomplete_request_raises_and_nothing_is_sent(venue: Venue, sim: Simulator) -> None:
    with pytest.raises(InvalidOrderRequest, match="no limit price"):
        venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "cid-nolimit"))
    with pytest.raises(InvalidOrderRequest, match="no trigger price"):
        venue.place_order(OrderRequest(XBT, Side.SELL, OrderType.STOP, Decimal("0.01"), "cid-notrigger"))
    assert nothing_reached_the_venue(venue, sim, "cid-nolimit")
    assert venue.find_order("cid-notrigger") is None


def test_a_price_that_rounds_to_nothing_raises_and_nothing_is_sent(venue: Venue, sim: Simulator) -> None:
    request = OrderRequest(
        XBT, Side.SELL, OrderType.STOP, Decimal("0.01"), "cid-zero", trigger_price=Decimal("0.4"), reduce_only=True
    )
    with pytest.raises(InvalidPrice) as refused:
        venue.place_order(request)
    assert isinstance(refused.value, NOT_SENT_ERRORS)
    assert nothing_reached_the_venue(venue, sim, "cid-zero")


def test_a_price_on_a_half_tick_rounds_up_on_both(venue: Venue, sim: Simulator) -> None:
    even = (mark(sim) * Decimal("0.9") / 2).quantize(Decimal(1)) * 2  # ties-to-even would keep this one
    result = venue.place_order(
        OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "cid-half", limit_price=even + Decimal("0.5"))
    )
    assert result.outcome is OrderOutcome.ACCEPTED
    [order] = venue.open_orders()
    assert order.limit_price == even + 1


def test_editing_a_stop_below_the_minimum_raises_and_leaves_it_unchanged(venue: Venue, sim: Simulator) -> None:
    buy_market(venue, "cid-entry")
    stop_px = (mark(sim) * Decimal("0.95")).quantize(Decimal(1))
    stop = venue.place_order(
        OrderRequest(XBT, Side.SELL, OrderType.STOP, Decimal("0.01"), "cid-sl", trigger_price=stop_px, reduce_only=True)
    )
    assert stop.order is not None
    with pytest.raises(SizeBelowMinimum):
        venue.edit_order(stop.order.order_id, size=Decimal("0.00005"), trigger_price=stop_px, limit_price=None)
    [still] = venue.open_orders()
    assert (still.order_id, still.size) == (stop.order.order_id, Decimal("0.01"))
    assert not any(r.path.endswith("/editorder") for r in sim.request_log)


def test_duplicate_client_order_id_returns_the_existing_order(venue: Venue, sim: Simulator) -> None:
    price = (mark(sim) * Decimal("0.9")).quantize(Decimal(1))
    request = OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "cid-dup", limit_price=price)
    first = venue.place_order(request)
    second = venue.place_order(request)
    assert first.outcome is OrderOutcome.ACCEPTED and second.outcome is OrderOutcome.ACCEPTED
    assert first.order is not None and second.order is not None
    assert second.order.order_id == first.order.order_id
    assert [o.cli_ord_id for o in sim.order_log] == ["cid-dup"]


def test_find_order_open_filled_long_ago_and_unknown(venue: Venue, sim: Simulator) -> None:
    price = (mark(sim) * Decimal("0.9")).quantize(Decimal(1))
    venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.LIMIT, Decimal("0.01"), "cid-open", limit_price=price))
    buy_market(venue, "cid-filled")
    sim.advance(30)  # far past orders/status' 5 s window
    found_open = venue.find_order("cid-open")
    assert found_open is not None and found_open.status is OrderStatus.OPEN
    found_filled = venue.find_order("cid-filled")
    assert found_filled is not None and found_filled.status is OrderStatus.FILLED
    assert found_filled.filled == Decimal("0.01")
    assert venue.find_order("cid-never-sent") is None


def test_fills_since_pages_past_the_100_fill_window(venue: Venue, sim: Simulator, clock: FakeClock) -> None:
    start = clock.now()
    for _ in range(150):
        sim.open_position_direct(XBT, "long", Decimal("0.001"))
        sim.advance(1)
    everything = venue.fills_since(start - timedelta(seconds=1))
    assert len(everything) == 150 == len({f.fill_id for f in everything})
    assert [f.time for f in everything] == sorted(f.time for f in everything)
    cutoff = everything[99].time
    later = venue.fills_since(cutoff)
    assert [f.fill_id for f in later] == [f.fill_id for f in everything if f.time > cutoff]


def test_snapshot_is_consistent(venue: Venue, sim: Simulator, clock: FakeClock) -> None:
    buy_market(venue, "cid-snap")
    snap = venue.snapshot(clock.now() - timedelta(seconds=5))
    assert [p.symbol for p in snap.positions] == [XBT]
    assert [f.client_order_id for f in snap.fills] == ["cid-snap"] * len(snap.fills) and snap.fills
    assert snap.margin.initial_margin > 0
    assert snap.open_orders == ()


def test_a_stop_whose_trigger_is_already_crossed_is_accepted_and_fires(venue: Venue, sim: Simulator) -> None:
    """Regression: the venue acknowledges the trigger order and fires it at once; an accepted stop must never be
    reported as rejected (the daemon would then place a second one)."""
    mark = venue.tickers()["PF_XBTUSD"].mark
    entry = venue.place_order(OrderRequest("PF_XBTUSD", Side.BUY, OrderType.MARKET, Decimal("0.01"), "x-entry"))
    assert entry.outcome is OrderOutcome.ACCEPTED
    crossed = OrderRequest(
        "PF_XBTUSD", Side.SELL, OrderType.STOP, Decimal("0.01"), "x-stop", trigger_price=mark * 2, reduce_only=True
    )
    result = venue.place_order(crossed)
    assert result.outcome is OrderOutcome.ACCEPTED, result.reason
    assert venue.positions() == []
    assert [o.cli_ord_id for o in sim.order_log if o.source == "api"] == ["x-entry", "x-stop"]


def test_stop_resize_states_its_trigger_and_a_size_only_edit_is_not_sent(venue: Venue, sim: Simulator) -> None:
    """Kraken's `/editorder`: stopPrice is required when editing a stop (trading/public.yml). Both venues refuse a
    stop edit without it before sending; with it, the size changes and the trigger stays."""
    buy_market(venue, "cid-entry", "0.02")
    stop_px = (mark(sim) * Decimal("0.95")).quantize(Decimal(1))
    stop = venue.place_order(
        OrderRequest(XBT, Side.SELL, OrderType.STOP, Decimal("0.01"), "cid-sl", trigger_price=stop_px, reduce_only=True)
    )
    assert stop.order is not None
    with pytest.raises(InvalidOrderRequest):
        venue.edit_order(stop.order.order_id, size=Decimal("0.02"), trigger_price=None, limit_price=None)
    grown = venue.edit_order(stop.order.order_id, size=Decimal("0.02"), trigger_price=stop_px, limit_price=None)
    assert (grown.size, grown.trigger_price) == (Decimal("0.02"), stop_px)
    assert [(o.size, o.trigger_price) for o in venue.open_orders()] == [(Decimal("0.02"), stop_px)]


def test_resize_of_a_partly_filled_limit_is_absolute(venue: Venue, sim: Simulator) -> None:
    """Our sizes include past fills; Kraken's editorder defaults to qtyMode RELATIVE (the *open* size), so the
    adapter must say ABSOLUTE or a partly filled order would grow by its fills."""
    quote = sim.quote(XBT)
    size = quote.level_size + Decimal("0.1")  # one book level fills when the touch crosses; the rest stays open
    placed = venue.place_order(
        OrderRequest(XBT, Side.BUY, OrderType.LIMIT, size, "cid-lim", limit_price=quote.bid - 100)
    )
    assert placed.order is not None
    sim.set_prices(XBT, last=quote.bid - 300)
    part = sim.order(placed.order.order_id)
    assert part is not None and part.is_open and 0 < part.filled < size
    sim.set_prices(XBT, last=quote.last)  # back above the limit: the edit must not cross and fill the rest
    target = part.filled + Decimal("0.05")
    edited = venue.edit_order(placed.order.order_id, size=target, trigger_price=None, limit_price=None)
    assert (edited.size, edited.filled) == (target, part.filled)
    after = sim.order(placed.order.order_id)
    assert after is not None and (after.size, after.filled) == (target, part.filled)
