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


class StatusProvider(Protocol):
    """Implemented by the daemon. Called from the bot's thread, so implementations must be thread-safe."""

    def status(self) -> StatusView: ...

    def positions(self) -> list[PositionLine]: ...


HELP_TEXT = (
    "Commands:\n"
    "/status - system status: mode, kill switch, open positions, equity, margin use\n"
    "/positions - every open position: side, size, state, entry, stop, take-profit\n"
    "/help - this list\n"
    "The bot is read-only: it cannot place, change or cancel orders. Alerts arrive here unasked."
)


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


def _price(value: Decimal | None) -> str:
    return "-" if value is None else format(value, "f")


def render_status(view: StatusView) -> str:
    halted = ", ".join(view.kill_switch_reasons)
    kill = f"ACTIVE ({halted}) - new entries halted, protection continues" if halted else "off"
    margin = "unknown" if view.margin_util_pct is None else f"{view.margin_util_pct:.1f} %"
    return "\n".join(
        [
            f"Status at {view.as_of}",
            f"Mode: {view.mode}",
            f"Kill switch: {kill}",
            f"Open positions: {view.open_positions}",
            f"Equity: {_money(view.equity_usd)} USD",
            f"Margin utilisation: {margin}",
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
