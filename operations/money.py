"""The money view of a registry over a time window, shared by `tools.report` and the Telegram commands.

Window semantics (docs/money.md): the trade list and the statistics cover the positions CLOSED in
[since, until); the daily table, the equity curve and the window's net PnL cover every realisation event in it
(a reducing fill's PnL, a fee, a funding payment), including those of positions still open or closed later. Over a
window that contains whole trades only, the two nets are equal (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from lifecycle.accounting import (
    ZERO,
    EquityPoint,
    PnlEvent,
    PositionBook,
    Summary,
    TradeRecord,
    equity_curve,
    max_drawdown,
    period_start,
    pnl_by_period,
    position_events,
    remaining_qty,
    summarise,
    trade_record,
    unrealised,
)


@dataclass(frozen=True)
class SymbolPerformance:
    symbol: str
    trades: int
    wins: int
    net: Decimal


@dataclass(frozen=True)
class MoneyView:
    since: datetime | None
    until: datetime | None
    trades: tuple[TradeRecord, ...]
    """Closed in the window, oldest close first."""
    events: tuple[PnlEvent, ...]
    """Realisation events in the window, in time order."""
    open_books: tuple[PositionBook, ...]
    """Positions still holding a quantity (for unrealised PnL from a mark)."""
    summary: Summary
    curve: tuple[EquityPoint, ...]
    charges_recorded: int
    """Fee and funding rows in the whole registry: 0 means net PnL cannot include them."""

    @property
    def net(self) -> Decimal:
        """What the account realised in the window: fills' PnL, less fees, plus funding."""
        return sum((e.amount for e in self.events), ZERO)

    def by_period(self, period: str = "day") -> list[tuple[datetime, Decimal]]:
        return pnl_by_period(self.events, period)

    def last_days(self, n: int, today: datetime) -> list[tuple[datetime, Decimal]]:
        """The `n` UTC days up to and including `today`'s, newest first, zero where nothing was realised."""
        totals = dict(self.by_period("day"))
        start = period_start(today, "day")
        return [(day, totals.get(day, ZERO)) for day in (start - timedelta(days=i) for i in range(n))]

    def per_symbol(self) -> list[SymbolPerformance]:
        """Closed trades per symbol, best net first."""
        groups: dict[str, list[TradeRecord]] = {}
        for t in self.trades:
            groups.setdefault(t.symbol, []).append(t)
        rows = [
            SymbolPerformance(s, len(ts), sum(1 for t in ts if t.net > 0), sum((t.net for t in ts), ZERO))
            for s, ts in groups.items()
        ]
        return sorted(rows, key=lambda r: (-r.net, r.symbol))

    def unrealised(self, marks: dict[str, Decimal]) -> Decimal | None:
        """Unrealised PnL of the open positions at `marks` (symbol key -> mark); None when a mark is missing."""
        total = ZERO
        for book in self.open_books:
            mark = marks.get(book.symbol)
            if mark is None:
                return None
            total += unrealised(book, mark)
        return total


def _inside(when: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    return when is not None and (since is None or when >= since) and (until is None or when < until)


def build_view(
    books: Sequence[PositionBook],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    charges_recorded: int = 0,
    account_events: Sequence[PnlEvent] = (),
) -> MoneyView:
    """Pure: the view of `books` over [since, until) (either end open when None). `account_events` are fees and
    funding of no position (operations.trades.load_unattributed_charges): in the window's net, in no trade."""
    trades = sorted(
        (trade_record(b) for b in books if b.closed is not None and _inside(b.closed, since, until)),
        key=lambda t: (t.closed, t.uid),
    )
    events = sorted(
        (
            e
            for e in [*(e for b in books for e in position_events(b)), *account_events]
            if _inside(e.time, since, until)
        ),
        key=lambda e: (e.time, e.uid),
    )
    curve = equity_curve(events)
    return MoneyView(
        since=since,
        until=until,
        trades=tuple(trades),
        events=tuple(events),
        open_books=tuple(b for b in books if b.closed is None and remaining_qty(b) > 0),
        summary=summarise(trades, max_drawdown(curve)),
        curve=tuple(curve),
        charges_recorded=charges_recorded,
    )
