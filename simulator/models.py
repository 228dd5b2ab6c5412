"""The engine's own records: orders, fills, positions and the history events Kraken's history API serves."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

TRIGGER_TYPES = frozenset({"stp", "take_profit"})
ORDER_TYPES = frozenset({"lmt", "post", "ioc", "mkt", "stp", "take_profit"})


class OrderState(StrEnum):
    OPEN = "open"  # resting limit order, or an untriggered trigger order
    FILLED = "filled"
    CANCELLED = "cancelled"


@dataclass
class SimOrder:
    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str  # buy | sell
    order_type: str  # lmt | post | ioc | mkt | stp | take_profit (after triggering: lmt or ioc)
    size: Decimal  # quantity originally accepted (after any reduce-only shrink)
    limit_price: Decimal | None
    stop_price: Decimal | None
    trigger_signal: str  # mark | last | index
    reduce_only: bool
    received: datetime
    last_update: datetime
    filled: Decimal = Decimal(0)
    state: OrderState = OrderState.OPEN
    closed_at: datetime | None = None
    triggered: bool = False  # a trigger order that fired keeps its id and becomes a plain order
    was_trigger: bool = False
    original_type: str = ""  # order_type as accepted (a fired stp keeps "stp" here)

    def __post_init__(self) -> None:
        if not self.original_type:
            self.original_type = self.order_type

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled

    @property
    def is_trigger(self) -> bool:
        return self.order_type in TRIGGER_TYPES

    @property
    def is_open(self) -> bool:
        return self.state is OrderState.OPEN

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    def snapshot(self) -> SimOrder:
        return copy.copy(self)


@dataclass(frozen=True)
class SimFill:
    fill_id: str
    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    size: Decimal
    price: Decimal
    time: datetime
    fill_type: str  # taker | maker | liquidation
    seq: int  # global execution order, for stable sorting of fills sharing a timestamp


@dataclass
class SimPosition:
    symbol: str
    size: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal
    fill_time: datetime

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"


class HistoryKind(StrEnum):
    ORDER_PLACED = "OrderPlaced"
    ORDER_UPDATED = "OrderUpdated"
    ORDER_CANCELLED = "OrderCancelled"
    ORDER_REJECTED = "OrderRejected"
    TRIGGER_PLACED = "OrderTriggerPlaced"
    TRIGGER_CANCELLED = "OrderTriggerCancelled"
    TRIGGER_ACTIVATED = "OrderTriggerActivated"
    TRIGGER_UPDATED = "OrderTriggerUpdated"  # an edit of an untriggered stop/take-profit: /triggers, not /orders
    EXECUTION = "Execution"


TRIGGER_HISTORY = frozenset(
    {
        HistoryKind.TRIGGER_PLACED,
        HistoryKind.TRIGGER_CANCELLED,
        HistoryKind.TRIGGER_ACTIVATED,
        HistoryKind.TRIGGER_UPDATED,
    }
)


@dataclass(frozen=True)
class HistoryEvent:
    uid: str
    time: datetime
    kind: HistoryKind
    order: SimOrder  # the order as it is after the event
    old_order: SimOrder | None = None  # OrderUpdated: before the event
    reason: str = ""
    fill: SimFill | None = None  # Execution events
    seq: int = 0  # the element's `sequenceNumber`: orders events that share a millisecond


@dataclass(frozen=True)
class PlaceOutcome:
    """What `Simulator.place_order` did: Kraken's status string plus what to render in `orderEvents`."""

    status: str  # placed | insufficientAvailableFunds | wouldNotReducePosition | ...
    order: SimOrder | None = None  # the order after placement (None on rejection)
    prior: SimOrder | None = None  # the order as received, before any execution
    fills: tuple[SimFill, ...] = ()
    reduced_quantity: Decimal | None = None

    @property
    def accepted(self) -> bool:
        return self.order is not None


@dataclass(frozen=True)
class AcceptedOrder:
    """One line of `Simulator.order_log`: the ground truth for counting duplicate orders."""

    order_id: str
    cli_ord_id: str | None
    symbol: str
    side: str
    order_type: str
    size: Decimal
    time: datetime
    source: str = "api"  # api: through place_order; manual/liquidation: made by the venue or by hand


@dataclass
class RequestRecord:
    """One line of `Simulator.request_log`."""

    method: str
    path: str
    query: str
    time: datetime
    status: int = 0
    fault: str | None = None
    body: str = ""
    extra: dict[str, str] = field(default_factory=dict)
