"""`lifecycle.protection` beyond its planner tests (found by `make mutate`: about a quarter of its mutants survived
tests/lifecycle/test_protection_planner.py): the default policy is the documented one, the take-profit level at a
given R multiple (its boundaries, its rounding, a risk of zero), how a live stop's size is kept on the position,
and when a take-profit is (not) planned."""

from __future__ import annotations

from decimal import Decimal

from lifecycle.protection import (
    AdoptStop,
    ChurnLimit,
    MarketFacts,
    PlaceStop,
    PlaceTakeProfit,
    ProtectionPolicy,
    Unprotectable,
    default_stop,
    plan,
    take_profit_level,
)
from lifecycle.values import OrderType, PositionSide
from tests.lifecycle.test_protection_planner import market, order, pos

D = Decimal
R2 = ProtectionPolicy(take_profit_r=D(2))
NO_TP = ProtectionPolicy(take_profit=False)


def fine(mark: str, tick: str = "0.01", sendable: str | None = "1") -> MarketFacts:
    return MarketFacts(D(mark), D(tick), None if sendable is None else D(sendable), D("0.001"))


# --- the default policy is docs/configuration.md's ---------------------------------------------------------------


def test_the_default_policy_derives_a_stop_2_percent_beyond_and_places_no_derived_take_profit() -> None:
    # [protect] default_stop_pct = 2; [risk] take_profit_r unset = no TP order for a position without a TP price.
    assert plan(pos(stop=None, entry="100"), [], fine("100"), ProtectionPolicy()) == (PlaceStop(D(98), D(1), True),)


def test_the_default_policy_places_a_recorded_take_profit() -> None:
    # take_profit is on unless configured off: a position that carries a TP price gets its TP order.
    assert plan(pos(tp="110"), [], market(), ProtectionPolicy()) == (
        PlaceStop(D(95), D(1), False),
        PlaceTakeProfit(D(110), D(1), False),
    )


def test_the_default_distance_limit_is_25_percent_of_the_entry() -> None:
    # [risk] max_stop_distance_pct = 25: a stop exactly 25 % below the entry is sent, one 25.5 % below is not.
    assert plan(pos(entry="100", stop="75"), [], market(), NO_TP) == (PlaceStop(D(75), D(1), False),)
    [beyond] = plan(pos(entry="100", stop="74.5"), [], market(), NO_TP)
    assert isinstance(beyond, Unprotectable) and "limit" in beyond.reason


def test_a_caller_that_counts_no_placements_is_never_churn_limited_by_the_first_stop() -> None:
    # The smallest allowed bound (max_replacements_per_hour = 1): the first placement of the hour is sent.
    policy = ProtectionPolicy(take_profit=False, max_replacements_per_hour=1)
    assert plan(pos(), [], market(), policy) == (PlaceStop(D(95), D(1), False),)
    assert plan(pos(), [], market(), policy, stop_placements_last_hour=1) == (ChurnLimit(1, 1),)


# --- levels ------------------------------------------------------------------------------------------------------


def test_the_default_stop_is_exactly_pct_beyond_on_a_fine_tick() -> None:
    assert default_stop(PositionSide.LONG, D(100), D(100), D(2), D("0.01")) == D("98.00")
    assert default_stop(PositionSide.SHORT, D(100), D(100), D(2), D("0.01")) == D("102.00")


def test_take_profit_at_r_times_a_risk_of_exactly_one() -> None:
    assert take_profit_level(pos(entry="100", stop="99"), market("100"), R2) == (D(102), True)
    short = pos(side=PositionSide.SHORT, entry="100", stop="101")
    assert take_profit_level(short, market("100"), R2) == (D(98), True)


def test_a_position_whose_stop_sits_at_its_entry_has_no_risk_to_multiply() -> None:
    # Break-even stop: R times nothing would put the take-profit at the entry, beside the market.
    assert take_profit_level(pos(entry="100", stop="100"), market("99"), R2)[0] is None
    short = pos(side=PositionSide.SHORT, entry="100", stop="100")
    assert take_profit_level(short, market("101"), R2)[0] is None


def test_no_derived_take_profit_without_an_entry_or_a_stop() -> None:
    assert take_profit_level(pos(entry=None, stop="95"), market("100"), R2)[0] is None
    assert take_profit_level(pos(entry="100", stop=None), market("100"), R2)[0] is None


