"""Entering a position: intent -> one entry order -> its fills through the one door -> the stop re-anchored to the
actual fill (or an exit when the entry slipped past `risk.max_entry_slippage_r`) -> protection at once.

Every step is durable before the next venue call: open_intent -> record_order_intent -> place -> entry_acknowledged
/ entry_filled / entry_rejected. The stop is placed right after the fill (protect would within one cycle anyway;
doing it here shortens the unprotected window to one round trip). The tick job decides which entries to make; this
module makes them, for the daemon and the backtest alike.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from exchange.errors import VenueError
from lifecycle.events import Ev, emit
from lifecycle.fills import adding_side
from lifecycle.protection import round_to_tick
from lifecycle.values import OrderOutcome, OrderType, PositionSide
from operations import protection
from operations.context import DaemonContext, EntryPlan
from operations.crash import crash_point
from operations.exit_order import exit_position
from operations.exits import fills_window_start
from operations.fills import ingest
from operations.submit import submit
from specs.lifecycle import Event, State
from store.registry import PositionView

log = logging.getLogger(__name__)


def enter(ctx: DaemonContext, plan: EntryPlan) -> str:
    """Open one position. Returns the position uid."""
    pos = ctx.registry.open_intent(
        symbol=plan.symbol,
        side=plan.side,
        target_qty=plan.qty,
        stop_price=plan.stop_price,
        take_profit_price=plan.take_profit_price,
        cause=f"strategy: {plan.reason}",
        decision_price=plan.decision_price,
    )
    sent = submit(
        ctx.registry,
        ctx.venue,
        pos.uid,
        symbol=plan.symbol,
        purpose="entry",
        side=adding_side(PositionSide(plan.side)),
        order_type=OrderType.MARKET,
        qty=plan.qty,
    )
    ctx.stats.orders_placed += 1
    result = sent.result
    if result.outcome is OrderOutcome.REJECTED:
        # A local refusal (never sent) carries its own "not_sent:" reason; only the rest came from the venue.
        cause = f"{result.reason}" if sent.refusal is not None else f"venue rejected: {result.reason}"
        ctx.registry.apply(pos.uid, Event.ENTRY_REJECTED, cause=cause)
        return pos.uid
    if result.outcome is OrderOutcome.UNKNOWN:
        return pos.uid  # stays PENDING_ENTRY; reconciliation adopts or cancels it by evidence
    fills = list(result.fills)
    if not fills and result.order is not None and result.order.filled > 0:
        try:
            fills = [
                f for f in ctx.venue.fills_since(fills_window_start(ctx)) if f.client_order_id == sent.client_order_id
            ]
        except VenueError as exc:
            log.warning("entry %s filled but its fills could not be fetched yet (%s)", sent.client_order_id, exc)
    # The one door records the fills and applies entry_filled once the entry no longer rests on the book.
    ingest(ctx, fills, source="tick")
    crash_point("after_fill")
    current = ctx.registry.get(pos.uid)
    if current.state == State.PENDING_ENTRY:
        ctx.registry.apply(pos.uid, Event.ENTRY_ACKNOWLEDGED, cause=f"entry {sent.client_order_id} accepted")
    elif current.state == State.OPEN:
        # The fills door re-anchored the stop to the fill (or exited a slipped entry: no longer OPEN). Placed right
        # after the fill: protect would within one cycle anyway; this shortens the unprotected window to one round
        # trip.
        protection.protect(ctx, current, ())
    return pos.uid


def anchor_to_fill(ctx: DaemonContext, pos: PositionView, plan: EntryPlan) -> bool:
    """`anchor` with the plan's decision price and stop."""
    return anchor(ctx, pos, plan.decision_price, plan.stop_price)


def anchor(ctx: DaemonContext, pos: PositionView, decision: Decimal | None, planned_stop: Decimal | None) -> bool:
    """Re-anchor the planned stop (and take-profit) to the entry's actual fill price, so the loss at the stop is the
    risk the strategy sized for, not that plus the slippage. An entry that slipped more than
    `risk.max_entry_slippage_r` is exited at once instead. Returns True when the position was exited. Run by the
    fills door with `entry_filled` (operations.fills.entry_filled), whichever door the entry's fill came through."""
    fill = pos.entry_price
    if decision is None or planned_stop is None or fill is None:
        return False
    risk = abs(decision - planned_stop)
    if risk == 0:
        return False
    long = pos.side == PositionSide.LONG
    adverse = (fill - decision) if long else (decision - fill)
    slippage_r = adverse / risk
    tick = ctx.instruments[pos.symbol_key].tick_size

    def announce(action: str) -> None:
        emit(
            Ev.ENTRY_SLIPPAGE,
            position=pos.uid,
            symbol=pos.symbol_key,
            decision_price=decision,
            fill_price=fill,
            slippage_r=slippage_r.quantize(Decimal("0.01")),
            action=action,
        )

    # The prices move to the fill first, also for an entry about to be exited: should the exit fail (the venue
    # refuses it, the reply is lost), the position is protected at the planned risk from where it really is, never
    # at a stop planned from a price it did not get (DST seeds 2102, 2125: 27 % from the entry, an audit violation).
    stop = round_to_tick(fill - risk if long else fill + risk, tick, down=long)
    target = pos.take_profit_price
    if target is not None:
        target = round_to_tick(target + (fill - decision), tick, down=not long)
    moved = stop != pos.stop_price or target != pos.take_profit_price
    if moved:
        ctx.registry.update_prices(pos.uid, stop_price=stop, take_profit_price=target)
    if slippage_r > ctx.limits.max_entry_slippage_r:
        announce("exit")
        exit_position(ctx, pos.uid, reason=f"entry slipped {slippage_r:.2f} R past the decision price")
        return True
    if moved and adverse != 0:
        announce("stop_reanchored")
    return False
