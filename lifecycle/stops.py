"""What a stop means: the one rule for whether a stop price can protect a position, read by the protection
planner before any stop is sent and by the registry audit over stored position rows.

A stop protects only on the protective side (a long's below, a short's above) of the current mark; one on the
other side of the mark triggers the moment it is placed and closes the position at a loss. One further than
`max_distance_pct` of the entry is not a stop anyone planned (a hand-set `stop_price = 1` on a 71k long is the
case in point): it risks a position's whole value.
"""

from __future__ import annotations

from decimal import Decimal

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
        distance_pct = abs(entry - stop) / entry * 100
        if distance_pct > max_distance_pct:
            return f"stop {stop} is {distance_pct:.1f}% from the entry {entry}, beyond the {max_distance_pct}% limit"
    return None
