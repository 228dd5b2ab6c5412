"""protect: every exposed position has a live reduce-only stop within one cycle (and a TP where configured).

Order of work per position: a stop we recorded that the venue no longer shows is investigated (cancelled ->
protection_lost and re-place; filled -> left to the exits job); a position with no stop id is first relinked
from the venue's open orders, and only when none is found is a new stop placed. Runs even when halted:
protection is what a halt must never stop.

A remainder below the instrument's minimum order size (dust) cannot get a stop: no venue would take it. Nothing
is sent for it, no intent is recorded each cycle, and `POSITION_UNPROTECTABLE` tells the operator once per
position and process, because only a hand on the venue can close it. A take-profit for dust is simply skipped:
the position is only PROTECTED when a stop covers it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from exchange.errors import VenueError
from exchange.rounding import SizeBelowMinimum, round_size
from lifecycle.events import Ev, emit
from lifecycle.values import OrderOutcome, OrderStatus, OrderType, Side, VenueOrder
from operations.context import DaemonContext
from operations.crash import crash_point
from operations.submit import Submitted, submit
from store.registry import PositionView
from strategy.sizing import take_profit_at

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


def adopt_stop_price(ctx: DaemonContext, pos: PositionView, stop: VenueOrder) -> PositionView:
    """The live stop is what protects the position, so its trigger is the one the registry keeps. This daemon never
    moves a trigger, so a difference means the operator moved the stop by hand (kept: never fought) or a stop was
    relinked; either way a stop re-placed later must start from the venue's price, not a stale one."""
    if stop.trigger_price is None or stop.trigger_price == pos.stop_price:
        return pos
    emit(
        Ev.STOP_PRICE_ADOPTED,
        position=pos.uid,
        symbol=pos.symbol_key,
        order_id=stop.order_id,
        registry_stop=pos.stop_price,
        venue_stop=stop.trigger_price,
    )
    return ctx.registry.update_prices(pos.uid, stop_price=stop.trigger_price)


def resize_stop(ctx: DaemonContext, pos: PositionView, stop: VenueOrder) -> None:
    """Keep the stop's size on the position after a partial exit or a synced fill, without ever lowering how much
    of the position it covers, and without sending an edit that cannot change anything.

    The size an edit can carry is the remainder truncated to the size increment (`round_size`). A stop that
    already covers the whole remainder is shrunk only when that size still covers it; otherwise it stays as it is
    (reduce-only: when it triggers, the venue caps it at what remains). A stop that covers less is grown to the
    largest size an order can carry. So a remainder off the increment, or below the minimum, does not send the
    same refused or no-op edit every cycle."""
    remaining, covered = pos.remaining_qty, stop.size - stop.filled
    if remaining <= 0 or covered == remaining:
        return
    sendable = _sendable_size(ctx, pos)
    if covered > remaining:
        target = sendable if sendable is not None and sendable >= remaining else None
    else:
        target = sendable if sendable is not None and sendable > covered else None
    if target is None or target == covered:
        log.debug(
            "protect: stop %s of %s stays at %s for %s (no order size fits better)",
            stop.order_id,
            pos.uid,
            covered,
            remaining,
        )
        return
    try:
        ctx.venue.edit_order(stop.order_id, size=target, trigger_price=stop.trigger_price, limit_price=stop.limit_price)
    except VenueError as exc:
        log.warning("protect: could not resize stop %s of %s to %s: %s", stop.order_id, pos.uid, target, exc)
        return
    _announce_placed(pos, "stop_loss_resized", stop.trigger_price, stop.order_id, size=target)


def _sendable_size(ctx: DaemonContext, pos: PositionView) -> Decimal | None:
    """The remainder as an order can carry it (truncated to the increment); None when that is below the minimum.
    An instrument missing from our list is left to the venue's own check."""
    instrument = ctx.instruments.get(pos.symbol_key)
    if instrument is None:
        return pos.remaining_qty
    try:
        return round_size(pos.remaining_qty, instrument)
    except SizeBelowMinimum:
        return None


