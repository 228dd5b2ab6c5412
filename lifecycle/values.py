"""Typed values that cross the venue boundary. Nothing past `exchange/` ever sees a raw ccxt dict.

Quantities and prices are Decimal. Symbols are canonical keys (see `lifecycle.symbols`), e.g. `PF_XBTUSD`.
Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"  # stop-loss trigger order (stop-market unless limit_price is given)
    TAKE_PROFIT = "take_profit"


class TriggerSignal(StrEnum):
    MARK = "mark"
    LAST = "last"
    INDEX = "index"


class OrderOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # resolved later by evidence: open orders, order/trigger history, fills


class OrderStatus(StrEnum):
    OPEN = "open"  # resting or untriggered trigger order
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Instrument:
    symbol: str  # canonical key, e.g. PF_XBTUSD
    base: str  # e.g. BTC
    tick_size: Decimal
    size_increment: Decimal  # contract value trade precision as an increment, e.g. 0.0001
    min_size: Decimal
    contract_size: Decimal
    max_leverage: Decimal
    tradeable: bool = True


@dataclass(frozen=True)
class Ticker:
    symbol: str
    last: Decimal
    mark: Decimal
    bid: Decimal | None
    ask: Decimal | None
    time: datetime


@dataclass(frozen=True)
class Candle:
    time: datetime  # open time
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class MarginSnapshot:
    portfolio_value: Decimal
    margin_equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    available_margin: Decimal
    time: datetime
    server_time_known: bool = True
    """False when the venue's answer carried no serverTime and `time` is our own clock: no skew can be measured."""

    @property
    def utilization_pct(self) -> Decimal:
        """Initial margin as a percentage of margin equity (100 when equity is zero or negative)."""
        if self.margin_equity <= 0:
            return Decimal(100)
        return self.initial_margin / self.margin_equity * 100


@dataclass(frozen=True)
class VenuePosition:
    symbol: str
    side: PositionSide
    size: Decimal  # always positive
    entry_price: Decimal
    time: datetime | None = None


@dataclass(frozen=True)
class VenueOrder:
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    size: Decimal  # original size
    filled: Decimal
    limit_price: Decimal | None
    trigger_price: Decimal | None
    reduce_only: bool
    status: OrderStatus
    time: datetime | None = None


@dataclass(frozen=True)
class VenueFill:
    fill_id: str
    order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    size: Decimal
    price: Decimal
    time: datetime


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: Side
    order_type: OrderType
    size: Decimal
    client_order_id: str
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    trigger_signal: TriggerSignal = TriggerSignal.MARK
    reduce_only: bool = False


@dataclass(frozen=True)
class PlaceResult:
    """What placing an order achieved. `UNKNOWN` means: do not re-send; look it up by client order id."""

    outcome: OrderOutcome
    client_order_id: str
    order: VenueOrder | None = None
    reason: str | None = None  # the venue's own status string on rejection (e.g. insufficientAvailableFunds)
    fills: tuple[VenueFill, ...] = ()


@dataclass(frozen=True)
class AccountSnapshot:
    """Everything one reconciliation needs, fetched with a constant number of REST calls."""

    positions: tuple[VenuePosition, ...]
    open_orders: tuple[VenueOrder, ...]
    fills: tuple[VenueFill, ...]
    margin: MarginSnapshot
    server_time: datetime
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryPosition:
    """One non-terminal position as the registry holds it: the one input every pure planner reads about a position
    (attribution in `lifecycle.fills`, the diff in `lifecycle.reconcile`, the stop planner in `lifecycle.protection`,
    the joint invariants in `lifecycle.joint`). Built from the registry's row by `store.registry.PositionView.held`.

    `created` is when the position began against venue times (`lifecycle.clock.position_began`: its first ledger
    fill, else its row's `created` clamped to now), never the host's stamp alone."""

    uid: str
    symbol_key: str
    side: PositionSide
    state: str
    remaining_qty: Decimal
    created: datetime
    sl_order_id: str | None = None
    tp_order_id: str | None = None
    entry_price: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit_price: Decimal | None = None
