"""A `CommandProvider` over `store.registry.Registry` plus the kill switch and the operator's entry pause.

The registry's database opens one connection per thread (peewee), so the bot's worker thread reads on its own
connection and never shares the daemon's; WAL mode lets it read while the daemon writes. Equity and margin use
come from callables because only the daemon knows the last venue snapshot. The money commands read the fill
ledger through `operations.trades` and `operations.money` (read-only); /pause and /resume go through
`operations.pause`, the one thing the bot may change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from lifecycle.killswitch import KillSwitch
from operations.equity_plot import equity_png
from operations.money import MoneyView, build_view
from operations.pause import EntryPause
from operations.trades import load_books, load_charge_count, load_unattributed_charges
from scheduler.stream_status import status_line
from scheduler.telegram.money_views import BalanceView
from scheduler.telegram.views import PositionLine, StatusView
from store.registry import PositionView, Registry


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
        available_margin_usd: Callable[[], Decimal | None] = lambda: None,
        entry_pause: EntryPause | None = None,
    ) -> None:
        self._registry = registry
        self._mode = mode
        self._kill_switch = kill_switch
        self._equity = equity_usd
        self._margin = margin_util_pct
        self._available = available_margin_usd
        self._pause = entry_pause

    def positions(self) -> list[PositionLine]:
        views = sorted(self._registry.active_positions(), key=lambda v: (v.symbol_key, v.created))
        return [_line(v) for v in views]

    def status(self) -> StatusView:
        reasons = self._kill_switch.active_reasons if self._kill_switch is not None else ()
        pause = self._pause.state if self._pause is not None else None
        paused = pause is not None and pause.paused
        return StatusView(
            mode=self._mode,
            open_positions=len(self._registry.active_positions()),
            equity_usd=self._equity(),
            margin_util_pct=self._margin(),
            kill_switch_reasons=tuple(reasons),
            as_of=_iso(self._registry.clock.now()),
            entries_paused_by=pause.by if paused and pause is not None else None,
            entries_paused_since=_iso(pause.at) if paused and pause is not None and pause.at is not None else None,
            stream=status_line(),
        )

    def now(self) -> datetime:
        return self._registry.clock.now()

    def money(self, days: int | None = None) -> MoneyView:
        """The money view of the last `days` days (all history when None), read from the ledger."""
        self._registry.active_positions()  # a Registry call points the models at this registry's file
        since = None if days is None else self.now() - timedelta(days=days)
        return build_view(
            load_books(),
            since=since,
            charges_recorded=load_charge_count(),
            account_events=load_unattributed_charges(),
        )

    def balance(self) -> BalanceView:
        now = self.now()
        everything = self.money()
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        week_ago = now - timedelta(days=7)
        return BalanceView(
            as_of=_iso(now),
            equity_usd=self._equity(),
            available_margin_usd=self._available(),
            margin_util_pct=self._margin(),
            realised_today=sum((e.amount for e in everything.events if e.time >= day_start), Decimal(0)),
            realised_7d=sum((e.amount for e in everything.events if e.time >= week_ago), Decimal(0)),
            realised_all=everything.net,
            open_positions=len(self._registry.active_positions()),
            fees_recorded=everything.charges_recorded > 0,
        )

    def chart(self) -> bytes | None:
        """The equity curve of all history as PNG bytes; None before the first realised PnL."""
        view = self.money()
        if not view.curve:
            return None
        title = f"Realised equity, {len(view.trades)} trades, {_iso(self.now())}"
        return equity_png(view.curve, view.trades, title=title)

    def set_entries_paused(self, paused: bool, *, by: str) -> bool:
        """The operator's /pause or /resume; False when it already was so (or the daemon has no pause)."""
        if self._pause is None:
            raise RuntimeError("this daemon was started without an entry pause; restart it to use /pause")
        return self._pause.set(paused, by=by)
