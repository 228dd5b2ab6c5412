"""SimVenue: the Venue protocol on the engine, in process."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from exchange.errors import OrderNotFound, UnknownSymbol
from exchange.rounding import SizeBelowMinimum
from exchange.venue import Venue
from lifecycle.values import OrderOutcome, OrderRequest, OrderStatus, OrderType, PositionSide, Side, TriggerSignal
from simulator.engine import Simulator
from simulator.venue import SimVenue
from tests.simulator.conftest import make_sim

XBT = "PF_XBTUSD"
D = Decimal


@pytest.fixture
def venue(sim: Simulator) -> SimVenue:
    return SimVenue(sim)


def buy(venue: SimVenue, size: str, cid: str, **kw: object) -> object:
    return venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.MARKET, D(size), cid, **kw))  # type: ignore[arg-type]


def test_satisfies_the_venue_protocol(venue: SimVenue) -> None:
    as_venue: Venue = venue
    assert as_venue is venue


def test_reads_are_typed(venue: SimVenue, sim: Simulator) -> None:
    instruments = venue.instruments()
    assert instruments[XBT].tick_size == D(1) and instruments[XBT].size_increment == D("0.0001")
    assert instruments[XBT].max_leverage == D(50)
    t = venue.tickers()[XBT]
    q = sim.quote(XBT)
    assert (t.last, t.mark, t.bid, t.ask) == (q.last, q.mark, q.bid, q.ask)
    candles = venue.candles(XBT, "5m", limit=3)
    assert len(candles) == 3 and candles[-1].time <= sim.now() < candles[-1].time + timedelta(minutes=5)
    since = sim.now() - timedelta(minutes=20)
    assert venue.candles(XBT, "1m", since=since, limit=5)[0].time == since
    m = venue.margin()
    assert m.portfolio_value == sim.config.starting_usd and m.utilization_pct == 0


def test_market_order_fills_and_shows_as_position(venue: SimVenue) -> None:
    result = buy(venue, "0.01234", "c-1")
    assert result.outcome is OrderOutcome.ACCEPTED  # type: ignore[attr-defined]
    assert result.order.size == D("0.0123") and result.order.status is OrderStatus.FILLED  # type: ignore[attr-defined]
    [pos] = venue.positions()
    assert (pos.side, pos.size) == (PositionSide.LONG, D("0.0123"))
    [fill] = venue.fills_since(None)
    assert fill.client_order_id == "c-1" and fill.size == D("0.0123")


def test_stop_order_and_edit(venue: SimVenue, sim: Simulator) -> None:
    buy(venue, "0.02", "entry")
    mark = sim.quote(XBT).mark
    req = OrderRequest(
        XBT, Side.SELL, OrderType.STOP, D("0.02"), "sl-1", trigger_price=mark - D("1000.4"),
        trigger_signal=TriggerSignal.MARK, reduce_only=True,
    )  # fmt: skip
    result = venue.place_order(req)
    assert result.order is not None and result.order.trigger_price == mark - 1000  # rounded to the tick
    [open_order] = venue.open_orders()
    assert open_order.order_type is OrderType.STOP and open_order.status is OrderStatus.OPEN
    edited = venue.edit_order(open_order.order_id, trigger_price=mark - 500, limit_price=None)
    assert edited.trigger_price == mark - 500
    sim.set_mark(XBT, mark - 600)
    assert venue.positions() == [] and venue.open_orders() == []
    found = venue.find_order("sl-1")
    assert found is not None and found.status is OrderStatus.FILLED and found.order_type is OrderType.STOP


def test_rejections_and_duplicate_client_ids(venue: SimVenue, sim: Simulator) -> None:
    result = buy(venue, "1000", "big")
    assert result.outcome is OrderOutcome.REJECTED and result.reason == "insufficientAvailableFunds"  # type: ignore[attr-defined]
    found = venue.find_order("big")
    assert found is not None and found.status is OrderStatus.REJECTED
    bid = sim.quote(XBT).bid
    limit = OrderRequest(XBT, Side.BUY, OrderType.LIMIT, D("0.01"), "lim", limit_price=bid - 500)
    first = venue.place_order(limit)
    again = venue.place_order(limit)
    assert again.outcome is OrderOutcome.ACCEPTED and again.reason == "clientOrderIdAlreadyExist"
    assert again.order is not None and first.order is not None and again.order.order_id == first.order.order_id
    assert len(sim.order_log) == 1
    with pytest.raises(UnknownSymbol):
        venue.place_order(OrderRequest("PF_NOPEUSD", Side.BUY, OrderType.MARKET, D(1), "x"))
    with pytest.raises(SizeBelowMinimum):
        venue.edit_order(first.order.order_id, size=D("0.00001"), trigger_price=None, limit_price=None)


def test_cancel_and_find(venue: SimVenue, sim: Simulator) -> None:
    bid = sim.quote(XBT).bid
    placed = venue.place_order(OrderRequest(XBT, Side.BUY, OrderType.LIMIT, D("0.01"), "l-1", limit_price=bid - 500))
    assert placed.order is not None
    venue.cancel_order(placed.order.order_id)
    with pytest.raises(OrderNotFound):
        venue.cancel_order(placed.order.order_id)
    found = venue.find_order("l-1")
    assert found is not None and found.status is OrderStatus.CANCELLED
    assert venue.find_order("never-sent") is None


def test_fills_since_pages_past_the_100_fill_window() -> None:
    sim = make_sim()
    venue = SimVenue(sim)
    for i in range(130):
        buy(venue, "0.0001", f"f-{i}")
        if i % 3 == 0:
            sim.advance(1)
    everything = venue.fills_since(None)
    assert len(everything) == 130 == len({f.fill_id for f in everything})
    assert [f.time for f in everything] == sorted(f.time for f in everything)
    cut = everything[50].time
    later = venue.fills_since(cut)
    assert later == [f for f in everything if f.time > cut]


def test_snapshot_is_one_consistent_instant(venue: SimVenue, sim: Simulator) -> None:
    buy(venue, "0.01", "s-1")
    snap = venue.snapshot(None)
    assert len(snap.positions) == 1 and len(snap.fills) == 1 and snap.open_orders == ()
    assert snap.server_time == sim.now() and snap.margin.initial_margin > 0
