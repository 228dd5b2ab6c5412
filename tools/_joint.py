"""The joint invariants (registry x venue) as the read-only tools see them: the daemon's own evaluation
(`lifecycle.joint.evaluate`) over one venue snapshot and the registry opened read-only.

A tool sees one instant, so nothing has a grace: a finding the daemon would still be waiting out (a stop the next
protect run places) is reported too, marked as such. `pre_flight_check` and `check_tp_coverage` read this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exchange.venue import Venue
from lifecycle.joint import Finding, HeldPosition, JointInputs, OrderRow, evaluate
from lifecycle.reconcile import reconcile
from lifecycle.units import units_to_qty
from lifecycle.values import AccountSnapshot, PositionSide
from settings.config import Settings
from specs.lifecycle import ACTIVE_STATES, ORDER_UNRESOLVED_STATUSES
from store.models import Order, Position
from tools._venue import read_registry, registry_inputs, venue_call


@dataclass(frozen=True)
class JointNow:
    findings: tuple[Finding, ...]  # every joint finding at this instant (graces do not apply to one look)
    qty_mismatch: tuple[str, ...]  # reconciliation's unexplained quantity differences, one line each
    snapshot: AccountSnapshot


def joint_now(settings: Settings, venue: Venue, path: Path) -> JointNow:
    snap = venue_call("venue snapshot", lambda: venue.snapshot(None))
    marks = venue_call("venue tickers", lambda: {k: t.mark for k, t in venue.tickers().items()})
    inputs = registry_inputs(path)
    # Judged at the snapshot's server time, as the daemon judges (the venue's clock, never the host's).
    rec = reconcile(inputs.positions, inputs.known_fill_ids, inputs.orders, snap, snap.server_time)
    mismatches = tuple(f"{i.symbol} {i.uid}: {i.detail}" for i in rec.issues if i.cls == "qty_mismatch")
    with read_registry(path):
        active = list(Position.select().where(Position.state.in_(sorted(ACTIVE_STATES))))
        positions = [
            HeldPosition(
                p.uid,
                p.symbol_key,
                PositionSide(p.side),
                p.state,
                units_to_qty(p.remaining_qty_units),
                p.sl_order_id,
                p.tp_order_id,
            )
            for p in active
        ]
        coids = {o.client_order_id for o in snap.open_orders if o.client_order_id}
        vids = {o.order_id for o in snap.open_orders}
        q = (
            Order.select(Order, Position)
            .join(Position)
            .where(
                Order.client_order_id.in_(sorted(coids))
                | Order.venue_order_id.in_(sorted(vids))
                | Order.status.in_(["open"])
            )
        )
        rows = [
            OrderRow(o.client_order_id, o.venue_order_id, o.position.uid, o.position.state, o.status)
            for o in q
            if o.status in (*ORDER_UNRESOLVED_STATUSES, "filled", "cancelled", "rejected")
        ]
    report, _ = evaluate(
        JointInputs(
            positions,
            rows,
            snap,
            (),  # fills: the daemon's fill poll books them; one look cannot tell "not yet" from "never"
            marks,
            {},
            settings.protect.max_replacements_per_hour,
            settings.risk.max_stop_distance_pct,
        )
    )
    return JointNow((*report.findings, *report.pending), mismatches, snap)


def describe(findings: tuple[Finding, ...], field: str) -> list[str]:
    return [f"{f.key}: {f.detail}" for f in findings if f.field == field]
