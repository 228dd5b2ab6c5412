"""operations.money.build_view: windows select trades by close and events by time; over whole trades the two nets
agree; fees and funding of no position count in the account's net and in no trade."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lifecycle.accounting import PnlEvent, PositionBook, position_events, remaining_qty
from operations.money import build_view
from tests.accounting.test_accounting_properties import T0, books


def _closed(b: PositionBook) -> PositionBook:
    last = max(f.time for f in b.fills)
    return PositionBook(b.uid, b.symbol, b.side, b.fills, b.charges, b.initial_stop, "stop", None, last)


@given(st.lists(books(closed=True), min_size=1, max_size=4))
def test_over_whole_trades_the_window_net_is_the_trades_net(book_list: list[PositionBook]) -> None:
    closed = [_closed(PositionBook(f"p{i}", b.symbol, b.side, b.fills, b.charges)) for i, b in enumerate(book_list)]
    assert all(remaining_qty(b) == 0 for b in closed)
    view = build_view(closed)
    assert view.net == view.summary.net
    assert len(view.trades) == len(closed) and view.open_books == ()
    # a window that starts after every event holds nothing; one that ends before the first close holds no trade
    latest = max(e.time for b in closed for e in position_events(b))
    assert build_view(closed, since=latest + timedelta(seconds=1)).events == ()
    first_close = min(b.closed for b in closed if b.closed is not None)
    assert build_view(closed, until=first_close).trades == ()


def test_unattributed_charges_count_in_the_net_and_in_no_trade() -> None:
    stray = PnlEvent(T0, "-", "PF_XBTUSD", "fee", Decimal("-1.25"))
    view = build_view([], account_events=[stray])
    assert view.net == Decimal("-1.25") and view.trades == () and view.summary.trades == 0
    assert view.by_period("day") == [(T0.replace(hour=0), Decimal("-1.25"))]
    assert build_view([], account_events=[stray], since=T0 + timedelta(seconds=1)).net == 0
