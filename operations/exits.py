"""exits: fills from the venue go into the ledger; a position that a stop or TP brought to zero is closed.

Fills are attributed by our client order id (every order we send carries one), else by the venue order id we
recorded. Fills of orders we never sent are left to reconciliation, which decides orphan or quantity sync.
After a close, the sibling protective order (TP after a stop fill, or the reverse) is cancelled: it is
reduce-only so it could not open a position, but a dangling order is noise for the next reconciliation. The
position's orders still recorded `open` are then settled in the registry (`filled` if the ledger holds a fill of
theirs, else `cancelled`), so the order table and `monitor_trade_execution` do not count a triggered stop as live.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from exchange.errors import OrderNotFound, VenueError
from lifecycle.values import VenueFill
from operations.context import DaemonContext
from store.registry import PositionView

log = logging.getLogger(__name__)

FILL_LOOKBACK = timedelta(minutes=5)
CLOSABLE = frozenset({"OPEN", "PROTECTED", "EXITING"})


def ingest_fills(ctx: DaemonContext, fills: Iterable[VenueFill]) -> set[str]:
    """Record fills of our own orders. Returns the uids of positions that received a fill."""
    known = ctx.registry.known_fill_ids()
    by_coid: dict[str, tuple[str, str]] = {}
    by_venue_id: dict[str, tuple[str, str]] = {}
    touched: set[str] = set()
    pending = [f for f in fills if f.fill_id not in known]
    if not pending:
        return touched
    for pos in ctx.registry.active_positions():
        for order in ctx.registry.orders_for(pos.uid):
            by_coid[order.client_order_id] = (pos.uid, order.purpose)
            if order.venue_order_id:
                by_venue_id[order.venue_order_id] = (pos.uid, order.purpose)
    for fill in pending:
        owner = by_coid.get(fill.client_order_id or "") or by_venue_id.get(fill.order_id)
        if owner is None:
            continue
        uid, purpose = owner
        if ctx.registry.record_venue_fill(uid, fill, is_entry=purpose == "entry"):
            touched.add(uid)
    return touched


def close_flat_positions(ctx: DaemonContext) -> list[str]:
    closed: list[str] = []
    for pos in ctx.registry.active_positions():
        if pos.state not in CLOSABLE or pos.remaining_qty != 0:
            continue
        if pos.state == "OPEN":
            # OPEN -> CLOSED needs the venue to agree that it is flat (a phantom); leave that to reconcile.
            continue
        ctx.registry.apply(pos.uid, "position_closed", cause="closing fills brought the quantity to zero")
        wind_down(ctx, pos)
        closed.append(pos.uid)
    return closed


def wind_down(ctx: DaemonContext, pos: PositionView) -> None:
    """After a close: cancel the protective orders that may still rest on the venue, then settle the rows."""
    for order_id in (pos.sl_order_id, pos.tp_order_id):
        if order_id:
            _cancel_quietly(ctx, order_id)
    settle_open_orders(ctx, pos.uid)


def settle_open_orders(ctx: DaemonContext, uid: str) -> None:
    """A closed position has no live order left: whatever still says `open` either filled or is gone."""
    fills = ctx.registry.fills(uid)
    if any(not f["client_order_id"] and not f["is_entry"] for f in fills):
        return  # an exit fill we cannot attribute to an order: calling any of them cancelled could be a lie
    filled_coids = {str(f["client_order_id"]) for f in fills}
    for order in ctx.registry.orders(uid):
        if order.status != "open":
            continue
        status = "filled" if order.client_order_id in filled_coids else "cancelled"
        reason = None if status == "filled" else "position closed (exits)"
        ctx.registry.mark_order(order.client_order_id, status=status, reason=reason)


def _cancel_quietly(ctx: DaemonContext, order_id: str) -> None:
    try:
        ctx.venue.cancel_order(order_id)
    except OrderNotFound:
        pass  # already gone with the position (filled, or cancelled by the venue)
    except VenueError as exc:
        log.warning("could not cancel leftover protective order %s: %s (reconciliation will see it)", order_id, exc)


def fills_window_start(ctx: DaemonContext) -> datetime | None:
    """Where to read venue fills from: a lookback before the cursor, because a fill stamped in the cursor's own
    millisecond may be published late; the ledger's unique fill ids make re-reading harmless."""
    return ctx.fills_cursor - FILL_LOOKBACK if ctx.fills_cursor else None


def run(ctx: DaemonContext) -> None:
    fills = ctx.venue.fills_since(fills_window_start(ctx))
    if fills:
        ctx.recent_fills = tuple(fills)
        ctx.fills_cursor = max(f.time for f in fills)
    ingest_fills(ctx, fills)
    close_flat_positions(ctx)
