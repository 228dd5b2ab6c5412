"""Exiting a position on purpose: `exit_requested` -> one reduce-only market order -> its fills through the one door
(`operations.fills.ingest`, which closes the position and cancels its stop and take-profit) -> `exit_failed` back
to OPEN when the venue refused the exit, so protection takes over again.

Used by the strategy's exit signal (tick), and by protection when a stop level is already crossed and the policy
says `on_crossed_stop = "exit"`. An exit whose outcome is unknown leaves the position EXITING: recovery and
reconciliation resolve it by evidence (never a second exit order), and `settle_exits` moves an EXITING position
whose exit order ended without closing it back to OPEN.
"""

from __future__ import annotations

import logging

from exchange.errors import VenueError
from lifecycle.fills import closing_side
from lifecycle.values import OrderOutcome, OrderType, PositionSide
from operations.context import DaemonContext
from operations.crash import crash_point
from operations.fills import ingest
from operations.submit import submit
from specs.lifecycle import ORDER_UNRESOLVED_STATUSES, Event, State

log = logging.getLogger(__name__)


def exit_position(ctx: DaemonContext, uid: str, *, reason: str) -> str:
    """Request and send the exit; returns the position's state afterwards."""
    reg = ctx.registry
    pos = reg.get(uid)
    if pos.state not in (State.OPEN, State.PROTECTED) or pos.remaining_qty <= 0:
        return pos.state
    reg.apply(uid, Event.EXIT_REQUESTED, cause=f"exit: {reason}")
    crash_point("after_exit_requested")
    sent = submit(
        reg,
        ctx.venue,
        uid,
        symbol=pos.symbol_key,
        purpose="exit",
        side=closing_side(PositionSide(pos.side)),
        order_type=OrderType.MARKET,
        qty=pos.remaining_qty,
        reduce_only=True,
    )
    ctx.stats.orders_placed += 1
    result = sent.result
    if result.outcome is OrderOutcome.REJECTED:
        reg.apply(uid, Event.EXIT_FAILED, cause=f"exit refused: {result.reason}")
        return reg.get(uid).state
    if result.outcome is OrderOutcome.UNKNOWN:
        return reg.get(uid).state
    fills = list(result.fills)
    if not fills:
        try:
            fills = [f for f in ctx.venue.fills_since(pos.created) if f.client_order_id == sent.client_order_id]
        except VenueError as exc:
            log.warning("exit %s sent; its fills could not be read yet (%s): the fill poll books them", uid, exc)
    ingest(ctx, fills, source="exit")
    return reg.get(uid).state


def settle_exits(ctx: DaemonContext) -> list[str]:
    """EXITING positions whose exit order has ended (cancelled, rejected, or filled for less than the position)
    while quantity remains, or that have no exit order at all: `exit_failed`, so the position is OPEN again and
    protect re-establishes its stop.

    No exit order at all: the process died between the `exit_requested` transition and the exit's intent, which is
    recorded before anything is sent (`operations.submit`), so no exit reached the venue. The jobs never run at the
    same time, so no other job sees a position between those two steps in a live process."""
    failed: list[str] = []
    for pos in ctx.registry.active_positions():
        if pos.state != State.EXITING or pos.remaining_qty <= 0:
            continue
        exits = [o for o in ctx.registry.orders(pos.uid) if o.purpose == "exit"]
        if not exits:
            cause = "no exit order was ever recorded (the process stopped after the request)"
        elif all(o.status not in ORDER_UNRESOLVED_STATUSES for o in exits):
            cause = "exit order ended with quantity remaining"
        else:
            continue
        ctx.registry.apply(pos.uid, Event.EXIT_FAILED, cause=cause)
        failed.append(pos.uid)
    return failed
