"""Closing a position is one operation, whatever closed it: a stop or take-profit fill, our exit, a phantom found
by reconciliation, a liquidation, a hand on the venue, or the sync tool.

1. `position_closed` in the registry (when the position is not already terminal);
2. every order of the position that may still rest on the venue is cancelled there, and each order row is settled
   from the venue's answer (cancelled, or filled where the venue or the ledger says it filled) — a reduce-only stop
   or take-profit left behind would otherwise fire on the next position in the same symbol;
3. the trade is reported (`TRADE_CLOSED`).

A failed cancel leaves the row `open`: the stray-order joint invariant (J1) reports it and the next close attempt
(`settle_orders` is also run by reconciliation for terminal positions with live rows) tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum

from exchange.errors import OrderNotFound, VenueError
from lifecycle.values import OrderStatus as VenueStatus
from lifecycle.values import VenueOrder
from operations.context import DaemonContext
from operations.trades import report_trade
from specs.lifecycle import ORDER_UNRESOLVED_STATUSES, TERMINAL_STATES, Event, OrderStatus
from store.registry import OrderView, PositionView

log = logging.getLogger(__name__)


def close_position(ctx: DaemonContext, uid: str, *, cause: str, reason: str) -> PositionView:
    """Close `uid` (already flat in the ledger) and wind it down on the venue. `reason` is the trade's exit reason
    (stop, take_profit, exit, phantom, liquidation, manual, sync)."""
    pos = ctx.registry.get(uid)
    if pos.state not in TERMINAL_STATES:
        pos = ctx.registry.apply(uid, Event.POSITION_CLOSED, cause=cause)
    settle_orders(ctx, pos)
    _report_trade(ctx, uid, reason)
    return ctx.registry.get(uid)


def settle_orders(ctx: DaemonContext, pos: PositionView, open_orders: Sequence[VenueOrder] | None = None) -> int:
    """Cancel on the venue every order of a terminal position that may still rest there, and settle its rows.
    Returns how many rows are still unresolved afterwards (0 when the venue holds nothing of this position)."""
    left = 0
    rows = [o for o in ctx.registry.orders(pos.uid) if o.status in ORDER_UNRESOLVED_STATUSES]
    recorded = {o.venue_order_id for o in ctx.registry.orders(pos.uid) if o.venue_order_id}
    filled_coids = {str(f["client_order_id"]) for f in ctx.registry.fills(pos.uid) if f["client_order_id"]}
    for order in rows:
        if not _settle_one(ctx, order, filled_coids):
            left += 1
    # A stop relinked from the venue (adopted, never sent by us) has no row: cancel it by its venue id.
    for foreign in (pos.sl_order_id, pos.tp_order_id):
        if foreign and foreign not in recorded:
            live = open_orders is None or any(o.order_id == foreign for o in open_orders)
            if live and _cancel(ctx, foreign) is _Cancel.FAILED:
                left += 1
    return left


def _settle_one(ctx: DaemonContext, order: OrderView, filled_coids: set[str]) -> bool:
    if order.venue_order_id and order.status == OrderStatus.OPEN:
        answer = _cancel(ctx, order.venue_order_id)
        if answer is _Cancel.CANCELLED:
            ctx.registry.mark_order(order.client_order_id, status=OrderStatus.CANCELLED, reason="position closed")
            return True
        if answer is _Cancel.FAILED:
            return False
        # not on the book: it filled or the venue cancelled it; the evidence says which
    evidence = _evidence(ctx, order)
    if evidence is _UNREACHABLE:
        return False
    if isinstance(evidence, VenueOrder):
        if evidence.status is VenueStatus.OPEN:
            if _cancel(ctx, evidence.order_id) is _Cancel.FAILED:
                return False
            status = OrderStatus.CANCELLED
        elif evidence.status is VenueStatus.FILLED or evidence.filled > 0:
            status = OrderStatus.FILLED
        elif evidence.status is VenueStatus.REJECTED:
            status = OrderStatus.REJECTED
        else:
            status = OrderStatus.CANCELLED
        ctx.registry.mark_order(
            order.client_order_id, status=status, venue_order_id=evidence.order_id, reason="position closed"
        )
        return True
    # The venue has no trace of it: the ledger decides whether it filled.
    status = OrderStatus.FILLED if order.client_order_id in filled_coids else OrderStatus.CANCELLED
    ctx.registry.mark_order(order.client_order_id, status=status, reason="position closed; absent on the venue")
    return True


_UNREACHABLE = object()


def _evidence(ctx: DaemonContext, order: OrderView) -> VenueOrder | object | None:
    try:
        return ctx.venue.find_order(order.client_order_id)
    except VenueError as exc:
        log.warning("close: could not look up order %s (%s); it stays unresolved", order.client_order_id, exc)
        return _UNREACHABLE


class _Cancel(Enum):
    CANCELLED = "cancelled"  # we cancelled it now
    NOT_ON_BOOK = "not_on_book"  # already gone: filled, or cancelled by the venue
    FAILED = "failed"  # the venue could not be asked: it may still rest there


def _cancel(ctx: DaemonContext, venue_order_id: str) -> _Cancel:
    try:
        ctx.venue.cancel_order(venue_order_id)
    except OrderNotFound:
        ctx.cancelled_since_snapshot.add(venue_order_id)
        return _Cancel.NOT_ON_BOOK
    except VenueError as exc:
        log.warning("close: could not cancel order %s (%s); the stray-order check will see it", venue_order_id, exc)
        return _Cancel.FAILED
    ctx.cancelled_since_snapshot.add(venue_order_id)
    return _Cancel.CANCELLED


def _report_trade(ctx: DaemonContext, uid: str, reason: str) -> None:
    """TRADE_CLOSED for the money view (issue 10: operations.trades, lifecycle.accounting)."""
    report_trade(ctx.registry, uid, reason=reason)
