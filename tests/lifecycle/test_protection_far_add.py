"""A kept stop farther than `max_stop_distance_pct` from the entry (DST seeds 2069, 2088, 2799: a hand added far
from our entry and moved the average entry away from the stop): the planner tightens it to the limit, never loosens
it, never sends it across the mark. Pure: `lifecycle.stops.within_limit` (the level) and `lifecycle.protection.plan`
(what is done with the live stop)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from lifecycle.protection import (
    AdoptStop,
    AdoptTrigger,
    Defer,
    ExitNow,
    PlaceStop,
    ProtectionPolicy,
    ResizeStop,
    TightenStop,
    Unprotectable,
    plan,
)
from lifecycle.stops import stop_problem, within_limit
from lifecycle.values import PositionSide, Side
from tests.lifecycle.test_protection_planner import market, order, pos

D = Decimal
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
POLICY = ProtectionPolicy(take_profit=False)  # max_stop_distance_pct = 25, on_crossed_stop = "unprotectable"
EXIT = replace(POLICY, on_crossed_stop="exit")
# Seed 2069: an import at 68,066 with its stop at 66,705; hands added at 124,000: the average entry 99,206.96...
SEED_ENTRY = "99206.96296296296296296296296"


# --- the level ----------------------------------------------------------------------------------------------------


def test_a_stop_within_the_limit_is_kept_as_it_is() -> None:
    for stop in ("75", "90", "99.5"):
        assert within_limit(LONG, D(100), D(stop), D(25), D("0.5")) == D(stop)
    for stop in ("125", "110", "100.5"):
        assert within_limit(SHORT, D(100), D(stop), D(25), D("0.5")) == D(stop)


def test_a_stop_beyond_the_limit_on_the_loss_side_moves_to_the_limit_rounded_towards_the_entry() -> None:
    assert within_limit(LONG, D(100), D("74.5"), D(25), D("0.5")) == D("75.0")
    assert within_limit(LONG, D(100), D(1), D(25), D("0.5")) == D("75.0")
    assert within_limit(SHORT, D(100), D("125.5"), D(25), D("0.5")) == D("125.0")
    # Off the tick: a long's rounds up, a short's down, so the distance rule accepts the result.
    long_level = within_limit(LONG, D(SEED_ENTRY), D(66705), D(25), D("0.5"))
    assert long_level == D("74405.5")
    assert stop_problem(LONG, D(SEED_ENTRY), long_level, None, D(25)) is None
    short_level = within_limit(SHORT, D("70705.7333"), D(91729), D(25), D("0.5"))
    assert short_level == D("88382.0")
    assert stop_problem(SHORT, D("70705.7333"), short_level, None, D(25)) is None


def test_a_stop_beyond_the_entry_on_the_profit_side_is_never_moved_however_far() -> None:
    # A gain locked by hand (or a stop a hand's add left across the mark, seed 2088) risks no loss: the distance
    # rule accepts it, so there is nothing to bring within the limit. Whether it protects is the mark's to say.
    assert within_limit(LONG, D(100), D("130.2"), D(25), D("0.5")) == D("130.2")
    assert within_limit(SHORT, D(100), D("69.9"), D(25), D("0.5")) == D("69.9")
    assert stop_problem(LONG, D(100), D("130.2"), None, D(25)) is None
    assert stop_problem(SHORT, D(100), D("69.9"), None, D(25)) is None


def test_a_stop_exactly_at_the_limit_is_kept_even_off_the_tick() -> None:
    # The rule accepts exactly the limit: no rounding moves such a stop (to 76 on a tick of 2).
    assert within_limit(LONG, D(100), D(75), D(25), D(2)) == D(75)
    assert within_limit(LONG, D(100), D("74.9"), D(25), D(2)) == D(76)


def test_the_limit_is_the_callers() -> None:
    assert within_limit(LONG, D(100), D(85), D(10), D("0.5")) == D("90.0")
    assert within_limit(LONG, D(100), D(85), D(15), D("0.5")) == D(85)


# --- the plan -----------------------------------------------------------------------------------------------------


def test_a_kept_stop_that_an_add_left_beyond_the_limit_is_tightened_to_it() -> None:
    held = pos(state="PROTECTED", sl_id="s", qty="0.0027", entry=SEED_ENTRY, stop="66705")
    stop = order("s", size="0.0027", trigger="66705")
    actions = plan(held, [stop], market("124000", sendable="0.0027"), POLICY)
    assert actions == (TightenStop("s", D("0.0027"), D("74405.5"), None, D("0.0027"), D(66705)),)


def test_a_short_kept_stop_beyond_the_limit_is_tightened_down_to_it() -> None:
    held = pos(side=SHORT, state="PROTECTED", sl_id="s", entry="100", stop="140")
    stop = order("s", side=Side.BUY, trigger="140")
    assert plan(held, [stop], market("90"), POLICY) == (TightenStop("s", D(1), D("125.0"), None, D(1), D(140)),)


def test_the_tightening_edit_also_grows_the_stop_to_the_added_quantity() -> None:
    held = pos(state="PROTECTED", sl_id="s", qty="3", entry="150", stop="98")
    stop = order("s", size="1", trigger="98")
    actions = plan(held, [stop], market("180", sendable="3"), POLICY)
    assert actions == (TightenStop("s", D(3), D("112.5"), None, D(3), D(98)),)
    partly = plan(held, [order("s", size="2", filled="1", trigger="98")], market("180", sendable="3"), POLICY)
    assert partly == (TightenStop("s", D(4), D("112.5"), None, D(3), D(98)),)
    # Within the limit the same stop is only resized, at its own trigger.
    near = replace(held, entry_price=D(120))
    assert plan(near, [stop], market("180", sendable="3"), POLICY) == (ResizeStop("s", D(3), D(98), None, D(3)),)


def test_a_partly_filled_stop_that_already_covers_the_position_keeps_its_size_when_tightened() -> None:
    # Kraken's edit takes the order's absolute size, past fills included: 2 with 1 filled covers the remaining 1.
    held = pos(state="PROTECTED", sl_id="s", qty="1", entry="100", stop="60")
    actions = plan(held, [order("s", size="2", filled="1", trigger="60")], market("100", sendable="1"), POLICY)
    assert actions == (TightenStop("s", D(2), D("75.0"), None, D(1), D(60)),)


def test_a_trigger_moved_by_hand_beyond_the_limit_is_tightened_not_adopted() -> None:
    held = pos(state="PROTECTED", sl_id="s", entry="100", stop="95")
    actions = plan(held, [order("s", trigger="50")], market("100"), POLICY)
    assert actions == (TightenStop("s", D(1), D("75.0"), None, D(1), D(50)),)
    assert not any(isinstance(a, AdoptTrigger) for a in actions)
    # Within the limit a hand's trigger is adopted as before.
    assert plan(held, [order("s", trigger="80")], market("100"), POLICY) == (AdoptTrigger("s", D(80)),)


def test_an_open_position_relinks_its_stop_before_tightening_it() -> None:
    held = pos(state="OPEN", sl_id=None, entry="100", stop="60")
    actions = plan(held, [order("s", coid="p1-stop-1", trigger="60")], market("100"), POLICY)
    assert actions == (AdoptStop("s", "own client order id"), TightenStop("s", D(1), D("75.0"), None, D(1), D(60)))


def test_a_limit_at_or_across_the_mark_follows_the_crossed_stop_rule() -> None:
    # The position is more than 25 % under water from its average entry: the limit is above the mark.
    held = pos(state="PROTECTED", sl_id="s", entry="100", stop="60")
    stop = order("s", trigger="60")
    [unprotectable] = plan(held, [stop], market("74"), POLICY)
    assert isinstance(unprotectable, Unprotectable) and "mark" in unprotectable.reason
    [exit_now] = plan(held, [stop], market("75"), EXIT)
    assert isinstance(exit_now, ExitNow) and "mark" in exit_now.reason
    [tightened] = plan(held, [stop], market("75.5"), EXIT)
    assert tightened == TightenStop("s", D(1), D("75.0"), None, D(1), D(60))


def test_a_live_stop_beyond_the_limit_on_the_profit_side_is_never_loosened() -> None:
    # A long's stop far above its entry and below the mark (an operator locking a gain): moving it to the limit
    # would lower it. The planner leaves it; its trigger is adopted as any hand's.
    held = pos(state="PROTECTED", sl_id="s", entry="100", stop="130")
    assert plan(held, [order("s", trigger="130")], market("140"), POLICY) == ()
    short = pos(side=SHORT, state="PROTECTED", sl_id="s", entry="100", stop="95")
    assert plan(short, [order("s", side=Side.BUY, trigger="70")], market("60"), POLICY) == (AdoptTrigger("s", D(70)),)


def test_without_an_entry_price_or_a_trigger_nothing_is_measured_so_nothing_is_tightened() -> None:
    no_entry = pos(state="PROTECTED", sl_id="s", entry=None, stop="60")
    assert plan(no_entry, [order("s", trigger="60")], market("100"), POLICY) == ()
    assert plan(no_entry, [order("s", trigger="1")], market("100"), POLICY) == (AdoptTrigger("s", D(1)),)
    no_trigger = pos(state="PROTECTED", sl_id="s", entry="100", stop="60")
    assert plan(no_trigger, [order("s", trigger=None)], market("100"), POLICY) == ()


def test_without_a_mark_a_far_stop_is_not_moved_this_cycle() -> None:
    held = pos(state="PROTECTED", sl_id="s", entry="100", stop="60")
    [defer] = plan(held, [order("s", trigger="60")], market(None), POLICY)
    assert isinstance(defer, Defer)


def test_a_lost_stop_is_replaced_at_the_recorded_level_the_booking_tightened() -> None:
    # The registry tightens the recorded stop as it books the add (store.registry); a replacement uses it.
    held = pos(state="PROTECTED", sl_id="gone", entry="100", stop="75.0")
    assert plan(held, [], market("100"), POLICY)[-1] == PlaceStop(D("75.0"), D(1), False)
