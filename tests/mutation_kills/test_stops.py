"""`lifecycle.stops.stop_problem` tested directly (found by `make mutate`: the planner and audit tests reach it
only through a few levels): what is never a price, the mark's side for a long and a short including the mark itself,
the distance bound at and just past its limit, and an entry that is unknown or not a price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lifecycle.stops import stop_problem
from lifecycle.values import PositionSide

D = Decimal
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


@pytest.mark.parametrize("stop", ["0", "-1", "-0.5"])
def test_a_stop_of_zero_or_below_is_never_a_price_whatever_else_is_unknown(stop: str) -> None:
    assert stop_problem(LONG, None, D(stop), None, D(25)) == f"stop {stop} is not a price"
    assert stop_problem("short", None, D(stop), None, D(25)) == f"stop {stop} is not a price"


def test_a_stop_at_or_beyond_the_mark_triggers_at_once_and_the_reason_says_which_side() -> None:
    at_once = "the mark 100: it would trigger at once"
    assert stop_problem(LONG, None, D(100), D(100), D(25)) == f"stop 100 is at or above {at_once}"
    assert stop_problem(LONG, None, D(101), D(100), D(25)) == f"stop 101 is at or above {at_once}"
    assert stop_problem(LONG, None, D("99.9"), D(100), D(25)) is None
    assert stop_problem(SHORT, None, D(100), D(100), D(25)) == f"stop 100 is at or below {at_once}"
    assert stop_problem(SHORT, None, D(99), D(100), D(25)) == f"stop 99 is at or below {at_once}"
    assert stop_problem(SHORT, None, D("100.1"), D(100), D(25)) is None


def test_the_distance_bound_allows_exactly_the_limit_and_nothing_past_it() -> None:
    assert stop_problem(LONG, D(100), D(75), None, D(25)) is None
    assert stop_problem(LONG, D(100), D("74.8"), None, D(25)) == (
        "stop 74.8 is 25.2% from the entry 100, beyond the 25% limit"
    )
    assert stop_problem(SHORT, D(100), D(125), None, D(25)) is None
    assert stop_problem(SHORT, D(100), D("125.2"), None, D(25)) is not None


def test_a_stop_beyond_the_entry_on_the_profit_side_is_bounded_by_the_mark_only() -> None:
    assert stop_problem(LONG, D(100), D(110), D(120), D(25)) is None  # moved past break-even, still below the mark
    assert stop_problem(LONG, D(100), D(130), D(140), D(25)) is None  # 30 % from the entry: a gain locked, no risk
    assert stop_problem(LONG, D(100), D(130), D(125), D(25)) is not None  # above the mark: it would trigger at once
    assert stop_problem(SHORT, D(100), D(60), D(50), D(25)) is None
    assert stop_problem(SHORT, D(100), D(60), D(65), D(25)) is not None
    assert stop_problem(LONG, D(100), D(100), None, D(25)) is None  # break-even: no distance at all


def test_the_bound_holds_for_a_coin_under_a_dollar() -> None:
    assert stop_problem(LONG, D("0.5"), D("0.1"), None, D(25)) == (
        "stop 0.1 is 80.0% from the entry 0.5, beyond the 25% limit"
    )


@pytest.mark.parametrize("entry", [None, "0"], ids=["unknown", "not-a-price"])
def test_without_an_entry_price_only_the_mark_is_checked(entry: str | None) -> None:
    known = None if entry is None else D(entry)
    assert stop_problem(LONG, known, D(1), D(71000), D(25)) is None
    assert stop_problem(LONG, known, D(72000), D(71000), D(25)) is not None
    assert stop_problem(SHORT, known, D(72000), D(71000), D(25)) is None  # any stop is above a short's "entry" 0
    assert stop_problem(SHORT, known, D(70000), D(71000), D(25)) is not None
