"""The money view, pure and exact: what each position and the account made or lost (docs/money.md).

Linear `PF_` contracts (USD-margined): a fill of `qty` contracts at `price` moves `qty * price * contract_size` USD,
so PnL is a difference of notionals and needs no conversion. Everything is Decimal; nothing here reads a clock,
a file or the network.

Sign conventions, used everywhere (events, reports, Telegram):
- `realised` and `net` are what the account gained (negative: lost);
- `fees` are a cost (positive: paid; a maker rebate makes them negative);
- `funding` is what the account received (negative: paid), as Kraken's account log books it.
`net = realised - fees + funding`.

Realised PnL is booked at each reducing fill against the average cost of what is still held (the average-cost
method). The fill that brings the position to zero releases the whole remaining cost, not a divided share, so a
closed position's realised PnL is exactly its sell notional minus its buy notional, however the divisions before
it rounded: the cash-flow identity the property tests check against.
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ParamSpec, TypeVar

ZERO = Decimal(0)
# 50 digits hold any product or sum of registry values (8-decimal quantities, prices, USD notionals) exactly; the
# one division, a partial exit's share of the cost basis, is cut to 18 decimals so what follows stays exact.
_EXACT = decimal.Context(prec=50)
_RELEASE_SCALE = Decimal("1e-18")

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _exact(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run `fn` with the 50-digit context, so its sums and products are exact whatever the caller's context."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        with decimal.localcontext(_EXACT):
            return fn(*args, **kwargs)

    return run


EXIT_REASONS = ("stop", "take_profit", "strategy_exit", "phantom", "liquidation", "manual", "sync")
PERIODS = ("day", "week", "month")
CHARGE_KINDS = ("fee", "funding")


class AccountingError(ValueError):
    """The inputs cannot describe a position (a fill on the wrong side, more exited than entered)."""


@dataclass(frozen=True)
class LedgerFill:
    """One fill of the ledger, as the accounting needs it."""

    fill_id: str
    side: str  # buy | sell
    is_entry: bool
    qty: Decimal
    price: Decimal
    time: datetime


@dataclass(frozen=True)
class Charge:
    """A fee or funding entry attributed to a position, signed as the account log books it (+ = received)."""

    entry_id: str
    kind: str  # fee | funding
    amount: Decimal
    time: datetime


@dataclass(frozen=True)
class PositionBook:
    """Everything the accounting needs about one position."""

    uid: str
    symbol: str
    side: str  # long | short
    fills: tuple[LedgerFill, ...]
    charges: tuple[Charge, ...] = ()
    initial_stop: Decimal | None = None
    """The stop the entry was sized against; planned risk = |entry VWAP - initial stop| x entry qty."""
    exit_reason: str | None = None
    opened: datetime | None = None
    closed: datetime | None = None
    contract_size: Decimal = Decimal(1)


@dataclass(frozen=True)
class PnlEvent:
    """One change of the account's realised equity: a reducing fill's PnL, a fee (as a negative), or funding."""

    time: datetime
    uid: str
    symbol: str
    kind: str  # realised | fee | funding
    amount: Decimal


@dataclass(frozen=True)
class TradeRecord:
    uid: str
    symbol: str
    side: str
    qty: Decimal
    entry_vwap: Decimal
    exit_vwap: Decimal | None
    realised: Decimal
    fees: Decimal
    funding: Decimal
    net: Decimal
    planned_risk: Decimal | None
    r_multiple: Decimal | None
    opened: datetime
    closed: datetime | None
    held_s: int | None
    reason: str | None


def _direction(side: str) -> int:
    if side == "long":
        return 1
    if side == "short":
        return -1
    raise AccountingError(f"position side {side!r} is neither long nor short")


def _entry_side(side: str) -> str:
    return "buy" if _direction(side) > 0 else "sell"


def _ordered(fills: Iterable[LedgerFill]) -> list[LedgerFill]:
    # Entries before exits at the same instant: a fill cannot reduce what is not yet held.
    return sorted(fills, key=lambda f: (f.time, not f.is_entry))


def _vwap(fills: Sequence[LedgerFill]) -> Decimal | None:
    qty = sum((f.qty for f in fills), ZERO)
    if qty == 0:
        return None
    return _EXACT.divide(sum((f.qty * f.price for f in fills), ZERO), qty)


def _walk(book: PositionBook) -> tuple[list[PnlEvent], Decimal, Decimal]:
    """Replay the fills in time order: the realised events, and the quantity and cost basis still held."""
    direction = _direction(book.side)
    entry_side = _entry_side(book.side)
    held = ZERO
    cost = ZERO  # notional of what is held: entry qty x price, less the cost each exit released
    events: list[PnlEvent] = []
    with decimal.localcontext(_EXACT):
        for f in _ordered(book.fills):
            if f.qty <= 0:
                raise AccountingError(f"fill {f.fill_id}: quantity must be positive, got {f.qty}")
            if (f.side == entry_side) != f.is_entry:
                role = "entry" if f.is_entry else "exit"
                raise AccountingError(f"fill {f.fill_id}: a {f.side} {role} of a {book.side} position")
            notional = f.qty * f.price * book.contract_size
            if f.is_entry:
                held += f.qty
                cost += notional
                continue
            if f.qty > held:
                raise AccountingError(f"fill {f.fill_id}: exits {f.qty} with only {held} held")
            # A partial exit releases its share of the cost, cut to a fixed scale so that the subtraction below
            # is exact; the exit that makes the position flat releases all that is left.
            released = cost if f.qty == held else (cost * f.qty / held).quantize(_RELEASE_SCALE)
            held -= f.qty
            cost -= released
            events.append(PnlEvent(f.time, book.uid, book.symbol, "realised", (notional - released) * direction))
    return events, held, cost


def realised_events(book: PositionBook) -> list[PnlEvent]:
    """The position's realised PnL, one event per reducing fill (average cost), before fees and funding."""
    return _walk(book)[0]


