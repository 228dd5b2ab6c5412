"""Reconciliation execution: the pure diff (`lifecycle.reconcile`) decides; this module runs its actions through the
rest of operations/ — fills through the one door, closes through the one close, stops through the one planner. The
reconcile job and the operator tools (`sync_positions --execute`) both come here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from exchange.errors import VenueError
from lifecycle.clock import Clock
from lifecycle.events import Ev, emit
from lifecycle.fills import held_since, must_be_accounted
from lifecycle.joint import JointInputs, JointReport, OrderRow, evaluate
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
    RelinkStop,
    snapshot_problem,
)
from lifecycle.values import AccountSnapshot, RegistryPosition, VenueFill
from lifecycle.values import OrderStatus as VenueStatus
from operations import protection
from operations.close import close_position, settle_orders
from operations.context import DaemonContext
from operations.fills import entry_filled, ingest
from operations.orders import record_evidence
from specs.lifecycle import (
    ENTRY_PENDING_STATES,
    EXPOSED_STATES,
    ORDER_UNRESOLVED_STATUSES,
    PROTECTABLE_STATES,
    TERMINAL_STATES,
    Event,
    OrderStatus,
)
from store.registry import PositionView, Registry

log = logging.getLogger(__name__)


Began = Callable[[str, datetime], datetime]
"""(position uid, its `created`) -> when it began against venue times (`lifecycle.clock.position_began`)."""


def registry_inputs(ctx: DaemonContext) -> tuple[list[RegistryPosition], dict[str, OrderRef]]:
    """The pure reconciliation's registry side, on the daemon's context."""
    return read_inputs(ctx.registry, ctx.created_of)


def read_inputs(registry: Registry, began: Began) -> tuple[list[RegistryPosition], dict[str, OrderRef]]:
    """The pure reconciliation's registry side: the active positions, dated by `began`, and their orders. The one
    reading for the daemon and for the tools (over the registry opened read-only)."""
    positions: list[RegistryPosition] = []
    orders: dict[str, OrderRef] = {}
    active = registry.active_positions()
    orders_of = registry.orders_of([p.uid for p in active])
    for p in active:
        positions.append(p.held(began(p.uid, p.created)))
        for o in orders_of.get(p.uid, ()):
            orders[o.client_order_id] = OrderRef(p.uid, o.purpose, o.venue_order_id)
    return positions, orders


def execute(ctx: DaemonContext, actions: Sequence[Action], snapshot: AccountSnapshot | None) -> None:
    """Run the diff's actions through operations/: fills through the one door, closes through the one close, stops
    through the one planner."""
    reg = ctx.registry
    ctx.rows_at_snapshot = frozenset(o.client_order_id for o in reg.unresolved_orders())
    planned = [a.fill for a in actions if isinstance(a, ApplyFill)]
    planned += [f for a in actions if isinstance(a, AdoptPending) for f in a.fills]
    # The door judges whole fills: a fill the plan split (a hand's trade through zero: the closing part booked, the
    # rest unowned) goes in as the venue reported it, so the door records both parts, not the first one only.
    ids = {f.fill_id for f in planned}
    whole = {f.fill_id: f for f in snapshot.fills if f.fill_id in ids} if planned and snapshot is not None else {}
    fills = list({f.fill_id: whole.get(f.fill_id, f) for f in planned}.values())
    if fills:
        ingest(ctx, fills, source="reconcile")
    open_orders = snapshot.open_orders if snapshot is not None else ()
    for action in actions:
        match action:
            case AdoptPending(uid, _):
                adopt_pending(ctx, uid)
            case ImportOrphan():
                import_orphan(ctx, action, cause="reconcile: venue position with no registry position (orphan adopted)")
            case ClosePhantom(uid):
                close_phantom(ctx, uid)
            case CloseFlat(uid):
                if reg.get(uid).state in EXPOSED_STATES:
                    close_position(
                        ctx, uid, cause="reconcile: ledger and venue agree the position is flat", reason="reconcile"
                    )
            case RelinkStop(uid) | MissingStop(uid):
                pos = reg.get(uid)
                if pos.state in PROTECTABLE_STATES and pos.remaining_qty > 0:
                    protection.protect(ctx, pos, open_orders)
            case QtyMismatch():
                pass  # needs an operator; counted, logged and escalated after 3 consecutive cycles


IMPORT_AFTER_SNAPSHOT = timedelta(milliseconds=1)
"""The ledger's resolution: an import is stamped this long after the snapshot that showed the position."""


