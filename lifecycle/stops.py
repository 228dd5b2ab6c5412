"""What a stop means: the one rule for whether a stop price can protect a position, read by the protection
planner before any stop is sent and by the registry audit over stored position rows.

A stop protects only on the protective side (a long's below, a short's above) of the current mark; one on the
other side of the mark triggers the moment it is placed and closes the position at a loss. One further than
`max_distance_pct` from the entry on the loss side (a long's below its entry) is not a stop anyone planned (a
hand-set `stop_price = 1` on a 71k long is the case in point): it risks a position's whole value. On the profit side
the distance bounds nothing: such a stop risks no loss at all (a gain trailed by hand, 30 % above a long's entry
after a 50 % rally); the mark alone says whether it still protects. (The bound once held on both sides: a stop
trailed by hand was adopted into the registry, its own audit then called it `invalid_stop_prices`, and the health
cycle halted the daemon for good; tests/daemon/test_profit_stop.py.)

A kept stop that the entry moved away from on the loss side (a hand added to the position far from its entry, so
the average entry moved) is brought back within the limit by `within_limit`: the registry applies it as it books
the add, the protection planner to the live stop on the venue. Tightened, never loosened.
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
    if entry is not None and entry > 0 and _on_loss_side(long, entry, stop):
        # Beyond the entry on the profit side (break-even or further, moved by hand) a stop risks no loss, however
        # far: only the mark says whether it still protects. On the loss side the entry bounds what it may risk.
        distance_pct = _distance_pct(entry, stop)
        if distance_pct > max_distance_pct:
            return f"stop {stop} is {distance_pct:.1f}% from the entry {entry}, beyond the {max_distance_pct}% limit"
    return None


def _on_loss_side(long: bool, entry: Decimal, stop: Decimal) -> bool:
    return stop < entry if long else stop > entry


def _distance_pct(entry: Decimal, stop: Decimal) -> Decimal:
    return abs(entry - stop) / entry * 100


def within_limit(
    side: PositionSide | str, entry: Decimal, stop: Decimal, max_distance_pct: Decimal, tick: Decimal
) -> Decimal:
    """The level nearest `stop` that the distance rule above accepts: `stop` itself when it is on the profit side of
    `entry` or within `max_distance_pct` of it, else the limit below a long's entry (above a short's), rounded to
    `tick` towards the entry (so that the rule accepts the result): the stop tightened, never loosened. Whether the
    level is on the protective side of the mark is the caller's check (`stop_problem` with the mark)."""
    long = PositionSide(side) is PositionSide.LONG
    if not _on_loss_side(long, entry, stop) or _distance_pct(entry, stop) <= max_distance_pct:
        return stop
    limit = entry * (1 - max_distance_pct / 100) if long else entry * (1 + max_distance_pct / 100)
    steps = (limit / tick).quantize(Decimal(1), rounding=ROUND_CEILING if long else ROUND_FLOOR)
    return steps * tick
