"""Protection execution: the planner (`lifecycle.protection.plan`) decides, this module sends and records.

Daemon and tools alike come here — the protect job every cycle, the entry right after its fill, reconciliation's
missing-stop action, `sync_positions --execute` and `recover_sl_order_ids --execute` — so a stop is placed by one
rule whoever asks. Runs even when halted: protection is what a halt must never stop.

Bounded: at most `max_replacements_per_hour` stop placements per position per hour; past it `STOP_CHURN_LIMIT`
(critical, alerted) and nothing more is sent for that position until the hour has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from exchange.errors import VenueError
from exchange.rounding import SizeBelowMinimum, round_size
from lifecycle.clock import Clock, window_end
from lifecycle.events import Ev, emit
from lifecycle.fills import closing_side
from lifecycle.protection import (
    AdoptStop,
    AdoptTakeProfit,
    AdoptTrigger,
    CancelOrder,
    ChurnLimit,
    Defer,
    ExitNow,
    MarketFacts,
    PlaceStop,
    PlaceTakeProfit,
    ProtectAction,
    ProtectionPolicy,
    ResizeStop,
    StopGone,
    TightenStop,
    Unprotectable,
    plan,
)
from lifecycle.values import OrderOutcome, OrderType, PositionSide, VenueOrder
from operations.context import DaemonContext
from operations.crash import crash_point
from operations.exits import fills_window_start
from operations.fills import ingest
from operations.submit import Submitted, submit
from specs.lifecycle import Event, OrderStatus, State
from store.integrity import registry_damage
from store.registry import OrderView, PositionView

log = logging.getLogger(__name__)

CHURN_WINDOW = timedelta(hours=1)


@dataclass
class ProtectOutcome:
    """What one protection pass did for one position (the tools print it; tests read it)."""

    uid: str
    placed_stop: str | None = None
    placed_take_profit: str | None = None
    relinked: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def protected(self) -> bool:
        return not self.problems


def policy_of(ctx: DaemonContext) -> ProtectionPolicy:
    lim = ctx.limits
    return ProtectionPolicy(
        default_stop_pct=lim.default_stop_pct,
        max_stop_distance_pct=lim.max_stop_distance_pct,
        take_profit=lim.take_profit,
        take_profit_r=lim.take_profit_r,
        on_crossed_stop=lim.on_crossed_stop,
        max_replacements_per_hour=lim.max_replacements_per_hour,
    )


def sendable_size(ctx: DaemonContext, pos: PositionView) -> Decimal | None:
    """The remainder as an order can carry it (truncated to the increment); None when that is below the minimum.
    An instrument missing from our list is left to the venue's own check."""
    instrument = ctx.instruments.get(pos.symbol_key)
    if instrument is None:
        return pos.remaining_qty
    try:
        return round_size(pos.remaining_qty, instrument)
    except SizeBelowMinimum:
        return None


def market_tick(ctx: DaemonContext, symbol: str) -> Decimal:
    """The symbol's price tick; for an instrument missing from our list, half a unit (the venue rounds the rest)."""
    instrument = ctx.instruments.get(symbol)
    return instrument.tick_size if instrument else Decimal("0.5")


def market_facts(ctx: DaemonContext, pos: PositionView, marks: dict[str, Decimal] | None = None) -> MarketFacts:
    instrument = ctx.instruments.get(pos.symbol_key)
    if marks is None:
        marks = current_marks(ctx)
    return MarketFacts(
        mark=marks.get(pos.symbol_key),
        tick_size=market_tick(ctx, pos.symbol_key),
        sendable=sendable_size(ctx, pos),
        min_size=max(instrument.min_size, instrument.size_increment) if instrument else None,
    )


def current_marks(ctx: DaemonContext) -> dict[str, Decimal]:
    try:
        return {k: t.mark for k, t in ctx.venue.tickers().items()}
    except VenueError as exc:
        log.warning("protect: no mark prices this cycle (%s): no new stop is sent without one", exc)
        return {}