def import_orphan(ctx: DaemonContext, orphan: ImportOrphan, *, cause: str) -> PositionView:
    """Adopt a venue position the registry does not hold: the one import, for the reconciliation job and the
    operator's `sync_positions --execute` alike. Its synthetic entry fill is stamped by the venue's clock just after
    the snapshot that showed the position: every fill stamped at or before the snapshot's server time (the hand
    fills that built it, one of which may carry the snapshot's very stamp) is inside the imported quantity and must
    not be booked again as an external add (lifecycle.fills rule 3); a fill after it is a new trade. The host clock
    is never used: a skewed or stepped one would move that boundary by its error."""
    return ctx.registry.import_position(
        symbol=orphan.symbol,
        side=orphan.side.value,
        qty=orphan.qty,
        entry_price=orphan.entry_price,
        cause=cause,
        fill_time=None if orphan.as_of is None else orphan.as_of + IMPORT_AFTER_SNAPSHOT,
    )


def adopt_pending(ctx: DaemonContext, uid: str) -> None:
    """A pending entry whose order is no longer live and whose fills are in the ledger: its entry row follows the
    venue (filled), then `entry_filled` if the fills door has not applied it already."""
    reg = ctx.registry
    for order in reg.orders(uid):
        if order.purpose == "entry" and order.status in ORDER_UNRESOLVED_STATUSES:
            reg.mark_order(order.client_order_id, status=OrderStatus.FILLED, reason="reconcile: filled on the venue")
    if reg.get(uid).state in ENTRY_PENDING_STATES and reg.get(uid).remaining_qty > 0:
        entry_filled(ctx, uid, cause="reconcile: pending entry filled on the venue")


def close_phantom(ctx: DaemonContext, uid: str) -> None:
    reg = ctx.registry
    pos = reg.get(uid)
    if pos.state in ENTRY_PENDING_STATES:
        entry = next((o for o in reg.orders(uid) if o.purpose == "entry"), None)
        evidence = ctx.venue.find_order(entry.client_order_id) if entry else None
        if evidence is not None and evidence.filled > 0:
            return  # it did fill: the fills will be adopted, not cancelled
        if evidence is not None and evidence.status is VenueStatus.OPEN:
            return
        if entry is not None and evidence is None and entry.status in ("intent", "unknown"):
            # Absent in two consecutive snapshots and by client order id: settle it, or every restart's
            # recovery would look it up again.
            reg.mark_order(
                entry.client_order_id, status=OrderStatus.CANCELLED, reason="absent on the venue (reconcile)"
            )
        reg.apply(uid, Event.ENTRY_CANCELLED, cause="reconcile: entry never reached the book (phantom)")
        return
    # Exposed but flat on the venue: it was closed while we were not watching. The venue's own closing fills
    # (a manual close, a liquidation: no cliOrdId of ours) are looked for back to the position's creation and booked
    # through the one door, which closes the position and cancels its orders.
    try:
        ingest(ctx, ctx.venue.fills_since(ctx.created_of(uid, pos.created)), source="reconcile phantom")
    except VenueError as exc:
        log.warning("reconcile: could not read the fill history for phantom %s (%s); next cycle retries", uid, exc)
        return
    if reg.get(uid).state in TERMINAL_STATES:
        return
    # Last resort: the venue's fill history no longer reaches back. A synthetic balancing fill (marked as such in the
    # ledger by its `external_close:` id and in the report) keeps the ledger explaining the quantity.
    ctx.phantom_synthetic_closes += 1
    log.warning("reconcile: no venue fill explains phantom %s; closed with a synthetic fill at its entry price", uid)
    reg.close_external(uid, cause="reconcile: position absent on the venue, no closing fill found (synthetic close)")
    close_position(ctx, uid, cause="reconcile: phantom", reason="phantom")


def settle_strays(ctx: DaemonContext, snapshot: AccountSnapshot) -> int:
    """Live venue orders of terminal positions (a close whose cancel failed, a fill that raced it): cancelled and
    settled now through the one close's `settle_orders`. Returns how many positions were wound down."""
    reg = ctx.registry
    rows = reg.orders_matching(
        {o.client_order_id for o in snapshot.open_orders if o.client_order_id},
        {o.order_id for o in snapshot.open_orders},
    )
    states = reg.position_states({r.position_uid for r in rows})
    done = 0
    for uid in sorted({r.position_uid for r in rows if states.get(r.position_uid) in TERMINAL_STATES}):
        pos = reg.get(uid)
        left = settle_orders(ctx, pos, snapshot.open_orders)
        emit(Ev.ORDERS_SETTLED, position=uid, state=pos.state, cancelled="stray", left=left)
        done += 1
    return done


