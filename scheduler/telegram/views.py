"""What the bot shows: the read-only views the daemon provides, and how they are rendered as message text.

The bot never touches the registry or the venue itself; it asks a `StatusProvider`. Rendering is pure so that
the text can be tested without a bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

# Telegram refuses messages over 4096 characters; a long position list is cut with a note rather than lost.
MAX_MESSAGE_CHARS = 4096


@dataclass(frozen=True)
class PositionLine:
    uid: str
    symbol: str
    side: str
    state: str
    qty: Decimal
    entry_price: Decimal | None
    stop_price: Decimal | None
    take_profit_price: Decimal | None
    has_stop_order: bool


@dataclass(frozen=True)
class StatusView:
    mode: str
    open_positions: int
    equity_usd: Decimal | None
    margin_util_pct: Decimal | None
    kill_switch_reasons: tuple[str, ...]
    as_of: str
    """When the view was taken, ISO 8601 UTC, from the daemon's clock."""
    entries_paused_by: str | None = None
    """Who sent /pause, while new entries are paused by an operator."""
    entries_paused_since: str | None = None
    stream: str | None = None
    """The order stream's one-line health (scheduler.stream_status), when a stream runs."""


class StatusProvider(Protocol):
    """Implemented by the daemon. Called from the bot's thread, so implementations must be thread-safe."""

    def status(self) -> StatusView: ...

    def positions(self) -> list[PositionLine]: ...


COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "mode, kill switch, pause, open positions, equity, margin use"),
    ("positions", "every open position: side, size, state, entry, stop, take-profit"),
    ("profit", "[days] net PnL, fees, funding, win rate, profit factor, R, drawdown"),
    ("daily", "[n] realised net PnL per UTC day, last n days (default 7)"),
    ("balance", "venue equity and margin, realised PnL today / 7 days / all time"),
    ("trades", "[n] the last n closed trades (default 10)"),
    ("performance", "net PnL and win rate per symbol"),
    ("chart", "the equity curve as a picture"),
    ("pause", "stop opening new positions (exits and stops go on)"),
    ("resume", "allow new positions again"),
    ("help", "this list"),
)
"""The command menu (`setMyCommands`) and /help, from one list."""

HELP_TEXT = (
    "Commands:\n"
    + "".join(f"/{name} - {text}\n" for name, text in COMMANDS)
    + "Only /pause and /resume change anything, and only whether new positions may open: the bot cannot place,"
    " change or cancel an order. Alerts arrive here unasked."
)


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def _price(value: Decimal | None) -> str:
    return "-" if value is None else format(value, "f")


def _entries(view: StatusView) -> str:
    if view.entries_paused_by is None:
        return "Operator pause: off"
    return (
        f"Operator pause: ON since {view.entries_paused_since} by {view.entries_paused_by} - no new entries; "
        "exits and stops go on (/resume)"
    )


def render_status(view: StatusView) -> str:
    halted = ", ".join(view.kill_switch_reasons)
    kill = f"ACTIVE ({halted}) - new entries halted, protection continues" if halted else "off"
    margin = "unknown" if view.margin_util_pct is None else f"{view.margin_util_pct:.1f} %"
    return "\n".join(
        [
            f"Status at {view.as_of}",
            f"Mode: {view.mode}",
            f"Kill switch: {kill}",
            _entries(view),
            f"Open positions: {view.open_positions}",
            f"Equity: {_money(view.equity_usd)} USD",
            f"Margin utilisation: {margin}",
            *([f"Order {view.stream}"] if view.stream else []),
        ]
    )


def render_position(line: PositionLine) -> str:
    stop = _price(line.stop_price) + ("" if line.has_stop_order else " (NO STOP ORDER)")
    return (
        f"{line.symbol} {line.side.upper()} {format(line.qty, 'f')} [{line.state}] "
        f"entry {_price(line.entry_price)} stop {stop} tp {_price(line.take_profit_price)} id {line.uid}"
    )


def render_positions(lines: list[PositionLine]) -> str:
    if not lines:
        return "No open positions."
    out = f"Open positions ({len(lines)}):"
    for shown, line in enumerate(lines):
        row = "\n" + render_position(line)
        more = f"\n... and {len(lines) - shown} more (see the registry)"
        if len(out) + len(row) + len(more) > MAX_MESSAGE_CHARS:
            return out + more
        out += row
    return out