def claimed_elsewhere(ctx: DaemonContext, uid: str, open_orders: Sequence[VenueOrder]) -> frozenset[str]:
    """Of the live orders' venue and client order ids, those owned by any other position, open or closed: a stop of
    theirs is never relinked to `uid` (a leftover of a closed position must not become the next one's stop). Only
    the live ids are looked up, so a cycle's cost does not grow with the registry's history."""
    ids = {o.order_id for o in open_orders} | {o.client_order_id for o in open_orders if o.client_order_id}
    return frozenset(ctx.registry.order_ids_claimed(ids, exclude_uid=uid))


def stop_placements_last_hour(ctx: DaemonContext, uid: str, orders: Sequence[OrderView] | None = None) -> int:
    """Stops sent for `uid` within the churn window (`orders`: the position's orders when the caller has them)."""
    return placements_in_window(ctx.clock, ctx.registry.orders(uid) if orders is None else orders)


def placements_in_window(clock: Clock, orders: Sequence[OrderView]) -> int:
    """Stops among one position's `orders` sent within the churn window: the one count for the protection planner,
    the joint invariant J5 and the tools.

    The rows' `created` and the window's end are both `clock`, the daemon's being the venue's time
    (`lifecycle.clock.VenueClock`, anchored by each snapshot; `window_end` before the first anchor): counted on the
    host clock, a step of it by an hour made the earlier placements look old and the bound allowed as many again
    (DST seeds 1016, 1223 and others)."""
    sent = [o.created for o in orders if o.purpose == "stop" and o.created is not None and not _never_sent(o.reason)]
    since = window_end(clock, max(sent, default=None)) - CHURN_WINDOW
    return sum(1 for created in sent if created >= since)


def _never_sent(reason: str | None) -> bool:
    return bool(reason and reason.startswith("not_sent:"))


def protect(
    ctx: DaemonContext,
    pos: PositionView,
    open_orders: Sequence[VenueOrder],
    *,
    marks: dict[str, Decimal] | None = None,
    relink_only: bool = False,
) -> ProtectOutcome:
    """Plan and execute protection for one position. `relink_only` (recover_sl_order_ids): only adopt live stops
    and take-profits the ownership rule gives this position; send and cancel nothing."""
    outcome = ProtectOutcome(pos.uid)
    actions = plan(
        pos.held(ctx.created_of(pos.uid, pos.created)),
        open_orders,
        market_facts(ctx, pos, marks),
        policy_of(ctx),
        claimed=claimed_elsewhere(ctx, pos.uid, [o for o in open_orders if o.symbol == pos.symbol_key]),
        stop_placements_last_hour=stop_placements_last_hour(ctx, pos.uid),
    )
    if relink_only:
        actions = tuple(a for a in actions if isinstance(a, AdoptStop | AdoptTrigger | AdoptTakeProfit))
    for action in actions:
        if not _execute(ctx, pos.uid, action, outcome, open_orders):
            break
    return outcome