def evaluate_joint(ctx: DaemonContext, snapshot: AccountSnapshot | None) -> JointReport | None:
    """The joint invariants over the registry as it stands after this cycle's actions and the snapshot already
    taken (lifecycle.joint); None when the snapshot could not be classified."""
    if snapshot is None or snapshot_problem(snapshot):
        return None
    gone = ctx.cancelled_since_snapshot
    snapshot = replace(snapshot, open_orders=tuple(o for o in snapshot.open_orders if o.order_id not in gone))
    inputs = joint_inputs(
        ctx.registry,
        snapshot,
        began=ctx.created_of,
        clock=ctx.clock,
        marks=ctx.last_marks,
        max_replacements_per_hour=ctx.limits.max_replacements_per_hour,
        max_stop_distance_pct=ctx.limits.max_stop_distance_pct,
    )
    report, ctx.joint_memory = evaluate(inputs, ctx.joint_memory)
    ctx.last_joint = report
    return report


def joint_inputs(
    reg: Registry,
    snapshot: AccountSnapshot,
    *,
    began: Began,
    clock: Clock,
    marks: dict[str, Decimal],
    max_replacements_per_hour: int,
    max_stop_distance_pct: Decimal,
    with_fills: bool = True,
) -> JointInputs:
    """What the joint invariants read (lifecycle.joint): the registry beside one venue snapshot. The one assembly
    for the reconcile job and the read-only tools (`tools._joint`). `with_fills=False`: the snapshot's fills are not
    judged (one look cannot tell a fill the daemon's next poll books from one it never will)."""
    active = reg.active_positions()
    positions = [p.held(began(p.uid, p.created)) for p in active]
    named = reg.orders_matching(
        {o.client_order_id for o in snapshot.open_orders if o.client_order_id}
        | {f.client_order_id for f in snapshot.fills if f.client_order_id},
        {o.order_id for o in snapshot.open_orders} | {f.order_id for f in snapshot.fills},
    )
    open_rows = [o for o in reg.unresolved_orders() if o.status == OrderStatus.OPEN]
    by_coid = {o.client_order_id: o for o in [*named, *open_rows]}
    states = reg.position_states({o.position_uid for o in by_coid.values()})
    rows = [
        OrderRow(o.client_order_id, o.venue_order_id, o.position_uid, states.get(o.position_uid, ""), o.status)
        for o in by_coid.values()
    ]
    unbooked: list[VenueFill] = []
    if with_fills:
        ids = [f.fill_id for f in snapshot.fills]
        accounted = reg.fill_ids_judged(ids)
        ours = {o.client_order_id for o in named} | {o.venue_order_id for o in named if o.venue_order_id}
        held = held_since(positions)
        unbooked = [f for f in snapshot.fills if f.fill_id not in accounted and must_be_accounted(f, ours, held)]
    exposed = [p.uid for p in active if p.state in EXPOSED_STATES]
    orders_of = reg.orders_of(exposed)
    placements = {uid: protection.placements_in_window(clock, orders_of.get(uid, [])) for uid in exposed}
    return JointInputs(
        positions,
        rows,
        snapshot,
        unbooked,
        marks,
        placements,
        max_replacements_per_hour,
        max_stop_distance_pct,
    )


def settle_vanished(ctx: DaemonContext, snapshot: AccountSnapshot) -> int:
    """Order rows recorded `open` whose order is no longer on the venue's book (filled, or cancelled by the venue
    or by hand) follow the venue's answer about them (operations.orders), whatever position they belong to: the
    rows never keep saying `open` for an order that is gone. One history lookup per such row, which is rare."""
    reg = ctx.registry
    on_book = {o.order_id for o in snapshot.open_orders} - ctx.cancelled_since_snapshot
    on_book_coids = {o.client_order_id for o in snapshot.open_orders if o.client_order_id}
    # "Sent after the snapshot" is judged by which rows existed when the cycle began acting on it, never by comparing
    # the rows' created time (the daemon's clock) with the snapshot's (the venue's): a host clock an hour ahead, or
    # stepped back after writing rows, kept every vanished row `open` for that hour (DST seeds 14 and 88).
    before = ctx.rows_at_snapshot
    settled = 0
    for order in reg.unresolved_orders():
        if order.status != OrderStatus.OPEN or not order.venue_order_id:
            continue
        if order.venue_order_id in on_book or order.client_order_id in on_book_coids:
            continue
        if before is not None and order.client_order_id not in before:
            continue  # sent after the snapshot was taken: not on it yet
        if before is None and order.created is not None and order.created > snapshot.server_time:
            continue  # (no execute ran before this call: the clock comparison is all there is)
        try:
            evidence = ctx.venue.find_order(order.client_order_id)
        except VenueError as exc:
            log.warning("reconcile: could not look up vanished order %s (%s)", order.client_order_id, exc)
            continue
        if evidence is not None and evidence.status is VenueStatus.OPEN:
            continue  # the snapshot missed it; the venue says it rests
        record_evidence(reg, order, evidence, absent="no longer on the venue (reconcile)")
        settled += 1
    return settled
