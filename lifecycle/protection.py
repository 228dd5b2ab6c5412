"""Protection: the ONE planner for a position's protective orders, and the ONE rule for which live stop is a
position's own. Pure: the caller passes the position, the venue's open orders, the instrument facts and the mark;
`operations.protection` executes the returned actions, daemon and tools alike (protect job, entry, reconciliation,
`sync_positions`, `recover_sl_order_ids`).

Which live stop belongs to a position (`own_stop`):
1. the stop recorded as the position's (`sl_order_id`), when it still rests on the venue;
2. a stop carrying one of the position's own client order ids (`<uid>-stop-<n>`);
3. an unclaimed reduce-only stop on the closing side of the symbol — one no other position, open or closed, ever
   owned (by client order id or recorded venue id): a stop the operator placed by hand. A stop left over from a
   closed position is claimed by it and never relinked to the next one.

Where a new stop sits (`stop_level`): the position's recorded stop, or — for a position without one (an import) —
`default_stop_pct` beyond the worse of entry and mark. Whatever the source, it must be on the protective side of
the current mark and, below a long's entry (above a short's), within `max_stop_distance_pct` of it
(`lifecycle.stops.stop_problem`; on the profit side of the entry a stop risks no loss, however far); a level already
crossed is never sent (it would fill at once): the planner says `Unprotectable`, or `ExitNow` when the policy says
`on_crossed_stop = "exit"`. Without a mark the side cannot be checked: nothing is sent this cycle (`Defer`).

A live stop is kept where it is (a trigger moved by hand is adopted), unless it lies farther than
`max_stop_distance_pct` from the entry on the loss side: a hand's add far from our entry moved the average entry
away from it (DST seeds 2069, 2088, 2799), or a hand moved it there. Such a stop is a level the registry audit
rejects (`invalid_stop_prices`), so it is tightened to the limit (`lifecycle.stops.within_limit`), never loosened;
when the limit itself is at or across the mark, the crossed-level rule above applies (`Unprotectable`, or `ExitNow`).
A stop trailed by hand beyond the entry on the profit side is adopted and kept however far (it locks a gain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from lifecycle.fills import closing_side
from lifecycle.stops import stop_problem, within_limit
from lifecycle.values import OrderStatus, OrderType, PositionSide, RegistryPosition, VenueOrder
from specs.lifecycle import PROTECTABLE_STATES, State


@dataclass(frozen=True)
class ProtectionPolicy:
    default_stop_pct: Decimal = Decimal(2)
    max_stop_distance_pct: Decimal = Decimal(25)
    take_profit: bool = True
    take_profit_r: Decimal | None = None
    on_crossed_stop: str = "unprotectable"  # or "exit"
    max_replacements_per_hour: int = 6


@dataclass(frozen=True)
class MarketFacts:
    mark: Decimal | None
    tick_size: Decimal
    sendable: Decimal | None  # the remainder as an order can carry it; None below the venue's minimum
    min_size: Decimal | None = None


# --- actions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdoptStop:
    """Record this live stop as the position's (relink); confirms protection of an OPEN position."""

    order_id: str
    why: str


@dataclass(frozen=True)
class AdoptTrigger:
    """The live stop's trigger differs from the recorded one (moved by hand): keep the venue's, never fight it (one
    beyond the distance limit on the loss side is tightened instead: `TightenStop`)."""

    order_id: str
    trigger_price: Decimal


@dataclass(frozen=True)
class ResizeStop:
    """`size`: the order's absolute new size, past fills included (what Kraken's editorder takes); `covers`: what
    it will cover of the position."""

    order_id: str
    size: Decimal
    trigger_price: Decimal
    limit_price: Decimal | None
    covers: Decimal


@dataclass(frozen=True)
class TightenStop:
    """The live stop lies beyond `max_stop_distance_pct` of the entry on the loss side: edit its trigger to the limit
    (`was`: its trigger now), and its size as `ResizeStop` would, in one edit. The executor records the new trigger
    first, so the registry never holds a level its audit rejects."""

    order_id: str
    size: Decimal
    trigger_price: Decimal
    limit_price: Decimal | None
    covers: Decimal
    was: Decimal