def protect_position(ctx: DaemonContext, pos: PositionView, open_orders: Sequence[VenueOrder]) -> None:
    by_id = {o.order_id: o for o in open_orders}
    if pos.state == "PROTECTED" and pos.sl_order_id in by_id:
        stop = by_id[pos.sl_order_id]
        pos = adopt_stop_price(ctx, pos, stop)
        resize_stop(ctx, pos, stop)
        return
    if pos.state == "PROTECTED" and pos.sl_order_id and pos.sl_order_id not in by_id:
        if _filled(ctx, pos, pos.sl_order_id):
            return
        lost = pos.sl_order_id
        pos = ctx.registry.apply(pos.uid, "protection_lost", cause=f"stop {lost} no longer on the venue")
        ctx.registry.set_protection(pos.uid, sl_order_id=None, tp_order_id=pos.tp_order_id, clear=True)
        _settle_lost_stop(ctx, pos.uid, lost)
    if pos.state != "OPEN":
        return
    live = _find_live_stop(pos, open_orders)
    if live is not None:
        ctx.registry.set_protection(pos.uid, sl_order_id=live.order_id)
        ctx.registry.apply(pos.uid, "protection_confirmed", cause=f"relinked venue stop {live.order_id}")
        return
    place_stop(ctx, pos)


def _settle_lost_stop(ctx: DaemonContext, uid: str, venue_order_id: str) -> None:
    """The stop neither rests on the venue nor filled: its order row says so at once, rather than staying `open`
    beside its replacement until the position closes."""
    for order in ctx.registry.orders_for(uid):
        if order.venue_order_id == venue_order_id and order.status == "open":
            ctx.registry.mark_order(order.client_order_id, status="cancelled", reason="no longer on the venue")


def place_stop(ctx: DaemonContext, pos: PositionView) -> bool:
    minimum = _minimum_above(ctx, pos)
    if minimum is not None:
        _announce_unprotectable(ctx, pos, minimum)
        return False
    stop_price = pos.stop_price
    if stop_price is None:
        stop_price = default_stop(ctx, pos)
        ctx.registry.set_stop_price(pos.uid, stop_price)
    crash_point("before_stop")
    sent = _submit_closing_trigger(ctx, pos, purpose="stop", order_type=OrderType.STOP, trigger_price=stop_price)
    crash_point("after_stop_send")
    if isinstance(sent.refusal, SizeBelowMinimum):  # our instrument list is stale: the adapter's copy knows better
        _announce_unprotectable(ctx, pos, None)
        return False
    result = sent.result
    if result.outcome is not OrderOutcome.ACCEPTED or result.order is None:
        return False
    ctx.registry.set_protection(pos.uid, sl_order_id=result.order.order_id)
    ctx.registry.apply(pos.uid, "protection_confirmed", cause=f"stop {result.order.order_id} placed")
    _announce_placed(pos, "stop_loss", stop_price, result.order.order_id)
    return True


def place_take_profit(ctx: DaemonContext, pos: PositionView, open_orders: Sequence[VenueOrder]) -> None:
    if pos.state != "PROTECTED":
        return
    if pos.take_profit_price is None:
        target = _derived_take_profit(ctx, pos)
        if target is None:
            return
        pos = ctx.registry.update_prices(pos.uid, take_profit_price=target)
    if pos.tp_order_id and (
        any(o.order_id == pos.tp_order_id for o in open_orders) or _filled(ctx, pos, pos.tp_order_id)
    ):
        return
    if _minimum_above(ctx, pos) is not None:
        log.debug("protect: no take-profit for %s: %s is below the minimum order size", pos.uid, pos.remaining_qty)
        return
    assert pos.take_profit_price is not None  # set above when it was missing
    sent = _submit_closing_trigger(
        ctx, pos, purpose="take_profit", order_type=OrderType.TAKE_PROFIT, trigger_price=pos.take_profit_price
    )
    if sent.result.outcome is OrderOutcome.ACCEPTED and sent.result.order is not None:
        ctx.registry.set_protection(pos.uid, tp_order_id=sent.result.order.order_id)
        _announce_placed(pos, "take_profit", pos.take_profit_price, sent.result.order.order_id)


