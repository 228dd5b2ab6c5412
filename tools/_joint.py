"""The joint invariants (registry x venue) as the read-only tools see them: the daemon's own evaluation
(`lifecycle.joint.evaluate`) over one venue snapshot and the registry opened read-only.

A tool sees one instant, so nothing has a grace: a finding the daemon would still be waiting out (a stop the next
protect run places) is reported too, marked as such. `pre_flight_check` and `check_tp_coverage` read this.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from exchange.venue import Venue
from lifecycle.joint import Finding, evaluate
from lifecycle.reconcile import Reconciliation, reconcile, venue_nets
from lifecycle.values import AccountSnapshot
from operations.reconciliation import joint_inputs
from settings.config import Settings
from tools._venue import (
    began_by,
    inputs_of,
    registry_reader,
    tool_clock,
    venue_call,
    venue_snapshot,
)


@dataclass(frozen=True)
class JointNow:
    findings: tuple[Finding, ...]  # every joint finding at this instant (graces do not apply to one look)
    qty_mismatch: tuple[str, ...]  # reconciliation's unexplained quantity differences, one line each
    snapshot: AccountSnapshot
    suspected: tuple[str, ...] = ()  # orphans and phantoms seen, not acted on (`suspected_differences`)


def joint_now(settings: Settings, venue: Venue, path: Path) -> JointNow:
    # The venue's time, as the daemon's clock is (lifecycle.clock.VenueClock): every window (the churn bound's hour)
    # and the dating of positions read it, never the host's clock, which may be stepped or skewed.
    clock = tool_clock()
    snap = venue_snapshot(venue, clock, None)
    marks = venue_call("venue tickers", lambda: {k: t.mark for k, t in venue.tickers().items()})
    # One read of the registry, opened read-only, through the daemon's own functions.
    with registry_reader(path, clock) as reg:
        began = began_by(reg, clock)
        inputs = inputs_of(reg, began, snap.fills)
        # The daemon's own assembly (operations.reconciliation.joint_inputs); the snapshot's fills are not judged:
        # the daemon's fill poll books them, and one look cannot tell "not yet" from "never".
        joint = joint_inputs(
            reg,
            snap,
            began=began,
            clock=clock,
            marks=marks,
            max_replacements_per_hour=settings.protect.max_replacements_per_hour,
            max_stop_distance_pct=settings.risk.max_stop_distance_pct,
            with_fills=False,
        )
    # Judged at the snapshot's server time, as the daemon judges (the venue's clock, never the host's).
    rec = reconcile(inputs.positions, inputs.known_fill_ids, inputs.orders, snap, snap.server_time)
    mismatches = tuple(f"{i.symbol} {i.uid}: {i.detail}" for i in rec.issues if i.cls == "qty_mismatch")
    report, _ = evaluate(joint)
    return JointNow((*report.findings, *report.pending), mismatches, snap, suspected_differences(rec, snap))


def suspected_differences(rec: Reconciliation, snapshot: AccountSnapshot) -> tuple[str, ...]:
    """Each difference reconciliation suspects and has not acted on, one line each: `orphan SYMBOL side qty (...)`
    for a venue position no registry position holds, `phantom UID SYMBOL (...)` for a registry position the venue
    does not hold. A first sighting (the daemon acts on the second; a tool's single look sees nothing more), or an
    orphan behind fills not booked yet that bring every registry position on its symbol to zero (a hand's trade
    through zero: the daemon books them, then adopts the rest). Either way registry and venue differ now, so a tool
    never calls that in sync."""
    net = venue_nets(snapshot)
    out: list[str] = []
    for cls, symbol, uid in rec.suspected:
        held = net.get(symbol, Decimal(0))
        if cls == "orphaned" and held != 0:
            side = "long" if held > 0 else "short"
            out.append(f"orphan {symbol} {side} {abs(held)} (on the venue, in no registry position, no stop of ours)")
        elif cls == "phantom":
            out.append(f"phantom {uid} {symbol} (in the registry, not on the venue)")
    return tuple(out)


def describe(findings: tuple[Finding, ...], field: str) -> list[str]:
    return [f"{f.key}: {f.detail}" for f in findings if f.field == field]