def _execute(
    ctx: DaemonContext, uid: str, action: ProtectAction, outcome: ProtectOutcome, open_orders: Sequence[VenueOrder]
) -> bool:
    """Run one action; False stops the rest of the plan (the position's situation changed under it)."""
    reg = ctx.registry
    pos = reg.get(uid)
    if pos.state not in (State.OPEN, State.PROTECTED):
        return False  # closed (or exiting) by an earlier action's fills: nothing left to protect
    match action:
        case AdoptStop(order_id, why):
            reg.set_protection(uid, sl_order_id=order_id)
            if pos.state == State.OPEN:
                reg.apply(uid, Event.PROTECTION_CONFIRMED, cause=f"relinked venue stop {order_id} ({why})")
            outcome.relinked = order_id
        case AdoptTrigger(order_id, trigger):
            emit(
                Ev.STOP_PRICE_ADOPTED,
                position=uid,
                symbol=pos.symbol_key,
                order_id=order_id,
                registry_stop=pos.stop_price,
                venue_stop=trigger,
            )
            reg.update_prices(uid, stop_price=trigger)
        case ResizeStop(order_id, size, trigger, limit, covers):
            try:
                ctx.venue.edit_order(order_id, size=size, trigger_price=trigger, limit_price=limit)
            except VenueError as exc:
                log.warning("protect: could not resize stop %s of %s to %s: %s", order_id, uid, covers, exc)
                return True
            _announce_placed(pos, "stop_loss_resized", trigger, order_id, covers)
        case TightenStop(order_id, size, trigger, limit, covers, was):
            # Recorded first: the registry never holds a level its audit rejects, whether or not the edit goes
            # through (a failed edit is tried again next cycle, from the venue's trigger). A hand's add has usually
            # been tightened in the registry as it was booked already (store.registry.record_venue_fill).
            if trigger != pos.stop_price:
                emit(
                    Ev.STOP_PRICE_TIGHTENED,
                    position=uid,
                    symbol=pos.symbol_key,
                    entry_price=pos.entry_price,
                    registry_stop=pos.stop_price,
                    stop_price=trigger,
                    max_stop_distance_pct=ctx.limits.max_stop_distance_pct,
                )
                reg.update_prices(uid, stop_price=trigger)
            try:
                ctx.venue.edit_order(order_id, size=size, trigger_price=trigger, limit_price=limit)
            except VenueError as exc:
                log.warning(
                    "protect: could not tighten stop %s of %s from %s to %s: %s", order_id, uid, was, trigger, exc
                )
                return True
            _announce_placed(pos, "stop_loss_tightened", trigger, order_id, covers)
        case StopGone(order_id):
            if _filled(ctx, pos, order_id):
                # It did its job. Its fills go through the one door now: a stop that covered the whole position
                # closed it. One that covered part of it (a hand added to the position before the resize) means the
                # stop level was hit with exposure left: the rest follows the stop out at once (a reduce-only
                # market exit), rather than waiting unprotected, or being re-stopped at a level already crossed.
                ingest(ctx, ctx.venue.fills_since(fills_window_start(ctx)), source="protect")
                pos = reg.get(uid)
                if pos.state == State.OPEN and pos.remaining_qty > 0:
                    # The exit that followed this fill ended without closing the position (`exit_failed`, back to
                    # OPEN): protection takes over. The filled stop is history; the plan goes on to a new one at the
                    # recorded level, or the crossed-level rule (DST seed 1762: the position stayed without a stop).
                    reg.set_protection(uid, sl_order_id=None, tp_order_id=pos.tp_order_id, clear=True)
                    return True
                if pos.state != State.PROTECTED or pos.remaining_qty <= 0:
                    return False
                from operations.exit_order import exit_position  # the exit path imports protection: break the cycle

                outcome.problems.append(f"stop {order_id} filled for part of the position: the rest is exited")
                exit_position(ctx, uid, reason=f"stop {order_id} filled for part of the position")
                return False
            if pos.state == State.PROTECTED:
                pos = reg.apply(uid, Event.PROTECTION_LOST, cause=f"stop {order_id} no longer on the venue")
            else:
                # OPEN and naming a stop: the process died between recording a stop's id and confirming the
                # protection (two commits). Nothing to lose: the id is forgotten and the plan goes on to a new stop.
                log.warning("protect: stop %s recorded on OPEN position %s is no longer on the venue", order_id, uid)
            reg.set_protection(uid, sl_order_id=None, tp_order_id=pos.tp_order_id, clear=True)
            _settle_lost(ctx, uid, order_id)
        case PlaceStop(trigger, size, derived):
            return _place_stop(ctx, pos, trigger, size, derived, outcome)
        case PlaceTakeProfit(trigger, size, derived):
            _place_take_profit(ctx, pos, trigger, size, derived, outcome)
        case AdoptTakeProfit(order_id):
            reg.set_protection(uid, tp_order_id=order_id)
        case CancelOrder(order_id, why):
            try:
                ctx.venue.cancel_order(order_id)
            except VenueError as exc:
                log.warning("protect: could not cancel %s of %s (%s): %s", order_id, uid, why, exc)
        case Unprotectable(reason, min_size):
            outcome.problems.append(reason)
            _announce_unprotectable(ctx, pos, reason, min_size)
            return False
        case ExitNow(reason):
            from operations.exit_order import exit_position  # the exit path imports protection: break the cycle

            outcome.problems.append(f"exiting: {reason}")
            exit_position(ctx, uid, reason=f"stop level crossed: {reason}")
            return False
        case Defer(reason):
            outcome.problems.append(reason)
            log.warning("protect: %s of %s waits: %s", uid, pos.symbol_key, reason)
            return False
        case ChurnLimit(placements, limit):
            outcome.problems.append(f"{placements} stop placements in the last hour (limit {limit})")
            _announce_churn(ctx, pos, placements, limit)
            return False
    return True