def charge_events(book: PositionBook) -> list[PnlEvent]:
    """Fees and funding as equity changes: a fee of 3 is the event -3, funding received of 2 is +2."""
    out: list[PnlEvent] = []
    for c in book.charges:
        if c.kind not in CHARGE_KINDS:
            raise AccountingError(f"charge {c.entry_id}: kind {c.kind!r} is not one of {', '.join(CHARGE_KINDS)}")
        out.append(PnlEvent(c.time, book.uid, book.symbol, c.kind, c.amount))
    return out


def position_events(book: PositionBook) -> list[PnlEvent]:
    return sorted([*realised_events(book), *charge_events(book)], key=lambda e: e.time)


@_exact
def remaining_qty(book: PositionBook) -> Decimal:
    return sum((f.qty if f.is_entry else -f.qty for f in book.fills), ZERO)


def unrealised(book: PositionBook, mark: Decimal) -> Decimal:
    """What closing the rest at `mark` would realise (before fees): remaining x mark - remaining cost basis."""
    _, held, cost = _walk(book)
    with decimal.localcontext(_EXACT):
        return (held * mark * book.contract_size - cost) * _direction(book.side)


@_exact
def trade_record(book: PositionBook) -> TradeRecord:
    """Per-position figures. `exit_vwap`, `held_s` are None while nothing has been exited / it is still open."""
    entries = [f for f in book.fills if f.is_entry]
    exits = [f for f in book.fills if not f.is_entry]
    entry_vwap = _vwap(entries)
    if entry_vwap is None:
        raise AccountingError(f"position {book.uid} has no entry fill")
    realised = sum((e.amount for e in realised_events(book)), ZERO)  # exact: every term has a bounded scale
    fees = -sum((c.amount for c in book.charges if c.kind == "fee"), ZERO)
    funding = sum((c.amount for c in book.charges if c.kind == "funding"), ZERO)
    net = realised - fees + funding
    qty = sum((f.qty for f in entries), ZERO)
    risk = None
    if book.initial_stop is not None:
        risk = abs(entry_vwap - book.initial_stop) * qty * book.contract_size
    r_multiple = _EXACT.divide(net, risk) if risk else None
    opened = book.opened or min(f.time for f in entries)
    held_s = None if book.closed is None else int((book.closed - opened).total_seconds())
    return TradeRecord(
        uid=book.uid,
        symbol=book.symbol,
        side=book.side,
        qty=qty,
        entry_vwap=entry_vwap,
        exit_vwap=_vwap(exits),
        realised=realised,
        fees=fees,
        funding=funding,
        net=net,
        planned_risk=risk,
        r_multiple=r_multiple,
        opened=opened,
        closed=book.closed,
        held_s=held_s,
        reason=book.exit_reason,
    )


