"""What every job shares: the registry, the venue, the clock, the safety state and the run counters.

Jobs run one at a time (scheduler.app), so the mutable fields here are never written concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from exchange.venue import Venue
from lifecycle.clock import Clock, position_began
from lifecycle.events import Ev, emit
from lifecycle.joint import JointMemory, JointReport
from lifecycle.reconcile import ReconcileMemory, Reconciliation
from lifecycle.values import Instrument, MarginSnapshot, VenueFill
from operations.safety import Safety
from operations.stats import RunStats
from store.registry import Registry
from strategy.base import Strategy

if TYPE_CHECKING:
    from operations.candles import CandleSource


@dataclass(frozen=True)
class Limits:
    """What the jobs need from the settings (the kill switch carries its own thresholds)."""

    symbols: tuple[str, ...]  # canonical keys
    timeframe: str = "1m"
    candle_limit: int = 100
    max_positions: int = 3
    leverage: Decimal = Decimal(5)  # auction fallback only; the instruments' own max leverage is used when known
    auction_max_margin_util: Decimal = Decimal(50)
    default_stop_pct: Decimal = Decimal(2)  # for adopted orphans, which arrive without a strategy's stop
    take_profit: bool = True
    take_profit_r: Decimal | None = None  # a position that arrives without a TP price (an import) gets one at this R
    max_stop_distance_pct: Decimal = Decimal(25)
    max_entry_slippage_r: Decimal = Decimal("0.5")
    max_replacements_per_hour: int = 6
    on_crossed_stop: str = "unprotectable"


@dataclass(frozen=True)
class EntryPlan:
    symbol: str
    side: str  # long | short
    qty: Decimal
    stop_price: Decimal
    take_profit_price: Decimal | None
    reason: str
    decision_price: Decimal | None = None  # the price the strategy sized the risk at (slippage is measured from it)


@dataclass
class DaemonContext:
    registry: Registry
    venue: Venue
    clock: Clock
    limits: Limits
    instruments: dict[str, Instrument]
    strategy: Strategy
    safety: Safety
    stats: RunStats = field(default_factory=RunStats)
    reconcile_memory: ReconcileMemory | None = None
    last_reconciliation: Reconciliation | None = None
    recent_fills: tuple[VenueFill, ...] = ()
    fills_cursor: datetime | None = None
    last_margin: MarginSnapshot | None = None
    joint_memory: JointMemory | None = None
    last_joint: JointReport | None = None
    last_marks: dict[str, Decimal] = field(default_factory=dict)
    """The marks the protect job read last (the joint invariants check stop sides against them: no extra call)."""
    cancelled_since_snapshot: set[str] = field(default_factory=set)
    """Venue order ids cancelled since the last snapshot was taken: gone from the book though the snapshot lists
    them (the joint invariants judge the book as it is after this cycle's actions)."""
    rows_at_snapshot: frozenset[str] | None = None
    """Client order ids of the unresolved order rows when reconciliation began acting on its snapshot
    (operations.reconciliation.execute): a row not among them was sent after the snapshot was read. By identity, not
    by time: the rows' `created` is the daemon's clock, the snapshot's `server_time` the venue's; either may step."""
    phantom_synthetic_closes: int = 0
    """Phantoms closed with a synthetic fill because no venue fill explained them (RECONCILIATION_REPORT)."""
    announced_unprotectable: set[str] = field(default_factory=set)
    """Position uids this process has already reported as POSITION_UNPROTECTABLE (once per position per run)."""
    venue_start: dict[str, datetime] = field(default_factory=dict)
    """Position uid -> its first ledger fill's time (`created_of`), read once per position and process."""
    candles: CandleSource | None = None
    """Where the strategy's candles come from (operations.candles): the candle store and the venue's tail, or,
    when None, the venue alone."""

    def created_of(self, uid: str, created: datetime) -> datetime:
        """When position `uid` began (`lifecycle.clock.position_began`: its first ledger fill, else `created`
        clamped to now), its first fill read once per position and process. A `created` in the future is reported
        once per position and process (CREATED_IN_FUTURE)."""
        now = self.clock.now()
        if created > now:
            key = f"future:{uid}"
            if key not in self.announced_unprotectable:
                self.announced_unprotectable.add(key)
                emit(Ev.CREATED_IN_FUTURE, position=uid, created=created.isoformat(), now=now.isoformat())
        first = self.venue_start.get(uid)
        if first is None:
            first = self.registry.first_fill_time(uid)
            if first is not None:
                self.venue_start[uid] = first
        return position_began(created, first, now)

    @property
    def symbol_keys(self) -> tuple[str, ...]:
        return self.limits.symbols

    @property
    def entries_allowed(self) -> bool:
        return self.safety.allows_new_entries

    @property
    def state_label(self) -> str:
        return self.safety.state

    def round_price(self, symbol: str, price: Decimal) -> Decimal:
        tick = self.instruments[symbol].tick_size
        return (price / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick
