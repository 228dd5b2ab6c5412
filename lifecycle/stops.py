"""What a stop means: the one rule for whether a stop price can protect a position, read by the protection
planner before any stop is sent and by the registry audit over stored position rows.

A stop protects only on the protective side (a long's below, a short's above) of the current mark; one on the
other side of the mark triggers the moment it is placed and closes the position at a loss. One further than
`max_distance_pct` of the entry is not a stop anyone planned (a hand-set `stop_price = 1` on a 71k long is the
case in point): it risks a position's whole value.

A kept stop that the entry moved away from (a hand added to the position far from its entry, so the average entry
moved) is brought back within the limit by `within_limit`: the registry applies it as it books the add, the
protection planner to the live stop on the venue. Tightened, never loosened.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from lifecycle.values import PositionSide


def stop_problem(
    side: PositionSide | str,
    entry: Decimal | None,
    stop: Decimal,
    mark: Decimal | None,
    max_distance_pct: Decimal,
) -> str | None:
    """Why `stop` cannot protect a `side` position entered at `entry` with the market at `mark`, or None.
    `entry` or `mark` unknown: that part of the check is skipped (the caller decides what unknown means)."""
    long = PositionSide(side) is PositionSide.LONG
    if stop <= 0:
        return f"stop {stop} is not a price"
    if mark is not None and (stop >= mark if long else stop <= mark):
        return f"stop {stop} is {'at or above' if long else 'at or below'} the mark {mark}: it would trigger at once"
    if entry is not None and entry > 0:
        # A stop beyond the entry on the profit side is legal (an operator moving it to break-even or further): only
        # the mark says whether it still protects, so the entry bounds the distance only.
        distance_pct = _distance_pct(entry, stop)
        if distance_pct > max_distance_pct:
            return f"stop {stop} is {distance_pct:.1f}% from the entry {entry}, beyond the {max_distance_pct}% limit"
    return None


def _distance_pct(entry: Decimal, stop: Decimal) -> Decimal:
    return abs(entry - stop) / entry * 100


def within_limit(
    side: PositionSide | str, entry: Decimal, stop: Decimal, max_distance_pct: Decimal, tick: Decimal
) -> Decimal:
    """The level nearest `stop` that the distance rule above accepts: `stop` itself when it is within
    `max_distance_pct` of `entry`, else the limit on the same side of the entry, rounded to `tick` towards the entry
    (so that the rule accepts the result). On the loss side (a long's below the entry) this tightens the stop. On the
    profit side it would loosen a stop that still protects, so the planner never moves a live stop there; the
    registry moves a recorded one only as a hand's add is booked, when such a stop cannot be protecting anything (see
    `store.registry.Registry.record_venue_fill`). Whether the level is on the protective side of the mark is the
    caller's check (`stop_problem` with the mark)."""
    if _distance_pct(entry, stop) <= max_distance_pct:
        return stop
    above = stop > entry
    limit = entry * (1 + max_distance_pct / 100) if above else entry * (1 - max_distance_pct / 100)
    steps = (limit / tick).quantize(Decimal(1), rounding=ROUND_FLOOR if above else ROUND_CEILING)
    return steps * tick
