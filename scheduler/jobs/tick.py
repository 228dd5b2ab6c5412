"""tick: prices -> strategy per coin (one DECISION_TRACE each) -> margin auction -> entries -> CYCLE_SUMMARY.

An entry goes through the lifecycle in this order, each step durable before the next venue call:
open_intent -> record_order_intent -> place -> entry_acknowledged / entry_filled / entry_rejected, and the
stop-loss is placed right after the fill (protect would place it within one cycle anyway; doing it here
shortens the unprotected window to one round trip). No new entries while the kill switch or an escalation
pauses them; the decisions are still traced so an operator sees what would have happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from exchange.errors import VenueError
from lifecycle.events import Ev, emit
from lifecycle.values import OrderOutcome, OrderType, Side
from operations.context import DaemonContext, EntryPlan
from operations.crash import crash_point
from operations.exits import fills_window_start, ingest_fills
from operations.submit import submit
from scheduler.jobs import decide, protect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickResult:
    entries: int
    decisions: int


def enter(ctx: DaemonContext, plan: EntryPlan) -> str:
    """Open one position. Returns the position uid."""
    pos = ctx.registry.open_intent(
        symbol=plan.symbol,
        side=plan.side,
        target_qty=plan.qty,
        stop_price=plan.stop_price,
        take_profit_price=plan.take_profit_price,
        cause=f"strategy: {plan.reason}",
    )
    side = Side.BUY if plan.side == "long" else Side.SELL
    sent = submit(
        ctx.registry,
        ctx.venue,
        pos.uid,
        symbol=plan.symbol,
        purpose="entry",
        side=side,
        order_type=OrderType.MARKET,
        qty=plan.qty,
    )
    ctx.stats.orders_placed += 1
    result = sent.result
    if result.outcome is OrderOutcome.REJECTED:
        # A local refusal (never sent) carries its own "not_sent:" reason; only the rest came from the venue.
        cause = f"{result.reason}" if sent.refusal is not None else f"venue rejected: {result.reason}"
        ctx.registry.apply(pos.uid, "entry_rejected", cause=cause)
        return pos.uid
    if result.outcome is OrderOutcome.UNKNOWN:
        return pos.uid  # stays PENDING_ENTRY; reconciliation adopts or cancels it by evidence
    fills = list(result.fills)
    if not fills and result.order is not None and result.order.filled > 0:
        try:
            fills = [
                f for f in ctx.venue.fills_since(fills_window_start(ctx)) if f.client_order_id == sent.client_order_id
            ]
        except VenueError as exc:
            log.warning("entry %s filled but its fills could not be fetched yet (%s)", sent.client_order_id, exc)
    ingest_fills(ctx, fills)
    crash_point("after_fill")
    current = ctx.registry.get(pos.uid)
    if current.remaining_qty > 0:
        ctx.registry.apply(pos.uid, "entry_filled", cause=f"entry {sent.client_order_id} filled")
        if protect.place_stop(ctx, ctx.registry.get(pos.uid)) and ctx.limits.take_profit:
            protect.place_take_profit(ctx, ctx.registry.get(pos.uid), ())
    else:
        ctx.registry.apply(pos.uid, "entry_acknowledged", cause=f"entry {sent.client_order_id} accepted")
    return pos.uid


def run(ctx: DaemonContext) -> TickResult:
    started = time.perf_counter()
    ctx.stats.cycles += 1
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
    )
    return TickResult(entries=entries, decisions=len(plans))
