"""protect: every exposed position has a live reduce-only stop within one cycle (and a TP where configured).

Order of work per position: a stop we recorded that the venue no longer shows is investigated (cancelled ->
protection_lost and re-place; filled -> left to the exits job); a position with no stop id is first relinked
from the venue's open orders, and only when none is found is a new stop placed. Runs even when halted:
protection is what a halt must never stop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from exchange.errors import VenueError
from exchange.types import OrderOutcome, OrderStatus, OrderType, Side, VenueOrder
from lifecycle.events import Ev, emit
from lifecycle.registry import PositionView
from scheduler.jobs.context import DaemonContext
from scheduler.jobs.crash import crash_point
from scheduler.jobs.execution import submit

log = logging.getLogger(__name__)

EXPOSED = frozenset({"OPEN", "PROTECTED"})


def closing_side(position_side: str) -> Side:
    return Side.SELL if position_side == "long" else Side.BUY


def default_stop(ctx: DaemonContext, pos: PositionView) -> Decimal:
    """A stop for a position that has none recorded (an adopted orphan): the configured distance from the entry,
    or from the mark when the market has already moved past that, so the stop never triggers on placement."""
    entry = pos.entry_price
    if entry is None:
        raise ValueError(f"position {pos.uid} has neither a stop price nor an entry price to derive one from")
    pct = ctx.limits.default_stop_pct / 100
    try:
        mark: Decimal | None = ctx.venue.tickers()[pos.symbol_key].mark
    except (VenueError, KeyError):
        mark = None
    if pos.side == "long":
        raw = min(entry, mark if mark is not None else entry) * (1 - pct)
    else:
        raw = max(entry, mark if mark is not None else entry) * (1 + pct)
    return ctx.round_price(pos.symbol_key, raw)


def _find_live_stop(pos: PositionView, orders: Sequence[VenueOrder]) -> VenueOrder | None:
    side = closing_side(pos.side)
    for order in orders:
        if (
            order.symbol == pos.symbol_key
            and order.order_type is OrderType.STOP
            and order.side is side
            and order.reduce_only
            and order.status is OrderStatus.OPEN
        ):
            return order
    return None


def _filled(ctx: DaemonContext, pos: PositionView, order_id: str) -> bool:
    """Evidence that a missing protective order filled rather than vanished: a fill for it, or the venue's
    order history. A filled one did its job; the exits job closes the position from its fills."""
    if any(f.order_id == order_id for f in ctx.recent_fills):
        return True
    for order in ctx.registry.orders_for(pos.uid):
        if order.venue_order_id == order_id:
            evidence = ctx.venue.find_order(order.client_order_id)
            return evidence is not None and evidence.filled > 0
    return False


def resize_stop(ctx: DaemonContext, pos: PositionView, stop: VenueOrder) -> None:
    """A stop sized for more than the position (after a partial exit or a synced fill) is shrunk to it; one sized
    for less would leave part of the position unprotected, so it is grown."""
    if stop.size - stop.filled == pos.remaining_qty or pos.remaining_qty <= 0:
        return
    try:
        ctx.venue.edit_order(stop.order_id, size=pos.remaining_qty)
    except VenueError as exc:
        log.warning("protect: could not resize stop %s of %s to %s: %s", stop.order_id, pos.uid, pos.remaining_qty, exc)
        return
    emit(
        Ev.PROTECTIVE_ORDER_PLACED,
        position=pos.uid,
        symbol=pos.symbol_key,
        kind="stop_loss_resized",
        trigger_price=stop.trigger_price,
        size=pos.remaining_qty,
        order_id=stop.order_id,
    )


def protect_position(ctx: DaemonContext, pos: PositionView, open_orders: Sequence[VenueOrder]) -> None:
    by_id = {o.order_id: o for o in open_orders}
    if pos.state == "PROTECTED" and pos.sl_order_id in by_id:
        resize_stop(ctx, pos, by_id[pos.sl_order_id])
        return
    if pos.state == "PROTECTED" and pos.sl_order_id and pos.sl_order_id not in by_id:
        if _filled(ctx, pos, pos.sl_order_id):
            return
        pos = ctx.registry.apply(pos.uid, "protection_lost", cause=f"stop {pos.sl_order_id} no longer on the venue")
        ctx.registry.set_protection(pos.uid, sl_order_id=None, tp_order_id=pos.tp_order_id, clear=True)
    if pos.state != "OPEN":
        return
    live = _find_live_stop(pos, open_orders)
    if live is not None:
        ctx.registry.set_protection(pos.uid, sl_order_id=live.order_id)
        ctx.registry.apply(pos.uid, "protection_confirmed", cause=f"relinked venue stop {live.order_id}")
        return
    place_stop(ctx, pos)


def place_stop(ctx: DaemonContext, pos: PositionView) -> bool:
    stop_price = pos.stop_price
    if stop_price is None:
        stop_price = default_stop(ctx, pos)
        ctx.registry.set_stop_price(pos.uid, stop_price)
    crash_point("before_stop")
    sent = submit(
        ctx.registry,
        ctx.venue,
        pos.uid,
        symbol=pos.symbol_key,
        purpose="stop",
        side=closing_side(pos.side),
        order_type=OrderType.STOP,
        qty=pos.remaining_qty,
        trigger_price=stop_price,
        reduce_only=True,
    )
    ctx.stats.orders_placed += 1
    crash_point("after_stop_send")
    result = sent.result
    if result.outcome is not OrderOutcome.ACCEPTED or result.order is None:
        return False
    ctx.registry.set_protection(pos.uid, sl_order_id=result.order.order_id)
    ctx.registry.apply(pos.uid, "protection_confirmed", cause=f"stop {result.order.order_id} placed")
    emit(
        Ev.PROTECTIVE_ORDER_PLACED,
        position=pos.uid,
        symbol=pos.symbol_key,
        kind="stop_loss",
        trigger_price=stop_price,
        size=pos.remaining_qty,
        order_id=result.order.order_id,
    )
    return True


def place_take_profit(ctx: DaemonContext, pos: PositionView, open_orders: Sequence[VenueOrder]) -> None:
    if pos.take_profit_price is None or pos.state != "PROTECTED":
        return
    if pos.tp_order_id and (
        any(o.order_id == pos.tp_order_id for o in open_orders) or _filled(ctx, pos, pos.tp_order_id)
    ):
        return
    sent = submit(
        ctx.registry,
        ctx.venue,
        pos.uid,
        symbol=pos.symbol_key,
        purpose="take_profit",
        side=closing_side(pos.side),
        order_type=OrderType.TAKE_PROFIT,
        qty=pos.remaining_qty,
        trigger_price=pos.take_profit_price,
        reduce_only=True,
    )
    ctx.stats.orders_placed += 1
    if sent.result.outcome is OrderOutcome.ACCEPTED and sent.result.order is not None:
        ctx.registry.set_protection(pos.uid, tp_order_id=sent.result.order.order_id)
        emit(
            Ev.PROTECTIVE_ORDER_PLACED,
            position=pos.uid,
            symbol=pos.symbol_key,
            kind="take_profit",
            trigger_price=pos.take_profit_price,
            size=pos.remaining_qty,
            order_id=sent.result.order.order_id,
        )


def run(ctx: DaemonContext) -> None:
    open_orders = ctx.venue.open_orders()
    for pos in ctx.registry.active_positions():
        if pos.state not in EXPOSED or pos.remaining_qty <= 0:
            continue
        protect_position(ctx, pos, open_orders)
        if ctx.limits.take_profit:
            place_take_profit(ctx, ctx.registry.get(pos.uid), open_orders)
