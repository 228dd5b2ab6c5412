"""A hand's trade that takes a position we hold through zero (DST seed 2587), judged by the one attribution rule
(`lifecycle.fills.attribute`): the part that closes the position is an external close, the rest is exposure nobody
owns; and fills of one stamp are judged in the order that caps nothing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from lifecycle.fills import Attributed, FillRole, OrderOwner, attribute, owners_from
from lifecycle.values import PositionSide, RegistryPosition, Side, VenueFill
from tests.reconcile.builders import T0, D, fill

LONG = RegistryPosition("p1", "PF_XBTUSD", PositionSide.LONG, "PROTECTED", D("0.02"), T0, "sl-1", "tp-1")


def judged(
    batch: list[VenueFill], holder: RegistryPosition = LONG, *orders: tuple[str, OrderOwner]
) -> list[tuple[str, ...]]:
    out = attribute(batch, owners_from(list(orders), [holder]))
    return [(a.fill.fill_id, a.role.value, str(a.fill.size)) for a in out]


def test_a_hands_trade_larger_than_the_position_closes_it_and_leaves_the_rest_unowned() -> None:
    # Long 0.02; a hand sells 66.166: 0.02 of it closes the position (booked: the position ends flat and its stop and
    # take-profit are cancelled), 66.146 is a short nobody here owns (reconciliation's orphan). Before, the whole
    # fill stayed unowned and the position kept 0.02 the venue no longer held.
    flip = fill("f1", "m-1", None, Side.SELL, "66.166", minute=1)
    got = attribute([flip], owners_from([], [LONG]))
    assert got == (
        Attributed(dataclasses.replace(flip, size=D("0.02")), FillRole.EXTERNAL_CLOSE, "p1", False),
        Attributed(dataclasses.replace(flip, size=D("66.146")), FillRole.UNOWNED, None, False),
    )


def test_a_short_flipped_by_a_hands_buy_is_split_the_same_way() -> None:
    short = dataclasses.replace(LONG, side=PositionSide.SHORT, remaining_qty=D("3"))
    assert judged([fill("f1", "m-1", None, Side.BUY, "5", minute=1)], short) == [
        ("f1", "external_close", "3"),
        ("f1", "unowned", "2"),
    ]


def test_a_hands_trade_after_the_position_was_brought_to_zero_in_the_same_stamp_is_wholly_unowned() -> None:
    # Nothing is left to close: no empty close is booked, the whole fill is someone else's.
    ours = fill("f1", "tp-1", "c-tp", Side.SELL, "0.02", minute=1)
    hand = fill("f2", "m-1", None, Side.SELL, "1", minute=1)
    tp = OrderOwner("p1", "take_profit", "PROTECTED", "tp-1")
    assert attribute([hand, ours], owners_from([("c-tp", tp)], [LONG])) == (
        Attributed(ours, FillRole.OWN, "p1", False),
        Attributed(hand, FillRole.UNOWNED, None, False),
    )


def test_within_one_stamp_adds_and_closes_are_those_of_the_position_that_judges_them() -> None:
    # Two exposed positions on one symbol (an imported orphan beside ours): rule 3 judges a hand's fill against the
    # oldest, so "adds first" is that position's adding side, not the newer one's.
    older = dataclasses.replace(LONG, uid="p0", created=T0 - timedelta(hours=1))
    newer = dataclasses.replace(LONG, uid="p2", side=PositionSide.SHORT, created=T0 + timedelta(seconds=1))
    sell = fill("a-sell", "m-1", None, Side.SELL, "1", minute=1)
    buy = fill("b-buy", "m-2", None, Side.BUY, "1", minute=1)
    got = attribute([sell, buy], owners_from([], [newer, older]))
    assert [(a.fill.fill_id, a.role, a.uid) for a in got] == [
        ("b-buy", FillRole.EXTERNAL_ADD, "p0"),  # the older long's add, judged first: 0.02 -> 1.02
        ("a-sell", FillRole.EXTERNAL_CLOSE, "p0"),  # then a close it holds enough for, whole
    ]


def test_within_one_stamp_a_hands_adds_are_judged_before_its_closes() -> None:
    # DST seed 2587: a hand's short and its liquidation, one stamp, on a 0.02 long. The venue's order of the two is
    # unknown; read sell first (by fill id) the sell was larger than the position and the buy an add of 66.166 the
    # venue never held. Adds first, the two net to nothing, as they did on the venue.
    sell = fill("a-sell", "m-1", None, Side.SELL, "66.166", minute=1)
    buy = fill("b-buy", "m-2", None, Side.BUY, "66.166", minute=1)
    assert judged([sell, buy]) == [("b-buy", "external_add", "66.166"), ("a-sell", "external_close", "66.166")]
    # Different stamps keep their order: the sell first flips the position, the later buy is someone else's.
    later_buy = dataclasses.replace(buy, time=buy.time + (buy.time - T0))
    assert judged([later_buy, sell]) == [
        ("a-sell", "external_close", "0.02"),
        ("a-sell", "unowned", "66.146"),
        ("b-buy", "unowned", "66.166"),
    ]
