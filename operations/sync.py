"""The operator tools' writing operations, run by the tool itself when the daemon is down or by the daemon on the
tool's behalf (operations.control) when it runs: the same code either way, so a tool never acts by other rules
than the daemon's.

- `sync_positions --execute`: confirmed orphans imported and protected by the one planner (a stop on the
  protective side of the current mark, or the reason none can be sent), confirmed phantoms closed by the one close.
- `recover_sl_order_ids --execute`: every exposed position relinked to the live stop the ownership rule gives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from lifecycle.reconcile import (
    Action,
    ClosePhantom,
    ImportOrphan,
    OrderRef,
    Reconciliation,
    reconcile,
)
from lifecycle.values import AccountSnapshot, RegistryPosition, VenueFill
from operations import protection
from operations.context import DaemonContext
from operations.reconciliation import close_phantom, import_orphan, registry_inputs
from specs.lifecycle import PROTECTABLE_STATES, State

FILL_LOOKBACK = timedelta(hours=24)


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def code(self) -> int:
        return 1 if self.failed else 0

    def lines(self) -> list[str]:
        return [*self.done, *(f"FAILED: {f}" for f in self.failed)]


RegistrySide = tuple[Sequence[RegistryPosition], Mapping[str, OrderRef]]


def confirm(
    read_registry: Callable[[], RegistrySide],
    take_snapshot: Callable[[], AccountSnapshot],
    known_fills: Callable[[Sequence[VenueFill]], frozenset[str]],
    confirm_wait_s: float,
) -> Reconciliation:
    """Two snapshots, the second judged with the first's memory: only confirmed findings become actions. The one
    loop for the daemon (`confirmed_diff`) and the read-only `sync_positions` dry run alike: the registry is read
    before each snapshot, "now" is the snapshot's server time (the venue's clock, as positions' start), and an
    incomplete snapshot ends the loop at once (its reconciliation says why; nothing is judged)."""
    memory = None
    rec: Reconciliation | None = None
    for attempt in range(2):
        if attempt:
            time.sleep(confirm_wait_s)
        positions, orders = read_registry()
        snap = take_snapshot()
        known = known_fills(snap.fills)
        rec = reconcile(positions, known, orders, snap, snap.server_time, memory)
        if not rec.report.complete:
            return rec
        memory = rec.memory
    assert rec is not None
    return rec


def confirmed_diff(ctx: DaemonContext, confirm_wait_s: float) -> Reconciliation:
    """`confirm` on the daemon's context: its registry, its venue."""
    return confirm(
        lambda: registry_inputs(ctx),
        lambda: ctx.venue.snapshot(ctx.clock.now() - FILL_LOOKBACK),
        lambda fills: frozenset(ctx.registry.fill_ids_judged([f.fill_id for f in fills])),
        confirm_wait_s,
    )


def sync(ctx: DaemonContext, actions: Sequence[Action], *, cause: str = "sync_positions") -> Outcome:
    out = Outcome()
    open_orders = ctx.venue.open_orders()
    marks = protection.current_marks(ctx)
    for action in actions:
        if isinstance(action, ImportOrphan):
            why = f"{cause}: venue position with no registry position (operator import)"
            pos = import_orphan(ctx, action, cause=why)
            result = protection.protect(ctx, ctx.registry.get(pos.uid), open_orders, marks=marks)
            after = ctx.registry.get(pos.uid)
            line = f"imported {action.symbol} {action.side.value} {action.qty} as {after.uid} ({after.state})"
            if after.state == State.PROTECTED and after.sl_order_id:
                out.done.append(f"{line}, stop {after.sl_order_id} at {after.stop_price}")
            else:
                why = "; ".join(result.problems) or "the stop was not accepted (see ORDER_REJECTED_BY_VENUE)"
                out.failed.append(f"{line} but NO stop is live: {why}")
        elif isinstance(action, ClosePhantom):
            before = ctx.registry.get(action.uid)
            close_phantom(ctx, action.uid)
            after = ctx.registry.get(action.uid)
            if after.state != before.state:
                out.done.append(f"closed phantom {action.uid} {before.symbol_key} ({before.state} -> {after.state})")
            else:
                out.failed.append(f"phantom {action.uid} left {after.state}: the venue still shows its entry order")
    return out


def relink_stops(ctx: DaemonContext, uids: Sequence[str] | None = None) -> Outcome:
    """Relink each exposed position (or those named) to the live stop the ownership rule gives it; nothing is sent."""
    out = Outcome()
    open_orders = ctx.venue.open_orders()
    for pos in ctx.registry.active_positions():
        if pos.state not in PROTECTABLE_STATES or (uids is not None and pos.uid not in uids):
            continue
        before = pos.sl_order_id
        result = protection.protect(ctx, pos, open_orders, relink_only=True)
        if result.relinked is not None:
            out.done.append(f"relinked {pos.uid} {pos.symbol_key}: stop {before or '-'} -> {result.relinked}")
        elif not any(o.order_id == pos.sl_order_id for o in open_orders):
            out.failed.append(f"no live stop to relink for {pos.uid} {pos.symbol_key}")
    return out
