"""reconcile: snapshot -> pure diff (lifecycle.reconcile) -> actions through operations/ -> report lines.

A thin schedule: the diff decides, `operations.reconciliation` executes. A failed snapshot is reported as
`complete=false` with zero counters, never read as "flat". The ledger is asked only about the snapshot's own fill
ids (an indexed lookup), so a cycle costs the same after a year of trading as on the first day.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal

from exchange.errors import VenueError
from lifecycle.clock import observe_server_time
from lifecycle.events import Ev, emit
from lifecycle.reconcile import (
    Reconciliation,
    reconcile,
)
from lifecycle.values import AccountSnapshot
from operations.context import DaemonContext
from operations.daemon_state import DaemonState, write_state
from operations.exits import fills_window_start
from operations.reconciliation import evaluate_joint, execute, registry_inputs, settle_strays, settle_vanished
from specs.reconciliation import JOINT_FIELDS

log = logging.getLogger(__name__)


def take_snapshot(ctx: DaemonContext) -> AccountSnapshot | None:
    ctx.cancelled_since_snapshot.clear()
    try:
        snapshot = ctx.venue.snapshot(fills_window_start(ctx))
    except VenueError as exc:
        log.warning("reconcile: snapshot failed (%s); this cycle is reported incomplete", exc)
        return None
    if snapshot.margin.server_time_known:  # else `server_time` is a stale stamp or the host's: nothing to follow
        observe_server_time(ctx.clock, snapshot.server_time)
    ctx.last_margin = snapshot.margin
    if snapshot.fills:
        ctx.recent_fills = snapshot.fills
    return snapshot


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
    joint = ctx.last_joint if rec.report.complete else None
    for finding in joint.findings if joint is not None else ():
        emit(Ev.JOINT_INVARIANT, invariant=finding.field, key=finding.key, detail=finding.detail)
    report = rec.report
    joint_counts = joint.counters() if joint is not None else dict.fromkeys(JOINT_FIELDS, 0)
    level = ctx.safety.observe_report(report, ctx.clock.now(), joint_counts)
    publish_state(ctx)
    emit(
        Ev.RECONCILIATION_REPORT,
        None,
        **report.counters(),
        **joint_counts,
        synthetic_closes=ctx.phantom_synthetic_closes,
        level=level,
        complete=report.complete,
    )


def run(ctx: DaemonContext) -> Reconciliation:
    snapshot = take_snapshot(ctx)
    positions, orders = registry_inputs(ctx)
    rec = reconcile(
        positions,
        frozenset(ctx.registry.fill_ids_judged([f.fill_id for f in snapshot.fills] if snapshot else [])),
        orders,
        snapshot,
        # The venue's clock: the positions' `created` (ctx.created_of) is their first fill's venue stamp.
        ctx.clock.now() if snapshot is None else snapshot.server_time,
        ctx.reconcile_memory,
    )
    ctx.reconcile_memory = rec.memory
    execute(ctx, rec.actions, snapshot)
    if snapshot is not None and rec.report.complete:
        settle_strays(ctx, snapshot)
        settle_vanished(ctx, snapshot)
    ctx.last_joint = evaluate_joint(ctx, snapshot)
    emit_report(ctx, rec, {p.uid: p.remaining_qty for p in positions}, venue_sizes(snapshot))
    ctx.last_reconciliation = rec
    return rec


def publish_state(ctx: DaemonContext) -> None:
    """The daemon's safety state beside the registry, for `pre_flight_check` (operations.daemon_state)."""
    database = str(ctx.registry.db.database)
    if not database or database.startswith(":memory:") or database.startswith("file:"):
        return  # an in-memory registry (tests, throwaway runs) has no folder to publish into
    try:
        write_state(
            database,
            DaemonState(ctx.safety.state, ctx.safety.critical_fields, ctx.clock.now(), os.getpid()),
        )
    except OSError as exc:
        log.warning("reconcile: could not write the daemon state file (%s); pre_flight_check cannot see it", exc)
