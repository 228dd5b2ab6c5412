"""A `StatusProvider` over the registry tables plus the kill switch, for a daemon that has nothing better.

It reads through the peewee models, so the daemon must have bound them (`lifecycle.db.bind`) before the bot
asks. peewee opens one connection per thread, so the bot's worker thread reads on its own connection and never
shares the daemon's; WAL mode lets it read while the daemon writes. Equity and margin use come from callables
because only the daemon knows the last venue snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal

from lifecycle.clock import Clock
from lifecycle.killswitch import KillSwitch
from lifecycle.models import Position
from lifecycle.units import units_to_qty
from scheduler.telegram.views import PositionLine, StatusView
from specs.lifecycle import ACTIVE_STATES


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


class RegistryStatusProvider:
    def __init__(
        self,
        *,
        mode: str,
        clock: Clock,
        kill_switch: KillSwitch | None = None,
        equity_usd: Callable[[], Decimal | None] = lambda: None,
        margin_util_pct: Callable[[], Decimal | None] = lambda: None,
    ) -> None:
        self._mode = mode
        self._clock = clock
        self._kill_switch = kill_switch
        self._equity = equity_usd
        self._margin = margin_util_pct

    def positions(self) -> list[PositionLine]:
        rows = (
            Position.select()
            .where(Position.state.in_(sorted(ACTIVE_STATES)))
            .order_by(Position.symbol_key, Position.created_ms)
        )
        return [
            PositionLine(
                uid=row.uid,
                symbol=row.symbol_key,
                side=row.side,
                state=row.state,
                qty=units_to_qty(row.remaining_qty_units),
                entry_price=_dec(row.entry_price),
                stop_price=_dec(row.stop_price),
                take_profit_price=_dec(row.take_profit_price),
                has_stop_order=row.sl_order_id is not None,
            )
            for row in rows
        ]

    def status(self) -> StatusView:
        count = Position.select().where(Position.state.in_(sorted(ACTIVE_STATES))).count()
        reasons = self._kill_switch.active_reasons if self._kill_switch is not None else ()
        as_of = self._clock.now().astimezone(UTC).isoformat(timespec="seconds")
        return StatusView(
            mode=self._mode,
            open_positions=count,
            equity_usd=self._equity(),
            margin_util_pct=self._margin(),
            kill_switch_reasons=tuple(reasons),
            as_of=as_of.replace("+00:00", "Z"),
        )