@dataclass(frozen=True)
class StopGone:
    """The recorded stop no longer rests on the venue: filled (the exits job closes the position) or lost
    (`protection_lost`, then a new stop). The executor decides from evidence and stops if it filled."""

    order_id: str


@dataclass(frozen=True)
class PlaceStop:
    trigger_price: Decimal
    size: Decimal
    derived: bool  # the level was derived (no stop recorded): the executor records it first


@dataclass(frozen=True)
class PlaceTakeProfit:
    trigger_price: Decimal
    size: Decimal
    derived: bool


@dataclass(frozen=True)
class AdoptTakeProfit:
    order_id: str


@dataclass(frozen=True)
class CancelOrder:
    order_id: str
    why: str


@dataclass(frozen=True)
class Unprotectable:
    reason: str
    min_size: Decimal | None = None


@dataclass(frozen=True)
class ExitNow:
    reason: str


@dataclass(frozen=True)
class Defer:
    reason: str


@dataclass(frozen=True)
class ChurnLimit:
    placements: int
    limit: int


ProtectAction = (
    AdoptStop
    | AdoptTrigger
    | ResizeStop
    | TightenStop
    | StopGone
    | PlaceStop
    | PlaceTakeProfit
    | AdoptTakeProfit
    | CancelOrder
    | Unprotectable
    | ExitNow
    | Defer
    | ChurnLimit
)


# --- ownership --------------------------------------------------------------------------------------------------


def own_client_id(uid: str, client_order_id: str | None, purpose: str) -> bool:
    """Whether a client order id is one this position's orders carry (the registry writes `<uid>-<purpose>-<n>`)."""
    return client_order_id is not None and client_order_id.startswith(f"{uid}-{purpose.replace('_', '')}-")


def _closing_trigger(order: VenueOrder, pos: RegistryPosition, order_type: OrderType) -> bool:
    return (
        order.status is OrderStatus.OPEN
        and order.reduce_only
        and order.order_type is order_type
        and order.symbol == pos.symbol_key
        and order.side is closing_side(pos.side)
    )


def live_stops(pos: RegistryPosition, open_orders: Sequence[VenueOrder]) -> list[VenueOrder]:
    return sorted((o for o in open_orders if _closing_trigger(o, pos, OrderType.STOP)), key=lambda o: o.order_id)


def own_stop(pos: RegistryPosition, open_orders: Sequence[VenueOrder], claimed: frozenset[str]) -> VenueOrder | None:
    """The live stop that belongs to `pos` (see the module doc), or None. `claimed`: the venue order ids and client
    order ids of every other position's orders and recorded stops (open or closed positions alike)."""
    stops = live_stops(pos, open_orders)
    recorded = next((o for o in stops if pos.sl_order_id and o.order_id == pos.sl_order_id), None)
    if recorded is not None:
        return recorded
    mine = next((o for o in stops if own_client_id(pos.uid, o.client_order_id, "stop")), None)
    if mine is not None:
        return mine
    return next((o for o in stops if _unclaimed(o, claimed)), None)


def _unclaimed(order: VenueOrder, claimed: frozenset[str]) -> bool:
    return order.order_id not in claimed and (order.client_order_id is None or order.client_order_id not in claimed)


# --- levels -----------------------------------------------------------------------------------------------------


def round_to_tick(price: Decimal, tick: Decimal, *, down: bool) -> Decimal:
    # Away from the market: a long's stop rounds down, a short's up, so rounding never moves it closer.
    steps = (price / tick).quantize(Decimal(1), rounding=ROUND_FLOOR if down else ROUND_CEILING)
    return steps * tick


def default_stop(side: PositionSide, entry: Decimal, mark: Decimal, pct: Decimal, tick: Decimal) -> Decimal:
    """`pct` beyond the worse of entry and mark: protective by construction whatever the market did."""
    if side is PositionSide.LONG:
        return round_to_tick(min(entry, mark) * (1 - pct / 100), tick, down=True)
    return round_to_tick(max(entry, mark) * (1 + pct / 100), tick, down=False)


