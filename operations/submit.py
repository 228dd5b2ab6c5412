"""Sending one order: durable intent first, then exactly one venue call, then the outcome recorded.

A retry never happens here. An unknown outcome stays `unknown` in the registry and is resolved by evidence
(find_order by client order id) in recovery and reconciliation; re-sending would risk a second order. This is
where the verdict "unknown" is final for the send, so this is where its one `ORDER_OUTCOME_UNKNOWN` line is
logged. An order our own checks refused (`NOT_SENT_ERRORS`) or the open breaker stopped was never sent: its
intent is closed as cancelled with a `not_sent:` reason, and it is not reported as a venue rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange.errors import CircuitOpen, OrderRejected, VenueError
from exchange.venue import NOT_SENT_ERRORS, Venue
from lifecycle.events import Ev, emit
from lifecycle.values import OrderOutcome, OrderRequest, OrderStatus, OrderType, PlaceResult, Side
from operations.crash import crash_point
from store.registry import Registry

NOT_SENT = "not_sent:"
STOPPED_BEFORE_SENDING: tuple[type[VenueError], ...] = (CircuitOpen, *NOT_SENT_ERRORS)


@dataclass(frozen=True)
class Submitted:
    client_order_id: str
    result: PlaceResult
    refusal: VenueError | None = None  # why the order never left the process (local check, open breaker)


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
    refusal: VenueError | None = None
    try:
        result = venue.place_order(request)
    except STOPPED_BEFORE_SENDING as exc:
        # Nothing was sent (the breaker failed fast, or our own checks refused it): the intent is closed so the
        # next cycle starts clean, and no venue is blamed for it.
        refusal = exc
        result = PlaceResult(OrderOutcome.REJECTED, coid, reason=f"{NOT_SENT}{_refusal_reason(exc)}")
    except OrderRejected as exc:
        result = PlaceResult(OrderOutcome.REJECTED, coid, reason=exc.venue_status or str(exc))
    except VenueError as exc:
        # The adapter raised instead of resolving: no evidence was looked at yet; reconciliation will.
        result = PlaceResult(
            OrderOutcome.UNKNOWN, coid, reason=f"{type(exc).__name__}: {exc}; not looked up yet (reconciliation will)"
        )
    crash_point("after_send")
    emit(
        Ev.ORDER_SUBMITTED,
        client_order_id=coid,
        symbol=symbol,
        purpose=purpose,
        side=side.value,
        size=qty,
        order_type=order_type.value,
        outcome="not_sent" if refusal is not None else result.outcome.value,
    )
    record_outcome(registry, symbol, purpose, result)
    return Submitted(coid, result, refusal)


def _refusal_reason(exc: VenueError) -> str:
    """`sizeBelowMinimum: <the message>`: the status first, so registry reasons group by it."""
    return f"{exc.venue_status}: {exc}" if exc.venue_status else str(exc)


def record_outcome(registry: Registry, symbol: str, purpose: str, result: PlaceResult) -> None:
    coid = result.client_order_id
    if result.outcome is OrderOutcome.REJECTED:
        reason = result.reason or "rejected"
        if reason.startswith(NOT_SENT):
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