def _place_stop(
    ctx: DaemonContext, pos: PositionView, trigger: Decimal, size: Decimal, derived: bool, outcome: ProtectOutcome
) -> bool:
    if derived:
        ctx.registry.update_prices(pos.uid, stop_price=trigger)
    crash_point("before_stop")
    sent = _submit_closing_trigger(ctx, pos, "stop", OrderType.STOP, trigger, size)
    crash_point("after_stop_send")
    if isinstance(sent.refusal, SizeBelowMinimum):  # our instrument list is stale: the adapter's copy knows better
        reason = "below the venue's minimum order size"
        outcome.problems.append(reason)
        _announce_unprotectable(ctx, pos, reason, None)
        return False
    result = sent.result
    if result.outcome is not OrderOutcome.ACCEPTED or result.order is None:
        outcome.problems.append(f"stop not accepted: {result.outcome.value} {result.reason or ''}".strip())
        return False
    ctx.registry.set_protection(pos.uid, sl_order_id=result.order.order_id)
    crash_point("after_stop_recorded")
    if ctx.registry.get(pos.uid).state == State.OPEN:
        ctx.registry.apply(pos.uid, Event.PROTECTION_CONFIRMED, cause=f"stop {result.order.order_id} placed")
    _announce_placed(pos, "stop_loss", trigger, result.order.order_id, size)
    outcome.placed_stop = result.order.order_id
    return True


def _place_take_profit(
    ctx: DaemonContext, pos: PositionView, trigger: Decimal, size: Decimal, derived: bool, outcome: ProtectOutcome
) -> None:
    pos = ctx.registry.get(pos.uid)
    if pos.state != State.PROTECTED:
        return  # a take-profit only beside a live stop
    if pos.tp_order_id and _filled(ctx, pos, pos.tp_order_id):
        return  # it filled: the position is closing
    if pos.tp_order_id:
        _settle_lost(ctx, pos.uid, pos.tp_order_id)  # gone without a fill: its row says so before a new one is sent
    if derived:
        ctx.registry.update_prices(pos.uid, take_profit_price=trigger)
    sent = _submit_closing_trigger(ctx, pos, "take_profit", OrderType.TAKE_PROFIT, trigger, size)
    if sent.result.outcome is OrderOutcome.ACCEPTED and sent.result.order is not None:
        ctx.registry.set_protection(pos.uid, tp_order_id=sent.result.order.order_id)
        _announce_placed(pos, "take_profit", trigger, sent.result.order.order_id, size)
        outcome.placed_take_profit = sent.result.order.order_id


def _filled(ctx: DaemonContext, pos: PositionView, order_id: str) -> bool:
    """Evidence that a missing protective order filled rather than vanished: a fill for it, or the venue's
    order history."""
    if any(f.order_id == order_id for f in ctx.recent_fills):
        return True
    for order in ctx.registry.orders(pos.uid):
        if order.venue_order_id == order_id:
            evidence = ctx.venue.find_order(order.client_order_id)
            return evidence is not None and evidence.filled > 0
    return False


