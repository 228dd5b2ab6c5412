"""reconcile: snapshot -> pure diff (lifecycle.reconcile) -> actions through the registry -> report lines.

The diff decides; this module only executes. A failed snapshot is reported as `complete=false` with zero
counters, never read as "flat".
"""

from __future__ import annotations

import logging
from decimal import Decimal

from exchange.errors import VenueError
from lifecycle.events import Ev, emit
from lifecycle.reconcile import (
    Action,
    AdoptPending,
    ApplyFill,
    CloseFlat,
    ClosePhantom,
    ImportOrphan,
    MissingStop,
    OrderRef,
    QtyMismatch,
    Reconciliation,
    RegistryPosition,
    RelinkStop,
    reconcile,
)
from lifecycle.values import AccountSnapshot, OrderStatus, PositionSide
from operations import exits
from operations.context import DaemonContext
from operations.exits import fills_window_start
from scheduler.jobs import protect

log = logging.getLogger(__name__)

PENDING = frozenset({"PENDING_ENTRY", "ENTRY_OPEN"})


def registry_inputs(ctx: DaemonContext) -> tuple[list[RegistryPosition], dict[str, OrderRef]]:
    positions: list[RegistryPosition] = []
    orders: dict[str, OrderRef] = {}
    for p in ctx.registry.active_positions():
        positions.append(
            RegistryPosition(
                uid=p.uid,
                symbol_key=p.symbol_key,
                side=PositionSide(p.side),
                state=p.state,
                remaining_qty=p.remaining_qty,
                sl_order_id=p.sl_order_id,
                tp_order_id=p.tp_order_id,
                created=p.created,
            )
        )
        for o in ctx.registry.orders_for(p.uid):
            orders[o.client_order_id] = OrderRef(p.uid, o.purpose, o.venue_order_id)
    return positions, orders


def take_snapshot(ctx: DaemonContext) -> AccountSnapshot | None:
    try:
        snapshot = ctx.venue.snapshot(fills_window_start(ctx))
    except VenueError as exc:
        log.warning("reconcile: snapshot failed (%s); this cycle is reported incomplete", exc)
        return None
    ctx.last_margin = snapshot.margin
    if snapshot.fills:
        ctx.recent_fills = snapshot.fills
    return snapshot


def execute(ctx: DaemonContext, action: Action) -> None:
    reg = ctx.registry
    match action:
        case ApplyFill(uid, fill, is_entry):
            reg.record_venue_fill(uid, fill, is_entry=is_entry)
        case AdoptPending(uid, fills):
            for fill in fills:
                reg.record_venue_fill(uid, fill, is_entry=True)
            if reg.get(uid).state in PENDING:
                reg.apply(uid, "entry_filled", cause="reconcile: pending entry filled on the venue")
        case ImportOrphan(symbol, side, qty, entry_price):
            reg.import_position(
                symbol=symbol,
                side=side.value,
                qty=qty,
                entry_price=entry_price,
                cause="reconcile: venue position with no registry position (orphan adopted)",
            )
        case ClosePhantom(uid):
            close_phantom(ctx, uid)
        case CloseFlat(uid):
            pos = reg.get(uid)
            if pos.state in ("OPEN", "PROTECTED", "EXITING"):
                reg.apply(uid, "position_closed", cause="reconcile: ledger and venue agree the position is flat")
                exits.wind_down(ctx, pos)
        case RelinkStop(uid, order_id):
            reg.set_protection(uid, sl_order_id=order_id)
            if reg.get(uid).state == "OPEN":
                reg.apply(uid, "protection_confirmed", cause=f"reconcile: relinked venue stop {order_id}")
        case MissingStop(uid):
            pos = reg.get(uid)
            if pos.state == "OPEN" and pos.remaining_qty > 0:
                protect.place_stop(ctx, pos)
        case QtyMismatch():
            pass  # needs an operator; counted, logged and escalated after 3 consecutive cycles


def close_phantom(ctx: DaemonContext, uid: str) -> None:
    reg = ctx.registry
    pos = reg.get(uid)
    if pos.state in PENDING:
        entry = next((o for o in reg.orders_for(uid) if o.purpose == "entry"), None)
        evidence = ctx.venue.find_order(entry.client_order_id) if entry else None
        if evidence is not None and evidence.filled > 0:
            return  # it did fill: the fills will be adopted, not cancelled
        if evidence is not None and evidence.status is OrderStatus.OPEN:
            return
        if entry is not None and evidence is None and entry.status in ("intent", "unknown"):
            # Absent in two consecutive snapshots and by client order id: settle it, or every restart's
            # recovery would look it up again.
            reg.mark_order(entry.client_order_id, status="cancelled", reason="absent on the venue (reconcile)")
        reg.apply(uid, "entry_cancelled", cause="reconcile: entry never reached the book (phantom)")
        return
    # Exposed but flat on the venue: it was closed while we were not watching.
    reg.close_external(uid, cause="reconcile: position absent on the venue (phantom closed by evidence)")


def venue_sizes(snapshot: AccountSnapshot | None) -> dict[str, Decimal]:
    sizes: dict[str, Decimal] = {}
    for vp in snapshot.positions if snapshot else ():
        sizes[vp.symbol] = sizes.get(vp.symbol, Decimal(0)) + vp.size
    return sizes


def emit_report(
    ctx: DaemonContext, rec: Reconciliation, before: dict[str, Decimal], venue_qty: dict[str, Decimal]
) -> None:
    """`before`: each position's registry quantity before this cycle's fills were applied."""
    for issue in rec.logged:
        if issue.cls == "qty_synced":
            emit(
                Ev.QTY_SYNCED,
                position=issue.uid,
                symbol=issue.symbol,
                fills=issue.detail,
                registry_qty=before.get(issue.uid),
                venue_qty=venue_qty.get(issue.symbol, Decimal(0)),
            )
        else:
            emit(
                Ev.RECONCILIATION_ISSUE,
                issue=issue.cls,
                symbol=issue.symbol,
                position=issue.uid or "-",
                detail=issue.detail,
            )
    report = rec.report
    level = ctx.safety.observe_report(report, ctx.clock.now())
    emit(Ev.RECONCILIATION_REPORT, None, **report.counters(), level=level, complete=report.complete)


def run(ctx: DaemonContext) -> Reconciliation:
    snapshot = take_snapshot(ctx)
    positions, orders = registry_inputs(ctx)
    rec = reconcile(
        positions,
        frozenset(ctx.registry.known_fill_ids()),
        orders,
        snapshot,
        ctx.clock.now(),
        ctx.reconcile_memory,
    )
    ctx.reconcile_memory = rec.memory
    for action in rec.actions:
        execute(ctx, action)
    emit_report(ctx, rec, {p.uid: p.remaining_qty for p in positions}, venue_sizes(snapshot))
    ctx.last_reconciliation = rec
    return rec
