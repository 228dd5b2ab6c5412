"""A `StatusProvider` over `store.registry.Registry` plus the kill switch, for a daemon with nothing better.

The registry's database opens one connection per thread (peewee), so the bot's worker thread reads on its own
connection and never shares the daemon's; WAL mode lets it read while the daemon writes. Equity and margin use
come from callables because only the daemon knows the last venue snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal

from lifecycle.killswitch import KillSwitch
from scheduler.telegram.views import PositionLine, StatusView
from store.registry import PositionView, Registry


def _line(view: PositionView) -> PositionLine:
    return PositionLine(
        uid=view.uid,
        symbol=view.symbol_key,
        side=view.side,
        state=view.state,
        qty=view.remaining_qty,
        entry_price=view.entry_price,
        stop_price=view.stop_price,
        take_profit_price=view.take_profit_price,
        has_stop_order=bool(view.sl_order_id),
    )


class RegistryStatusProvider:
    def __init__(
        self,
        registry: Registry,
        *,
        mode: str,
        kill_switch: KillSwitch | None = None,
        equity_usd: Callable[[], Decimal | None] = lambda: None,
        margin_util_pct: Callable[[], Decimal | None] = lambda: None,
    ) -> None:
        self._registry = registry
        self._mode = mode
        self._kill_switch = kill_switch
        self._equity = equity_usd
        self._margin = margin_util_pct

    def positions(self) -> list[PositionLine]:
        views = sorted(self._registry.active_positions(), key=lambda v: (v.symbol_key, v.created))
        return [_line(v) for v in views]

    def status(self) -> StatusView:
        reasons = self._kill_switch.active_reasons if self._kill_switch is not None else ()
        as_of = self._registry.clock.now().astimezone(UTC).isoformat(timespec="seconds")
        return StatusView(
            mode=self._mode,
            open_positions=len(self._registry.active_positions()),
            equity_usd=self._equity(),
            margin_util_pct=self._margin(),
            kill_switch_reasons=tuple(reasons),
            as_of=as_of.replace("+00:00", "Z"),
        )
