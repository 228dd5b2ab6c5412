"""The one door for venue fills: every fill the daemon or a tool learns of — the exits job's poll, an entry's own
answer, the order stream, reconciliation — is recorded here, and here only is the consequence applied.

`ingest` asks the pure rules (`lifecycle.fills.attribute`, `lifecycle.fills.consequence`), records each owned fill in
the ledger (the fill id makes a replay or a duplicate a no-op), then applies the event the consequence rule names:
`entry_filled` for a pending entry, or the one close operation (`operations.close`) for a position the fills brought
to zero — which cancels its other protective orders on the venue at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from lifecycle.events import Ev, emit
from lifecycle.fills import (
    Attributed,
    FillOwners,
    FillRole,
    OrderOwner,
    PositionFacts,
    attribute,
    consequence,
    exposure_began,
    held_since,
    must_be_accounted,
    owners_from,
    unowned_reason,
)
from lifecycle.values import VenueFill
from operations.close import close_position
from operations.context import DaemonContext
from specs.lifecycle import ORDER_UNRESOLVED_STATUSES, Event, OrderStatus
from store.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    recorded: tuple[Attributed, ...]  # fills written to the ledger by this call
    unowned: tuple[VenueFill, ...]  # new fills nothing we hold explains (reconciliation judges them)
    events: tuple[tuple[str, Event], ...]  # (uid, event) applied as their consequence


def owners(ctx: DaemonContext, fills: Sequence[VenueFill]) -> FillOwners:
    """The registry's facts attribution needs for this batch: every active position, and our orders named by the
    batch's client or venue order ids (of terminal positions too, so a stray's fill is recognised as one)."""
    registry = ctx.registry
    holders = [p.held(ctx.created_of(p.uid, p.created)) for p in registry.active_positions()]
    coids = {f.client_order_id for f in fills if f.client_order_id}
    rows = registry.orders_matching(coids, {f.order_id for f in fills})
    states = registry.position_states({o.position_uid for o in rows})
    orders = [
        (o.client_order_id, OrderOwner(o.position_uid, o.purpose, states[o.position_uid], o.venue_order_id))
        for o in rows
    ]
    return owners_from(orders, holders)


def record(ctx: DaemonContext, fills: Sequence[VenueFill]) -> tuple[tuple[Attributed, ...], tuple[VenueFill, ...]]:
    """Attribute and record the fills not judged yet; no lifecycle event is applied. A fill is judged once: the
    first door that meets it books what a position owns and records the rest as unowned; a later read (the next
    poll of the fill window, another door, a restart) finds it in the ledger or the unowned record and skips it.
    Judged again, a fill recorded unowned was booked after all once an add had grown the position enough to absorb
    it, after its UNOWNED_FILL report had told the operator it was nobody's (DST seed 2587)."""
    registry = ctx.registry
    known = registry.fill_ids_judged([f.fill_id for f in fills])
    new = [f for f in fills if f.fill_id not in known]
    if not new:
        return (), ()
    recorded: list[Attributed] = []
    unowned: list[VenueFill] = []
    known_owners = owners(ctx, new)
    # One transaction for the batch: a split fill's booked part and its unowned rest carry one fill id, and a fill
    # found in either record is never judged again, so a crash between the two must leave neither.
    with registry.batch():
        for a in attribute(new, known_owners):
            if a.uid is None:
                unowned.append(a.fill)
                continue
            stop_limit = _stop_limit(ctx, a.fill.symbol)
            if registry.record_venue_fill(a.uid, a.fill, is_entry=a.is_entry, stop_limit=stop_limit):
                recorded.append(a)
        _record_unowned(registry, unowned, known_owners, new)
        _settle_filled_orders(registry, {a.fill.client_order_id for a in recorded if a.fill.client_order_id})
    for a in recorded:
        if a.role is not FillRole.OWN:
            log.warning(
                "fill %s on %s is not one of our orders: booked as %s of position %s",
                a.fill.fill_id,
                a.fill.symbol,
                a.role.value,
                a.uid,
            )
    return tuple(recorded), tuple(unowned)


def _record_unowned(
    registry: Registry, unowned: Sequence[VenueFill], known: FillOwners, batch: Sequence[VenueFill]
) -> None:
    """Fills the registry must account for (`lifecycle.fills.must_be_accounted`) that no position can own: recorded
    once as unowned and reported (UNOWNED_FILL, an operator alert) the first time any door meets them, never again
    (not on the next poll, not after a restart). The exposure such a fill moved is reconciliation's to judge (an
    orphan, a qty_mismatch); the fill itself is accounted for, so joint J3 does not count it cycle after cycle and
    escalate to a pause of entries that only a restart lifted and the next read of the fill brought back. The symbols
    held are read with the batch's exposure (`lifecycle.fills.exposure_began`: an entry of the batch may open some),
    and only when some fill is unowned: most batches have none."""
    if not unowned:
        return
    ours = {*known.by_client_id, *known.by_venue_id}
    began = exposure_began(batch, known)
    since = held_since(known.holders, began)  # once per batch, not once per fill
    for fill in (f for f in unowned if must_be_accounted(f, ours, since)):
        position, reason = unowned_reason(fill, known, began)
        if registry.record_unowned(fill, position_uid=position, reason=reason):
            emit(
                Ev.UNOWNED_FILL,
                position=position,
                fill_id=fill.fill_id,
                symbol=fill.symbol,
                side=fill.side.value,
                qty=fill.size,
                price=fill.price,
                reason=reason,
            )