def stop_level(
    pos: RegistryPosition, market: MarketFacts, policy: ProtectionPolicy
) -> tuple[Decimal | None, bool, str | None]:
    """(level, derived, problem): the stop to send for `pos`, whether it was derived, and why it cannot be sent."""
    if market.mark is None:
        return None, False, "no mark price: the stop's side cannot be checked"
    derived = pos.stop_price is None
    if derived:
        if pos.entry_price is None:
            return None, True, "neither a recorded stop nor an entry price to derive one from"
        level = default_stop(pos.side, pos.entry_price, market.mark, policy.default_stop_pct, market.tick_size)
    else:
        assert pos.stop_price is not None
        level = pos.stop_price
    problem = stop_problem(pos.side, pos.entry_price, level, market.mark, policy.max_stop_distance_pct)
    return level, derived, problem


def take_profit_level(
    pos: RegistryPosition, market: MarketFacts, policy: ProtectionPolicy
) -> tuple[Decimal | None, bool]:
    """The TP to send: the recorded one, or `take_profit_r` times the entry-to-stop risk beyond the entry. None when
    unknown or already crossed by the mark (a TP there would close the position at once: the operator's call)."""
    if market.mark is None:
        return None, False
    long = pos.side is PositionSide.LONG
    target, derived = pos.take_profit_price, False
    if target is None:
        r, entry, stop = policy.take_profit_r, pos.entry_price, pos.stop_price
        if r is None or entry is None or stop is None or abs(entry - stop) == 0:
            return None, False
        raw = entry + r * (entry - stop) if long else entry - r * (stop - entry)
        target, derived = round_to_tick(raw, market.tick_size, down=not long), True
    if target <= 0 or (market.mark >= target if long else market.mark <= target):
        return None, derived
    return target, derived


# --- the plan ---------------------------------------------------------------------------------------------------


def plan(
    pos: RegistryPosition,
    open_orders: Sequence[VenueOrder],
    market: MarketFacts,
    policy: ProtectionPolicy,
    *,
    claimed: frozenset[str] = frozenset(),
    stop_placements_last_hour: int = 0,
) -> tuple[ProtectAction, ...]:
    """What to do so that `pos` has exactly one live stop on the protective side covering its quantity (and a
    take-profit where configured). Empty when nothing needs doing."""
    if pos.state not in PROTECTABLE_STATES or pos.remaining_qty <= 0:
        return ()
    actions: list[ProtectAction] = []
    stop = own_stop(pos, open_orders, claimed)
    if stop is not None:
        if stop.order_id != pos.sl_order_id or pos.state == State.OPEN:
            why = "own client order id" if own_client_id(pos.uid, stop.client_order_id, "stop") else "unclaimed stop"
            actions.append(AdoptStop(stop.order_id, why))
        tighten = _tighten(pos, stop, market, policy)
        if tighten is not None:
            actions.append(tighten)
        else:
            trigger = stop.trigger_price
            if trigger is not None and trigger != pos.stop_price:
                actions.append(AdoptTrigger(stop.order_id, trigger))
            resize = _resize(pos, stop, market)
            if resize is not None:
                actions.append(resize)
        for extra in live_stops(pos, open_orders):
            if extra.order_id != stop.order_id and own_client_id(pos.uid, extra.client_order_id, "stop"):
                actions.append(CancelOrder(extra.order_id, "a second stop of the same position"))
    else:
        if pos.sl_order_id:
            actions.append(StopGone(pos.sl_order_id))
        actions.extend(_new_stop(pos, market, policy, stop_placements_last_hour))
    if policy.take_profit and not any(isinstance(a, Unprotectable | ExitNow | Defer | ChurnLimit) for a in actions):
        # A derived take-profit is R times the stop distance: measured from the stop this plan places, if any.
        placed = next((a for a in actions if isinstance(a, PlaceStop)), None)
        basis = replace(pos, stop_price=placed.trigger_price) if placed is not None else pos
        actions.extend(_take_profit(basis, open_orders, market, policy))
    return tuple(actions)