def classify_exit(*, exit_purposes: Iterable[str | None], fill_ids: Iterable[str], close_cause: str) -> str:
    """Why a position ended, from its exit fills' order purposes and the cause of its closing transition.

    Evidence first: a balancing `external_close:` fill means the venue no longer held it (phantom); a cause that
    names liquidation or the sync tool says so; else the order that took it out (the last exit fill's order,
    since that one made it flat); a fill of no order of ours is a manual trade."""
    cause = close_cause.lower()
    if any(fid.startswith("external_close:") for fid in fill_ids):
        return "liquidation" if "liquidat" in cause else "phantom"
    if "liquidat" in cause:
        return "liquidation"
    if "sync_positions" in cause:
        return "sync"
    purposes = list(exit_purposes)
    last = purposes[-1] if purposes else None
    return {"stop": "stop", "take_profit": "take_profit", "exit": "strategy_exit"}.get(last or "", "manual")


# --------------------------------------------------------------------------------------------- the account


def period_start(when: datetime, period: str) -> datetime:
    """The UTC day, ISO week (from Monday) or month that `when` falls in, as its first instant."""
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise AccountingError(f"period {period!r} is not one of {', '.join(PERIODS)}")


@_exact
def pnl_by_period(events: Iterable[PnlEvent], period: str = "day") -> list[tuple[datetime, Decimal]]:
    """Realised net PnL (fills, fees, funding) summed per UTC period, oldest first; periods without events omitted."""
    totals: dict[datetime, Decimal] = {}
    for e in events:
        start = period_start(e.time, period)
        totals[start] = totals.get(start, ZERO) + e.amount
    return sorted(totals.items())


@dataclass(frozen=True)
class EquityPoint:
    time: datetime
    equity: Decimal


@_exact
def equity_curve(events: Iterable[PnlEvent], start: Decimal = ZERO) -> list[EquityPoint]:
    """Realised equity after each event, in time order, starting from `start` (0: the curve is cumulative PnL)."""
    level = start
    out: list[EquityPoint] = []
    for e in sorted(events, key=lambda e: e.time):
        level += e.amount
        out.append(EquityPoint(e.time, level))
    return out


def max_drawdown(curve: Sequence[EquityPoint], start: Decimal = ZERO) -> Decimal:
    """The largest fall from a running peak to a later trough, in USD (0 for a curve that never falls)."""
    peak = start
    worst = ZERO
    for point in curve:
        peak = max(peak, point.equity)
        worst = max(worst, peak - point.equity)
    return worst


@dataclass(frozen=True)
class Summary:
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    realised: Decimal
    fees: Decimal
    funding: Decimal
    net: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: Decimal | None
    """Gross profit / gross loss of the trades' net PnL; None without a losing trade."""
    average_r: Decimal | None
    expectancy: Decimal | None
    """Average net PnL per trade, USD."""
    max_drawdown: Decimal


@_exact
def summarise(trades: Sequence[TradeRecord], drawdown: Decimal = ZERO) -> Summary:
    """Statistics over closed trades; a trade at exactly zero net counts as neither win nor loss."""
    n = len(trades)
    wins = [t for t in trades if t.net > 0]
    losses = [t for t in trades if t.net < 0]
    gross_profit = sum((t.net for t in wins), ZERO)
    gross_loss = -sum((t.net for t in losses), ZERO)
    rs = [t.r_multiple for t in trades if t.r_multiple is not None]
    net = sum((t.net for t in trades), ZERO)
    return Summary(
        trades=n,
        wins=len(wins),
        losses=len(losses),
        win_rate=_EXACT.divide(Decimal(len(wins)), Decimal(n)) if n else None,
        realised=sum((t.realised for t in trades), ZERO),
        fees=sum((t.fees for t in trades), ZERO),
        funding=sum((t.funding for t in trades), ZERO),
        net=net,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=_EXACT.divide(gross_profit, gross_loss) if gross_loss else None,
        average_r=_EXACT.divide(sum(rs, ZERO), Decimal(len(rs))) if rs else None,
        expectancy=_EXACT.divide(net, Decimal(n)) if n else None,
        max_drawdown=drawdown,
    )


def cents(value: Decimal) -> Decimal:
    """Rounded to the cent for display (half-even); the figures themselves stay exact."""
    return value.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN)
