"""Wiring, built once from settings, the same for the daemon and the runbook tools: the real venue client, the jobs'
limits, the strategy and the safety state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from exchange.breaker import CircuitBreaker
from lifecycle.clock import Clock
from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from operations.context import Limits
from operations.safety import Safety
from settings.config import Settings, VenueSettings
from store.candles import DEFAULT_CANDLES_NAME, CandleStore, CandleStoreError
from strategy.donchian import DonchianBreakout, DonchianParams

if TYPE_CHECKING:
    from exchange.ccxt_venue import CcxtVenue


def ccxt_venue(settings: VenueSettings, clock: Clock) -> CcxtVenue:
    """CcxtVenue with its circuit breaker, as configured. Callers check the keys first, each with its own message
    (a startup refusal, a tool's usage error)."""
    if settings.api_key is None or settings.api_secret is None:
        raise ValueError("venue.api_key and venue.api_secret are required to build the venue client")
    from exchange.ccxt_venue import CcxtVenue  # ccxt is heavy: a tool refused before this point never loads it

    breaker = CircuitBreaker(
        clock, failure_threshold=settings.breaker.failure_threshold, open_seconds=settings.breaker.open_seconds
    )
    return CcxtVenue(
        api_key=settings.api_key,
        api_secret=settings.api_secret,
        base_url=settings.base_url,
        timeout_seconds=settings.timeout_ms / 1000,
        enable_rate_limit=settings.enable_rate_limit,
        breaker=breaker,
        clock=clock,
    )


class RestartHistory(Protocol):
    """Where the escalator's per-restart history survives restarts (scheduler.restart_memory keeps it in a file)."""

    def load(self) -> dict[str, tuple[int, ...]]: ...

    def save(self, firsts: Mapping[str, Sequence[int]]) -> None: ...


def candle_store_from(settings: Settings, db_path: Path) -> CandleStore | None:
    """The candle store the settings name (None when disabled). Raises CandleStoreError for a file that cannot be
    one (the registry, another database, a missing folder)."""
    if not settings.candles.enabled:
        return None
    path = settings.candles.path or Path(db_path).parent / DEFAULT_CANDLES_NAME
    if path.resolve() == Path(db_path).resolve():
        raise CandleStoreError(f"candles.path {path} is the registry itself: name another file (default candles.db)")
    return CandleStore(path)


def limits_from(settings: Settings, symbol_keys: tuple[str, ...]) -> Limits:
    risk = settings.risk
    return Limits(
        symbols=symbol_keys,
        timeframe=settings.timeframe,
        auction_max_margin_util=risk.auction_max_margin_util,
        take_profit=risk.take_profit_r is not None,
        take_profit_r=risk.take_profit_r,
        default_stop_pct=settings.protect.default_stop_pct,
        max_stop_distance_pct=risk.max_stop_distance_pct,
        max_entry_slippage_r=risk.max_entry_slippage_r,
        max_replacements_per_hour=settings.protect.max_replacements_per_hour,
        on_crossed_stop=settings.protect.on_crossed_stop,
    )


def strategy_from(settings: Settings) -> DonchianBreakout:
    risk = settings.risk
    return DonchianBreakout(
        DonchianParams(
            atr_stop_multiple=risk.atr_stop_multiple,
            risk_per_trade_pct=risk.risk_per_trade_pct,
            take_profit_r=risk.take_profit_r,
        )
    )


def safety_from(settings: Settings, memory: RestartHistory | None = None) -> Safety:
    """`memory` carries the escalator's per-restart history across daemon restarts (tools pass none)."""
    risk = settings.risk
    killswitch = KillSwitch(
        risk.max_margin_utilization_pct, risk.kill_switch_hysteresis_pct, risk.kill_switch_release_cycles
    )
    if memory is None:
        return Safety(killswitch, Escalator())
    return Safety(killswitch, Escalator(restart_firsts=memory.load()), memory.save)
