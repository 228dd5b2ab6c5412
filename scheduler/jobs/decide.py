"""The strategy step of a tick: candles per coin -> `Strategy.analyse` -> one DECISION_TRACE per coin ->
the margin auction picks the entries that fit within `auction_max_margin_util`.

Only closed candles reach the strategy (operations.candles: from the candle store, with the venue's tail).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from exchange.errors import VenueError
from lifecycle.events import Ev, emit
from lifecycle.values import PositionSide
from operations.candles import source_of
from operations.context import DaemonContext, EntryPlan
from specs.lifecycle import PROTECTABLE_STATES
from strategy.auction import Candidate, allocate
from strategy.base import Decision

log = logging.getLogger(__name__)


def analyse_all(ctx: DaemonContext, held: set[str]) -> list[Decision]:
    """One DECISION_TRACE per configured coin, including coins already held (verdict `skip`, reason held)."""
    decisions: list[Decision] = []
    margin = ctx.venue.margin()
    ctx.last_margin = margin
    equity = margin.margin_equity
    now = ctx.clock.now()
    for symbol in ctx.symbol_keys:
        if symbol in held:
            emit(Ev.DECISION_TRACE, symbol=symbol, verdict="skip", reason="position_open", inputs="-")
            continue
        try:
            candles = source_of(ctx).closed(symbol, ctx.limits.timeframe, ctx.limits.candle_limit, now)
        except VenueError as exc:
            emit(
                Ev.DECISION_TRACE,
                symbol=symbol,
                verdict="skip",
                reason="candles_unavailable",
                inputs=type(exc).__name__,
            )
            continue
        decision = ctx.strategy.analyse(symbol, candles, ctx.instruments[symbol], equity)
        emit(Ev.DECISION_TRACE, None, **decision.trace_fields())
        decisions.append(decision)
    return decisions


def auction(ctx: DaemonContext, decisions: Sequence[Decision], held: set[str]) -> list[EntryPlan]:
    """strategy.auction.allocate within auction_max_margin_util, then at most `max_positions` open at once."""
    margin = ctx.last_margin
    if margin is None:
        return []
    candidates = [
        Candidate(d, ctx.instruments[d.symbol].contract_size) for d in decisions if d.is_entry and d.symbol not in held
    ]
    slots = ctx.limits.max_positions - len(held)
    plans: list[EntryPlan] = []
    # The venue margins each contract at its instrument's max leverage; the lowest among the candidates keeps
    # the projection at or above what the kill switch will later measure.
    leverage = min((ctx.instruments[c.symbol].max_leverage for c in candidates), default=ctx.limits.leverage)
    for alloc in allocate(candidates, margin, ctx.limits.auction_max_margin_util, leverage):
        d = alloc.decision
        if not alloc.admitted:
            log.info("auction: %s left out: %s", alloc.symbol, alloc.reason)
            continue
        if slots <= 0 or d.side is None or d.size is None or d.stop_price is None:
            continue
        slots -= 1
        plans.append(
            EntryPlan(d.symbol, d.side.value, d.size, d.stop_price, d.take_profit_price, d.reason, d.entry_price)
        )
    return plans


def plan_entries(ctx: DaemonContext, held: set[str]) -> list[EntryPlan]:
    return auction(ctx, analyse_all(ctx, held), held)


def exit_signals(ctx: DaemonContext) -> list[tuple[str, str]]:
    """(uid, reason) for each held position the strategy's exit rule says to leave (strategy.exit_rule). Exits are
    not new entries: they run whatever the kill switch or a pause says."""
    out: list[tuple[str, str]] = []
    now = ctx.clock.now()
    for pos in ctx.registry.active_positions():
        if pos.state not in PROTECTABLE_STATES or pos.remaining_qty <= 0:
            continue
        try:
            candles = source_of(ctx).closed(pos.symbol_key, ctx.limits.timeframe, ctx.limits.candle_limit, now)
        except VenueError as exc:
            log.warning("exit rule: no candles for %s (%s); checked again next tick", pos.symbol_key, exc)
            continue
        reason = ctx.strategy.exit_reason(pos.symbol_key, PositionSide(pos.side), candles)
        if reason is not None:
            out.append((pos.uid, reason))
    return out
