"""What every job shares: the registry, the venue, the clock, the safety state and the run counters.

Jobs run one at a time (scheduler.app), so the mutable fields here are never written concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from exchange.types import Instrument, MarginSnapshot, VenueFill
from exchange.venue import Venue
from lifecycle.clock import Clock
from lifecycle.reconcile import ReconcileMemory, Reconciliation, ReconciliationReport
from scheduler.app import RunStats
from scheduler.jobs.ports import RegistryPort


@dataclass(frozen=True)
class Limits:
    symbols: tuple[str, ...]
    timeframe: str = "1m"
    candle_limit: int = 100
    max_positions: int = 3
    auction_max_margin_util: Decimal = Decimal(50)
    max_margin_utilization_pct: Decimal = Decimal(80)
    margin_release_pct: Decimal = Decimal(70)
    default_stop_pct: Decimal = Decimal(2)
    take_profit: bool = True


@dataclass(frozen=True)
class EntryPlan:
    symbol: str
    side: str  # long | short
    qty: Decimal
    stop_price: Decimal
    take_profit_price: Decimal | None
    reason: str


class KillSwitchPort(Protocol):
    @property
    def allows_new_entries(self) -> bool: ...
    @property
    def state(self) -> str: ...
    def observe_margin(self, utilization_pct: Decimal) -> None: ...
    def invariant_violated(self, detail: str) -> None: ...


class DeciderPort(Protocol):
    def decide(self, ctx: DaemonContext, held: set[str]) -> list[EntryPlan]:
        """Analyse every configured coin (one DECISION_TRACE each) and return the auction's winners."""
        ...


class EscalatorPort(Protocol):
    def observe(self, report: ReconciliationReport) -> str:
        """Record one report; return its level (ok | warning | critical) and emit ESCALATION when critical."""
        ...

    @property
    def pause_reason(self) -> str | None: ...


@dataclass
class DaemonContext:
    registry: RegistryPort
    venue: Venue
    clock: Clock
    limits: Limits
    instruments: dict[str, Instrument]
    decider: DeciderPort
    killswitch: KillSwitchPort
    escalator: EscalatorPort
    stats: RunStats = field(default_factory=RunStats)
    reconcile_memory: ReconcileMemory | None = None
    last_reconciliation: Reconciliation | None = None
    recent_fills: tuple[VenueFill, ...] = ()
    fills_cursor: datetime | None = None
    last_margin: MarginSnapshot | None = None

    @property
    def entries_allowed(self) -> bool:
        return self.killswitch.allows_new_entries and self.escalator.pause_reason is None

    @property
    def state_label(self) -> str:
        if not self.killswitch.allows_new_entries:
            return self.killswitch.state
        if self.escalator.pause_reason is not None:
            return "paused_escalation"
        return "trading"

    def round_price(self, symbol: str, price: Decimal) -> Decimal:
        tick = self.instruments[symbol].tick_size
        return (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick
