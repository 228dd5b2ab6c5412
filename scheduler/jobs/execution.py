"""Sending one order: durable intent first, then exactly one venue call, then the outcome recorded.

A retry never happens here. An unknown outcome stays `unknown` in the registry and is resolved by evidence
(find_order by client order id) in recovery and reconciliation; re-sending would risk a second order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange.errors import CircuitOpen, OrderRejected, VenueError
from exchange.types import OrderOutcome, OrderRequest, OrderStatus, OrderType, PlaceResult, Side
from exchange.venue import Venue
from lifecycle.events import Ev, emit
from lifecycle.registry import Registry
from scheduler.jobs.crash import crash_point


@dataclass(frozen=True)
class Submitted:
    client_order_id: str
    result: PlaceResult


def submit(
    registry: Registry,
    venue: Venue,
    uid: str,
    *,
    symbol: str,
    purpose: str,
    side: Side,
    order_type: OrderType,
    qty: Decimal,
    trigger_price: Decimal | None = None,
    limit_price: Decimal | None = None,
    reduce_only: bool = False,
) -> Submitted:
    order = registry.record_order_intent(
        uid,
        purpose=purpose,
        side=side.value,
        order_type=order_type.value,
        qty=qty,
        limit_price=limit_price,
        trigger_price=trigger_price,
    )
    coid = order.client_order_id
    crash_point("after_intent")
    request = OrderRequest(
        symbol=symbol,
        side=side,
        order_type=order_type,
        size=qty,
        client_order_id=coid,
        limit_price=limit_price,
        trigger_price=trigger_price,
        reduce_only=reduce_only,
    )
    try:
        result = venue.place_order(request)
    except CircuitOpen as exc:
        # Nothing was sent: the breaker failed fast. The intent is closed so the next cycle starts clean.
        result = PlaceResult(OrderOutcome.REJECTED, coid, reason=f"not_sent:{exc}")
    except OrderRejected as exc:
        result = PlaceResult(OrderOutcome.REJECTED, coid, reason=exc.venue_status or str(exc))
    except VenueError as exc:
        result = PlaceResult(OrderOutcome.UNKNOWN, coid, reason=f"{type(exc).__name__}: {exc}")
    crash_point("after_send")
    emit(
        Ev.ORDER_SUBMITTED,
        client_order_id=coid,
        symbol=symbol,
        purpose=purpose,
        side=side.value,
        size=qty,
        order_type=order_type.value,
        outcome=result.outcome.value,
    )
    record_outcome(registry, symbol, purpose, result)
    return Submitted(coid, result)


def record_outcome(registry: Registry, symbol: str, purpose: str, result: PlaceResult) -> None:
    coid = result.client_order_id
    if result.outcome is OrderOutcome.REJECTED:
        reason = result.reason or "rejected"
        if reason.startswith("not_sent:"):
            registry.mark_order(coid, status="cancelled", reason=reason)
        else:
            registry.mark_order(coid, status="rejected", reason=reason)
            emit(Ev.ORDER_REJECTED_BY_VENUE, client_order_id=coid, symbol=symbol, purpose=purpose, reason=reason)
        return
    if result.outcome is OrderOutcome.UNKNOWN:
        registry.mark_order(coid, status="unknown", reason=result.reason)
        emit(Ev.ORDER_OUTCOME_UNKNOWN, client_order_id=coid, symbol=symbol, purpose=purpose, detail=result.reason)
        return
    order = result.order
    status = "open"
    if order is not None and order.status is OrderStatus.FILLED:
        status = "filled"
    elif order is not None and order.status is OrderStatus.CANCELLED:
        status = "cancelled"
    registry.mark_order(coid, status=status, venue_order_id=order.order_id if order else None)
    crash_point("after_ack")