def _new_stop(
    pos: RegistryPosition, market: MarketFacts, policy: ProtectionPolicy, placements: int
) -> list[ProtectAction]:
    if market.sendable is None:
        return [Unprotectable("below the venue's minimum order size", market.min_size)]
    if placements >= policy.max_replacements_per_hour:
        return [ChurnLimit(placements, policy.max_replacements_per_hour)]
    level, derived, problem = stop_level(pos, market, policy)
    if problem is not None and level is None:
        return [Defer(problem)]
    if problem is not None:
        return [_cannot_send(problem, market, policy)]
    assert level is not None
    return [PlaceStop(level, market.sendable, derived)]


def _cannot_send(problem: str, market: MarketFacts, policy: ProtectionPolicy) -> Unprotectable | ExitNow:
    """A level that may not be sent: exited at once when it is crossed and the policy says so, else reported."""
    crossed = market.mark is not None and "mark" in problem
    if crossed and policy.on_crossed_stop == "exit":
        return ExitNow(problem)
    return Unprotectable(problem)


def _tighten(
    pos: RegistryPosition, stop: VenueOrder, market: MarketFacts, policy: ProtectionPolicy
) -> TightenStop | Unprotectable | ExitNow | Defer | None:
    """None when the distance rule accepts the live stop (within the limit of the entry, or beyond the entry on the
    profit side, where it risks no loss); else what tightening it to the limit takes: the edit, or the crossed-level
    rule when the limit is at or across the mark (the stop then stays where it is on the venue), or nothing this
    cycle without a mark."""
    trigger, entry = stop.trigger_price, pos.entry_price
    if trigger is None or entry is None:
        return None
    level = within_limit(pos.side, entry, trigger, policy.max_stop_distance_pct, market.tick_size)
    if level == trigger:
        return None
    if market.mark is None:
        return Defer("no mark price: the stop cannot be tightened to the distance limit")
    problem = stop_problem(pos.side, entry, level, market.mark, policy.max_stop_distance_pct)
    if problem is not None:
        return _cannot_send(f"stop {trigger} cannot be tightened to the distance limit: {problem}", market, policy)
    resize = _resize(pos, stop, market)
    if resize is None:
        return TightenStop(stop.order_id, stop.size, level, stop.limit_price, stop.size - stop.filled, trigger)
    return TightenStop(stop.order_id, resize.size, level, stop.limit_price, resize.covers, trigger)


def _resize(pos: RegistryPosition, stop: VenueOrder, market: MarketFacts) -> ResizeStop | None:
    """Keep the stop's size on the position without ever lowering how much of it the stop covers, and without an
    edit that cannot change anything (the size an order can carry is the remainder truncated to the increment)."""
    remaining, covered = pos.remaining_qty, stop.size - stop.filled
    if covered == remaining or stop.trigger_price is None:
        return None
    target = market.sendable
    if target is None or target == covered:
        return None
    if covered > remaining and target < remaining:
        return None  # shrinking to a size that no longer covers it: the venue caps a reduce-only stop anyway
    if covered < remaining and target <= covered:
        return None
    return ResizeStop(stop.order_id, target + stop.filled, stop.trigger_price, stop.limit_price, target)


def _take_profit(
    pos: RegistryPosition, open_orders: Sequence[VenueOrder], market: MarketFacts, policy: ProtectionPolicy
) -> list[ProtectAction]:
    tps = sorted((o for o in open_orders if _closing_trigger(o, pos, OrderType.TAKE_PROFIT)), key=lambda o: o.order_id)
    if pos.tp_order_id and any(o.order_id == pos.tp_order_id for o in tps):
        return []
    mine = next((o for o in tps if own_client_id(pos.uid, o.client_order_id, "take_profit")), None)
    if mine is not None:
        return [AdoptTakeProfit(mine.order_id)]
    if market.sendable is None:
        return []
    target, derived = take_profit_level(pos, market, policy)
    if target is None:
        return []
    return [PlaceTakeProfit(target, market.sendable, derived)]