def _stop_limit(ctx: DaemonContext, symbol: str) -> tuple[Decimal, Decimal]:
    """What keeps a recorded stop within `risk.max_stop_distance_pct` of an entry an add moved: the limit and the
    symbol's tick, as the protection planner reads them."""
    from operations.protection import market_tick  # protection imports this door: break the cycle

    return ctx.limits.max_stop_distance_pct, market_tick(ctx, symbol)


def _settle_filled_orders(registry: Registry, client_order_ids: set[str]) -> None:
    """Order rows follow the venue: an order whose ledger fills now cover its quantity is `filled`, whatever the
    send's answer said (a reply lost and resolved from history, a status read as `open` a moment too early)."""
    for coid in sorted(client_order_ids):
        order = registry.order_by_client_id(coid)
        if order is None or order.status not in (*ORDER_UNRESOLVED_STATUSES, OrderStatus.CANCELLED):
            continue
        filled = sum(
            (Decimal(str(f["qty"])) for f in registry.fills(order.position_uid) if f["client_order_id"] == coid),
            Decimal(0),
        )
        if filled >= order.qty or (order.status == OrderStatus.CANCELLED and filled > 0):
            # A `cancelled` answer with filled=0 can be wrong (ccxt issue 28210): the fills are the stronger evidence.
            registry.mark_order(coid, status=OrderStatus.FILLED, reason="its fills cover its size")


def facts(registry: Registry, uid: str) -> PositionFacts:
    pos = registry.get(uid)
    ledger = registry.fills(uid)
    entry_qty = sum((Decimal(str(f["qty"])) for f in ledger if f["is_entry"]), Decimal(0))
    entry_rows = [o for o in registry.orders(uid) if o.purpose == "entry"]
    # A resting entry that is not yet filled in full may still grow the position: it is not "filled" yet.
    live = any(o.status == OrderStatus.OPEN and entry_qty < o.qty for o in entry_rows)
    return PositionFacts(pos.state, pos.remaining_qty, entry_qty > 0, live)


def ingest(ctx: DaemonContext, fills: Sequence[VenueFill], *, source: str = "fills") -> IngestResult:
    """Record the fills and apply their consequences. `source` names the door's caller in causes and logs."""
    recorded, unowned = record(ctx, fills)
    events: list[tuple[str, Event]] = []
    for uid in sorted({a.uid for a in recorded if a.uid is not None}):
        event = consequence(facts(ctx.registry, uid))
        if event is Event.ENTRY_FILLED:
            entry_filled(ctx, uid, cause=f"{source}: entry filled on the venue")
            events.append((uid, event))
            # A hand's trade in the same batch may have brought it back to zero already (a lost reply left the entry
            # pending while the venue filled it): then the same fills close it.
            event = consequence(facts(ctx.registry, uid))
        if event is Event.POSITION_CLOSED:
            # The exit reason is read from the evidence by the accounting's one rule (lifecycle.accounting).
            close_position(ctx, uid, cause=f"{source}: closing fills brought the quantity to zero", reason=source)
            events.append((uid, event))
    return IngestResult(recorded, unowned, tuple(events))


def entry_filled(ctx: DaemonContext, uid: str, *, cause: str) -> None:
    """The one consequence of an entry's fills, whichever door they came through (the entry's own answer, the fill
    poll after a lost reply, recovery after a crash, reconciliation adopting a pending entry): `entry_filled`, then
    the planned stop re-anchored to the fill price, or the position exited at once when the entry slipped past
    `risk.max_entry_slippage_r` (operations.entry.anchor). Only the entry's own answer did this before: a fill booked
    by any other door kept the stop planned from the decision price, which after a slipped fill can sit beyond
    `risk.max_stop_distance_pct` of the entry (the audit's invalid_stop_prices; DST seeds 51, 101, 165)."""
    from operations.entry import anchor  # the entry path imports this door: break the cycle

    pos = ctx.registry.apply(uid, Event.ENTRY_FILLED, cause=cause)
    if pos.remaining_qty > 0:  # at zero a hand's trade closed it already: no stop to anchor, nothing to exit
        anchor(ctx, pos, ctx.registry.decision_price(uid), pos.stop_price)
