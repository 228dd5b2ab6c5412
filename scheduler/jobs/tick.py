"""tick: the strategy's exits -> prices -> strategy per coin (one DECISION_TRACE each) -> margin auction ->
entries (operations.entry) -> CYCLE_SUMMARY.

A thin schedule: decide with the core (scheduler.jobs.decide), execute through operations/. No new entries while
the kill switch, an escalation or the operator's pause holds them; the decisions are still traced so an operator
sees what would have happened. Exits are not entries: they run whatever holds entries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from lifecycle.events import Ev, emit
from operations.context import DaemonContext
from operations.entry import enter
from operations.exit_order import exit_position
from scheduler.jobs import decide
from scheduler.stream_status import stream_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickResult:
    entries: int
    decisions: int


def run(ctx: DaemonContext) -> TickResult:
    started = time.perf_counter()
    ctx.stats.cycles += 1
    for uid, reason in decide.exit_signals(ctx):
        exit_position(ctx, uid, reason=f"strategy exit: {reason}")
    held = {p.symbol_key for p in ctx.registry.active_positions()}
    plans = decide.plan_entries(ctx, held)
    entries = 0
    if ctx.entries_allowed:
        for plan in plans:
            if plan.symbol in held:
                continue
            enter(ctx, plan)
            held.add(plan.symbol)
            entries += 1
    margin = ctx.last_margin
    emit(
        Ev.CYCLE_SUMMARY,
        cycle=ctx.stats.cycles,
        duration_ms=int((time.perf_counter() - started) * 1000),
        positions=len(ctx.registry.active_positions()),
        state=ctx.state_label,
        orders_placed=ctx.stats.orders_placed,
        margin_util_pct=margin.utilization_pct.quantize(Decimal("0.01")) if margin else None,
        entries_allowed=ctx.entries_allowed,
        **stream_fields(),  # the order stream's state and counters, when one runs (scheduler.stream_hook)
    )
    return TickResult(entries=entries, decisions=len(plans))
