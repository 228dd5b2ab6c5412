"""The protection planner (lifecycle.protection), pure: which stop is a position's own, where a stop may sit, and
what the plan says for each situation. Each test states one behaviour an operator relies on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

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
    ProtectionPolicy,
    ResizeStop,
    StopGone,
    Unprotectable,
    default_stop,
    own_client_id,
    own_stop,
    plan,
    round_to_tick,
    stop_level,
    take_profit_level,
)
from lifecycle.values import OrderStatus, OrderType, PositionSide, RegistryPosition, Side, VenueOrder

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)
XBT = "PF_XBTUSD"


def pos(
    *,
    side: PositionSide = PositionSide.LONG,
    state: str = "OPEN",
    qty: str = "1",
    entry: str | None = "100",
    stop: str | None = "95",
    tp: str | None = None,
    sl_id: str | None = None,
    tp_id: str | None = None,
    uid: str = "p1",
) -> RegistryPosition:
    return RegistryPosition(
        uid,
        XBT,
        side,
        state,
        D(qty),
        T0,
        sl_order_id=sl_id,
        tp_order_id=tp_id,
        entry_price=None if entry is None else D(entry),
        stop_price=None if stop is None else D(stop),
        take_profit_price=None if tp is None else D(tp),
    )


def order(
    oid: str,
    *,
    coid: str | None = None,
    side: Side = Side.SELL,
    kind: OrderType = OrderType.STOP,
    size: str = "1",
    filled: str = "0",
    trigger: str | None = "95",
    reduce_only: bool = True,
    status: OrderStatus = OrderStatus.OPEN,
    symbol: str = XBT,
) -> VenueOrder:
    return VenueOrder(
        oid,
        coid,
        symbol,
        side,
        kind,
        D(size),
        D(filled),
        None,
        None if trigger is None else D(trigger),
        reduce_only,
        status,
        T0,
    )


def market(mark: str | None = "100", sendable: str | None = "1") -> MarketFacts:
    return MarketFacts(
        None if mark is None else D(mark), D("0.5"), None if sendable is None else D(sendable), D("0.001")
    )


POLICY = ProtectionPolicy(take_profit=False)


# --- ownership --------------------------------------------------------------------------------------------------


def test_own_client_id_is_the_registrys_spelling_for_that_position_and_purpose() -> None:
    assert own_client_id("p1", "p1-stop-3", "stop")
    assert own_client_id("p1", "p1-takeprofit-1", "take_profit")
    assert not own_client_id("p1", "p1-takeprofit-1", "stop")
    assert not own_client_id("p1", "p12-stop-1", "stop")
    assert not own_client_id("p1", None, "stop")


def test_the_recorded_stop_wins_over_one_with_the_positions_client_id() -> None:
    p = pos(sl_id="b")
    orders = [order("a", coid="p1-stop-1"), order("b")]
    assert own_stop(p, orders, frozenset()) == orders[1]


def test_a_stop_with_the_positions_client_id_wins_over_an_unclaimed_one() -> None:
    orders = [order("a"), order("b", coid="p1-stop-2")]
    found = own_stop(pos(), orders, frozenset())
    assert found is not None and found.order_id == "b"


def test_a_stop_another_position_ever_owned_is_never_relinked() -> None:
    by_venue_id = [order("a")]
    assert own_stop(pos(), by_venue_id, frozenset({"a"})) is None
    by_client_id = [order("a", coid="p0-stop-1")]
    assert own_stop(pos(), by_client_id, frozenset({"p0-stop-1"})) is None


@pytest.mark.parametrize(
    "wrong",
    [
        {"side": Side.BUY},  # the adding side, not the closing side
        {"kind": OrderType.TAKE_PROFIT},
        {"kind": OrderType.LIMIT},
        {"reduce_only": False},
        {"status": OrderStatus.CANCELLED},
        {"symbol": "PF_ETHUSD"},
    ],
)
def test_only_a_live_reduce_only_stop_on_the_closing_side_of_the_symbol_is_a_stop(wrong: dict[str, object]) -> None:
    candidate = order("a", coid="p1-stop-1", **wrong)  # type: ignore[arg-type]
    assert own_stop(pos(), [candidate], frozenset()) is None


def test_a_shorts_stop_is_a_buy() -> None:
    short = pos(side=PositionSide.SHORT, stop="105")
    assert own_stop(short, [order("a", side=Side.BUY, trigger="105")], frozenset()) is not None
    assert own_stop(short, [order("b", side=Side.SELL, trigger="105")], frozenset()) is None


# --- levels -----------------------------------------------------------------------------------------------------


def test_rounding_moves_a_stop_away_from_the_market_never_closer() -> None:
    assert round_to_tick(D("95.3"), D("0.5"), down=True) == D("95.0")
    assert round_to_tick(D("95.3"), D("0.5"), down=False) == D("95.5")
    assert round_to_tick(D("95.5"), D("0.5"), down=True) == D("95.5")


def test_the_default_stop_is_beyond_the_worse_of_entry_and_mark() -> None:
    # A long whose market fell below the entry: 2 % below the mark, not the entry.
    assert default_stop(PositionSide.LONG, D(100), D(90), D(2), D("0.5")) == D("88.0")
    assert default_stop(PositionSide.LONG, D(100), D(110), D(2), D("0.5")) == D("98.0")
    # A short whose market rose above the entry: 2 % above the mark.
    assert default_stop(PositionSide.SHORT, D(100), D(110), D(2), D("0.5")) == D("112.5")
    assert default_stop(PositionSide.SHORT, D(100), D(90), D(2), D("0.5")) == D("102.0")


def test_stop_level_without_a_mark_defers_and_without_an_entry_cannot_derive() -> None:
    assert stop_level(pos(stop=None), market(mark=None), POLICY) == (
        None,
        False,
        "no mark price: the stop's side cannot be checked",
    )
    level, derived, problem = stop_level(pos(stop=None, entry=None), market(), POLICY)
    assert level is None and derived and problem is not None and "entry" in problem


def test_a_recorded_stop_across_the_mark_is_a_problem() -> None:
    level, derived, problem = stop_level(pos(stop="101"), market("100"), POLICY)
    assert level == D(101) and not derived and problem is not None and "mark" in problem
    _, _, exactly_at = stop_level(pos(stop="100"), market("100"), POLICY)
    assert exactly_at is not None  # a stop at the mark triggers at once too


def test_a_short_recorded_stop_below_the_mark_is_a_problem() -> None:
    _, _, problem = stop_level(pos(side=PositionSide.SHORT, stop="99"), market("100"), POLICY)
    assert problem is not None and "mark" in problem
    _, _, fine = stop_level(pos(side=PositionSide.SHORT, stop="101"), market("100"), POLICY)
    assert fine is None


def test_take_profit_level_is_r_times_the_risk_and_never_already_crossed() -> None:
    policy = ProtectionPolicy(take_profit_r=D(2))
    assert take_profit_level(pos(stop="95"), market("100"), policy) == (D(110), True)
    short = pos(side=PositionSide.SHORT, stop="105")
    assert take_profit_level(short, market("100"), policy) == (D(90), True)
    assert take_profit_level(pos(stop="95"), market("111"), policy)[0] is None  # the market is past it
    assert take_profit_level(pos(stop="95", tp="120"), market("100"), policy) == (D(120), False)
    assert take_profit_level(pos(stop="95"), market("100"), ProtectionPolicy())[0] is None  # no R configured
    assert take_profit_level(pos(stop="95"), market(None), policy)[0] is None


# --- the plan ---------------------------------------------------------------------------------------------------


def test_nothing_is_planned_for_a_position_that_is_not_exposed_and_protectable() -> None:
    for state in ("PENDING_ENTRY", "ENTRY_OPEN", "EXITING", "CLOSED"):
        assert plan(pos(state=state), [], market(), POLICY) == ()
    assert plan(pos(qty="0"), [], market(), POLICY) == ()


def test_an_open_position_without_a_stop_gets_one_at_its_recorded_level() -> None:
    assert plan(pos(), [], market(), POLICY) == (PlaceStop(D(95), D(1), False),)


def test_an_import_without_a_stop_gets_a_derived_one_below_the_mark() -> None:
    [action] = plan(pos(stop=None, entry="100"), [], market("90"), POLICY)
    assert action == PlaceStop(D("88.0"), D(1), True)


def test_a_crossed_level_is_never_sent_but_reported_or_exited_by_policy() -> None:
    assert isinstance(plan(pos(stop="101"), [], market("100"), POLICY)[0], Unprotectable)
    exit_policy = replace(POLICY, on_crossed_stop="exit")
    assert isinstance(plan(pos(stop="101"), [], market("100"), exit_policy)[0], ExitNow)


def test_a_stop_beyond_the_distance_limit_is_never_sent_even_with_exit_policy() -> None:
    exit_policy = replace(POLICY, on_crossed_stop="exit")
    [action] = plan(pos(stop="1", entry="71000"), [], market("71000"), exit_policy)
    assert isinstance(action, Unprotectable) and "limit" in action.reason


def test_dust_is_unprotectable_and_no_mark_defers() -> None:
    [dust] = plan(pos(), [], market(sendable=None), POLICY)
    assert isinstance(dust, Unprotectable) and dust.min_size == D("0.001")
    assert isinstance(plan(pos(), [], market(mark=None), POLICY)[0], Defer)


def test_stop_placements_stop_at_the_hourly_bound() -> None:
    assert plan(pos(), [], market(), POLICY, stop_placements_last_hour=5)[0] == PlaceStop(D(95), D(1), False)
    assert plan(pos(), [], market(), POLICY, stop_placements_last_hour=6) == (ChurnLimit(6, 6),)


def test_a_recorded_stop_that_vanished_is_investigated_before_a_new_one() -> None:
    actions = plan(pos(state="PROTECTED", sl_id="gone"), [], market(), POLICY)
    assert actions == (StopGone("gone"), PlaceStop(D(95), D(1), False))


def test_a_live_own_stop_confirms_an_open_position_and_adopts_a_hand_moved_trigger() -> None:
    actions = plan(pos(sl_id=None), [order("s", coid="p1-stop-1", trigger="94")], market(), POLICY)
    assert actions == (AdoptStop("s", "own client order id"), AdoptTrigger("s", D(94)))


def test_a_protected_position_with_its_stop_in_place_needs_nothing() -> None:
    assert plan(pos(state="PROTECTED", sl_id="s"), [order("s")], market(), POLICY) == ()


def test_an_unclaimed_stop_is_relinked_and_said_so() -> None:
    [relink] = plan(pos(state="PROTECTED", sl_id=None), [order("s")], market(), POLICY)
    assert relink == AdoptStop("s", "unclaimed stop")


def test_a_second_stop_of_the_same_position_is_cancelled() -> None:
    orders = [order("a", coid="p1-stop-1"), order("b", coid="p1-stop-2")]
    actions = plan(pos(state="PROTECTED", sl_id="a"), orders, market(), POLICY)
    assert actions == (CancelOrder("b", "a second stop of the same position"),)


def test_a_stop_covering_less_grows_and_never_shrinks_below_the_position() -> None:
    grow = plan(pos(state="PROTECTED", sl_id="s", qty="2"), [order("s", size="1")], market(sendable="2"), POLICY)
    assert grow == (ResizeStop("s", D(2), D(95), None, D(2)),)
    # A partly filled stop: the edit's size includes its past fills (Kraken's absolute size).
    partly = plan(
        pos(state="PROTECTED", sl_id="s", qty="2"), [order("s", size="2", filled="1")], market(sendable="2"), POLICY
    )
    assert partly == (ResizeStop("s", D(3), D(95), None, D(2)),)
    # Shrinking to a size that would no longer cover the remainder is not sent.
    no_shrink = plan(
        pos(state="PROTECTED", sl_id="s", qty="1.05"), [order("s", size="2")], market(sendable="1"), POLICY
    )
    assert no_shrink == ()
    shrink = plan(pos(state="PROTECTED", sl_id="s", qty="1"), [order("s", size="2")], market(sendable="1"), POLICY)
    assert shrink == (ResizeStop("s", D(1), D(95), None, D(1)),)


def test_a_take_profit_is_placed_beside_the_planned_stop_at_r_times_its_distance() -> None:
    policy = ProtectionPolicy(take_profit=True, take_profit_r=D(2))
    actions = plan(pos(stop=None, entry="100"), [], market("100"), policy)
    assert actions == (PlaceStop(D("98.0"), D(1), True), PlaceTakeProfit(D("104.0"), D(1), True))


def test_a_take_profit_of_the_position_is_adopted_and_a_live_one_left_alone() -> None:
    policy = ProtectionPolicy(take_profit=True, take_profit_r=D(2))
    tp = order("t", coid="p1-takeprofit-1", kind=OrderType.TAKE_PROFIT, trigger="110")
    assert plan(pos(state="PROTECTED", sl_id="s"), [order("s"), tp], market(), policy) == (AdoptTakeProfit("t"),)
    assert plan(pos(state="PROTECTED", sl_id="s", tp_id="t"), [order("s"), tp], market(), policy) == ()


def test_no_take_profit_is_planned_when_no_stop_can_be_sent() -> None:
    policy = ProtectionPolicy(take_profit=True, take_profit_r=D(2))
    actions = plan(pos(stop="101"), [], market("100"), policy)
    assert len(actions) == 1 and isinstance(actions[0], Unprotectable)