def _settle_lost(ctx: DaemonContext, uid: str, venue_order_id: str) -> None:
    """The stop neither rests on the venue nor filled: its row says so at once, rather than staying `open` beside
    its replacement until the position closes."""
    for order in ctx.registry.orders(uid):
        if order.venue_order_id == venue_order_id and order.status == OrderStatus.OPEN:
            ctx.registry.mark_order(order.client_order_id, status=OrderStatus.CANCELLED, reason="no longer on venue")


def _submit_closing_trigger(
    ctx: DaemonContext, pos: PositionView, purpose: str, order_type: OrderType, trigger: Decimal, size: Decimal
) -> Submitted:
    """Every protective order has this shape: reduce-only, on the closing side, for all that can be sent."""
    sent = submit(
        ctx.registry,
        ctx.venue,
        pos.uid,
        symbol=pos.symbol_key,
        purpose=purpose,
        side=closing_side(PositionSide(pos.side)),
        order_type=order_type,
        qty=size,
        trigger_price=trigger,
        reduce_only=True,
    )
    ctx.stats.orders_placed += 1
    return sent


def _announce_placed(pos: PositionView, kind: str, trigger: Decimal | None, order_id: str, size: Decimal) -> None:
    emit(
        Ev.PROTECTIVE_ORDER_PLACED,
        position=pos.uid,
        symbol=pos.symbol_key,
        kind=kind,
        trigger_price=trigger,
        size=size,
        order_id=order_id,
    )


def _announce_unprotectable(ctx: DaemonContext, pos: PositionView, reason: str, min_size: Decimal | None) -> None:
    # The condition lasts until a human acts, and one line per protect cycle would bury everything else; the set
    # lives in the context, so a restart announces them again.
    if pos.uid in ctx.announced_unprotectable:
        return
    ctx.announced_unprotectable.add(pos.uid)
    emit(
        Ev.POSITION_UNPROTECTABLE,
        position=pos.uid,
        symbol=pos.symbol_key,
        remaining_qty=pos.remaining_qty,
        min_size=min_size,
        detail=(
            f"no stop can be sent for {pos.remaining_qty} {pos.symbol_key}: {reason}, so the position stays "
            "unprotected. Close it on the venue by hand (or place a stop there yourself); reconciliation and protect"
            " follow the venue."
        ),
    )


def _announce_churn(ctx: DaemonContext, pos: PositionView, placements: int, limit: int) -> None:
    key = f"churn:{pos.uid}"
    if key in ctx.announced_unprotectable:
        return
    ctx.announced_unprotectable.add(key)
    emit(Ev.STOP_CHURN_LIMIT, position=pos.uid, symbol=pos.symbol_key, placements=placements, limit=limit)


def run(ctx: DaemonContext) -> None:
    """The protect job's body: one venue read of open orders and marks, then every exposed position."""
    open_orders = ctx.venue.open_orders()
    marks = current_marks(ctx)
    if marks:
        ctx.last_marks = marks
    failed: Exception | None = None
    for listed in ctx.registry.active_positions():
        # Read again: protecting one position can close another (a stop's fills go through the one door, and a
        # hand's close of the next position is booked with them); a plan made from the stale row would act on a
        # closed position.
        pos = ctx.registry.get(listed.uid)
        if pos.state not in (State.OPEN, State.PROTECTED) or pos.remaining_qty <= 0:
            continue
        gone = ctx.cancelled_since_snapshot
        try:
            protect(ctx, pos, [o for o in open_orders if o.order_id not in gone], marks=marks)
        except Exception as exc:
            if registry_damage(exc) is not None:
                raise  # a damaged registry halts the daemon (scheduler.app): nothing more is written to it
            # One position's failure (a bug: an illegal transition, a usage error) must not leave the positions
            # after it without their stops, cycle after cycle: they are protected first, then the failure is raised
            # for the job runner (JOB_FAILED; an invariant breach halts entries).
            log.error(
                "protect: position %s failed (%s: %s); the others are protected first", pos.uid, type(exc).__name__, exc
            )
            failed = failed or exc
    if failed is not None:
        raise failed