def test_a_derived_take_profit_rounds_away_from_the_market() -> None:
    # Long: 100 + 2 x 4.7 = 109.4, up to the tick; short: 100 - 2 x 4.7 = 90.6, down to the tick.
    assert take_profit_level(pos(entry="100", stop="95.3"), market("100"), R2) == (D("109.5"), True)
    short = pos(side=PositionSide.SHORT, entry="100", stop="104.7")
    assert take_profit_level(short, market("100"), R2) == (D("90.5"), True)


def test_a_take_profit_the_mark_has_reached_is_not_sent() -> None:
    assert take_profit_level(pos(entry="100", stop="95"), market("110"), R2)[0] is None
    assert take_profit_level(pos(entry="100", stop="95"), market("109.5"), R2) == (D(110), True)
    short = pos(side=PositionSide.SHORT, entry="100", stop="105")
    assert take_profit_level(short, market("90"), R2)[0] is None
    assert take_profit_level(short, market("90.5"), R2) == (D(90), True)


def test_a_shorts_take_profit_at_or_below_zero_is_no_price_but_one_below_1_is() -> None:
    at_zero = pos(side=PositionSide.SHORT, entry="100", stop="150")  # 100 - 2 x 50
    assert take_profit_level(at_zero, market("100"), R2)[0] is None
    cheap = pos(side=PositionSide.SHORT, entry="1", stop="1.2")  # a coin under a dollar: 1 - 2 x 0.2
    assert take_profit_level(cheap, fine("1"), R2) == (D("0.60"), True)


# --- the live stop's size ----------------------------------------------------------------------------------------


def test_a_partly_filled_stop_whose_rest_covers_the_position_is_left_alone() -> None:
    p = pos(state="PROTECTED", sl_id="s", qty="2")
    assert plan(p, [order("s", size="3", filled="1")], market(sendable="2"), NO_TP) == ()


def test_a_stop_covering_the_position_exactly_is_not_cut_to_the_sendable_size() -> None:
    # 1.05 held, an increment of 1: the order could carry 1 only; the stop already covers 1.05, so it stays.
    p = pos(state="PROTECTED", sl_id="s", qty="1.05")
    assert plan(p, [order("s", size="1.05")], market(sendable="1"), NO_TP) == ()


def test_a_live_stop_is_not_resized_to_a_remainder_below_the_venues_minimum() -> None:
    p = pos(state="PROTECTED", sl_id="s", qty="2")
    assert plan(p, [order("s", size="1")], market(sendable=None), NO_TP) == ()


# --- ownership ---------------------------------------------------------------------------------------------------


def test_a_hand_placed_stop_with_a_client_id_no_position_claims_is_relinked() -> None:
    hand = order("s", coid="operator-sl-1")
    assert plan(pos(sl_id=None), [hand], market(), NO_TP) == (AdoptStop("s", "unclaimed stop"),)
    claimed = plan(pos(sl_id=None), [hand], market(), NO_TP, claimed=frozenset({"operator-sl-1"}))
    assert claimed == (PlaceStop(D(95), D(1), False),)


# --- when a take-profit is planned -------------------------------------------------------------------------------


def test_take_profit_off_places_none_even_for_a_recorded_price() -> None:
    assert plan(pos(tp="110"), [], market(), ProtectionPolicy(take_profit=False, take_profit_r=D(2))) == (
        PlaceStop(D(95), D(1), False),
    )


def test_no_take_profit_beside_a_stop_that_is_not_sent() -> None:
    policy = ProtectionPolicy(take_profit_r=D(2))
    [crossed] = plan(pos(stop="101", tp="120"), [], market("100"), policy)
    assert isinstance(crossed, Unprotectable)
    assert plan(pos(tp="120"), [], market(), policy, stop_placements_last_hour=6) == (ChurnLimit(6, 6),)


def test_a_recorded_take_profit_that_left_the_book_is_placed_again() -> None:
    p = pos(state="PROTECTED", sl_id="s", tp="110", tp_id="gone")
    assert plan(p, [order("s")], market(), R2) == (PlaceTakeProfit(D(110), D(1), False),)
    live = order("gone", kind=OrderType.TAKE_PROFIT, trigger="110")
    assert plan(p, [order("s"), live], market(), R2) == ()
