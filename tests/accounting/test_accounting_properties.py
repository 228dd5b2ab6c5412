"""lifecycle.accounting against an independent model: cash flows.

The model knows nothing of average cost: a position's PnL is what was received minus what was paid, plus what
the rest would fetch at the mark, plus funding, minus fees. The accounting books the same money fill by fill;
for any sequence of partial entries and exits, on either side, the two must agree exactly.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.accounting import (
    AccountingError,
    Charge,
    LedgerFill,
    PositionBook,
    classify_exit,
    equity_curve,
    max_drawdown,
    pnl_by_period,
    position_events,
    realised_events,
    remaining_qty,
    summarise,
    trade_record,
    unrealised,
)

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)  # near midnight and a week's end: events straddle days and weeks

qtys = st.integers(1, 500_000).map(lambda n: Decimal(n) / 10_000)
prices = st.integers(10_000, 10_000_000).map(lambda n: Decimal(n) / 100)
amounts = st.integers(-50_000, 50_000).map(lambda n: Decimal(n) / 10_000)


@st.composite
def books(draw: st.DrawFn, *, closed: bool | None = None, uid: str = "p1") -> PositionBook:
    side = draw(st.sampled_from(["long", "short"]))
    entry_side, exit_side = ("buy", "sell") if side == "long" else ("sell", "buy")
    fills: list[LedgerFill] = []
    held = Decimal(0)
    t = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 10)))
    steps = draw(st.integers(1, 8))
    for i in range(steps):
        t += timedelta(minutes=draw(st.integers(1, 60 * 30)))
        exit_now = held > 0 and draw(st.booleans())
        if exit_now:
            q = min(held, draw(qtys))
            fills.append(LedgerFill(f"{uid}-f{i}", exit_side, False, q, draw(prices), t))
            held -= q
        else:
            q = draw(qtys)
            fills.append(LedgerFill(f"{uid}-f{i}", entry_side, True, q, draw(prices), t))
            held += q
    close = draw(st.booleans()) if closed is None else closed
    if close and held > 0:
        t += timedelta(minutes=draw(st.integers(1, 600)))
        fills.append(LedgerFill(f"{uid}-close", exit_side, False, held, draw(prices), t))
    charges = [
        Charge(f"{uid}-c{i}", draw(st.sampled_from(["fee", "funding"])), draw(amounts), t + timedelta(minutes=i))
        for i in range(draw(st.integers(0, 4)))
    ]
    stop = draw(st.none() | prices)
    return PositionBook(uid, "PF_XBTUSD", side, tuple(fills), tuple(charges), initial_stop=stop)


def cash_flow(book: PositionBook) -> Decimal:
    """The model: money received for sells minus money paid for buys, fees and funding as booked."""
    flow = sum((f.qty * f.price * (1 if f.side == "sell" else -1) for f in book.fills), Decimal(0))
    return flow + sum((c.amount for c in book.charges), Decimal(0))


def net_long_qty(book: PositionBook) -> Decimal:
    return sum((f.qty * (1 if f.side == "buy" else -1) for f in book.fills), Decimal(0))


@given(books())
def test_realised_plus_unrealised_equals_the_cash_flow_model(book: PositionBook) -> None:
    mark = Decimal("54321.09")
    booked = sum((e.amount for e in position_events(book)), Decimal(0)) + unrealised(book, mark)
    assert booked == cash_flow(book) + net_long_qty(book) * mark


@given(books(closed=True))
def test_a_closed_trade_is_exactly_its_cash_flow(book: PositionBook) -> None:
    record = trade_record(book)
    assert remaining_qty(book) == 0
    assert record.net == cash_flow(book)
    assert record.realised - record.fees + record.funding == record.net
    entries = [f for f in book.fills if f.is_entry]
    exits = [f for f in book.fills if not f.is_entry]
    assert record.qty == sum((f.qty for f in entries), Decimal(0))
    # VWAPs: qty x vwap gives back the notional (to the 50-digit division)
    assert abs(record.entry_vwap * record.qty - sum((f.qty * f.price for f in entries), Decimal(0))) < Decimal("1e-30")
    assert record.exit_vwap is not None
    assert abs(record.exit_vwap * record.qty - sum((f.qty * f.price for f in exits), Decimal(0))) < Decimal("1e-30")


@given(st.lists(books(), min_size=1, max_size=5))
def test_pnl_per_day_week_month_sums_to_pnl_per_position(book_list: list[PositionBook]) -> None:
    book_list = [PositionBook(f"p{i}", b.symbol, b.side, b.fills, b.charges) for i, b in enumerate(book_list)]
    events = [e for b in book_list for e in position_events(b)]
    per_position = sum((sum((e.amount for e in position_events(b)), Decimal(0)) for b in book_list), Decimal(0))
    for period in ("day", "week", "month"):
        rows = pnl_by_period(events, period)
        assert sum((v for _, v in rows), Decimal(0)) == per_position
        assert [start for start, _ in rows] == sorted({start for start, _ in rows})
    curve = equity_curve(events)
    assert (curve[-1].equity if curve else Decimal(0)) == per_position
    closed = [trade_record(b) for b in book_list if remaining_qty(b) == 0]
    assert summarise(closed).net == sum((t.net for t in closed), Decimal(0))


@given(books(), st.randoms(use_true_random=False))
def test_a_replayed_ledger_in_any_order_gives_the_same_numbers(book: PositionBook, rnd: random.Random) -> None:
    shuffled = list(book.fills)
    rnd.shuffle(shuffled)
    again = PositionBook(book.uid, book.symbol, book.side, tuple(shuffled), book.charges, book.initial_stop)
    assert trade_record(again) == trade_record(book)
    assert position_events(again) == position_events(book)


def _fill(fid: str, side: str, entry: bool, qty: str, price: str, minute: int) -> LedgerFill:
    return LedgerFill(fid, side, entry, Decimal(qty), Decimal(price), T0 + timedelta(minutes=minute))


def test_a_worked_short_with_fees_funding_and_r() -> None:
    """Numbers worked by hand: short 2 @ 100 and 1 @ 103 (VWAP 101), cover 1.5 @ 95 and 1.5 @ 99."""
    book = PositionBook(
        "s1",
        "PF_ETHUSD",
        "short",
        (
            _fill("a", "sell", True, "2", "100", 0),
            _fill("b", "sell", True, "1", "103", 5),
            _fill("c", "buy", False, "1.5", "95", 60),
            _fill("d", "buy", False, "1.5", "99", 120),
        ),
        (
            Charge("fee1", "fee", Decimal("-0.15"), T0),
            Charge("fee2", "fee", Decimal("-0.12"), T0 + timedelta(minutes=120)),
            Charge("fund1", "funding", Decimal("0.05"), T0 + timedelta(minutes=60)),
        ),
        initial_stop=Decimal("105"),
        exit_reason="take_profit",
        closed=T0 + timedelta(minutes=120),
    )
    r = trade_record(book)
    assert (r.entry_vwap, r.exit_vwap, r.qty) == (Decimal(101), Decimal(97), Decimal(3))
    # 1.5 x (101 - 95) = 9 then 1.5 x (101 - 99) = 3
    assert [e.amount for e in realised_events(book)] == [Decimal(9), Decimal(3)]
    assert (r.realised, r.fees, r.funding, r.net) == (Decimal(12), Decimal("0.27"), Decimal("0.05"), Decimal("11.78"))
    assert r.planned_risk == Decimal(12)  # |101 - 105| x 3
    assert r.r_multiple is not None and r.r_multiple.quantize(Decimal("0.0001")) == Decimal("0.9817")
    assert (r.held_s, r.reason) == (7200, "take_profit")


def test_statistics_on_a_small_account() -> None:
    def closed(uid: str, buy: str, sell: str, minute: int) -> PositionBook:
        return PositionBook(
            uid,
            "PF_XBTUSD",
            "long",
            (_fill(uid + "e", "buy", True, "1", buy, minute), _fill(uid + "x", "sell", False, "1", sell, minute + 1)),
            initial_stop=Decimal(buy) - 10,
        )

    books_ = [closed("w1", "100", "130", 0), closed("l1", "100", "80", 10), closed("w2", "100", "110", 2000)]
    trades = [trade_record(b) for b in books_]
    curve = equity_curve(e for b in books_ for e in position_events(b))
    assert [p.equity for p in curve] == [Decimal(30), Decimal(10), Decimal(20)]
    dd = max_drawdown(curve)
    assert dd == Decimal(20)
    s = summarise(trades, dd)
    assert (s.trades, s.wins, s.losses, s.net) == (3, 2, 1, Decimal(20))
    assert s.win_rate is not None and s.win_rate.quantize(Decimal("0.001")) == Decimal("0.667")
    assert s.profit_factor == Decimal(2)  # 40 / 20
    assert s.average_r is not None and s.average_r.quantize(Decimal("0.01")) == Decimal("0.67")  # (3 - 2 + 1) / 3
    assert s.expectancy is not None and s.expectancy.quantize(Decimal("0.01")) == Decimal("6.67")
    days = pnl_by_period([e for b in books_ for e in position_events(b)], "day")
    assert days == [(T0.replace(hour=0), Decimal(10)), (T0.replace(hour=0) + timedelta(days=2), Decimal(10))]


def test_impossible_ledgers_are_refused() -> None:
    with pytest.raises(AccountingError, match="exits 2 with only 1 held"):
        realised_events(
            PositionBook(
                "x", "PF_XBTUSD", "long", (_fill("a", "buy", True, "1", "1", 0), _fill("b", "sell", False, "2", "1", 1))
            )
        )
    with pytest.raises(AccountingError, match="a sell entry of a long"):
        realised_events(PositionBook("x", "PF_XBTUSD", "long", (_fill("a", "sell", True, "1", "1", 0),)))
    with pytest.raises(AccountingError, match="no entry fill"):
        trade_record(PositionBook("x", "PF_XBTUSD", "long", ()))


def test_exit_reasons_follow_the_evidence() -> None:
    assert classify_exit(exit_purposes=["stop"], fill_ids=["f"], close_cause="closing fills") == "stop"
    assert classify_exit(exit_purposes=["stop", "take_profit"], fill_ids=["f"], close_cause="") == "take_profit"
    assert classify_exit(exit_purposes=["exit"], fill_ids=["f"], close_cause="") == "strategy_exit"
    assert classify_exit(exit_purposes=[None], fill_ids=["f"], close_cause="") == "manual"
    assert classify_exit(exit_purposes=[None], fill_ids=["external_close:u"], close_cause="phantom") == "phantom"
    assert classify_exit(exit_purposes=[], fill_ids=["external_close:u"], close_cause="liquidation") == "liquidation"
    assert classify_exit(exit_purposes=[], fill_ids=[], close_cause="sync_positions: confirmed phantom") == "sync"