def _derived_take_profit(ctx: DaemonContext, pos: PositionView) -> Decimal | None:
    """A target for a position that arrived without one (an import), the way the strategy sets its own: `R` times
    the entry-to-stop risk beyond the entry. None when no R is configured, the prices are unknown, or the market
    is already past it: a take-profit placed there would trigger at once and close an imported position on the
    spot, which is the operator's call, not ours."""
    r_multiple, entry, stop = ctx.limits.take_profit_r, pos.entry_price, pos.stop_price
    instrument = ctx.instruments.get(pos.symbol_key)
    if r_multiple is None or entry is None or stop is None or instrument is None:
        return None
    long = pos.side == "long"
    target = take_profit_at(entry, stop, r_multiple, instrument.tick_size, long)
    try:
        mark = ctx.venue.tickers()[pos.symbol_key].mark
    except (VenueError, KeyError):
        return None  # unknown market: try again next cycle rather than risk an instant trigger
    if target is None or (mark >= target if long else mark <= target):
        log.debug("protect: no take-profit derived for %s (target %s, mark %s)", pos.uid, target, mark)
        return None
    return target


def _submit_closing_trigger(
    ctx: DaemonContext, pos: PositionView, *, purpose: str, order_type: OrderType, trigger_price: Decimal
) -> Submitted:
    """Every protective order has this shape: reduce-only, on the closing side, for all that remains."""
    sent = submit(
        ctx.registry,
        ctx.venue,
        pos.uid,
        symbol=pos.symbol_key,
        purpose=purpose,
        side=closing_side(pos.side),
        order_type=order_type,
        qty=pos.remaining_qty,
        trigger_price=trigger_price,
        reduce_only=True,
    )
    ctx.stats.orders_placed += 1
    return sent


def _announce_placed(
    pos: PositionView, kind: str, trigger_price: Decimal | None, order_id: str, size: Decimal | None = None
) -> None:
    emit(
        Ev.PROTECTIVE_ORDER_PLACED,
        position=pos.uid,
        symbol=pos.symbol_key,
        kind=kind,
        trigger_price=trigger_price,
        size=pos.remaining_qty if size is None else size,
        order_id=order_id,
    )


def _minimum_above(ctx: DaemonContext, pos: PositionView) -> Decimal | None:
    """The instrument's minimum when the remainder is below it (the venue's own pre-send check, `round_size`),
    asked before an intent is recorded for an order that cannot go; None when an order can go."""
    if _sendable_size(ctx, pos) is not None:
        return None
    instrument = ctx.instruments[pos.symbol_key]
    return max(instrument.min_size, instrument.size_increment)


def _announce_unprotectable(ctx: DaemonContext, pos: PositionView, min_size: Decimal | None) -> None:
    # The condition lasts until a human acts, and one line per protect cycle would bury everything else; the set
    # lives in the context, so a restart announces them again.
    if pos.uid in ctx.announced_unprotectable:
        return
    ctx.announced_unprotectable.add(pos.uid)
    emit(
        Ev.POSITION_UNPROTECTABLE,
        position=pos.uid,
        symbol=pos.symbol_key,
        remaining_qty=pos.remaining_qty,
        min_size=min_size,
        detail=(
            f"no stop can be sent for {pos.remaining_qty} {pos.symbol_key}: below the venue's minimum order size, "
            "so the position stays unprotected. Close it on the venue by hand; reconciliation then closes it in the "
            "registry."
        ),
    )


def run(ctx: DaemonContext) -> None:
    open_orders = ctx.venue.open_orders()
    for pos in ctx.registry.active_positions():
        if pos.state not in EXPOSED or pos.remaining_qty <= 0:
            continue
        protect_position(ctx, pos, open_orders)
        if ctx.limits.take_profit:
            place_take_profit(ctx, ctx.registry.get(pos.uid), open_orders)
