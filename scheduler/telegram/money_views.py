"""The money commands' texts (/profit, /daily, /balance, /trades, /performance): pure rendering of
`operations.money.MoneyView`, so the words can be tested without a bot. Definitions in docs/money.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from lifecycle.accounting import TradeRecord, cents
from operations.money import MoneyView
from scheduler.telegram.views import MAX_MESSAGE_CHARS, StatusProvider

NO_FEES_NOTE = "Fees and funding: none recorded yet (net = before fees)."


@dataclass(frozen=True)
class BalanceView:
    as_of: str
    equity_usd: Decimal | None
    available_margin_usd: Decimal | None
    margin_util_pct: Decimal | None
    realised_today: Decimal
    realised_7d: Decimal
    realised_all: Decimal
    open_positions: int
    fees_recorded: bool


def usd(value: Decimal | None) -> str:
    return "unknown" if value is None else f"{cents(value):,.2f}"


def _ratio(value: Decimal | None, places: str = "0.01") -> str:
    return "-" if value is None else format(value.quantize(Decimal(places)), "f")


def _held(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m"


def _fee_note(view: MoneyView) -> list[str]:
    return [] if view.charges_recorded else [NO_FEES_NOTE]


def render_profit(view: MoneyView, days: int | None) -> str:
    s = view.summary
    span = "all time" if days is None else f"last {days} day{'s' if days != 1 else ''}"
    if not s.trades and not view.events:
        return f"Profit ({span}): no trade closed yet."
    rate = "-" if s.win_rate is None else f"{s.win_rate * 100:.1f} %"
    lines = [
        f"Profit ({span}, USD)",
        f"Trades closed: {s.trades} ({s.wins} won, {s.losses} lost, win rate {rate})",
        f"Net PnL: {usd(view.net)} (trades closed: {usd(s.net)})",
        f"Realised {usd(s.realised)}, fees {usd(s.fees)}, funding {usd(s.funding)}",
        f"Profit factor {_ratio(s.profit_factor)}, average R {_ratio(s.average_r)}, "
        f"expectancy {usd(s.expectancy)} per trade",
        f"Max drawdown: {usd(s.max_drawdown)}",
        *_fee_note(view),
    ]
    return "\n".join(lines)


def render_daily(view: MoneyView, n: int, today: datetime) -> str:
    rows = view.last_days(n, today)
    lines = [f"Realised net PnL per UTC day, last {n} (USD)"]
    lines += [f"{day.date().isoformat()}  {usd(value):>12}" for day, value in rows]
    lines.append(f"Total: {usd(sum((v for _, v in rows), Decimal(0)))}")
    return "\n".join([*lines, *_fee_note(view)])


def render_balance(b: BalanceView) -> str:
    margin = "unknown" if b.margin_util_pct is None else f"{b.margin_util_pct:.1f} %"
    lines = [
        f"Balance at {b.as_of}",
        f"Equity (venue): {usd(b.equity_usd)} USD",
        f"Available margin: {usd(b.available_margin_usd)} USD, margin use {margin}",
        f"Realised net: today {usd(b.realised_today)}, 7 days {usd(b.realised_7d)}, all time {usd(b.realised_all)}",
        f"Open positions: {b.open_positions} (their unrealised PnL is inside the venue equity)",
    ]
    if not b.fees_recorded:
        lines.append(NO_FEES_NOTE)
    return "\n".join(lines)


def _trade_line(t: TradeRecord) -> str:
    when = "-" if t.closed is None else t.closed.strftime("%m-%d %H:%M")
    r = "" if t.r_multiple is None else f" {_ratio(t.r_multiple)}R"
    return (
        f"{when} {t.symbol} {t.side.upper()} {format(t.qty, 'f')} "
        f"{_ratio(t.entry_vwap, '0.0001').rstrip('0').rstrip('.')}->"
        f"{'-' if t.exit_vwap is None else _ratio(t.exit_vwap, '0.0001').rstrip('0').rstrip('.')} "
        f"net {usd(t.net)}{r} {t.reason or '-'} {_held(t.held_s)}"
    )


def render_trades(view: MoneyView, n: int) -> str:
    if not view.trades:
        return "No trade closed yet."
    shown = list(view.trades)[-n:][::-1]
    out = f"Last {len(shown)} closed trade{'s' if len(shown) != 1 else ''} (newest first, USD):"
    for i, t in enumerate(shown):
        row = "\n" + _trade_line(t)
        more = f"\n... and {len(shown) - i} more (python -m tools.report)"
        if len(out) + len(row) + len(more) > MAX_MESSAGE_CHARS:
            return out + more
        out += row
    return "\n".join([out, *_fee_note(view)])


def render_performance(view: MoneyView) -> str:
    rows = view.per_symbol()
    if not rows:
        return "Performance: no trade closed yet."
    lines = ["Performance per symbol (closed trades, net USD):"]
    for r in rows:
        rate = f"{Decimal(r.wins) / r.trades * 100:.0f} %"
        lines.append(f"{r.symbol}: {usd(r.net)} over {r.trades} trade{'s' if r.trades != 1 else ''}, won {rate}")
    return "\n".join([*lines, *_fee_note(view)])


class CommandProvider(StatusProvider, Protocol):
    """What the money and pause commands need from the daemon (thread-safe: called from the bot's thread)."""

    def now(self) -> datetime: ...

    def money(self, days: int | None = None) -> MoneyView: ...

    def balance(self) -> BalanceView: ...

    def chart(self) -> bytes | None: ...

    def set_entries_paused(self, paused: bool, *, by: str) -> bool: ...
